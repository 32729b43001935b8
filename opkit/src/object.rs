//! The Kubernetes types opkit works with: any static k8s-openapi type or custom resource.

use std::fmt::Debug;

use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use scope::ApiScope;

/// A Kubernetes type opkit can read, write and watch.
///
/// Blanket-implemented for every static k8s-openapi type and every `#[derive(CustomResource)]`
/// type, namespaced or cluster-scoped.
///
/// ```
/// fn takes<T: opkit::Object>() {}
/// takes::<k8s_openapi::api::core::v1::Service>();
/// takes::<k8s_openapi::api::core::v1::Namespace>();
/// ```
pub trait Object:
    Resource<DynamicType = (), Scope: scope::ApiScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Object for T where
    T: Resource<DynamicType = (), Scope: scope::ApiScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Whether objects of kind `K` live in a namespace.
///
/// ```
/// use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
/// assert!(opkit::object::is_namespaced::<ConfigMap>());
/// assert!(!opkit::object::is_namespaced::<Namespace>());
/// ```
pub fn is_namespaced<K: Object>() -> bool {
    <K::Scope as ApiScope>::NAMESPACED
}

/// An `Api` for kind `K` in `namespace` (ignored for cluster-scoped kinds), or across all
/// namespaces when `namespace` is `None`.
///
/// ```
/// use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
/// # fn f(client: kube::Client) {
/// let in_default: kube::Api<ConfigMap> = opkit::object::api(client.clone(), Some("default"));
/// let namespaces: kube::Api<Namespace> = opkit::object::api(client, Some("ignored"));
/// # }
/// ```
pub fn api<K: Object>(client: Client, namespace: Option<&str>) -> Api<K> {
    <K::Scope as ApiScope>::api::<K>(client, namespace)
}

/// Whether `K` is a built-in kind of Kubernetes (its API group has no dot, or ends in `.k8s.io`)
/// rather than a custom resource, whose group always holds a dot.
///
/// ```
/// use k8s_openapi::api::{apps::v1::Deployment, networking::v1::NetworkPolicy};
/// assert!(opkit::object::is_builtin::<Deployment>());
/// assert!(opkit::object::is_builtin::<NetworkPolicy>());
/// ```
pub fn is_builtin<K: Object>() -> bool {
    let group = K::group(&());
    !group.contains('.') || group.ends_with(".k8s.io") || group.ends_with(".kubernetes.io")
}

/// The scope markers of k8s-openapi, sealed: `Object` needs them but users never name them.
mod scope {
    use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
    use kube::{Api, Client, Resource};

    /// Builds an `Api` whatever the scope of a kind.
    pub trait ApiScope {
        /// Whether objects of this scope live in a namespace.
        const NAMESPACED: bool;
        /// An `Api` in `namespace` (ignored for cluster-scoped kinds), or across all namespaces.
        fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
        where
            K: Resource<DynamicType = (), Scope = Self>;
    }

    impl ApiScope for NamespaceResourceScope {
        const NAMESPACED: bool = true;
        fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
        where
            K: Resource<DynamicType = (), Scope = Self>,
        {
            match namespace {
                Some(ns) => Api::namespaced(client, ns),
                None => Api::all(client),
            }
        }
    }

    impl ApiScope for ClusterResourceScope {
        const NAMESPACED: bool = false;
        fn api<K>(client: Client, _namespace: Option<&str>) -> Api<K>
        where
            K: Resource<DynamicType = (), Scope = Self>,
        {
            Api::all(client)
        }
    }
}
