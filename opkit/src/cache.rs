//! The caches of a controller: every object as compressed JSON, decoded on read.
//!
//! A typed Kubernetes object is mostly unset `Option`s: a `Deployment` takes 2.5 KB before its
//! first string and each `Container` 2.1 KB more, while its JSON holds only what is set. And the
//! objects of one kind are much alike: the Deployments of one operator differ in their names,
//! uids, timestamps and a few numbers. So a cache keeps each object as its JSON compressed with
//! LZ4 against a dictionary, the first object of the kind it stored: what an object shares with
//! that one costs a few bytes. A reconcile decodes the one or two objects it reads in
//! microseconds. Before storing, caches also drop what no reconcile reads ([`prune`]).
//!
//! This replaces kube-runtime's reflector `Store` (typed objects behind `Arc`s, keyed by
//! `ObjectRef`s of about 200 bytes each) for every kind a controller caches, its primaries
//! included; the objects still come from kube-runtime's `watcher`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher;
use tokio::sync::watch;

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

/// How a cache finds an object: `namespace/name`, or `name` for cluster-scoped kinds (names
/// never contain a `/`).
pub(crate) type Key = Arc<str>;

/// The key of the object `meta` describes.
pub(crate) fn key_of(meta: &ObjectMeta) -> Key {
    key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The key of the object `name` in `namespace`.
pub(crate) fn key(namespace: Option<&str>, name: &str) -> Key {
    match namespace {
        Some(ns) => format!("{ns}/{name}").into(),
        None => name.into(),
    }
}

/// A resourceVersion as a number; etcd-backed servers count them up, and never hand out 0.
fn version_of(meta: &ObjectMeta) -> Option<NonZeroU64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// JSON compressed against the first object encoded: the codec of one cache.
#[derive(Default)]
struct Codec {
    dictionary: OnceLock<Box<[u8]>>,
}

impl Codec {
    fn encode<C: serde::Serialize>(&self, obj: &C) -> serde_json::Result<Box<[u8]>> {
        let json = serde_json::to_vec(obj)?;
        let dictionary = self
            .dictionary
            .get_or_init(|| json.clone().into_boxed_slice());
        Ok(lz4_flex::block::compress_prepend_size_with_dict(&json, dictionary).into_boxed_slice())
    }

    fn decode<C: serde::de::DeserializeOwned>(&self, packed: &[u8]) -> Option<C> {
        let dictionary = self.dictionary.get()?;
        let json = lz4_flex::block::decompress_size_prepended_with_dict(packed, dictionary)
            .inspect_err(|error| tracing::error!(%error, "a cached object does not decompress"))
            .ok()?;
        serde_json::from_slice(&json)
            .inspect_err(|error| tracing::error!(%error, "a cached object does not decode"))
            .ok()
    }
}

/// One object in a store: compressed JSON, its resourceVersion, and a tag the controller keeps
/// with it (the hash of what its predicate looks at).
struct Entry {
    packed: Box<[u8]>,
    version: Option<NonZeroU64>,
    tag: u64,
}

type Objects = HashMap<Key, Entry>;

/// What applying one watch event changed in a [`Store`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The object was stored; `before` is the tag of the version it replaced, if any. `relisted`:
    /// it came from a (re)list rather than a watch event.
    Stored {
        key: Key,
        before: Option<u64>,
        relisted: bool,
    },
    /// The object was deleted.
    Deleted(Key),
    /// A relist completed; these objects were gone from it.
    Relisted(Vec<Key>),
    /// Nothing to act on (the start of a relist, an object that cannot be encoded).
    Nothing,
}

/// The objects of one kind a watch delivered, compressed, by key. A relist is built aside and
/// swapped in whole once complete, as kube-runtime's reflector does.
pub(crate) struct Store<K> {
    codec: Codec,
    live: RwLock<Objects>,
    /// The relist in progress, with the tags the live objects had.
    rebuilding: Mutex<Option<Objects>>,
    synced: watch::Sender<bool>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Self {
            codec: Codec::default(),
            live: RwLock::default(),
            rebuilding: Mutex::default(),
            synced: watch::channel(false).0,
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let objects = self.live.read().map_or(0, |l| l.len());
        f.debug_struct("Store")
            .field("objects", &objects)
            .finish_non_exhaustive()
    }
}

impl<K: Object> Store<K> {
    fn live(&self) -> std::sync::RwLockReadGuard<'_, Objects> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, Objects> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, obj: &K, tag: u64) -> Option<Entry> {
        let packed = self
            .codec
            .encode(obj)
            .inspect_err(|error| tracing::warn!(%error, kind = %K::kind(&()), "not cached"))
            .ok()?;
        Some(Entry {
            packed,
            version: version_of(obj.meta()),
            tag,
        })
    }

    /// Applies one watch event; `tag` computes the tag kept with each stored object.
    pub(crate) fn apply(&self, event: &watcher::Event<K>, tag: impl Fn(&K) -> u64) -> Change {
        match event {
            watcher::Event::Apply(obj) => {
                let key = key_of(obj.meta());
                let Some(entry) = self.entry(obj, tag(obj)) else {
                    return Change::Nothing;
                };
                let before = self.live_mut().insert(key.clone(), entry).map(|e| e.tag);
                Change::Stored {
                    key,
                    before,
                    relisted: false,
                }
            }
            watcher::Event::Delete(obj) => {
                let key = key_of(obj.meta());
                self.live_mut().remove(&key);
                Change::Deleted(key)
            }
            watcher::Event::Init => {
                *self.rebuilding.lock().unwrap_or_else(|p| p.into_inner()) = Some(Objects::new());
                Change::Nothing
            }
            watcher::Event::InitApply(obj) => {
                let key = key_of(obj.meta());
                let Some(entry) = self.entry(obj, tag(obj)) else {
                    return Change::Nothing;
                };
                let before = self.live().get(&key).map(|e| e.tag);
                let mut rebuilding = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
                rebuilding
                    .get_or_insert_with(Objects::new)
                    .insert(key.clone(), entry);
                Change::Stored {
                    key,
                    before,
                    relisted: true,
                }
            }
            watcher::Event::InitDone => {
                let fresh = self
                    .rebuilding
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or_default();
                let old = std::mem::replace(&mut *self.live_mut(), fresh);
                let live = self.live();
                let gone = old.into_keys().filter(|k| !live.contains_key(k)).collect();
                drop(live);
                self.synced.send_replace(true);
                Change::Relisted(gone)
            }
        }
    }

    /// The object stored under `key`, decoded: the version a relist in progress brought, if it
    /// brought one, since that is what the reconcile it asked for must see.
    pub(crate) fn get(&self, key: &str) -> Option<K> {
        {
            let rebuilding = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = rebuilding.as_ref().and_then(|objects| objects.get(key)) {
                return self.codec.decode(&entry.packed);
            }
        }
        let live = self.live();
        let entry = live.get(key)?;
        self.codec.decode(&entry.packed)
    }

    /// The resourceVersion of the object stored under `key`, and whether there is one.
    fn version(&self, key: &str) -> Option<Option<NonZeroU64>> {
        self.live().get(key).map(|e| e.version)
    }

    /// Every stored object, decoded.
    pub(crate) fn state(&self) -> Vec<K> {
        let live = self.live();
        live.values()
            .filter_map(|e| self.codec.decode(&e.packed))
            .collect()
    }

    /// Whether an object is stored under `key`.
    #[cfg(test)]
    fn contains(&self, key: &str) -> bool {
        self.live().contains_key(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.live().len()
    }

    /// Whether the first list has been stored.
    pub(crate) fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }
}

/// What this process wrote, by key, until its cache shows that version or a later one: a
/// write's watch event arrives after the write returns, and reading the older cached version
/// would send the same write again (or a get). Versions compare as numbers, which holds for
/// etcd-backed servers; with opaque versions nothing is remembered and the cache is read alone.
#[derive(Debug)]
pub(crate) struct OwnWrites<Id, V> {
    entries: Mutex<HashMap<Id, (NonZeroU64, V)>>,
}

impl<Id, V> Default for OwnWrites<Id, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<Id: std::hash::Hash + Eq, V: Clone> OwnWrites<Id, V> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Id, (NonZeroU64, V)>> {
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
        self.newer_than_version(id, cached.and_then(version_of))
    }

    fn newer_than_version<Q>(&self, id: &Q, cached: Option<NonZeroU64>) -> Option<V>
    where
        Id: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let entries = self.entries();
        let (version, value) = entries.get(id)?;
        (cached < Some(*version)).then(|| value.clone())
    }

    /// Forgets the write `cached` shows or supersedes; called with every version a cache sees.
    pub(crate) fn observe<Q>(&self, id: &Q, cached: &ObjectMeta)
    where
        Id: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
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
    pub(crate) fn forget<Q>(&self, id: &Q)
    where
        Id: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries().remove(id);
    }
}

/// The cache of one owned or watched kind: its store, and the objects this process wrote that
/// the store may not show yet (as JSON: they are few and short-lived).
pub(crate) struct KindCache<C: Object> {
    store: Store<C>,
    written: OwnWrites<Key, Arc<[u8]>>,
}

impl<C: Object> KindCache<C> {
    /// Stores `event` and forgets writes the store now shows.
    pub(crate) fn store(&self, event: &watcher::Event<C>) {
        if let watcher::Event::Apply(obj)
        | watcher::Event::InitApply(obj)
        | watcher::Event::Delete(obj) = event
        {
            self.written.observe(&*key_of(obj.meta()), obj.meta());
        }
        self.store.apply(event, |_| 0);
    }

    /// Remembers `obj` as written by this process, until the store shows its version.
    fn remember(&self, obj: &C) {
        let mut obj = obj.clone();
        prune(&mut obj);
        if let Ok(json) = serde_json::to_vec(&obj) {
            self.written
                .record(key_of(obj.meta()), obj.meta(), json.into());
        }
    }

    fn get(&self, key: &str) -> Option<C> {
        let cached = self.store.version(key);
        match self.written.newer_than_version(key, cached.flatten()) {
            Some(json) => serde_json::from_slice(&json).ok(),
            None => cached.and_then(|_| self.store.get(key)),
        }
    }
}

/// The caches of a controller's owned and watched kinds, by kind.
#[derive(Clone, Default)]
pub struct Caches {
    kinds: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
    /// Whether each kind's first list is stored.
    synced: Arc<Mutex<Vec<watch::Receiver<bool>>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    /// Registers the cache of kind `C`, filled by its watch through [`KindCache::store`].
    pub(crate) fn insert<C: Object>(&self) -> Arc<KindCache<C>> {
        let kind = Arc::new(KindCache {
            store: Store::default(),
            written: OwnWrites::default(),
        });
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(kind.store.synced.subscribe());
        self.kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<C>(), kind.clone());
        kind
    }

    /// Whether every kind's first list is stored: reconciles read dependents from the caches,
    /// so they start only then.
    pub(crate) fn is_synced(&self) -> bool {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .all(|s| *s.borrow())
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
        Some(kind.get(&key(namespace, name)))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn config_map(name: &str, version: &str, size: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
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
        let kind = caches.insert::<ConfigMap>();
        let get = || caches.get::<ConfigMap>(Some("default"), "settings");
        assert_eq!(
            caches.lookup::<ConfigMap>(Some("default"), "settings"),
            Some(None)
        );
        kind.store(&watcher::Event::Apply(config_map("settings", "5", "1")));
        caches.remember(&config_map("settings", "7", "2"));
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
        kind.store(&watcher::Event::Apply(config_map("settings", "9", "3")));
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
        let kind = caches.insert::<ConfigMap>();
        kind.store(&watcher::Event::Apply(config_map("settings", "a", "1")));
        caches.remember(&config_map("settings", "b", "2"));
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

    #[test]
    fn objects_alike_are_stored_in_a_fraction_of_their_json() {
        let store = Store::<ConfigMap>::default();
        let long = "a value every object of this kind shares, as labels and templates do";
        let mut json = 0;
        for i in 0..100 {
            let mut cm = config_map(&format!("settings-{i}"), &(i + 1).to_string(), long);
            cm.metadata.labels = Some([("app".to_string(), format!("web-{i}"))].into());
            json += serde_json::to_vec(&cm).map_or(0, |j| j.len());
            store.apply(&watcher::Event::Apply(cm), |_| 0);
        }
        let packed: usize = store.live().values().map(|e| e.packed.len()).sum();
        assert!(
            packed * 3 < json,
            "{packed} bytes stored for {json} of JSON"
        );
        let back = store.get("default/settings-42").expect("stored");
        assert_eq!(back.metadata.name.as_deref(), Some("settings-42"));
        assert_eq!(size(Some(back)), Some(long.into()));
    }

    #[test]
    fn a_relist_replaces_the_objects_whole_and_names_those_gone() {
        let store = Store::<ConfigMap>::default();
        let apply = |e| {
            store.apply(&e, |cm: &ConfigMap| {
                size(Some(cm.clone())).map_or(0, |s| s.len() as u64)
            })
        };
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(config_map("a", "1", "1")));
        apply(watcher::Event::InitApply(config_map("b", "2", "1")));
        assert!(!store.is_synced());
        assert_eq!(
            store.len(),
            0,
            "the first list is not visible before it completes"
        );
        assert_eq!(apply(watcher::Event::InitDone), Change::Relisted(vec![]));
        assert!(store.is_synced());
        assert_eq!(store.len(), 2);
        apply(watcher::Event::Init);
        assert_eq!(
            apply(watcher::Event::InitApply(config_map("b", "3", "22"))),
            Change::Stored {
                key: "default/b".into(),
                before: Some(1),
                relisted: true
            }
        );
        assert!(
            store.contains("default/a"),
            "the old view stays until the relist is done"
        );
        assert_eq!(
            store
                .get("default/b")
                .and_then(|cm| cm.metadata.resource_version),
            Some("3".into()),
            "a reconcile during a relist sees the version the relist brought"
        );
        assert_eq!(
            apply(watcher::Event::InitDone),
            Change::Relisted(vec!["default/a".into()])
        );
        assert!(!store.contains("default/a"));
        assert_eq!(
            apply(watcher::Event::Delete(config_map("b", "4", "22"))),
            Change::Deleted("default/b".into())
        );
        assert_eq!(store.len(), 0);
    }
}
