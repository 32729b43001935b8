//! Sharding: the primaries of a manager's controllers split across its replicas, so the work
//! and the memory both divide.
//!
//! Kubernetes is the distributed engine; nothing else is needed:
//!
//! - **Membership.** Every replica holds a Lease `<ring>-<identity>`, labelled
//!   `sharding.opkit.dev/ring: <ring>`, renewed like a leader election Lease (same timing and
//!   the same rule: a replica that cannot renew within the renew deadline stops reconciling
//!   before anyone else may consider it gone). Each acquisition starts a new *term*,
//!   `<identity>.<n>` with `n` the Lease's `leaseTransitions`.
//! - **Assignment.** Each primary carries the label `shard.opkit.dev/<ring>: <term>` and each
//!   replica watches only the primaries labelled with its term (and only the dependents labelled
//!   `shard.opkit.dev/<ring>: <identity>`, which opkit writes on every dependent): a replica caches
//!   and reconciles its shard alone. One replica, the *sharder* (chosen by leader election on
//!   the Lease `<ring>-sharder`), labels new primaries and moves primaries when members come and
//!   go, by rendezvous hashing of `namespace/name` over the identities of the live members: only
//!   the objects of a member that left, or those a new member wins, move.
//! - **Moving** uses a drain handshake: the sharder labels the primary
//!   `drain.opkit.dev/<ring>: "true"`; its replica stops starting reconciles of it, lets a
//!   running one finish, then removes both labels (a patch conditional on the version it saw);
//!   only then does the sharder label it for the new member. The primaries of a member whose
//!   Lease expired or was released move at once: that member has stopped (see Membership), and
//!   when it comes back it is a new term and never takes the old term's objects for its own.
//!
//! So no object is ever reconciled by two replicas at once, and none is left without a replica
//! longer than the lease duration plus one retry period (the time to notice an expired member).
//!
//! ```no_run
//! # use opkit::prelude::*;
//! # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
//! # pub struct SiteSpec { pub replicas: i32 }
//! # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
//! # async fn f(client: Client) {
//! let running = opkit::Manager::new(client)
//!     .operator::<Site>()
//!     .sharded(opkit::Sharding::new("site-operator").namespace("operators"))
//!     .start();
//! # running.shutdown().await;
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cache::{self, Key};
use crate::error::{Error, Result};
use crate::leader::LeaderElection;
use crate::metrics::Metrics;
use crate::object::{self, Object};

/// `opkit_shard_label_writes_total{ring, write}`: the label writes sharding costs, apart from
/// the controllers' own writes (`assign`, `drain`: the sharder's; `release`: a replica handing
/// an object over).
#[derive(Clone, Debug, Default)]
pub(crate) struct LabelWrites {
    family: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl LabelWrites {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let writes = Self::default();
        metrics.with_registry(|r| {
            r.register(
                "opkit_shard_label_writes",
                "Label writes made to assign, drain and hand over objects between shards",
                writes.family.clone(),
            )
        });
        writes
    }

    fn count(&self, ring: &str, write: &str) {
        self.family
            .get_or_create(&vec![
                ("ring", ring.to_owned()),
                ("write", write.to_owned()),
            ])
            .inc();
    }
}

/// The label on membership Leases naming their ring.
///
/// ```
/// assert_eq!(opkit::shard::RING_LABEL, "sharding.opkit.dev/ring");
/// ```
pub const RING_LABEL: &str = "sharding.opkit.dev/ring";

/// The label assigning an object of `ring` to a shard: `shard.opkit.dev/<ring>`.
///
/// ```
/// assert_eq!(opkit::shard::shard_label("webapp-operator"), "shard.opkit.dev/webapp-operator");
/// ```
pub fn shard_label(ring: &str) -> String {
    format!("shard.opkit.dev/{ring}")
}

/// The label asking the shard of an object of `ring` to let it go: `drain.opkit.dev/<ring>`.
///
/// ```
/// assert_eq!(opkit::shard::drain_label("webapp-operator"), "drain.opkit.dev/webapp-operator");
/// ```
pub fn drain_label(ring: &str) -> String {
    format!("drain.opkit.dev/{ring}")
}

/// How a replica takes part in a shard ring: the ring's name, this replica's identity, where
/// the membership Leases live and their timing (that of [`LeaderElection`]: lease 15 s, renew
/// deadline 10 s, retry 2 s).
///
/// ```
/// use std::time::Duration;
/// let sharding = opkit::Sharding::new("webapp-operator")
///     .namespace("operators")
///     .identity("webapp-operator-7d9f4-x2ljq")
///     .lease_duration(Duration::from_secs(8))
///     .renew_deadline(Duration::from_secs(5))
///     .retry_period(Duration::from_secs(1));
/// assert!(sharding.validate().is_ok());
/// assert_eq!(sharding.lease_name(), "webapp-operator-webapp-operator-7d9f4-x2ljq");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharding {
    /// The ring's name: part of the label keys (a DNS label, at most 63 characters).
    pub ring: String,
    /// Namespace of the membership Leases; `None` is the client's default namespace.
    pub namespace: Option<String>,
    /// This replica's name in the ring, unique among the replicas (the Pod name by default):
    /// a DNS label of at most 52 characters, so its terms fit in a label value.
    pub identity: String,
    /// How long a membership Lease that stopped changing is honoured.
    pub lease_duration: Duration,
    /// How long a replica keeps reconciling while it cannot renew its Lease.
    pub renew_deadline: Duration,
    /// How often members renew and the sharder looks for expired members.
    pub retry_period: Duration,
}

impl Sharding {
    /// A ring named `ring`, with the Pod name (`HOSTNAME`) as identity when it is a DNS label,
    /// a random one otherwise.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("webapp-operator");
    /// assert_eq!(sharding.lease_duration, std::time::Duration::from_secs(15));
    /// ```
    pub fn new(ring: impl Into<String>) -> Self {
        let timing = LeaderElection::new("timing");
        let identity = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| is_dns_label(h, MAX_IDENTITY))
            .unwrap_or_else(|| format!("opkit-{:08x}", rand::random::<u32>()));
        Self {
            ring: ring.into(),
            namespace: None,
            identity,
            lease_duration: timing.lease_duration,
            renew_deadline: timing.renew_deadline,
            retry_period: timing.retry_period,
        }
    }

    /// Puts the membership Leases into `namespace`.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("ring").namespace("ops");
    /// assert_eq!(sharding.namespace.as_deref(), Some("ops"));
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets this replica's identity.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("ring").identity("replica-a");
    /// assert_eq!(sharding.identity, "replica-a");
    /// ```
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// Sets the lease duration.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("ring").lease_duration(std::time::Duration::from_secs(30));
    /// # assert!(sharding.validate().is_ok());
    /// ```
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// Sets the renew deadline.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("ring").renew_deadline(std::time::Duration::from_secs(8));
    /// # assert!(sharding.validate().is_ok());
    /// ```
    pub fn renew_deadline(mut self, duration: Duration) -> Self {
        self.renew_deadline = duration;
        self
    }

    /// Sets the retry period.
    ///
    /// ```
    /// let sharding = opkit::Sharding::new("ring").retry_period(std::time::Duration::from_secs(1));
    /// # assert!(sharding.validate().is_ok());
    /// ```
    pub fn retry_period(mut self, duration: Duration) -> Self {
        self.retry_period = duration;
        self
    }

    /// The name of this replica's membership Lease: `<ring>-<identity>`.
    ///
    /// ```
    /// assert_eq!(opkit::Sharding::new("ring").identity("a").lease_name(), "ring-a");
    /// ```
    pub fn lease_name(&self) -> String {
        format!("{}-{}", self.ring, self.identity)
    }

    /// Checks the names (DNS labels that fit the label keys and values they go into) and the
    /// timing (as [`LeaderElection::validate`]).
    ///
    /// ```
    /// assert!(opkit::Sharding::new("Web_App").validate().is_err());
    /// assert!(opkit::Sharding::new("web").identity("pod_1").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if !is_dns_label(&self.ring, 63) {
            return Err(Error::Config(format!(
                "sharding: the ring name {:?} must be a DNS label (lowercase letters, digits and '-', at most 63)",
                self.ring
            )));
        }
        if !is_dns_label(&self.identity, MAX_IDENTITY) || self.identity == "sharder" {
            return Err(Error::Config(format!(
                "sharding: the identity {:?} must be a DNS label of at most {MAX_IDENTITY} characters, other than \"sharder\"",
                self.identity
            )));
        }
        self.election(self.lease_name())
            .validate()
            .map_err(|e| Error::Config(e.to_string().replace("leader election", "sharding")))
    }

    /// The election of Lease `id` with this ring's namespace, identity and timing.
    pub(crate) fn election(&self, id: String) -> LeaderElection {
        let mut election = LeaderElection::new(id)
            .identity(self.identity.clone())
            .lease_duration(self.lease_duration)
            .renew_deadline(self.renew_deadline)
            .retry_period(self.retry_period);
        election.namespace.clone_from(&self.namespace);
        election
    }

    /// The labels of this replica's membership Lease.
    pub(crate) fn lease_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(RING_LABEL.to_owned(), self.ring.clone())])
    }
}

/// Identities leave room for `.<term>` within the 63 characters of a label value.
const MAX_IDENTITY: usize = 52;

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// This replica's part of the ring during one membership term: what its watches select, the
/// label its dependents carry, how it hands a primary over.
#[derive(Debug)]
pub(crate) struct Scope {
    ring: String,
    writes: LabelWrites,
    label: String,
    drain: String,
    /// `<identity>.<n>`: the primaries this term owns carry it.
    term: String,
    /// `<identity>`: the dependents this replica wrote carry it.
    member: String,
}

impl Scope {
    pub(crate) fn new(sharding: &Sharding, term: i32, writes: LabelWrites) -> Self {
        Self {
            ring: sharding.ring.clone(),
            writes,
            label: shard_label(&sharding.ring),
            drain: drain_label(&sharding.ring),
            term: format!("{}.{term}", sharding.identity),
            member: sharding.identity.clone(),
        }
    }

    pub(crate) fn primary_selector(&self) -> String {
        format!("{}={}", self.label, self.term)
    }

    pub(crate) fn owned_selector(&self) -> String {
        format!("{}={}", self.label, self.member)
    }

    pub(crate) fn dependent_label(&self) -> (&str, &str) {
        (&self.label, &self.member)
    }

    /// Whether the sharder asked this replica to let the object go.
    pub(crate) fn is_draining(&self, meta: &ObjectMeta) -> bool {
        meta.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(&self.drain))
    }

    /// Lets `obj` go: removes its shard and drain labels, if it is still the version this
    /// replica saw. True once released (or gone); false when it changed meanwhile (the next
    /// watch event tries again).
    pub(crate) async fn release<K: Object>(&self, client: Client, obj: &K) -> bool {
        let patch = json!({"metadata": {
            "resourceVersion": obj.resource_version(),
            "labels": { &self.label: Value::Null, &self.drain: Value::Null },
        }});
        let api: Api<K> = object::api(client, obj.namespace().as_deref());
        loop {
            match api
                .patch_metadata(
                    &obj.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    self.writes.count(&self.ring, "release");
                    tracing::debug!(object = %obj.name_any(), "handed over");
                    return true;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return true,
                Err(kube::Error::Api(s)) if s.code == 409 => return false,
                Err(error) => {
                    tracing::warn!(%error, object = %obj.name_any(), "cannot hand the object over; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// A live member of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    identity: Arc<str>,
    term: Arc<str>,
    seed: u64,
}

/// The live members, once the ring's Leases have been listed.
pub(crate) type Members = Option<Vec<Member>>;

/// Starts the sharder of one primary kind, given the live members.
pub(crate) type SharderFn = Arc<
    dyn Fn(Client, Arc<Sharding>, LabelWrites, watch::Receiver<Members>) -> BoxFuture<'static, ()>
        + Send
        + Sync,
>;

/// The sharder of primary kind `K`.
pub(crate) fn sharder<K: Object>() -> SharderFn {
    Arc::new(|client, sharding, writes, members| {
        run_sharder::<K>(client, sharding, writes, members).boxed()
    })
}

/// FNV-1a, then a finalizer that spreads similar names over the whole range.
fn hash(bytes: &[u8]) -> u64 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    mix(h)
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The member an object belongs to: the highest of each member's score for its key
/// (rendezvous hashing), so a change of members moves only the objects it must.
fn owner<'a>(members: &'a [Member], key: &str) -> Option<&'a Member> {
    let h = hash(key.as_bytes());
    members
        .iter()
        .max_by_key(|m| (mix(h ^ m.seed), m.identity.clone()))
}

/// A ring member's Lease as the sharder saw it.
struct Seen {
    holder: String,
    term: i32,
    renewed: Option<String>,
    duration: Duration,
    /// When (on this process's clock) the Lease last changed.
    at: Instant,
}

/// `lease` as seen now, given how it was seen before: its change time stays while it does not
/// change.
fn observe(before: Option<&Seen>, lease: &Lease, default: Duration) -> Seen {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    let renewed = spec.renew_time.map(|t| t.0.to_string());
    let term = spec.lease_transitions.unwrap_or(0);
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default, Duration::from_secs);
    let at = match before {
        Some(s) if s.holder == holder && s.term == term && s.renewed == renewed => s.at,
        _ => Instant::now(),
    };
    Seen {
        holder,
        term,
        renewed,
        duration,
        at,
    }
}

/// What a watch shows, by key; a relist is built aside and swapped in whole.
struct Listed<V> {
    current: HashMap<Key, V>,
    listing: Option<HashMap<Key, V>>,
    listed: bool,
}

impl<V> Default for Listed<V> {
    fn default() -> Self {
        Self {
            current: HashMap::new(),
            listing: None,
            listed: false,
        }
    }
}

/// What applying a watch event to a [`Listed`] did.
enum Applied {
    /// An object was stored or removed under this key.
    Object(Key),
    /// A (re)list completed.
    Listed,
    /// Nothing yet.
    Pending,
}

impl<V> Listed<V> {
    /// Applies `event`; `value` makes an object's entry from the one it had, if any.
    fn apply<K: Resource>(
        &mut self,
        event: watcher::Event<K>,
        mut value: impl FnMut(Option<&V>, &K) -> V,
    ) -> Applied {
        match event {
            watcher::Event::Init => {
                self.listing = Some(HashMap::new());
                Applied::Pending
            }
            watcher::Event::InitApply(obj) => {
                let key = cache::key_of(obj.meta());
                let entry = value(self.current.get(&key), &obj);
                self.listing
                    .get_or_insert_with(HashMap::new)
                    .insert(key, entry);
                Applied::Pending
            }
            watcher::Event::InitDone => {
                self.current = self.listing.take().unwrap_or_default();
                self.listed = true;
                Applied::Listed
            }
            watcher::Event::Apply(obj) => {
                let key = cache::key_of(obj.meta());
                let entry = value(self.current.get(&key), &obj);
                self.current.insert(key.clone(), entry);
                Applied::Object(key)
            }
            watcher::Event::Delete(obj) => {
                let key = cache::key_of(obj.meta());
                self.current.remove(&key);
                Applied::Object(key)
            }
        }
    }
}

/// Follows the ring's membership Leases and publishes the live members: a Lease is live while
/// it has a holder (its name's identity) and changes at least every lease duration, as
/// measured on this process's clock (so clock skew between nodes does not matter).
pub(crate) async fn follow_members(
    client: Client,
    sharding: Arc<Sharding>,
    members: watch::Sender<Members>,
) {
    let namespace = sharding
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let leases: Api<Lease> = Api::namespaced(client, &namespace);
    let selector = format!("{RING_LABEL}={}", sharding.ring);
    let mut events = watcher(leases, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut seen = Listed::<Seen>::default();
    let mut tick = tokio::time::interval(sharding.retry_period.min(Duration::from_secs(1)));
    let prefix = format!("{}-", sharding.ring);
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return };
                match event {
                    Ok(event) => {
                        seen.apply(event, |before, lease| observe(before, lease, sharding.lease_duration));
                    }
                    Err(error) => tracing::warn!(%error, "watching the ring's Leases failed; retrying"),
                }
            }
            _ = tick.tick() => {}
        }
        if !seen.listed {
            continue;
        }
        let mut live: Vec<Member> = seen
            .current
            .iter()
            .filter(|(key, s)| {
                !s.holder.is_empty()
                    && name_of(key).strip_prefix(&prefix) == Some(s.holder.as_str())
                    && s.at.elapsed() < s.duration
            })
            .map(|(_, s)| Member {
                identity: s.holder.as_str().into(),
                term: format!("{}.{}", s.holder, s.term).into(),
                seed: hash(s.holder.as_bytes()),
            })
            .collect();
        live.sort_by(|a, b| a.identity.cmp(&b.identity));
        members.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&live);
            if changed {
                tracing::info!(ring = %sharding.ring, members = ?live.iter().map(|m| &*m.term).collect::<Vec<_>>(), "ring members");
                *current = Some(live);
            }
            changed
        });
    }
}

/// A primary as the sharder sees it: its term label, whether it drains, its resourceVersion.
struct Assigned {
    term: Option<Arc<str>>,
    draining: bool,
    version: Box<str>,
}

/// The outcome of one label write.
enum Written {
    /// Written; the object as it is now.
    Done(Assigned),
    /// The object changed or went away meanwhile.
    Stale,
    /// Failed otherwise: tried again after a retry period.
    Failed,
}

/// The objects to look at, each once, in order.
#[derive(Default)]
struct Todo {
    order: VecDeque<Key>,
    queued: HashSet<Key>,
}

impl Todo {
    fn push(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.order.push_back(key);
        }
    }

    fn pop(&mut self) -> Option<Key> {
        let key = self.order.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }
}

/// Label writes in flight at once.
const PATCHES_IN_FLIGHT: usize = 32;

/// Assigns and moves the primaries of kind `K` while this process is the sharder.
async fn run_sharder<K: Object>(
    client: Client,
    sharding: Arc<Sharding>,
    writes: LabelWrites,
    mut members: watch::Receiver<Members>,
) {
    let label = shard_label(&sharding.ring);
    let drain = drain_label(&sharding.ring);
    let objects_api = Api::<PartialObjectMeta<K>>::all(client.clone());
    let mut events = watcher(objects_api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut objects = Listed::<Assigned>::default();
    let mut terms: HashSet<Arc<str>> = HashSet::new();
    let mut todo = Todo::default();
    let mut writing: HashSet<Key> = HashSet::new();
    let mut patches: JoinSet<(Key, Written)> = JoinSet::new();
    let mut failed: HashSet<Key> = HashSet::new();
    let mut retry = tokio::time::interval(sharding.retry_period);
    let assigned = |meta: &ObjectMeta, terms: &mut HashSet<Arc<str>>| {
        let labels = meta.labels.as_ref();
        let term = labels.and_then(|l| l.get(&label)).map(|t| {
            // Interned: thousands of objects share a few terms.
            match terms.get(t.as_str()) {
                Some(t) => t.clone(),
                None => {
                    let t: Arc<str> = t.as_str().into();
                    terms.insert(t.clone());
                    t
                }
            }
        });
        Assigned {
            term,
            draining: labels.is_some_and(|l| l.contains_key(&drain)),
            version: meta.resource_version.clone().unwrap_or_default().into(),
        }
    };
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return };
                match event {
                    Ok(event) => {
                        match objects.apply(event, |_, obj| assigned(&obj.metadata, &mut terms)) {
                            Applied::Object(key) => todo.push(key),
                            Applied::Listed => {
                                for key in objects.current.keys() {
                                    todo.push(key.clone());
                                }
                            }
                            Applied::Pending => {}
                        }
                    }
                    Err(error) => tracing::warn!(%error, kind = %K::kind(&()), "the sharder's watch failed; retrying"),
                }
            }
            changed = members.changed() => {
                if changed.is_err() {
                    return;
                }
                for key in objects.current.keys() {
                    todo.push(key.clone());
                }
            }
            Some(done) = patches.join_next() => {
                if let Ok((key, written)) = done {
                    writing.remove(&key);
                    match written {
                        Written::Done(entry) => {
                            objects.current.insert(key.clone(), entry);
                            todo.push(key);
                        }
                        // The watch brings the newer version, but its event may have come
                        // while this write was in flight and been passed over: look again
                        // after a retry period.
                        Written::Stale => {
                            failed.insert(key);
                        }
                        Written::Failed => {
                            failed.insert(key);
                        }
                    }
                }
            }
            _ = retry.tick() => {
                for key in failed.drain() {
                    todo.push(key);
                }
            }
        }
        let live = members.borrow().clone();
        let (true, Some(live)) = (objects.listed, live) else {
            continue;
        };
        while patches.len() < PATCHES_IN_FLIGHT {
            let Some(key) = todo.pop() else { break };
            if writing.contains(&key) {
                continue;
            }
            let Some(current) = objects.current.get(&key) else {
                continue;
            };
            let Some((patch, write)) = decide(&live, &key, current, &label, &drain) else {
                continue;
            };
            writing.insert(key.clone());
            let api: Api<K> = object::api(client.clone(), namespace_of(&key));
            let name = name_of(&key).to_owned();
            let version = current.version.clone();
            let (label, drain, writes, ring) = (
                label.clone(),
                drain.clone(),
                writes.clone(),
                sharding.ring.clone(),
            );
            patches.spawn(async move {
                let mut patch = patch;
                patch["metadata"]["resourceVersion"] = json!(&*version);
                let result = api
                    .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                let written = match result {
                    Ok(written) => {
                        writes.count(&ring, write);
                        let labels = written.metadata.labels.as_ref();
                        Written::Done(Assigned {
                            term: labels.and_then(|l| l.get(&label)).map(|t| t.as_str().into()),
                            draining: labels.is_some_and(|l| l.contains_key(&drain)),
                            version: written.metadata.resource_version.unwrap_or_default().into(),
                        })
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Written::Stale,
                    Err(error) => {
                        tracing::warn!(%error, object = %name, "cannot label the object for its shard; retrying");
                        Written::Failed
                    }
                };
                (key, written)
            });
        }
    }
}

/// The label change an object needs, if any: a shard for an object without a live one, or a
/// drain request for one on a live member that is no longer its owner.
fn decide(
    live: &[Member],
    key: &str,
    current: &Assigned,
    label: &str,
    drain: &str,
) -> Option<(Value, &'static str)> {
    let target = owner(live, key)?;
    let on_live = current
        .term
        .as_ref()
        .is_some_and(|t| live.iter().any(|m| m.term == *t));
    if !on_live {
        let assign = json!({"metadata": {"labels": {
            label: &*target.term,
            drain: Value::Null,
        }}});
        return Some((assign, "assign"));
    }
    let moves = current.term.as_ref() != Some(&target.term);
    (moves && !current.draining)
        .then(|| (json!({"metadata": {"labels": { drain: "true" }}}), "drain"))
}

fn namespace_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(ns, _)| ns)
}

fn name_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, name)| name)
}

/// The RBAC a sharded operator needs beyond its controllers' own: `patch` on each primary kind
/// (labelling them), and `list` and `watch` on Leases besides what leader election needs.
///
/// ```
/// let rules = opkit::shard::rules::<k8s_openapi::api::core::v1::Namespace>();
/// assert_eq!(rules[0].verbs, ["patch"]);
/// ```
pub fn rules<K: Resource<DynamicType = ()>>() -> Vec<crate::Rule> {
    vec![crate::Rule::new(
        &K::group(&()),
        &[&K::plural(&())],
        &["patch"],
    )]
}

/// The sharding flags of `run`.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "--sharding", "--sharding-identity", "pod-a"]);
/// assert_eq!(cli.sharding.sharding, Some(true));
/// assert_eq!(cli.sharding.sharding_identity.as_deref(), Some("pod-a"));
/// ```
#[cfg(feature = "cli")]
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ShardingFlags {
    /// Split the primaries across the replicas (each holds a membership Lease; one assigns).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sharding: Option<bool>,
    /// Name of the shard ring (default: NAME).
    #[arg(long, value_name = "NAME")]
    pub sharding_ring: Option<String>,
    /// Namespace of the membership Leases (default: the Pod's namespace, or the kubeconfig context's).
    #[arg(long, value_name = "NAMESPACE")]
    pub sharding_namespace: Option<String>,
    /// This replica's name in the ring (default: the Pod name).
    #[arg(long, value_name = "NAME")]
    pub sharding_identity: Option<String>,
    /// How long other replicas honour a membership Lease that stopped being renewed (default 15s).
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    pub sharding_lease_duration: Option<Duration>,
}

#[cfg(feature = "cli")]
impl ShardingFlags {
    /// The sharding to run with: `configured` (the code's choice) or the ring `NAME` when the
    /// flag asks for one, adjusted by the flags and validated; `None` when sharding is off.
    ///
    /// ```
    /// let flags = opkit::shard::ShardingFlags { sharding: Some(true), ..Default::default() };
    /// let sharding = flags.resolve(None, "webapp-operator").unwrap();
    /// assert_eq!(sharding.map(|s| s.ring), Some("webapp-operator".to_string()));
    /// ```
    pub fn resolve(&self, configured: Option<Sharding>, name: &str) -> Result<Option<Sharding>> {
        if !self.sharding.unwrap_or(configured.is_some()) {
            return Ok(None);
        }
        let mut sharding = configured.unwrap_or_else(|| Sharding::new(name));
        if let Some(ring) = &self.sharding_ring {
            sharding.ring.clone_from(ring);
        }
        if let Some(namespace) = &self.sharding_namespace {
            sharding.namespace = Some(namespace.clone());
        }
        if let Some(identity) = &self.sharding_identity {
            sharding.identity.clone_from(identity);
        }
        if let Some(d) = self.sharding_lease_duration {
            sharding.lease_duration = d;
        }
        sharding.validate()?;
        Ok(Some(sharding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<Member> {
        names
            .iter()
            .map(|n| Member {
                identity: (*n).into(),
                term: format!("{n}.1").into(),
                seed: hash(n.as_bytes()),
            })
            .collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("default/webapp-{i:05}")).collect()
    }

    #[test]
    fn objects_split_evenly_and_a_new_member_takes_only_its_share() {
        let three = members(&["replica-a", "replica-b", "replica-c"]);
        let keys = keys(30_000);
        let owners = |ring: &[Member]| -> Vec<Arc<str>> {
            keys.iter()
                .filter_map(|k| owner(ring, k).map(|m| m.identity.clone()))
                .collect()
        };
        let before = owners(&three);
        for m in &three {
            let n = before.iter().filter(|o| **o == m.identity).count();
            assert!((9_500..=10_500).contains(&n), "{} owns {n}", m.identity);
        }
        let four = members(&["replica-a", "replica-b", "replica-c", "replica-d"]);
        let after = owners(&four);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!(
            after
                .iter()
                .zip(&before)
                .all(|(a, b)| a == b || &**a == "replica-d")
        );
        assert!((7_000..=8_000).contains(&moved), "{moved} moved");
        let two = members(&["replica-a", "replica-c"]);
        let left = owners(&two);
        assert!(
            before
                .iter()
                .zip(&left)
                .all(|(b, l)| b == l || &**b == "replica-b"),
            "only the objects of the member that left move"
        );
    }

    #[test]
    fn an_object_is_assigned_drained_or_left_alone() {
        let live = members(&["replica-a", "replica-b"]);
        let key = "default/webapp-00001";
        let target = owner(&live, key).map(|m| m.term.clone());
        let other = live
            .iter()
            .find(|m| Some(&m.term) != target.as_ref())
            .map(|m| m.term.clone());
        let at = |term: Option<Arc<str>>, draining: bool| Assigned {
            term,
            draining,
            version: "1".into(),
        };
        let (label, drain) = ("shard.opkit.dev/r", "drain.opkit.dev/r");
        let decide = |a: &Assigned| decide(&live, key, a, label, drain).map(|(patch, _)| patch);
        let assign = decide(&at(None, false)).expect("unassigned objects get a shard");
        assert_eq!(
            assign["metadata"]["labels"][label].as_str(),
            target.as_deref()
        );
        let dead = at(Some("replica-z.4".into()), true);
        assert_eq!(
            decide(&dead),
            Some(assign.clone()),
            "a dead member's objects move at once"
        );
        assert_eq!(decide(&at(target.clone(), false)), None);
        let moving = decide(&at(other.clone(), false)).expect("a live owner is asked to drain");
        assert_eq!(moving["metadata"]["labels"][drain], "true");
        assert_eq!(decide(&at(other, true)), None, "waits for the hand-over");
        assert_eq!(
            decide(&at(None, true)),
            Some(assign),
            "handed over: assigned"
        );
        assert!(super::decide(&[], key, &at(None, false), label, drain).is_none());
    }

    #[test]
    fn names_must_fit_label_keys_and_values() {
        assert!(
            Sharding::new("webapp-operator")
                .identity("pod-a")
                .validate()
                .is_ok()
        );
        assert!(
            Sharding::new("webapp-operator")
                .identity("a".repeat(53))
                .validate()
                .is_err()
        );
        assert!(Sharding::new("-ring").identity("pod-a").validate().is_err());
        assert!(
            Sharding::new("ring")
                .identity("sharder")
                .validate()
                .is_err(),
            "its Lease would be the sharder's"
        );
        let slow = Sharding::new("ring")
            .identity("pod-a")
            .renew_deadline(Duration::from_secs(20));
        assert!(slow.validate().is_err());
    }
}
