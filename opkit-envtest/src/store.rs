//! The object store: objects by resource, the global resourceVersion
//! counter, the bounded watch history and change notification.
//!
//! Every write happens in one [`Store::write`] transaction under a single
//! lock; readers take the read lock and clone `Arc`s, so no write does work
//! proportional to the number of stored objects.

use crate::resources::ResourceInfo;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, watch};

/// Identifies one stored object: storage key (`group/plural`), namespace, name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    pub storage: Arc<str>,
    pub namespace: String,
    pub name: String,
}

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// A stored object: its JSON bytes plus the few fields read on every
/// request, so objects cost little more than their serialized size.
#[derive(Debug)]
pub(crate) struct Stored {
    json: Box<[u8]>,
    api_version: Box<str>,
    kind: Box<str>,
    namespace: Box<str>,
}

impl Stored {
    fn new(value: &Value) -> Self {
        let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or("").into();
        Stored {
            // Serializing a Value cannot fail: its map keys are strings.
            json: serde_json::to_vec(&crate::go_order::GoOrder(value))
                .unwrap_or_default()
                .into_boxed_slice(),
            api_version: field("apiVersion"),
            kind: field("kind"),
            namespace: meta_str(value, "namespace").into(),
        }
    }

    /// The object's JSON serialization.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The object, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// One change in the history.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub storage: Arc<str>,
    pub event: EventType,
    pub object: Arc<Stored>,
    /// The state before this change, so watches with selectors can tell
    /// objects entering and leaving their selection.
    pub previous: Option<Arc<Stored>>,
}

/// Work for the background controllers, raised by writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Work {
    /// The object with this uid may be waiting on dependents (foreground or orphan deletion).
    Owner(String),
    /// The object with this uid was removed: its dependents need collecting.
    OwnerGone(String),
    /// The owners of this object may be absent.
    Dependent(ObjKey),
    /// This namespace is terminating: its contents need deleting.
    Namespace(String),
    /// This resource definition (a CRD) is being deleted: its objects need deleting.
    Definition(String),
}

/// The storage key of a resource: `group/plural`. Both Event APIs share the
/// core key, as on a real server.
pub(crate) fn storage_key(info: &ResourceInfo) -> String {
    if info.group == "events.k8s.io" && info.plural == "events" {
        "/events".to_string()
    } else {
        format!("{}/{}", info.group, info.plural)
    }
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// How stored objects define served resources, as CRDs do: the storage key of
/// the defining objects, and the served resources given the stored state. The
/// store calls `registry` after every transaction that wrote a definition.
#[derive(Clone, Copy)]
pub(crate) struct Definitions {
    pub storage: &'static str,
    pub registry: fn(&State) -> Vec<ResourceInfo>,
}

type Objects = BTreeMap<(String, String), Arc<Stored>>;

/// Stored objects in (namespace, name) order, as lists walk them.
pub(crate) type ObjectIter<'a> =
    Box<dyn Iterator<Item = (&'a (String, String), &'a Arc<Stored>)> + 'a>;

pub(crate) struct State {
    rv: u64,
    objects: HashMap<Arc<str>, Objects>,
    history: VecDeque<Change>,
    history_limit: usize,
    /// Watches from a resourceVersion below this cannot be served (410).
    history_start: u64,
    uids: HashMap<String, ObjKey>,
    dependents: HashMap<String, HashSet<ObjKey>>,
    registry: Arc<Vec<ResourceInfo>>,
    definitions: Definitions,
    /// Storage keys of CRDs being deleted, with the CRD name.
    terminating: HashMap<Arc<str>, String>,
}

/// The store shared by the HTTP server and the background controllers.
pub(crate) struct Store {
    state: RwLock<State>,
    changed: watch::Sender<u64>,
    work: mpsc::UnboundedSender<Work>,
}

/// A write transaction; changes become visible to watchers when it ends.
pub(crate) struct Txn<'a> {
    state: &'a mut State,
    work: Vec<Work>,
    definitions_changed: bool,
}

impl Store {
    pub fn new(
        definitions: Definitions,
        history_limit: usize,
    ) -> (Arc<Store>, mpsc::UnboundedReceiver<Work>) {
        let (work, work_rx) = mpsc::unbounded_channel();
        let (changed, _) = watch::channel(0);
        let mut state = State {
            rv: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            history_start: 0,
            uids: HashMap::new(),
            dependents: HashMap::new(),
            registry: Arc::default(),
            definitions,
            terminating: HashMap::new(),
        };
        state.registry = Arc::new((definitions.registry)(&state));
        let store = Store {
            state: RwLock::new(state),
            changed,
            work,
        };
        (Arc::new(store), work_rx)
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: every mutation is a single insert.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` as one transaction, then wakes watchers and controllers.
    pub fn write<R>(&self, f: impl FnOnce(&mut Txn<'_>) -> R) -> R {
        let (result, work, rv) = {
            let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
            let mut txn = Txn {
                state: &mut guard,
                work: Vec::new(),
                definitions_changed: false,
            };
            let result = f(&mut txn);
            let work = std::mem::take(&mut txn.work);
            if txn.definitions_changed {
                let registry = (txn.state.definitions.registry)(txn.state);
                txn.state.registry = Arc::new(registry);
            }
            (result, work, guard.rv)
        };
        self.changed.send_if_modified(|current| {
            let modified = *current != rv;
            *current = rv;
            modified
        });
        for item in work {
            // The receiver is gone only once the environment shuts down.
            let _ = self.work.send(item);
        }
        result
    }

    /// A receiver that sees the latest resourceVersion after each write.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The served resources.
    pub fn registry(&self) -> Arc<Vec<ResourceInfo>> {
        self.read().registry.clone()
    }

    /// Drops the whole watch history: watches from any older resourceVersion get 410.
    pub fn compact(&self) {
        self.write(|txn| {
            txn.state.history.clear();
            txn.state.history_start = txn.state.rv;
        });
    }
}

impl State {
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The stored form of an object.
    pub fn get_stored(&self, storage: &str, namespace: &str, name: &str) -> Option<&Arc<Stored>> {
        self.objects
            .get(storage)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// An object, parsed.
    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<Value> {
        self.get_stored(storage, namespace, name).map(|s| s.value())
    }

    pub fn contains(&self, storage: &str, namespace: &str, name: &str) -> bool {
        self.get_stored(storage, namespace, name).is_some()
    }

    /// Objects of one resource, all namespaces or one, in (namespace, name) order,
    /// starting after `after` when continuing a paginated list.
    pub fn list<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&'a str>,
        after: Option<&(String, String)>,
    ) -> ObjectIter<'a> {
        let Some(objects) = self.objects.get(storage) else {
            return Box::new(std::iter::empty());
        };
        use std::ops::Bound;
        let start = match (after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let iter = objects.range((start, Bound::Unbounded));
        match namespace {
            Some(ns) => Box::new(iter.take_while(move |((n, _), _)| n == ns)),
            None => Box::new(iter),
        }
    }

    /// Whether any object is stored in `namespace` (any resource).
    pub fn namespace_is_empty(&self, namespace: &str) -> bool {
        self.objects.values().all(|objects| {
            objects
                .range((namespace.to_string(), String::new())..)
                .next()
                .is_none_or(|((ns, _), _)| ns != namespace)
        })
    }

    /// Keys of every object stored in `namespace`.
    pub fn namespace_contents(&self, namespace: &str) -> Vec<ObjKey> {
        let mut keys = Vec::new();
        for (storage, objects) in &self.objects {
            for ((ns, name), _) in objects.range((namespace.to_string(), String::new())..) {
                if ns != namespace {
                    break;
                }
                keys.push(ObjKey {
                    storage: storage.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                });
            }
        }
        keys
    }

    pub fn by_uid(&self, uid: &str) -> Option<(ObjKey, Value)> {
        let key = self.uids.get(uid)?;
        Some((
            key.clone(),
            self.get(&key.storage, &key.namespace, &key.name)?,
        ))
    }

    /// Where the object with this uid lives, if it exists.
    pub fn uid_key(&self, uid: &str) -> Option<&ObjKey> {
        self.uids.get(uid)
    }

    pub fn dependents(&self, uid: &str) -> Vec<ObjKey> {
        self.dependents
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes after `rv` (for watches), or `Err(oldest)` when they were compacted away.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Change>, u64> {
        if rv < self.history_start {
            return Err(self.history_start);
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.range(start..).cloned().collect())
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(finalizer)))
}

impl Txn<'_> {
    pub fn state(&self) -> &State {
        self.state
    }

    /// Marks (or with `None` unmarks) a storage key as belonging to a definition being deleted.
    pub fn set_terminating(&mut self, storage: &str, definition: Option<&str>) {
        let key = self.storage(storage);
        match definition {
            Some(name) => {
                self.state.terminating.insert(key, name.to_string());
            }
            None => {
                self.state.terminating.remove(&key);
            }
        }
    }

    /// The storage key as a shared string, reusing the map's allocation.
    pub fn storage(&self, key: &str) -> Arc<str> {
        self.state
            .objects
            .get_key_value(key)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(key))
    }

    fn next_rv(&mut self) -> u64 {
        self.state.rv += 1;
        self.state.rv
    }

    fn record(
        &mut self,
        storage: Arc<str>,
        event: EventType,
        object: Arc<Stored>,
        previous: Option<Arc<Stored>>,
        rv: u64,
    ) {
        let state = &mut *self.state;
        state.history.push_back(Change {
            rv,
            storage,
            event,
            object,
            previous,
        });
        while state.history.len() > state.history_limit {
            if let Some(old) = state.history.pop_front() {
                state.history_start = old.rv;
            }
        }
    }

    /// Stores `obj` (new or replacing), stamping a new resourceVersion;
    /// returns the object as stored.
    pub fn put(&mut self, storage: &str, mut obj: Value) -> Value {
        let storage = self.storage(storage);
        self.definitions_changed |= storage.as_ref() == self.state.definitions.storage;
        let rv = self.next_rv();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let namespace = meta_str(&obj, "namespace").to_string();
        let name = meta_str(&obj, "name").to_string();
        let uid = meta_str(&obj, "uid").to_string();
        let stored = Arc::new(Stored::new(&obj));
        let key = ObjKey {
            storage: storage.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let previous = self
            .state
            .objects
            .entry(storage.clone())
            .or_default()
            .insert((namespace, name), stored.clone());
        let old_owners = previous
            .as_deref()
            .map(|p| owner_uids(&p.value()))
            .unwrap_or_default();
        let new_owners = owner_uids(&obj);
        for owner in &old_owners {
            if !new_owners.contains(owner)
                && let Some(set) = self.state.dependents.get_mut(owner)
            {
                set.remove(&key);
                if set.is_empty() {
                    self.state.dependents.remove(owner);
                }
            }
        }
        for owner in &new_owners {
            self.state
                .dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        if !uid.is_empty() {
            self.state.uids.insert(uid.clone(), key.clone());
        }
        if is_deleting(&obj) {
            if has_finalizer(&obj, "foregroundDeletion") || has_finalizer(&obj, "orphan") {
                self.work.push(Work::Owner(uid));
            }
            if key.storage.as_ref() == "/namespaces" {
                self.work.push(Work::Namespace(key.name.clone()));
            }
            if key.storage.as_ref() == self.state.definitions.storage {
                self.work.push(Work::Definition(key.name.clone()));
            }
        }
        if !new_owners.is_empty() && new_owners != old_owners {
            self.work.push(Work::Dependent(key));
        }
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(storage, event, stored, previous, rv);
        obj
    }

    /// Removes an object for good, recording a DELETED event with its final state.
    pub fn remove(&mut self, storage: &str, namespace: &str, name: &str) -> Option<Value> {
        self.remove_as(storage, namespace, name, None)
    }

    /// Removes an object; the DELETED event carries `last` (the state that
    /// completed the deletion) when given, else the stored state.
    pub fn remove_as(
        &mut self,
        storage: &str,
        namespace: &str,
        name: &str,
        last: Option<Value>,
    ) -> Option<Value> {
        let storage = self.storage(storage);
        let removed = self
            .state
            .objects
            .get_mut(&storage)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.definitions_changed |= storage.as_ref() == self.state.definitions.storage;
        if let Some(definition) = self.state.terminating.get(&storage) {
            self.work.push(Work::Definition(definition.clone()));
        }
        let rv = self.next_rv();
        let mut last = last.unwrap_or_else(|| removed.value());
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let key = ObjKey {
            storage: storage.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let uid = meta_str(&last, "uid").to_string();
        self.state.uids.remove(&uid);
        if self.state.dependents.contains_key(&uid) {
            self.work.push(Work::OwnerGone(uid));
        }
        for owner in owner_uids(&last) {
            if let Some(set) = self.state.dependents.get_mut(&owner) {
                set.remove(&key);
                if set.is_empty() {
                    self.state.dependents.remove(&owner);
                }
            }
            self.work.push(Work::Owner(owner));
        }
        if !namespace.is_empty() {
            let terminating = self
                .state
                .get("/namespaces", "", namespace)
                .is_some_and(|ns| is_deleting(&ns));
            if terminating {
                self.work.push(Work::Namespace(namespace.to_string()));
            }
        }
        self.record(
            storage,
            EventType::Deleted,
            Arc::new(Stored::new(&last)),
            Some(removed),
            rv,
        );
        Some(last)
    }
}
