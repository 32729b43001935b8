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

use crate::object::{ApiScope, Object};

/// kubectl's client-side apply annotation: a second copy of the object, never needed in a cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from an object what no reconcile reads and what often outweighs the rest of it,
/// before a cache stores it: `managedFields` and kubectl's last-applied annotation.
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

/// An object as a cache holds it: its name, namespace and resourceVersion, and the whole object
/// as JSON.
pub struct Compact<C> {
    meta: ObjectMeta,
    json: Box<str>,
    kind: PhantomData<fn() -> C>,
}

impl<C: Object> Compact<C> {
    /// Encodes `obj`; its name, namespace and resourceVersion also stay outside the JSON (the
    /// cache's key, and which of two versions is newer).
    pub fn new(obj: &C) -> serde_json::Result<Self> {
        let meta = ObjectMeta {
            name: obj.meta().name.clone(),
            namespace: obj.meta().namespace.clone(),
            resource_version: obj.meta().resource_version.clone(),
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

/// Namespace and name: how a cache finds an object.
type Key = (Option<String>, String);

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A resourceVersion as a number; etcd-backed servers count them up.
fn version_of(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// What this process wrote, by key, until its cache shows that version or a later one: a
/// write's watch event arrives after the write returns, and reading the older cached version
/// would send the same write again (or a get). Versions compare as numbers, which holds for
/// etcd-backed servers; with opaque versions nothing is remembered and the cache is read alone.
#[derive(Debug)]
pub(crate) struct OwnWrites<Id, V> {
    entries: Mutex<HashMap<Id, (u64, V)>>,
}

impl<Id, V> Default for OwnWrites<Id, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<Id: std::hash::Hash + Eq, V: Clone> OwnWrites<Id, V> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Id, (u64, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers `value`, written as the version `written` carries.
    pub(crate) fn record(&self, id: Id, written: &ObjectMeta, value: V) {
        if let Some(version) = version_of(written) {
            self.entries().insert(id, (version, value));
        }
    }

    /// What was written after the cached version `cached` (or with nothing cached).
    pub(crate) fn newer_than(&self, id: &Id, cached: Option<&ObjectMeta>) -> Option<V> {
        let entries = self.entries();
        let (version, value) = entries.get(id)?;
        (cached.and_then(version_of) < Some(*version)).then(|| value.clone())
    }

    /// Forgets the write `cached` shows or supersedes; called with every version a cache sees.
    pub(crate) fn observe(&self, id: &Id, cached: &ObjectMeta) {
        let mut entries = self.entries();
        if let Some(version) = version_of(cached)
            && entries
                .get(id)
                .is_some_and(|(written, _)| version >= *written)
        {
            entries.remove(id);
        }
    }

    /// Forgets a deleted object.
    pub(crate) fn forget(&self, id: &Id) {
        self.entries().remove(id);
    }
}

/// The cache of one kind: the reflector's store, and the objects this process wrote that the
/// store may not show yet.
pub(crate) struct KindCache<C: Object> {
    store: Store<Compact<C>>,
    written: OwnWrites<Key, Compact<C>>,
}

impl<C: Object> KindCache<C> {
    /// Stores `event` into `writer` in compact form (an object that cannot be encoded is left
    /// out, so reads of it go to the API server), and forgets writes the store now shows.
    pub(crate) fn store(&self, writer: &mut Writer<Compact<C>>, event: &watcher::Event<C>) {
        let compact = |obj: &C| {
            self.written.observe(&key_of(obj.meta()), obj.meta());
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

    /// Remembers `obj` as written by this process, until the store shows its version.
    fn remember(&self, obj: &C) {
        let mut obj = obj.clone();
        prune(&mut obj);
        if let Ok(compact) = Compact::new(&obj) {
            self.written.record(key_of(obj.meta()), obj.meta(), compact);
        }
    }

    fn get(&self, key: Key) -> Option<C> {
        let mut reference = ObjectRef::<Compact<C>>::new(&key.1);
        if let Some(ns) = &key.0 {
            reference = reference.within(ns);
        }
        let stored = self.store.get(&reference);
        match self
            .written
            .newer_than(&key, stored.as_ref().map(|s| &s.meta))
        {
            Some(written) => written.decode().ok(),
            None => stored?.decode().ok(),
        }
    }
}

/// The caches of a controller's owned and watched kinds, by kind.
#[derive(Clone, Default)]
pub struct Caches {
    kinds: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
    synced: Arc<Mutex<Vec<BoxFuture<'static, ()>>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    /// Registers the cache of kind `C`, filled by its watch through [`KindCache::store`].
    pub(crate) fn insert<C: Object>(&self, store: Store<Compact<C>>) -> Arc<KindCache<C>> {
        let ready = store.clone();
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::pin(async move {
                // An error means the watch stopped before its first list: nothing to wait for.
                let _ = ready.wait_until_ready().await;
            }));
        let kind = Arc::new(KindCache {
            store,
            written: OwnWrites::default(),
        });
        self.kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<C>(), kind.clone());
        kind
    }

    pub(crate) fn take_synced(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.synced.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn kind<C: Object>(&self) -> Option<Arc<KindCache<C>>> {
        self.kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<C>())?
            .clone()
            .downcast()
            .ok()
    }

    /// Remembers an object this process just wrote, so reads see it before its watch event.
    pub(crate) fn remember<C: Object>(&self, obj: &C) {
        if let Some(kind) = self.kind::<C>() {
            kind.remember(obj);
        }
    }

    /// The cached object of kind `C` named `name` in `namespace` (ignored for cluster-scoped
    /// kinds), decoded; `None` when `C` is not cached or the object is not there. An object this
    /// process wrote is seen at once, before the watch delivers it.
    pub fn get<C: Object>(&self, namespace: Option<&str>, name: &str) -> Option<C> {
        self.lookup(namespace, name).flatten()
    }

    /// Like [`Caches::get`], telling apart "`C` is not cached" (`None`) from "the synced cache
    /// has no such object" (`Some(None)`), which needs no request to the API server.
    pub(crate) fn lookup<C: Object>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Option<C>> {
        let namespace = namespace.filter(|_| <C::Scope as ApiScope>::NAMESPACED);
        let kind = self.kind::<C>()?;
        Some(kind.get((namespace.map(String::from), name.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector;

    use super::*;

    fn config_map(version: &str, size: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("settings".into());
        cm.metadata.namespace = Some("default".into());
        cm.metadata.resource_version = Some(version.into());
        cm.metadata.managed_fields = Some(vec![Default::default()]);
        cm.data = Some([("size".to_string(), size.to_string())].into());
        cm
    }

    fn size(cm: Option<ConfigMap>) -> Option<String> {
        cm?.data?.remove("size")
    }

    #[test]
    fn a_write_is_read_back_until_the_store_shows_it_or_a_newer_version() {
        let caches = Caches::default();
        let (store, mut writer) = reflector::store::<Compact<ConfigMap>>();
        let kind = caches.insert(store);
        let get = || caches.get::<ConfigMap>(Some("default"), "settings");
        assert_eq!(
            caches.lookup::<ConfigMap>(Some("default"), "settings"),
            Some(None)
        );
        kind.store(&mut writer, &watcher::Event::Apply(config_map("5", "1")));
        caches.remember(&config_map("7", "2"));
        assert_eq!(
            size(get()),
            Some("2".into()),
            "the store still holds version 5"
        );
        let read = get().expect("cached");
        assert!(
            read.metadata.managed_fields.is_none(),
            "remembered objects are pruned"
        );
        kind.store(&mut writer, &watcher::Event::Apply(config_map("9", "3")));
        assert_eq!(
            size(get()),
            Some("3".into()),
            "version 9 supersedes the write"
        );
        assert!(
            kind.written.entries().is_empty(),
            "the write is forgotten once the store caught up"
        );
    }

    #[test]
    fn a_write_is_newer_than_earlier_versions_until_one_at_least_as_new_is_seen() {
        let version = |v: &str| ObjectMeta {
            resource_version: Some(v.into()),
            ..ObjectMeta::default()
        };
        let written = OwnWrites::<&str, &str>::default();
        written.record("u1", &version("8"), "Deploying");
        assert_eq!(
            written.newer_than(&"u1", Some(&version("5"))),
            Some("Deploying")
        );
        assert_eq!(written.newer_than(&"u1", None), Some("Deploying"));
        assert_eq!(written.newer_than(&"u1", Some(&version("8"))), None);
        written.observe(&"u1", &version("7"));
        assert!(
            written.newer_than(&"u1", Some(&version("5"))).is_some(),
            "7 predates the write"
        );
        written.observe(&"u1", &version("9"));
        assert_eq!(
            written.newer_than(&"u1", Some(&version("5"))),
            None,
            "forgotten once seen"
        );
        written.record("u1", &version("not-a-number"), "Running");
        assert_eq!(written.newer_than(&"u1", Some(&version("1"))), None);
        written.record("u2", &version("3"), "Pending");
        written.forget(&"u2");
        assert_eq!(written.newer_than(&"u2", None), None);
    }

    #[test]
    fn opaque_versions_read_the_store_alone() {
        let caches = Caches::default();
        let (store, mut writer) = reflector::store::<Compact<ConfigMap>>();
        let kind = caches.insert(store);
        kind.store(&mut writer, &watcher::Event::Apply(config_map("a", "1")));
        caches.remember(&config_map("b", "2"));
        assert_eq!(
            size(caches.get(Some("default"), "settings")),
            Some("1".into())
        );
        assert!(
            caches
                .lookup::<k8s_openapi::api::core::v1::Secret>(None, "x")
                .is_none()
        );
    }
}
