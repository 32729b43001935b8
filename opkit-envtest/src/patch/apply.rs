//! Server-side apply: field ownership in `metadata.managedFields`.

use super::PatchError;
use serde_json::Value;

/// Fields another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyConflict {
    /// The other manager's name.
    pub manager: String,
    /// The apiVersion that manager used.
    pub api_version: String,
    /// The conflicting field, e.g. `.spec.replicas`.
    pub field: String,
}

/// Server-side applies `config` for `manager` onto `live` (absent: create).
///
/// Returns the new object with `metadata.managedFields` updated, or the
/// conflicts when `force` is false and other managers own changed fields.
pub fn apply(
    _live: Option<&Value>,
    _config: &Value,
    _manager: &str,
    _force: bool,
    _group: &str,
    _kind: &str,
) -> Result<Result<Value, Vec<ApplyConflict>>, PatchError> {
    todo!()
}

/// Records `manager`'s ownership of what a non-apply write changed
/// (`operation` `Update`, optionally for a subresource such as `status`).
pub fn track_update(
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _subresource: Option<&str>,
    _group: &str,
    _kind: &str,
) {
    todo!()
}
