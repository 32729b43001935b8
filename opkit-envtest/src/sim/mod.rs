//! Simulated workload controllers, like kwok: workloads get the
//! ReplicaSets, Pods and claims the real controllers would create, and
//! report the status they would write once those pods run.
//!
//! On by default; [`TestEnvBuilder::without_simulation`] turns it off and
//! [`TestEnvBuilder::simulation`] tunes it. After [`Simulation::delay`]
//! (100 ms by default):
//! - Deployments, ReplicaSets, StatefulSets and DaemonSets report every
//!   replica ready and available, with `observedGeneration` and, for
//!   Deployments, the `Available` and `Progressing` conditions;
//! - Jobs complete (`Complete`, `succeeded`, `completionTime`);
//! - PersistentVolumeClaims become `Bound`;
//! - Deployments get one ReplicaSet per pod template (`<name>-<hash>`, the
//!   `pod-template-hash` label, `deployment.kubernetes.io/revision`), the
//!   current one scaled to `spec.replicas` and the others to zero;
//!   ReplicaSets get their Pods (`<name>-<5 characters>`), StatefulSets
//!   `<name>-0`... and the claims of their `volumeClaimTemplates`,
//!   DaemonSets one Pod, Jobs one Pod that succeeds; [`Simulation::pods`]
//!   turns this off;
//! - Pods run on one simulated node (the Node `envtest-node`, Ready): pods
//!   without `spec.nodeName` are bound to it as the scheduler binds them, then
//!   run, ready, with IPs and container statuses;
//! - CronJobs create their Jobs when due by the [`Clock`].
//!
//! Two annotations show the unhappy paths: [`NEVER_READY`]
//! (`envtest.opkit.dev/never-ready: "true"`) keeps a workload unavailable
//! (its pods running but not ready), a Job running and a bare Pod pending; [`FAIL`] (`envtest.opkit.dev/fail:
//! "true"`) makes a Deployment's rollout exceed its progress deadline, a
//! Job fail and a Pod crash.
//!
//! ```no_run
//! use opkit_envtest::sim::{ManualClock, Simulation};
//! use std::time::Duration;
//!
//! # async fn demo() -> Result<(), opkit_envtest::Error> {
//! let clock = ManualClock::new(jiff::Timestamp::now());
//! let env = opkit_envtest::TestEnv::builder()
//!     .simulation(Simulation::default().delay(Duration::from_millis(10)).clock(clock.clone()))
//!     .build()
//!     .await?;
//! clock.advance(Duration::from_secs(3600)); // hourly CronJobs fire now
//! # drop(env);
//! # Ok(()) }
//! ```

mod children;
mod clock;
mod cron;
pub(crate) mod node;
mod status;

pub use clock::{Clock, ManualClock, SystemClock};

use children::{controller_of, owned, sync_children};
use cron::cron_loop;
use status::{desired_status, status_patch};

use crate::env::{ControllerContext, TestEnvBuilder};
use crate::store::Store;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Annotation (`"true"`) that keeps a workload from ever becoming ready.
pub const NEVER_READY: &str = "envtest.opkit.dev/never-ready";

/// Annotation (`"true"`) that makes a workload fail: a Deployment's
/// `Progressing` condition turns `False` with `ProgressDeadlineExceeded`,
/// a Job gets the `Failed` condition.
pub const FAIL: &str = "envtest.opkit.dev/fail";

/// The field manager the simulated controllers write status with.
const MANAGER: &str = "kube-controller-manager";

/// Settings of the simulated workload controllers.
#[derive(Clone, Debug)]
pub struct Simulation {
    delay: Duration,
    clock: Arc<dyn Clock>,
    pods: bool,
}

impl Default for Simulation {
    fn default() -> Self {
        Simulation {
            delay: Duration::from_millis(100),
            clock: Arc::new(SystemClock),
            pods: true,
        }
    }
}

impl Simulation {
    /// How long a workload takes to become ready after a change (default 100 ms).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The clock CronJobs are scheduled by (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether workloads get their ReplicaSets, Pods and StatefulSet claims
    /// (default: on). Off, workloads only report status, which is cheaper
    /// when thousands of them are created.
    ///
    /// ```
    /// let quiet = opkit_envtest::sim::Simulation::default().pods(false);
    /// # drop(quiet);
    /// ```
    pub fn pods(mut self, pods: bool) -> Self {
        self.pods = pods;
        self
    }
}

impl TestEnvBuilder {
    /// Simulates workload controllers with these settings (the default is on, see [`crate::sim`]).
    pub fn simulation(mut self, simulation: Simulation) -> Self {
        self.simulation = Some(simulation);
        self
    }

    /// Turns the simulated workload controllers off: statuses stay as clients write them.
    pub fn without_simulation(mut self) -> Self {
        self.simulation = None;
        self
    }
}

/// The workload kinds whose status is simulated.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    PersistentVolumeClaim,
    Pod,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::PersistentVolumeClaim,
        Kind::Pod,
    ];

    fn resource(self) -> ApiResource {
        match self {
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
            Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Kind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Kind::Job => ApiResource::erase::<Job>(&()),
            Kind::PersistentVolumeClaim => ApiResource::erase::<PersistentVolumeClaim>(&()),
            Kind::Pod => ApiResource::erase::<Pod>(&()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Health {
    Ready,
    NeverReady,
    Failed,
}

fn health(obj: &Value) -> Health {
    let annotation = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            == Some("true")
    };
    if annotation(FAIL) {
        Health::Failed
    } else if annotation(NEVER_READY) {
        Health::NeverReady
    } else {
        Health::Ready
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A name suffix like the controllers' hashes (`pod-template-hash`, revisions).
fn template_hash(template: Option<&Value>) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = template.map(Value::to_string).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|d| char::from(ALPHANUMS[usize::from(d) % ALPHANUMS.len()]))
        .collect()
}

fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn text_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

fn controller_kind(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r.get("kind"))
        .and_then(Value::as_str)
}

fn key_of(obj: &Value) -> (String, String) {
    let text = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

fn api_for(client: &kube::Client, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    if namespace.is_empty() {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    }
}

/// Runs the simulated controllers until the environment shuts down.
///
/// The tasks live in a `JoinSet`, so aborting this future stops them all.
pub(crate) async fn run(ctx: ControllerContext, simulation: Simulation) {
    let mut tasks = tokio::task::JoinSet::new();
    for kind in Kind::ALL {
        tasks.spawn(watch_kind(ctx.clone(), kind, simulation.clone()));
    }
    tasks.spawn(cron_loop(ctx.client.clone(), simulation));
    while tasks.join_next().await.is_some() {}
}

async fn watch_kind(ctx: ControllerContext, kind: Kind, simulation: Simulation) {
    let client = ctx.client.clone();
    let resource = kind.resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let pending: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    let mut settling = tokio::task::JoinSet::new();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let obj = match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => obj,
            Ok(watcher::Event::Delete(pod)) if kind == Kind::Pod && simulation.pods => {
                // The owner's controller replaces a deleted pod.
                let Some((owner_kind, name)) = controller_of(&pod) else {
                    continue;
                };
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let api = api_for(&client, &owner_kind.resource(), &namespace);
                let (store, simulation) = (ctx.store.clone(), simulation.clone());
                while settling.try_join_next().is_some() {}
                settling.spawn(async move {
                    tokio::time::sleep(simulation.delay).await;
                    if let Err(error) = settle(&api, &store, owner_kind, &name, &simulation).await {
                        tracing::debug!(?owner_kind, %name, %error, "deleted pod not replaced");
                    }
                });
                continue;
            }
            _ => continue,
        };
        let Ok(obj) = serde_json::to_value(&obj) else {
            continue;
        };
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let now = rfc3339(simulation.clock.now());
        let Some(desired) = desired_status(kind, &obj, &now) else {
            continue;
        };
        if obj.get("status") == Some(&desired) {
            continue;
        }
        let key = key_of(&obj);
        if !pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            continue;
        }
        while settling.try_join_next().is_some() {}
        let (client, store, resource, pending, simulation) = (
            client.clone(),
            ctx.store.clone(),
            resource.clone(),
            pending.clone(),
            simulation.clone(),
        );
        settling.spawn(async move {
            tokio::time::sleep(simulation.delay).await;
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            let api = api_for(&client, &resource, &key.0);
            if let Err(error) = settle(&api, &store, kind, &key.1, &simulation).await {
                tracing::debug!(?kind, name = %key.1, %error, "simulated status not written");
            }
        });
    }
}

/// The kind a workload's controller creates.
fn child_kind(kind: Kind) -> Option<Kind> {
    match kind {
        Kind::Deployment => Some(Kind::ReplicaSet),
        Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet | Kind::Job => Some(Kind::Pod),
        Kind::PersistentVolumeClaim | Kind::Pod => None,
    }
}

/// Writes the simulated status of one object, read afresh, after its children's: as on a
/// cluster, a Deployment is Available only once its ReplicaSet's pods run.
async fn settle(
    api: &Api<DynamicObject>,
    store: &Store,
    kind: Kind,
    name: &str,
    simulation: &Simulation,
) -> Result<(), kube::Error> {
    let Some(mut obj) = api.get_opt(name).await? else {
        return Ok(());
    };
    if kind == Kind::Pod && obj.data.pointer("/spec/nodeName").is_none() {
        schedule(api, &obj).await?;
        obj = api.get(name).await?;
    }
    let obj = serde_json::to_value(&obj).unwrap_or_default();
    let mut refused = None;
    if simulation.pods {
        let client = api.clone().into_client();
        refused = sync_children(client.clone(), store, kind, &obj).await?;
        if let Some(child) = child_kind(kind) {
            let children = api_for(
                &client,
                &child.resource(),
                text_at(&obj, "/metadata/namespace"),
            );
            for owned in owned(store, child, &obj) {
                let child_name = text_at(&owned, "/metadata/name");
                Box::pin(settle(&children, store, child, child_name, simulation)).await?;
            }
        }
    }
    let now = rfc3339(simulation.clock.now());
    let Some(mut desired) = desired_status(kind, &obj, &now) else {
        return Ok(());
    };
    // Pods the cluster refused: the ReplicaSet's FailedCreate, which its Deployment reports too.
    let failure = match kind {
        Kind::ReplicaSet => refused,
        Kind::Deployment if simulation.pods => owned(store, Kind::ReplicaSet, &obj)
            .iter()
            .find_map(status::replica_failure),
        _ => None,
    };
    if let Some(message) = failure {
        if kind == Kind::ReplicaSet && status::replica_failure(&obj).as_ref() != Some(&message) {
            record_failed_create(api, &obj, &message, &now).await?;
        }
        status::failed_create(kind, &obj, &mut desired, &message, &now);
    }
    if obj.get("status") == Some(&desired) {
        return Ok(());
    }
    let patch = status_patch(obj.get("status"), &desired);
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_status(name, &params, &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Binds a pod to the simulated node through `pods/binding`, as the scheduler does.
async fn schedule(api: &Api<DynamicObject>, pod: &DynamicObject) -> Result<(), kube::Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let binding = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node::NAME},
    });
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/pods/{name}/binding"
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(binding.to_string().into_bytes())
    .map_err(kube::Error::HttpError)?;
    match api
        .clone()
        .into_client()
        .request::<serde_json::Value>(request)
        .await
    {
        // Another binding won the race: the pod is scheduled either way.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        other => other.map(drop),
    }
}

/// The `FailedCreate` event the ReplicaSet controller records when a pod is refused.
async fn record_failed_create(
    api: &Api<DynamicObject>,
    rs: &Value,
    message: &str,
    now: &str,
) -> Result<(), kube::Error> {
    let namespace = text_at(rs, "/metadata/namespace");
    let name = text_at(rs, "/metadata/name");
    let events = api_for(
        &api.clone().into_client(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&()),
        namespace,
    );
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let event = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{}", &suffix[..16]), "namespace": namespace},
        "involvedObject": {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": name,
            "namespace": namespace,
            "uid": text_at(rs, "/metadata/uid"),
            "resourceVersion": text_at(rs, "/metadata/resourceVersion"),
        },
        "reason": "FailedCreate",
        "message": format!("Error creating: {message}"),
        "type": "Warning",
        "source": {"component": "replicaset-controller"},
        "reportingComponent": "replicaset-controller",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
    });
    let event: DynamicObject = serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
    events
        .create(&kube::api::PostParams::default(), &event)
        .await?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Objects shaped a little like workloads, for the never-panic properties.
    pub(in crate::sim) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            "[a-z*/ @0-9-]{0,12}|true|Never|Forbid|Replace".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    "metadata|spec|status|name|uid|annotations|replicas|schedule|suspend|containers|conditions|envtest.opkit.dev/fail|ownerReferences|[a-z]{1,3}",
                    inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
