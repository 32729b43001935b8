//! One controller: kube-runtime's `applier` fed by filtered watch streams, around the operator's
//! reconcile with finalizers, status, backoff, metrics, events, spans and panic isolation.
//!
//! kube-runtime's `Controller` cannot filter its primary stream without unstable features, so
//! opkit composes the same public parts it is built from: `watcher` + `reflector` for each kind,
//! `predicate_filter` on the primary (status-only changes never trigger), `trigger_self` /
//! `trigger_with` to map events to requests, and `applier` for scheduling, deduplication and the
//! concurrency limit.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared as SharedFuture};
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Action as KubeAction, trigger_self};
use kube::runtime::finalizer::{self, Event as FinalizerEvent};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, applier, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::Instrument;

use super::Controller;
use super::watches::primary_predicate;
use crate::cache::Caches;
use crate::clock::Clock;
use crate::context::{Context, Shared};
use crate::error::{Error, Result, retry_after_hint};
use crate::events::{EventType, Events};
use crate::index::{Indexes, Primaries};
use crate::metrics::{Metrics, ReconcileResult};
use crate::object::{self, Object};
use crate::reconcile::{Action, Reconcile};
use crate::status::{self, Shape, Sink};

/// A future resolving once shutdown was requested.
pub(crate) type Shutdown = SharedFuture<BoxFuture<'static, ()>>;

/// What the manager hands every controller for one run (one leadership term).
#[derive(Clone)]
pub(crate) struct Runtime {
    pub client: Client,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub shutdown: Shutdown,
    pub synced: Arc<Synced>,
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
    } = runtime;
    let config = controller.config;
    let (store, writer) = reflector::store::<K>();
    let caches = Caches::default();
    let indexes = Indexes::new(controller.indexes);
    let primaries = Primaries::new(store.clone(), indexes.clone());
    let (streams, cleanups) = controller.watches.start(&client, &caches, &primaries);
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
    let primary = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(crate::cache::prune)
        .reflect(writer)
        .inspect({
            let sink = sink.clone();
            move |event| {
                let Ok(event) = event else { return };
                indexes.apply(event);
                match event {
                    watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                        if let Some(uid) = obj.uid() {
                            sink.written.observe(&uid, obj.meta());
                        }
                    }
                    watcher::Event::Delete(obj) => {
                        if let Some(uid) = obj.uid() {
                            sink.forget(&uid);
                        }
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        })
        .applied_objects()
        .predicate_filter(
            primary_predicate::<K>(config.on_labels, config.on_annotations),
            Default::default(),
        );
    let mut queue = futures::stream::select_all(streams);
    queue.push(trigger_self(primary, ()).boxed());
    let queue = queue.take_until(shutdown.clone());
    metrics.set_max_concurrent(&config.name, config.concurrency);
    let applier_config = kube::runtime::Config::default().concurrency(config.concurrency);
    let name = config.name.clone();
    let mut caches_synced = caches.take_synced();
    let primary_store = store.clone();
    caches_synced.push(Box::pin(async move {
        let _ = primary_store.wait_until_ready().await;
    }));
    // Reconciles wait for every cache, so a restart reads dependents from caches, not the API.
    let caches_synced = futures::future::join_all(caches_synced)
        .map(|_| ())
        .boxed()
        .shared();
    let shared = Arc::new(Shared {
        events: Events::new(client.clone(), &config.field_manager),
        client,
        config,
        metrics,
        caches,
        primaries,
        data: controller.data,
        failures: Default::default(),
        status: sink,
        synced: caches_synced.clone(),
        shutdown,
        cleanups,
    });
    tracing::info!(controller = %name, kind = %K::kind(&()), "starting controller");
    let sync = caches_synced.map(move |()| synced.one_done());
    let runner = applier(
        |obj, shared| Box::pin(reconcile::<K, D>(obj, shared)),
        |_obj, _err, _shared| KubeAction::requeue(Duration::from_secs(1)),
        shared,
        store,
        queue,
        applier_config,
    )
    .for_each(move |result| {
        if let Err(error) = result {
            match error {
                kube::runtime::controller::Error::ObjectNotFound(_) => {
                    tracing::debug!(%error, "object gone")
                }
                error => tracing::warn!(controller = %name, %error, "controller"),
            }
        }
        futures::future::ready(())
    });
    futures::future::join(runner, sync).map(|_| ()).boxed()
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

/// One reconcile of one object; never fails (failures are turned into a retry `Action`).
async fn reconcile<K: Reconcile<D>, D: Send + Sync + 'static>(
    obj: Arc<K>,
    shared: Arc<Shared<K, D>>,
) -> Result<KubeAction> {
    // A reconcile waiting for the caches gives way to shutdown: a cache that never lists (say
    // for want of RBAC) must not hold up the drain.
    let waiting = futures::future::select(shared.synced.clone(), shared.shutdown.clone()).await;
    if let futures::future::Either::Right(_) = waiting {
        return Ok(KubeAction::await_change());
    }
    let controller = shared.config.name.clone();
    let _busy = shared.metrics.worker_started(&controller);
    let started = Instant::now();
    let key = obj
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
    let action = async {
        match outcome {
            Ok(action) => succeeded(&ctx, &key, action, deleting, started).await,
            Err(error) => failed(&ctx, &key, error, deleting, started).await,
        }
    }
    .instrument(span)
    .await;
    Ok(action)
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
    started: Instant,
) -> KubeAction {
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
            KubeAction::requeue(shared.config.backoff.delay(1)),
        ),
        None | Some(Action::Done) => (
            ReconcileResult::Success,
            KubeAction::requeue(shared.config.requeue),
        ),
        Some(Action::AwaitChange) => (ReconcileResult::Success, KubeAction::await_change()),
        Some(Action::RequeueAfter(after)) => (ReconcileResult::Requeue, KubeAction::requeue(after)),
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
    started: Instant,
) -> KubeAction {
    let shared = ctx.shared();
    let controller = &shared.config.name;
    let failures = shared.failures.record_failure(key);
    let transient = error.is_transient();
    let backoff = &shared.config.backoff;
    let delay = if transient {
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
    if transient {
        tracing::warn!(%error, failures, retry_in = ?delay, "reconcile failed; retrying");
    } else {
        tracing::error!(%error, retry_in = ?delay, "reconcile failed permanently; waiting for a change");
    }
    // Conflicts are optimistic concurrency at work and pass on the next attempt; they are
    // reported only when they keep coming.
    if error.is_conflict() && failures < REPORT_CONFLICTS_FROM {
        return KubeAction::requeue(delay);
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
    KubeAction::requeue(delay)
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
