//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for.

use crate::resources::ResourceInfo;
use serde_json::Value;

/// Whether the `Accept` header asks for a Table.
pub fn wants_table(_accept: &str) -> bool {
    todo!()
}

/// Renders objects as a Table with the kind's columns; `include_object` is the
/// `includeObject` query parameter (`None`, `Metadata` (default) or `Object`).
pub fn table(
    _info: &ResourceInfo,
    _objects: &[Value],
    _list_metadata: Value,
    _include_object: &str,
) -> Value {
    todo!()
}
