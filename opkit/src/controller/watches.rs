//! The watch streams of one controller: its owned and watched kinds, cached compactly, and the
//! reconcile requests their changes map to.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::queue::Priority;
use crate::cache::{self, Caches, Key, prune};
use crate::ensure::{OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, OWNER_UID_LABEL};
use crate::index::Primaries;
use crate::object::{self, Object};
use crate::rbac::Rule;

/// A reconcile asked for by a change of an owned or watched object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub key: Key,
    pub priority: Priority,
}

pub(crate) type Requests = BoxStream<'static, Vec<Request>>;

/// How the watches of one controller start: the client, the caches to fill, the primaries for
/// mappers, and the label selector of owned kinds (this replica's shard, when sharded).
#[derive(Clone)]
pub(crate) struct Start<K: Object> {
    pub client: Client,
    /// Where failed watches are counted, under `controller`.
    pub metrics: crate::metrics::Metrics,
    pub controller: String,
    pub caches: Caches,
    pub primaries: Primaries<K>,
    pub owned_selector: Option<String>,
}

type StartFn<K> = Arc<dyn Fn(&Start<K>) -> Requests + Send + Sync>;

/// Deletes the dependents of one kind carrying the owner-uid label of a primary; returns how
/// many it deleted.
pub(crate) type CleanupFn =
    Arc<dyn Fn(Client, String) -> BoxFuture<'static, Result<usize, kube::Error>> + Send + Sync>;

struct Relation<K: Object> {
    kind: String,
    rule: Rule,
    owned: bool,
    start: StartFn<K>,
    cleanup: Option<CleanupFn>,
}

impl<K: Object> Clone for Relation<K> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            rule: self.rule.clone(),
            owned: self.owned,
            start: self.start.clone(),
            cleanup: self.cleanup.clone(),
        }
    }
}

/// The kinds whose changes trigger reconciles of primaries `K`.
pub(crate) struct Watches<K: Object> {
    relations: Vec<Relation<K>>,
}

impl<K: Object> Default for Watches<K> {
    fn default() -> Self {
        Self {
            relations: Vec::new(),
        }
    }
}

impl<K: Object> Clone for Watches<K> {
    fn clone(&self) -> Self {
        Self {
            relations: self.relations.clone(),
        }
    }
}

impl<K: Object> Debug for Watches<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches")
            .field("kinds", &self.kinds())
            .finish()
    }
}

/// A watch of every `C` in the cluster (or those `selector` selects), stored into `caches`;
/// yields the reconciles `map` asks for, as changes, or at low priority when they come from a
/// (re)list.
fn cached_watch<C: Object, K: Object>(
    start: &Start<K>,
    selector: Option<&str>,
    map: impl Fn(&C) -> Vec<ObjectRef<K>> + Send + 'static,
) -> Requests {
    let cache = start.caches.insert::<C>();
    let (metrics, controller) = (start.metrics.clone(), start.controller.clone());
    let config = match selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    watcher(Api::<C>::all(start.client.clone()), config)
        .default_backoff()
        .modify(prune)
        .inspect_ok(move |event| cache.store(event))
        .filter_map(move |event| {
            let requests = match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
                    requests(map(&obj), Priority::High)
                }
                Ok(watcher::Event::InitApply(obj)) => requests(map(&obj), Priority::Low),
                // An empty batch: the controller looks again whether every cache is synced.
                Ok(watcher::Event::InitDone) => return futures::future::ready(Some(Vec::new())),
                Ok(watcher::Event::Init) => Vec::new(),
                Err(error) => {
                    tracing::warn!(%error, kind = %C::kind(&()), "watch failed; retrying");
                    let reason = crate::error::watch_reason(&error);
                    metrics.record_watch_error(&controller, &C::kind(&()), reason);
                    Vec::new()
                }
            };
            futures::future::ready((!requests.is_empty()).then_some(requests))
        })
        .boxed()
}

fn requests<K: Object>(refs: Vec<ObjectRef<K>>, priority: Priority) -> Vec<Request> {
    refs.iter()
        .map(|r| Request {
            key: cache::key(r.namespace.as_deref(), &r.name),
            priority,
        })
        .collect()
}

impl<K: Object> Watches<K> {
    pub fn owns<C: Object>(&mut self) {
        let start: StartFn<K> = Arc::new(|start| {
            cached_watch::<C, K>(start, start.owned_selector.as_deref(), |obj| {
                owners_of::<K>(obj)
            })
        });
        let cleanup: CleanupFn =
            Arc::new(|client: Client, uid: String| Box::pin(delete_labelled::<C>(client, uid)));
        self.relations.push(Relation {
            kind: C::kind(&()).into_owned(),
            rule: Rule::for_kind::<C>(&["get", "list", "watch", "create", "patch", "delete"]),
            owned: true,
            start,
            cleanup: Some(cleanup),
        });
    }

    pub fn watches<W: Object>(
        &mut self,
        mapper: impl Fn(&W, &Primaries<K>) -> Vec<ObjectRef<K>> + Send + Sync + 'static,
    ) {
        let mapper = Arc::new(mapper);
        let start: StartFn<K> = Arc::new(move |start| {
            let (mapper, primaries) = (mapper.clone(), start.primaries.clone());
            cached_watch::<W, K>(start, None, move |obj| mapper(obj, &primaries))
        });
        self.relations.push(Relation {
            kind: W::kind(&()).into_owned(),
            rule: Rule::for_kind::<W>(&["get", "list", "watch"]),
            owned: false,
            start,
            cleanup: None,
        });
    }

    pub fn kinds(&self) -> Vec<String> {
        self.relations.iter().map(|r| r.kind.clone()).collect()
    }

    pub fn owns_any(&self) -> bool {
        self.relations.iter().any(|r| r.owned)
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.relations.iter().map(|r| r.rule.clone()).collect()
    }

    /// Starts every watch, filling the caches; returns their requests and the cleanups of
    /// labelled dependents.
    pub fn start(&self, start: &Start<K>) -> (Vec<Requests>, Vec<CleanupFn>) {
        let streams = self.relations.iter().map(|r| (r.start)(start)).collect();
        let cleanups = self
            .relations
            .iter()
            .filter_map(|r| r.cleanup.clone())
            .collect();
        (streams, cleanups)
    }
}

async fn delete_labelled<C: Object>(client: Client, uid: String) -> Result<usize, kube::Error> {
    let selector = format!("{OWNER_UID_LABEL}={uid}");
    let list = Api::<C>::all(client.clone())
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    let mut deleted: usize = 0;
    for obj in list.items {
        let scoped = object::api::<C>(client.clone(), obj.namespace().as_deref());
        match scoped.delete(&obj.name_any(), &Default::default()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// The primaries controlling a dependent: through its controller owner reference, or through
/// opkit's owner labels when a reference cannot be used.
fn owners_of<K: Object>(obj: &impl Resource) -> Vec<ObjectRef<K>> {
    let meta = obj.meta();
    let api_version = K::api_version(&());
    let kind = K::kind(&());
    let mut owners: Vec<ObjectRef<K>> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true) && r.api_version == api_version && r.kind == kind)
        .map(|r| {
            let reference = ObjectRef::new(&r.name);
            match &meta.namespace {
                Some(ns) if object::is_namespaced::<K>() => reference.within(ns),
                _ => reference,
            }
        })
        .collect();
    if let Some(labels) = &meta.labels
        && labels.contains_key(OWNER_UID_LABEL)
        && let Some(name) = labels.get(OWNER_NAME_LABEL)
    {
        let reference = ObjectRef::new(name);
        owners.push(match labels.get(OWNER_NAMESPACE_LABEL) {
            Some(ns) => reference.within(ns),
            None => reference,
        });
    }
    owners
}

/// The primary's predicate: a hash of its spec (generation), finalizers and deletion, plus
/// labels and annotations when asked; a reconcile runs when it changes, so status-only updates
/// never trigger one. `None` for kinds without a generation, which pass every change: their
/// data is their spec.
pub(crate) fn primary_hash<K: Resource>(obj: &K, labels: bool, annotations: bool) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = obj.meta();
    meta.generation?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    if labels {
        meta.labels.hash(&mut h);
    }
    if annotations {
        meta.annotations.hash(&mut h);
    }
    Some(h.finish())
}
