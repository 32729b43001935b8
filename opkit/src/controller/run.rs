//! One controller: its watches feeding a priority queue and a bounded set of reconciles, around
//! the operator's reconcile with finalizers, status, backoff, metrics, events, spans and panic
//! isolation.
//!
//! The objects come from kube-runtime's `watcher`, with its backoff and relist handling; what
//! kube-runtime builds on it for a controller is replaced. Its reflector `Store` kept every
//! primary typed (1.9 KB per WebApp); opkit's caches keep them compressed ([`crate::cache`]). Its
//! `applier` and scheduler had no priorities, so a change waited behind a relist of every
//! object, and kept each pending resync twice with its full `ObjectRef` (1.25 KB per object);
//! [`Queue`](super::queue::Queue) has two priorities and one small slot per object. Its
//! `predicate_filter` kept another map of hashes; the hash lives in the cache entry.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared as SharedFuture};
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::Action as KubeAction;
use kube::runtime::finalizer::{self, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Controller;
use super::queue::{Next, Priority, Queue};
use super::watches::{self, primary_hash};
use crate::cache::{Caches, Key, Store, prune};
use crate::clock::Clock;
use crate::context::{Context, Shared};
use crate::error::{Error, Result, retry_after_hint};
use crate::events::{EventType, Events};
use crate::index::{Indexes, Primaries};
use crate::metrics::{Metrics, ReconcileResult};
use crate::object::{self, Object};
use crate::reconcile::{Action, Reconcile};
use crate::shard::Scope;
use crate::status::{self, Shape, Sink};

/// A future resolving once shutdown was requested.
pub(crate) type Shutdown = SharedFuture<BoxFuture<'static, ()>>;

/// What the manager hands every controller for one run.
#[derive(Clone)]
pub(crate) struct Runtime {
    pub client: Client,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub shutdown: Shutdown,
    pub synced: Arc<Synced>,
    /// Whether reconciles may start: while leading (or always, without leader election). The
    /// watches run and the queue fills either way, so a standby is warm.
    pub active: watch::Receiver<bool>,
    /// This replica's shard, when the controllers are sharded.
    pub shard: Option<Arc<Scope>>,
}

/// Runs `controller` until shutdown is requested; in-flight reconciles finish first.
pub(crate) fn run<K, D>(controller: Controller<K, D>, runtime: Runtime) -> BoxFuture<'static, ()>
where
    K: Reconcile<D>,
    D: Send + Sync + 'static,
{
    let Runtime {
        client,
        metrics,
        clock,
        shutdown,
        synced,
        active,
        shard,
    } = runtime;
    let config = controller.config;
    let store = Arc::new(Store::<K>::default());
    let caches = Caches::default();
    let indexes = Indexes::new(controller.indexes);
    let primaries = Primaries::new(store.clone(), indexes.clone());
    let start = watches::Start {
        client: client.clone(),
        metrics: metrics.clone(),
        controller: config.name.clone(),
        caches: caches.clone(),
        primaries: primaries.clone(),
        owned_selector: shard.as_ref().map(|s| s.owned_selector()),
    };
    let (streams, cleanups) = controller.watches.start(&start);
    let sink = Arc::new(Sink {
        client: client.clone(),
        controller: config.name.clone(),
        metrics: metrics.clone(),
        clock,
        shape: controller
            .crd
            .as_ref()
            .map_or_else(Shape::open, Shape::of_crd),
        automatic: !object::is_builtin::<K>(),
        written: Default::default(),
        ready_seen: Mutex::new(HashSet::new()),
    });
    let watch_config = match &shard {
        Some(scope) => watcher::Config::default().labels(&scope.primary_selector()),
        None => watcher::Config::default(),
    };
    let primary = watcher(Api::<K>::all(client.clone()), watch_config)
        .default_backoff()
        .modify(prune)
        .boxed();
    metrics.set_max_concurrent(&config.name, config.concurrency);
    let shared = Arc::new(Shared {
        events: Events::new(client.clone(), &config.field_manager),
        client,
        config,
        metrics,
        caches: caches.clone(),
        primaries,
        data: controller.data,
        failures: Default::default(),
        status: sink,
        cleanups,
        shard: shard.clone(),
    });
    tracing::info!(controller = %shared.config.name, kind = %K::kind(&()), "starting controller");
    let lp = Loop {
        shared,
        store,
        indexes,
        caches,
        queue: Queue::new(),
        reconciles: JoinSet::new(),
        running: HashMap::new(),
        hand_overs: JoinSet::new(),
        synced: Some(synced),
    };
    lp.run(
        primary,
        futures::stream::select_all(streams),
        active,
        shutdown,
    )
    .boxed()
}

/// The state of one controller's loop: its caches, queue and running reconciles.
struct Loop<K: Object, D> {
    shared: Arc<Shared<K, D>>,
    store: Arc<Store<K>>,
    indexes: Indexes<K>,
    caches: Caches,
    queue: Queue,
    reconciles: JoinSet<Next>,
    /// The object and priority of each running reconcile, by task.
    running: HashMap<tokio::task::Id, (Key, Priority)>,
    hand_overs: JoinSet<(Key, bool)>,
    /// Told once every cache holds its first list; `None` after.
    synced: Option<Arc<Synced>>,
}

impl<K: Reconcile<D>, D: Send + Sync + 'static> Loop<K, D> {
    async fn run(
        mut self,
        mut primary: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<K>>>,
        mut requests: futures::stream::SelectAll<watches::Requests>,
        mut active: watch::Receiver<bool>,
        mut shutdown: Shutdown,
    ) {
        let concurrency = usize::from(self.shared.config.concurrency);
        let mut stopping = false;
        let mut activation_open = true;
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
        let timer = tokio::time::sleep_until(far());
        tokio::pin!(timer);
        loop {
            if self.synced.is_some()
                && self.store.is_synced()
                && self.caches.is_synced()
                && let Some(synced) = self.synced.take()
            {
                synced.one_done();
            }
            let dispatching = !stopping && self.synced.is_none() && *active.borrow();
            if dispatching {
                self.dispatch(concurrency);
            }
            if stopping && self.reconciles.is_empty() && self.hand_overs.is_empty() {
                return;
            }
            // A timer matters only when a reconcile could start; otherwise the end of one
            // (or the activation) brings the loop back here.
            let room = concurrency == 0 || self.queue.running() < concurrency;
            let due = self.queue.next_due().filter(|_| dispatching && room);
            if let Some(due) = due
                && due != timer.deadline()
            {
                timer.as_mut().reset(due);
            }
            tokio::select! {
                biased;
                () = &mut shutdown, if !stopping => stopping = true,
                Some(joined) = self.reconciles.join_next_with_id() => self.finished(joined),
                Some(joined) = self.hand_overs.join_next() => {
                    if let Ok((key, released)) = joined {
                        self.queue.acked(&key, released);
                    }
                }
                Some(event) = primary.next(), if !stopping => self.on_primary(event),
                Some(batch) = requests.next(), if !stopping => {
                    for request in batch {
                        if !self.queue.is_draining(&request.key) {
                            self.queue.push(request.key, request.priority);
                        }
                    }
                }
                changed = active.changed(), if activation_open => {
                    activation_open = changed.is_ok();
                }
                () = &mut timer, if due.is_some() => timer.as_mut().reset(far()),
            }
        }
    }

    /// Starts reconciles while there is room and work.
    fn dispatch(&mut self, concurrency: usize) {
        while concurrency == 0 || self.queue.running() < concurrency {
            let Some((key, priority)) = self.queue.pop(tokio::time::Instant::now()) else {
                return;
            };
            match self.store.get(&key) {
                Some(obj) => {
                    let shared = self.shared.clone();
                    let task =
                        self.reconciles
                            .spawn(reconcile::<K, D>(Arc::new(obj), priority, shared));
                    self.running.insert(task.id(), (key, priority));
                }
                None => {
                    self.queue.finish(&key, Next::Await);
                }
            }
        }
    }

    fn finished(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, Next), tokio::task::JoinError>,
    ) {
        let (id, next) = match joined {
            Ok(done) => done,
            // Reconciles catch their own panics; one in opkit's bookkeeping around them is
            // retried like a failure.
            Err(error) => {
                tracing::error!(%error, "a reconcile task failed");
                let backoff = self.shared.config.backoff.delay(1);
                let priority = self.running.get(&error.id()).map_or(Priority::Low, |r| r.1);
                (error.id(), Next::After(backoff, priority))
            }
        };
        let Some((key, _)) = self.running.remove(&id) else {
            return;
        };
        if self.queue.finish(&key, next) {
            self.hand_over(&key);
        }
    }

    fn on_primary(&mut self, event: watcher::Result<watcher::Event<K>>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let controller = &self.shared.config.name;
                tracing::warn!(%controller, %error, "watch failed; retrying");
                let reason = crate::error::watch_reason(&error);
                self.shared
                    .metrics
                    .record_watch_error(controller, &K::kind(&()), reason);
                return;
            }
        };
        self.indexes.apply(&event);
        let (obj, tag) = match &event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                if let Some(uid) = obj.uid() {
                    self.shared.status.written.observe(&uid, obj.meta());
                }
                let config = &self.shared.config;
                (
                    Some(obj),
                    primary_hash(obj, config.on_labels, config.on_annotations),
                )
            }
            watcher::Event::Delete(obj) => {
                if let Some(uid) = obj.uid() {
                    self.shared.status.forget(&uid);
                    self.shared.failures.reset(&uid);
                }
                (None, None)
            }
            watcher::Event::Init | watcher::Event::InitDone => (None, None),
        };
        match self.store.apply(&event, |_| tag.unwrap_or(0)) {
            crate::cache::Change::Stored {
                key,
                before,
                relisted,
            } => {
                let Some(obj) = obj else { return };
                if let Some(scope) = &self.shared.shard
                    && scope.is_draining(obj.meta())
                {
                    if self.queue.drain(&key) {
                        self.hand_over(&key);
                    }
                    return;
                }
                let returned = self.queue.is_draining(&key);
                if returned {
                    self.queue.undrain(key.clone());
                }
                let changed = tag.is_none() || before != tag;
                if changed && !returned {
                    // What a fresh process lists is the herd; what changed is a change.
                    let priority = if relisted && before.is_none() {
                        Priority::Low
                    } else {
                        Priority::High
                    };
                    self.queue.push(key, priority);
                }
            }
            crate::cache::Change::Deleted(key) => self.queue.forget(&key),
            crate::cache::Change::Relisted(gone) => {
                for key in gone {
                    self.queue.forget(&key);
                }
            }
            crate::cache::Change::Nothing => {}
        }
    }

    /// Hands `key` over to the replica it moves to: removes this replica's shard label, if the
    /// object is still the version this replica saw.
    fn hand_over(&mut self, key: &Key) {
        let (Some(scope), Some(obj)) = (self.shared.shard.clone(), self.store.get(key)) else {
            // Gone already: nothing to hand over.
            self.queue.forget(key);
            return;
        };
        self.queue.acking(key);
        let client = self.shared.client.clone();
        let key = key.clone();
        self.hand_overs.spawn(async move {
            let released = scope.release(client, &obj).await;
            (key, released)
        });
    }
}

/// How many controllers still wait for their caches' first list.
#[derive(Debug)]
pub(crate) struct Synced {
    remaining: std::sync::atomic::AtomicUsize,
    notify: tokio::sync::Notify,
}

impl Synced {
    pub fn new(controllers: usize) -> Self {
        Self {
            remaining: controllers.into(),
            notify: tokio::sync::Notify::new(),
        }
    }

    fn one_done(&self) {
        self.remaining
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_synced(&self) -> bool {
        self.remaining.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_synced() {
                return;
            }
            notified.await;
        }
    }
}

/// One reconcile of one object; never fails (failures are turned into a retry).
async fn reconcile<K: Reconcile<D>, D: Send + Sync + 'static>(
    obj: Arc<K>,
    priority: Priority,
    shared: Arc<Shared<K, D>>,
) -> Next {
    let controller = shared.config.name.clone();
    let _busy = shared.metrics.worker_started(&controller);
    let started = Instant::now();
    let id = obj
        .uid()
        .unwrap_or_else(|| ObjectRef::from_obj(&*obj).to_string());
    let deleting = obj.meta().deletion_timestamp.is_some();
    let span = tracing::info_span!(
        "reconcile",
        controller = %controller,
        kind = %K::kind(&()),
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        generation = obj.meta().generation.unwrap_or_default(),
        resource_version = obj.resource_version().unwrap_or_default(),
    );
    let ctx = Context::new(obj, shared.clone());
    let outcome = AssertUnwindSafe(run_once(&ctx, deleting))
        .catch_unwind()
        .instrument(span.clone())
        .await
        .unwrap_or_else(|panic| {
            shared.metrics.record_panic(&controller);
            Err(Error::Panicked(panic_message(panic.as_ref())))
        });
    async {
        match outcome {
            Ok(action) => succeeded(&ctx, &id, action, deleting, priority, started).await,
            Err(error) => failed(&ctx, &id, error, deleting, priority, started).await,
        }
    }
    .instrument(span)
    .await
}

async fn run_once<K: Reconcile<D>, D: Send + Sync + 'static>(
    ctx: &Context<K, D>,
    deleting: bool,
) -> Result<Option<Action>> {
    let shared = ctx.shared();
    let Some(finalizer_name) = shared.config.finalizer.clone() else {
        if deleting {
            return Ok(Some(Action::await_change()));
        }
        return ctx.object().reconcile(ctx).await.map(Some);
    };
    let obj = Arc::new(ctx.object().clone());
    let api: Api<K> = ctx.api(obj.namespace().as_deref());
    if !deleting && !obj.finalizers().contains(&finalizer_name) {
        add_finalizer(&api, &obj, &finalizer_name).await?;
        // The finalizer change is itself a watch event and triggers the first real reconcile.
        return Ok(Some(Action::await_change()));
    }
    let mut user_action = None;
    let slot = &mut user_action;
    let result = finalizer::finalizer(&api, &finalizer_name, obj, move |event| async move {
        match event {
            FinalizerEvent::Apply(o) => {
                *slot = Some(o.reconcile(ctx).await?);
                Ok(KubeAction::await_change())
            }
            FinalizerEvent::Cleanup(o) => {
                let cleaned = cleanup(ctx, &o).await;
                shared
                    .metrics
                    .record_cleanup(&shared.config.name, cleaned.is_ok());
                cleaned.map(|()| KubeAction::await_change())
            }
        }
    })
    .await;
    match result {
        Ok(_) => Ok(user_action),
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(finalizer::Error::AddFinalizer(e)) => Err(Error::kube("adding the finalizer", e)),
        // Gone while its cleanup ran (deleted with no other finalizer left): nothing to remove.
        Err(finalizer::Error::RemoveFinalizer(kube::Error::Api(status))) if status.code == 404 => {
            Ok(None)
        }
        Err(finalizer::Error::RemoveFinalizer(e)) => Err(Error::kube("removing the finalizer", e)),
        Err(finalizer::Error::UnnamedObject) => Err(Error::MissingField("metadata.name")),
        Err(finalizer::Error::InvalidFinalizer) => Err(Error::Config(format!(
            "invalid finalizer name {finalizer_name:?}"
        ))),
    }
}

/// Adds the finalizer with a merge patch guarded by the resourceVersion, so a concurrent change
/// of the finalizer list makes it fail with a conflict (retried) instead of dropping an entry.
async fn add_finalizer<K: Object>(api: &Api<K>, obj: &K, finalizer_name: &str) -> Result<()> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(finalizer_name.to_owned());
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() }
    });
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingField("metadata.name"))?;
    api.patch(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map_err(|e| Error::kube("adding the finalizer", e))?;
    Ok(())
}

/// Deletes dependents that carry owner labels (no owner reference could be used), then runs the
/// operator's cleanup.
async fn cleanup<K: Reconcile<D>, D: Send + Sync + 'static>(
    ctx: &Context<K, D>,
    obj: &K,
) -> Result<()> {
    if let Some(uid) = obj.uid() {
        for delete_labelled in &ctx.shared().cleanups {
            let deleted = delete_labelled(ctx.client().clone(), uid.clone())
                .await
                .map_err(|e| {
                    Error::kube("deleting dependents outside the primary's namespace", e)
                })?;
            if deleted > 0 {
                tracing::info!(deleted, "deleted labelled dependents");
            }
        }
    }
    obj.cleanup(ctx).await
}

async fn succeeded<K: Reconcile<D>, D: Send + Sync + 'static>(
    ctx: &Context<K, D>,
    key: &str,
    action: Option<Action>,
    deleting: bool,
    priority: Priority,
    started: Instant,
) -> Next {
    let shared = ctx.shared();
    shared.failures.reset(key);
    // The operator may report Degraded itself (a stalled rollout); only clear ours otherwise.
    let (drafted, degraded_drafted) = ctx.with_draft(|d| {
        let degraded = d.conditions.iter().any(|c| c.type_ == status::DEGRADED);
        (!d.conditions.is_empty(), degraded)
    });
    if shared.status.automatic
        && !deleting
        && !degraded_drafted
        && (drafted || ctx.has_condition(status::DEGRADED))
    {
        ctx.status().condition(
            status::DEGRADED,
            false,
            "ReconcileSucceeded",
            "the last reconcile succeeded",
        );
    }
    let mut requeue_soon = false;
    if !deleting && let Err(error) = ctx.flush_status().await {
        tracing::warn!(%error, "could not write status");
        requeue_soon = true;
    }
    let (result, next) = match action {
        _ if requeue_soon => (
            ReconcileResult::Requeue,
            Next::After(shared.config.backoff.delay(1), priority),
        ),
        None | Some(Action::Done) => (
            ReconcileResult::Success,
            Next::After(shared.config.requeue, Priority::Low),
        ),
        Some(Action::AwaitChange) => (ReconcileResult::Success, Next::Await),
        Some(Action::RequeueAfter(after)) => {
            (ReconcileResult::Requeue, Next::After(after, Priority::Low))
        }
    };
    shared
        .metrics
        .record_reconcile(&shared.config.name, result, started.elapsed());
    tracing::debug!(took = ?started.elapsed(), "reconciled");
    next
}

async fn failed<K: Reconcile<D>, D: Send + Sync + 'static>(
    ctx: &Context<K, D>,
    key: &str,
    error: Error,
    deleting: bool,
    priority: Priority,
    started: Instant,
) -> Next {
    let shared = ctx.shared();
    let controller = &shared.config.name;
    let failures = shared.failures.record_failure(key);
    let transient = error.is_transient();
    let backoff = &shared.config.backoff;
    // A forbidden request waits for a grant, not for a change of the object: keep retrying.
    let delay = if transient || error.is_forbidden() {
        let delay = backoff.delay(failures);
        let delay = retry_after_hint(&error).map_or(delay, |hint| hint.max(delay));
        shared.metrics.record_backoff(controller, delay);
        delay
    } else {
        backoff.permanent_retry
    };
    shared
        .metrics
        .record_reconcile(controller, ReconcileResult::Error, started.elapsed());
    let reason = if deleting {
        "CleanupFailed"
    } else {
        error.reason()
    };
    let message = error.to_string();
    shared.metrics.record_failure(controller, reason);
    if transient {
        tracing::warn!(%error, failures, retry_in = ?delay, "reconcile failed; retrying");
    } else {
        tracing::error!(%error, retry_in = ?delay, "reconcile failed permanently; waiting for a change");
    }
    // Conflicts are optimistic concurrency at work and pass on the next attempt; they are
    // reported only when they keep coming.
    if error.is_conflict() && failures < REPORT_CONFLICTS_FROM {
        return Next::After(delay, priority);
    }
    if shared.status.automatic {
        let status = ctx.status();
        status.condition(status::DEGRADED, true, reason, message.clone());
        if !transient {
            status.condition(status::READY, false, reason, message.clone());
        }
    }
    if let Err(status_error) = ctx.flush_status().await {
        tracing::warn!(error = %status_error, "could not write status");
    }
    let event_reason = if deleting {
        "CleanupFailed"
    } else {
        "ReconcileFailed"
    };
    ctx.event(EventType::Warning, event_reason, &message).await;
    // A retry keeps the priority of what it retries: a failed change is still a change.
    Next::After(delay, priority)
}

/// The consecutive conflicts after which an object is marked Degraded with a Warning event.
const REPORT_CONFLICTS_FROM: u32 = 3;

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}
