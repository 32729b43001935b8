//! Discovery documents: `/version`, `/api`, `/apis`, per group-version
//! resource lists, and aggregated discovery (v2) when the client asks for it.

use crate::resources::ResourceInfo;
use serde_json::Value;

/// The `/version` document.
pub fn version() -> Value {
    todo!()
}

/// The `/api` document (`APIVersions`).
pub fn core_versions() -> Value {
    todo!()
}

/// The `/apis` document (`APIGroupList`).
pub fn group_list(_resources: &[ResourceInfo]) -> Value {
    todo!()
}

/// The `APIResourceList` of one group-version (`""` group for `/api/v1`), with subresources.
pub fn resource_list(_resources: &[ResourceInfo], _group: &str, _version: &str) -> Option<Value> {
    todo!()
}

/// If the `Accept` header asks for aggregated discovery, the content type to answer with.
pub fn wants_aggregated(_accept: &str) -> Option<&'static str> {
    todo!()
}

/// The aggregated discovery document (`APIGroupDiscoveryList`) for `/api` (`core`) or `/apis`.
pub fn aggregated(_resources: &[ResourceInfo], _core: bool) -> Value {
    todo!()
}
