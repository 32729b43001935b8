//! Field errors, printed as apimachinery's `field.Error` prints them.

use super::go_format::{go_quote, go_value};
use serde_json::Value;
use std::fmt;

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

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The bad value of a field error, printed as apimachinery's `ErrorBody` does.
pub(crate) enum Bad<'a> {
    Json(&'a Value),
    Str(&'a str),
    Int(i64),
    /// Already printed as Go prints it (`true`, a struct's `%#v`).
    Raw(&'a str),
}

impl FieldError {
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        Self::new(field, "FieldValueRequired", "Required value".into(), detail)
    }

    pub(crate) fn invalid(field: &str, value: Bad<'_>, detail: &str) -> Self {
        Self::new(
            field,
            "FieldValueInvalid",
            with_value("Invalid value", value),
            detail,
        )
    }

    pub(crate) fn type_invalid(field: &str, value: Bad<'_>, detail: &str) -> Self {
        let body = with_value("Invalid value", value);
        Self::new(field, "FieldValueTypeInvalid", body, detail)
    }

    pub(crate) fn not_supported(field: &str, value: &Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        let body = with_value("Unsupported value", Bad::Json(value));
        Self::new(field, "FieldValueNotSupported", body, &detail)
    }

    pub(crate) fn too_long(field: &str, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        Self::new(field, "FieldValueTooLong", "Too long".into(), &detail)
    }

    pub(crate) fn too_many(field: &str, actual: usize, max: u64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {unit}");
        let body = with_value("Too many", Bad::Int(actual as i64));
        Self::new(field, "FieldValueTooMany", body, &detail)
    }

    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(field, "FieldValueForbidden", "Forbidden".into(), detail)
    }

    pub(crate) fn duplicate(field: &str, value: &Value) -> Self {
        let body = with_value("Duplicate value", Bad::Json(value));
        Self::new(field, "FieldValueDuplicate", body, "")
    }

    fn new(field: &str, reason: &'static str, body: String, detail: &str) -> Self {
        let message = if detail.is_empty() {
            body
        } else {
            format!("{body}: {detail}")
        };
        Self {
            field: field.to_string(),
            reason,
            message,
        }
    }
}

fn with_value(kind: &str, value: Bad<'_>) -> String {
    match value {
        Bad::Str(s) => format!("{kind}: {}", go_quote(s)),
        Bad::Int(i) => format!("{kind}: {i}"),
        Bad::Raw(s) => format!("{kind}: {s}"),
        Bad::Json(v) => format!("{kind}: {}", go_value(v)),
    }
}
