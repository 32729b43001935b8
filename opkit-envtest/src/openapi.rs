//! OpenAPI v2 and v3 documents for the served kinds, so `kubectl apply`,
//! `kubectl explain` and client-side validation work.

use crate::resources::ResourceInfo;
use serde_json::Value;

/// The `/openapi/v2` document (JSON).
pub fn v2(_resources: &[ResourceInfo]) -> Value {
    todo!()
}

/// The `/openapi/v3` index: one entry per group-version path.
pub fn v3_index(_resources: &[ResourceInfo]) -> Value {
    todo!()
}

/// The `/openapi/v3/<path>` document, `path` being `api/v1` or `apis/<group>/<version>`.
pub fn v3_group_version(_resources: &[ResourceInfo], _path: &str) -> Option<Value> {
    todo!()
}
