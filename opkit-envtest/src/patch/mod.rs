//! Patch types: JSON merge, JSON patch, strategic merge and server-side apply.

mod apply;
mod strategic;

pub use apply::{ApplyConflict, apply, track_update};
pub use strategic::strategic_merge;

use serde_json::Value;

/// A patch the server could not apply to the object.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(_target: &mut Value, _patch: &Value) {
    todo!()
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(_target: &mut Value, _patch: &Value) -> Result<(), PatchError> {
    todo!()
}
