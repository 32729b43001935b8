//! CRD structural schemas: validation, defaulting and pruning, with the
//! real API server's error wording.

use serde_json::Value;

/// One invalid field, as a `StatusCause` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field path, e.g. `spec.replicas`.
    pub field: String,
    /// The cause reason, e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The detail without the path, e.g. `Invalid value: 0: spec.replicas in body should be greater than or equal to 1`.
    pub message: String,
}

/// Validates `object` against an `openAPIV3Schema`; empty when valid.
pub fn validate(_schema: &Value, _object: &Value) -> Vec<FieldError> {
    todo!()
}

/// Applies `default` values from the schema, as the server does on every write.
pub fn apply_defaults(_schema: &Value, _object: &mut Value) {
    todo!()
}

/// Removes fields the schema does not declare (root `apiVersion`, `kind`, `metadata` stay).
pub fn prune(_schema: &Value, _object: &mut Value) {
    todo!()
}

/// Checks a CRD version schema before the CRD is accepted (structural rules, unsupported features).
pub fn check_schema(_schema: &Value) -> Vec<FieldError> {
    todo!()
}
