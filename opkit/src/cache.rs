//! The caches of owned and watched kinds: every object as compact JSON, decoded on read.
//!
//! A typed Kubernetes object is mostly unset `Option`s: a `Deployment` takes 2.5 KB before its
//! first string and each `Container` 2.1 KB more, while its JSON holds only what is set. A cache
//! of 10,000 Deployments is several times smaller as JSON, and a reconcile decodes the one or two
//! objects it reads in microseconds. Before storing, caches also drop what no reconcile reads
//! ([`prune`]). The primary's cache stays typed: kube-runtime hands its objects to reconciles.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::operator::{ApiScope, Object};

/// kubectl's client-side apply annotation: a second copy of the object, never needed in a cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from an object what no reconcile reads and what often outweighs the rest of it,
/// before a cache stores it: `managedFields` and kubectl's last-applied annotation.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// let mut cm = ConfigMap::default();
/// cm.metadata.managed_fields = Some(vec![Default::default()]);
/// opkit::cache::prune(&mut cm);
/// assert!(cm.metadata.managed_fields.is_none());
/// ```
pub fn prune<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// An object as a cache holds it: its name and namespace, and the whole object as JSON.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use opkit::cache::Compact;
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// cm.data = Some([("mode".to_string(), "fast".to_string())].into());
/// let compact = Compact::new(&cm).expect("a ConfigMap encodes");
/// assert_eq!(compact.decode().expect("decodes"), cm);
/// ```
pub struct Compact<C> {
    meta: ObjectMeta,
    json: Box<str>,
    kind: PhantomData<fn() -> C>,
}

impl<C: Object> Compact<C> {
    /// Encodes `obj`; only the name and namespace stay outside the JSON (the cache's key).
    ///
    /// ```
    /// let cm = k8s_openapi::api::core::v1::ConfigMap::default();
    /// assert!(opkit::cache::Compact::new(&cm).is_ok());
    /// ```
    pub fn new(obj: &C) -> serde_json::Result<Self> {
        let meta = ObjectMeta {
            name: obj.meta().name.clone(),
            namespace: obj.meta().namespace.clone(),
            ..ObjectMeta::default()
        };
        let json = serde_json::to_string(obj)?.into_boxed_str();
        Ok(Self {
            meta,
            json,
            kind: PhantomData,
        })
    }

    /// The object, decoded.
    ///
    /// ```
    /// let cm = k8s_openapi::api::core::v1::ConfigMap::default();
    /// let compact = opkit::cache::Compact::new(&cm).expect("encodes");
    /// assert_eq!(compact.decode().expect("decodes"), cm);
    /// ```
    pub fn decode(&self) -> serde_json::Result<C> {
        serde_json::from_str(&self.json)
    }
}

impl<C> Clone for Compact<C> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for Compact<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact")
            .field("name", &self.meta.name)
            .field("namespace", &self.meta.namespace)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl<C: Resource<DynamicType = ()>> Resource for Compact<C> {
    type DynamicType = ();
    type Scope = C::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        C::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        C::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        C::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        C::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Stores `event` into `writer` in compact form (an object that cannot be encoded is left out,
/// so reads of it go to the API server).
pub(crate) fn store<C: Object>(writer: &mut Writer<Compact<C>>, event: &watcher::Event<C>) {
    let compact = |obj: &C| {
        Compact::new(obj)
            .inspect_err(|error| tracing::warn!(%error, kind = %C::kind(&()), "not cached"))
            .ok()
    };
    let event = match event {
        watcher::Event::Apply(obj) => compact(obj).map(watcher::Event::Apply),
        watcher::Event::InitApply(obj) => compact(obj).map(watcher::Event::InitApply),
        watcher::Event::Delete(obj) => compact(obj).map(watcher::Event::Delete),
        watcher::Event::Init => Some(watcher::Event::Init),
        watcher::Event::InitDone => Some(watcher::Event::InitDone),
    };
    if let Some(event) = event {
        writer.apply_watcher_event(&event);
    }
}

/// The caches of a controller's owned and watched kinds, by kind.
///
/// ```
/// let caches = opkit::cache::Caches::default();
/// assert!(caches.get::<k8s_openapi::api::core::v1::Secret>(Some("default"), "tls").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Caches {
    stores: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
    synced: Arc<Mutex<Vec<BoxFuture<'static, ()>>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    pub(crate) fn insert<C: Object>(&self, store: Store<Compact<C>>) {
        let ready = store.clone();
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::pin(async move {
                // An error means the watch stopped before its first list: nothing to wait for.
                let _ = ready.wait_until_ready().await;
            }));
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<C>(), Box::new(store));
    }

    pub(crate) fn take_synced(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.synced.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The cached object of kind `C` named `name` in `namespace` (ignored for cluster-scoped
    /// kinds), decoded; `None` when `C` is not cached or the object is not there.
    ///
    /// ```
    /// let caches = opkit::cache::Caches::default();
    /// assert!(caches.get::<k8s_openapi::api::core::v1::ConfigMap>(None, "x").is_none());
    /// ```
    pub fn get<C: Object>(&self, namespace: Option<&str>, name: &str) -> Option<C> {
        let store = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<C>())?
            .downcast_ref::<Store<Compact<C>>>()?
            .clone();
        let mut reference = ObjectRef::<Compact<C>>::new(name);
        if let Some(ns) = namespace.filter(|_| <C::Scope as ApiScope>::NAMESPACED) {
            reference = reference.within(ns);
        }
        store.get(&reference)?.decode().ok()
    }
}
