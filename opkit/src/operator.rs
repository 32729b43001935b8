//! The short way for an operator's own custom resource: `#[derive(Operator)]` implements
//! [`Operator`], which builds the kind's [`Controller`] from `#[operator(...)]`.

use kube::CustomResourceExt;

use crate::controller::Controller;
use crate::object::Object;

/// A custom resource of the operator's own, with its controller's configuration; implemented by
/// `#[derive(Operator)]` from `#[operator(...)]` (see the `opkit_derive` crate for the attributes).
///
/// The controller it builds carries the kind's CRD (printed by `crd`, installed on the embedded
/// API server) and manages its status conditions.
///
/// ```
/// use opkit::prelude::*;
/// use k8s_openapi::api::core::v1::ConfigMap;
///
/// #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "example.com", version = "v1", kind = "Cache", namespaced)]
/// #[operator(owns(ConfigMap), concurrency = 2)]
/// pub struct CacheSpec {
///     pub size: i32,
/// }
///
/// let controller = Cache::controller(());
/// assert_eq!(controller.name(), "cache");
/// assert_eq!(controller.kinds(), ["ConfigMap"]);
/// assert!(controller.crd().is_some());
/// ```
pub trait Operator: Object + CustomResourceExt {
    /// The controller of this kind as `#[operator(...)]` configures it, handing `data` to every
    /// reconcile ([`Context::data`](crate::Context::data)); adjust it further with the
    /// [`Controller`] builder methods.
    fn controller<D: Send + Sync + 'static>(data: D) -> Controller<Self, D>;
}
