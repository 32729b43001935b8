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
//! - Pods run on one simulated node, ready, with IPs and container statuses;
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

use crate::env::{ControllerContext, TestEnvBuilder};
use crate::store::Store;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::fmt;
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

/// How often CronJobs are checked against the clock.
const CRON_TICK: Duration = Duration::from_millis(100);

/// Where the simulation reads the time, for CronJob schedules and status timestamps.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to, so tests can make CronJobs due.
///
/// ```
/// use opkit_envtest::sim::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
/// let clock = ManualClock::new(start);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().to_string(), "2030-01-01T00:01:30Z");
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let span = jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX);
        *now = now.saturating_add(span).unwrap_or(*now);
    }

    /// Sets the clock.
    pub fn set(&self, at: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

/// A condition, keeping the existing one's timestamps while it says the same.
fn condition(
    current: &Value,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    time_fields: &[&str],
) -> Value {
    let existing = current
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == kind));
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    out.insert("status".into(), json!(status));
    out.insert("reason".into(), json!(reason));
    out.insert("message".into(), json!(message));
    let same_status = existing.is_some_and(|e| e["status"] == status);
    let same_text =
        same_status && existing.is_some_and(|e| e["reason"] == reason && e["message"] == message);
    for field in time_fields {
        let keep = if *field == "lastTransitionTime" {
            same_status
        } else {
            same_text
        };
        let value = existing
            .and_then(|e| e.get(*field))
            .filter(|_| keep)
            .cloned()
            .unwrap_or_else(|| json!(now));
        out.insert((*field).into(), value);
    }
    Value::Object(out)
}

fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// Inserts the counts that are not zero, as the API types omit empty counts.
fn counts(status: &mut Map<String, Value>, fields: &[(&str, i64)]) {
    for (name, value) in fields {
        if *value != 0 {
            status.insert((*name).into(), json!(value));
        }
    }
}

/// The status the real controller would report for `obj`, given its current one.
fn desired_status(kind: Kind, obj: &Value, now: &str) -> Option<Value> {
    let current = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    let name = obj.pointer("/metadata/name").and_then(Value::as_str)?;
    let generation = int_at(obj, "/metadata/generation", 1);
    let replicas = int_at(obj, "/spec/replicas", 1);
    let h = health(obj);
    let ready = h == Health::Ready;
    let mut s = Map::new();
    match kind {
        Kind::Deployment => {
            let rs = format!("{name}-{}", template_hash(obj.pointer("/spec/template")));
            let times = ["lastUpdateTime", "lastTransitionTime"];
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(replicas));
            s.insert("updatedReplicas".into(), json!(replicas));
            let paused = obj.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
            let (available, mut progressing) = if ready {
                counts(
                    &mut s,
                    &[("readyReplicas", replicas), ("availableReplicas", replicas)],
                );
                (
                    condition(
                        &current,
                        "Available",
                        "True",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                        now,
                        &times,
                    ),
                    condition(
                        &current,
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                        now,
                        &times,
                    ),
                )
            } else {
                counts(&mut s, &[("unavailableReplicas", replicas)]);
                let progressing = if h == Health::Failed {
                    condition(
                        &current,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{rs}\" has timed out progressing."),
                        now,
                        &times,
                    )
                } else {
                    condition(
                        &current,
                        "Progressing",
                        "True",
                        "ReplicaSetUpdated",
                        &format!("ReplicaSet \"{rs}\" is progressing."),
                        now,
                        &times,
                    )
                };
                (
                    condition(
                        &current,
                        "Available",
                        "False",
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.",
                        now,
                        &times,
                    ),
                    progressing,
                )
            };
            if paused {
                progressing = condition(
                    &current,
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    now,
                    &times,
                );
            }
            s.insert("conditions".into(), json!([available, progressing]));
        }
        Kind::ReplicaSet => {
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(replicas));
            counts(&mut s, &[("fullyLabeledReplicas", replicas)]);
            if ready {
                counts(
                    &mut s,
                    &[("readyReplicas", replicas), ("availableReplicas", replicas)],
                );
            }
        }
        Kind::StatefulSet => {
            let revision = format!("{name}-{}", template_hash(obj.pointer("/spec/template")));
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(replicas));
            counts(
                &mut s,
                &[("currentReplicas", replicas), ("updatedReplicas", replicas)],
            );
            let up = if ready { replicas } else { 0 };
            counts(&mut s, &[("readyReplicas", up)]);
            s.insert("availableReplicas".into(), json!(up));
            s.insert("currentRevision".into(), json!(revision));
            s.insert("updateRevision".into(), json!(revision));
            s.insert("collisionCount".into(), json!(0));
        }
        Kind::DaemonSet => {
            // One simulated node.
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("currentNumberScheduled".into(), json!(1));
            s.insert("desiredNumberScheduled".into(), json!(1));
            s.insert("numberMisscheduled".into(), json!(0));
            s.insert("updatedNumberScheduled".into(), json!(1));
            let up = i64::from(ready);
            s.insert("numberReady".into(), json!(up));
            counts(
                &mut s,
                &[("numberAvailable", up), ("numberUnavailable", 1 - up)],
            );
        }
        Kind::Job => {
            if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            let times = ["lastProbeTime", "lastTransitionTime"];
            let start = current
                .get("startTime")
                .cloned()
                .unwrap_or_else(|| json!(now));
            s.insert("startTime".into(), start);
            s.insert("ready".into(), json!(0));
            s.insert("terminating".into(), json!(0));
            s.insert("uncountedTerminatedPods".into(), json!({}));
            match h {
                Health::Ready => {
                    let done = current
                        .get("completionTime")
                        .cloned()
                        .unwrap_or_else(|| json!(now));
                    s.insert("completionTime".into(), done);
                    let completions = int_at(obj, "/spec/completions", 1);
                    s.insert("succeeded".into(), json!(completions));
                    let message = "Reached expected number of succeeded pods";
                    s.insert(
                        "conditions".into(),
                        json!([
                            condition(
                                &current,
                                "SuccessCriteriaMet",
                                "True",
                                "CompletionsReached",
                                message,
                                now,
                                &times
                            ),
                            condition(
                                &current,
                                "Complete",
                                "True",
                                "CompletionsReached",
                                message,
                                now,
                                &times
                            ),
                        ]),
                    );
                }
                Health::NeverReady => {
                    s.insert("active".into(), json!(int_at(obj, "/spec/parallelism", 1)));
                }
                Health::Failed => {
                    s.insert(
                        "failed".into(),
                        json!(int_at(obj, "/spec/backoffLimit", 6) + 1),
                    );
                    let message = "Job has reached the specified backoff limit";
                    s.insert(
                        "conditions".into(),
                        json!([
                            condition(
                                &current,
                                "FailureTarget",
                                "True",
                                "BackoffLimitExceeded",
                                message,
                                now,
                                &times
                            ),
                            condition(
                                &current,
                                "Failed",
                                "True",
                                "BackoffLimitExceeded",
                                message,
                                now,
                                &times
                            ),
                        ]),
                    );
                }
            }
        }
        Kind::Pod => return Some(pod_status(obj, &current, h, now)),
        Kind::PersistentVolumeClaim => {
            if ready {
                s.insert("phase".into(), json!("Bound"));
                if let Some(modes) = obj.pointer("/spec/accessModes") {
                    s.insert("accessModes".into(), modes.clone());
                }
                if let Some(size) = obj.pointer("/spec/resources/requests/storage") {
                    s.insert("capacity".into(), json!({"storage": size}));
                }
            } else {
                s.insert("phase".into(), json!("Pending"));
            }
        }
    }
    Some(Value::Object(s))
}

/// A pod on the one simulated node: running and ready, or stuck, or crashing.
fn pod_status(obj: &Value, current: &Value, h: Health, now: &str) -> Value {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let seed = uid.bytes().fold(0x811c_9dc5_u32, |acc, b| {
        (acc ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let pod_ip = format!("10.244.0.{}", seed % 250 + 2);
    let containers: Vec<&Value> = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let never_restarts =
        obj.pointer("/spec/restartPolicy").and_then(Value::as_str) == Some("Never");
    // A workload's never-ready pods run with failing readiness, as a
    // controller-made pod on a cluster would; bare ones stay Pending.
    let probing = h == Health::NeverReady && controller_uid(obj).is_some();
    // A Job's pods run to completion.
    let completes = h == Health::Ready && controller_kind(obj) == Some("Job");
    let started = current
        .get("startTime")
        .cloned()
        .unwrap_or_else(|| json!(now));
    let previous_state = |name: &str, key: &str| {
        current
            .get("containerStatuses")
            .and_then(Value::as_array)
            .and_then(|list| list.iter().find(|c| c["name"] == name))
            .and_then(|c| c.pointer(key))
            .cloned()
    };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let image = c.get("image").cloned().unwrap_or(Value::Null);
            let mut status = json!({"name": name, "image": image, "imageID": "",
                "restartCount": 0, "ready": false, "started": false});
            match h {
                Health::Ready if completes => {
                    let at = previous_state(name, "/state/terminated/finishedAt")
                        .unwrap_or_else(|| json!(now));
                    status["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": at, "finishedAt": at}});
                }
                Health::Ready => {
                    let at = previous_state(name, "/state/running/startedAt")
                        .unwrap_or_else(|| json!(now));
                    status["ready"] = json!(true);
                    status["started"] = json!(true);
                    status["state"] = json!({"running": {"startedAt": at}});
                }
                Health::NeverReady if probing => {
                    let at = previous_state(name, "/state/running/startedAt")
                        .unwrap_or_else(|| json!(now));
                    status["started"] = json!(true);
                    status["state"] = json!({"running": {"startedAt": at}});
                }
                Health::NeverReady => {
                    status["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
                }
                Health::Failed => {
                    let at = previous_state(name, "/lastState/terminated/finishedAt")
                        .or_else(|| previous_state(name, "/state/terminated/finishedAt"))
                        .unwrap_or_else(|| json!(now));
                    let terminated = json!({"terminated": {"exitCode": 1, "reason": "Error",
                        "startedAt": at, "finishedAt": at}});
                    if never_restarts {
                        status["state"] = terminated;
                    } else {
                        status["restartCount"] = json!(5);
                        status["lastState"] = terminated;
                        status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                            "message": format!("back-off 5m0s restarting failed container={name} pod={}",
                                obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""))}});
                    }
                }
            }
            status
        })
        .collect();
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    let times = ["lastTransitionTime"];
    let cond = |kind: &str, ok: bool| {
        let (status, reason, message) = if ok {
            ("True", "", "")
        } else if completes {
            ("False", "PodCompleted", "")
        } else {
            ("False", "ContainersNotReady", unready.as_str())
        };
        let mut c = condition(current, kind, status, reason, message, now, &times);
        if let Some(map) = c.as_object_mut() {
            map.insert("lastProbeTime".into(), Value::Null);
            if ok {
                map.remove("reason");
            }
            if ok || completes {
                map.remove("message");
            }
        }
        c
    };
    let ready = h == Health::Ready && !completes;
    let phase = match h {
        Health::Ready if completes => "Succeeded",
        Health::Ready => "Running",
        Health::NeverReady if probing => "Running",
        Health::NeverReady => "Pending",
        Health::Failed if never_restarts => "Failed",
        Health::Failed => "Running",
    };
    let any_resources = containers.iter().any(|c| {
        c.get("resources")
            .is_some_and(|r| r.as_object().is_some_and(|m| !m.is_empty()))
    });
    json!({
        "phase": phase,
        "conditions": [
            cond("PodReadyToStartContainers", h != Health::NeverReady || probing),
            cond("Initialized", true),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ],
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "qosClass": if any_resources { "Burstable" } else { "BestEffort" },
        "containerStatuses": statuses,
    })
}

/// A merge patch turning `current` into `desired` (fields to drop set to null).
fn status_patch(current: Option<&Value>, desired: &Value) -> Value {
    let mut patch = desired.as_object().cloned().unwrap_or_default();
    if let Some(current) = current.and_then(Value::as_object) {
        for key in current.keys() {
            patch.entry(key.clone()).or_insert(Value::Null);
        }
    }
    json!({ "status": patch })
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
    let Some(obj) = api.get_opt(name).await? else {
        return Ok(());
    };
    let obj = serde_json::to_value(&obj).unwrap_or_default();
    if simulation.pods {
        let client = api.clone().into_client();
        sync_children(client.clone(), store, kind, &obj).await?;
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
    let Some(desired) = desired_status(kind, &obj, &now) else {
        return Ok(());
    };
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

/// The node every simulated pod runs on.
const NODE: &str = "envtest-node";

/// The label the Deployment controller puts on its ReplicaSets and their pods.
const TEMPLATE_HASH: &str = "pod-template-hash";

/// The annotation numbering a Deployment's ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";

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

/// The workload controlling `pod`, if the simulation made it.
fn controller_of(pod: &DynamicObject) -> Option<(Kind, String)> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))?;
    let kind = match owner.kind.as_str() {
        "ReplicaSet" => Kind::ReplicaSet,
        "StatefulSet" => Kind::StatefulSet,
        "DaemonSet" => Kind::DaemonSet,
        "Job" => Kind::Job,
        _ => return None,
    };
    Some((kind, owner.name.clone()))
}

fn reference(owner: &Value, kind: Kind, controller: bool) -> Value {
    let resource = kind.resource();
    json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": text_at(owner, "/metadata/name"),
        "uid": text_at(owner, "/metadata/uid"),
        "controller": controller,
        "blockOwnerDeletion": true,
    })
}

/// The health annotations a child inherits from its workload, `null` where absent
/// (so a merge patch also clears them).
fn health_annotations(owner: &Value) -> Map<String, Value> {
    [NEVER_READY, FAIL]
        .into_iter()
        .map(|key| {
            let value = owner
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or(Value::Null);
            (key.to_string(), value)
        })
        .collect()
}

/// Merges `extra` into the object at `pointer`, creating it, dropping `null`s.
fn merge_into(obj: &mut Value, pointer: &str, extra: &Map<String, Value>) {
    let mut merged = obj
        .pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in extra {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(parent) = obj.pointer_mut(parent).and_then(Value::as_object_mut) {
        parent.insert(field.to_string(), Value::Object(merged));
    }
}

/// The live objects of `kind` that `owner` controls, from the store's owner
/// index: a list by selector would scan the whole namespace for every owner.
fn owned(store: &Store, kind: Kind, owner: &Value) -> Vec<Value> {
    let uid = text_at(owner, "/metadata/uid");
    let resource = kind.resource();
    let storage = format!("{}/{}", resource.group, resource.plural);
    let state = store.read();
    state
        .dependents(uid)
        .into_iter()
        .filter(|key| *key.storage == *storage)
        .filter_map(|key| state.get(&key.storage, &key.namespace, &key.name))
        .filter(|o| controller_uid(o) == Some(uid) && !meta_deleting(o))
        .collect()
}

fn meta_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// Creates `obj`, an existing one of the same name being fine.
async fn create(api: &Api<DynamicObject>, obj: Value) -> Result<(), kube::Error> {
    let Ok(obj) = serde_json::from_value::<DynamicObject>(obj) else {
        return Ok(());
    };
    match api.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Deletes `name`, one already gone being fine.
async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Creates and deletes the objects a workload's controller would: ReplicaSets
/// for Deployments, Pods for the others, claims for StatefulSets.
async fn sync_children(
    client: kube::Client,
    store: &Store,
    kind: Kind,
    obj: &Value,
) -> Result<(), kube::Error> {
    let namespace = text_at(obj, "/metadata/namespace");
    if meta_deleting(obj) || namespace.is_empty() {
        return Ok(());
    }
    let api = |kind: Kind| api_for(&client, &kind.resource(), namespace);
    match kind {
        Kind::Deployment => {
            let owned = owned(store, Kind::ReplicaSet, obj);
            sync_deployment(&api(Kind::ReplicaSet), obj, &owned).await
        }
        Kind::ReplicaSet => {
            sync_replicaset(&api(Kind::Pod), obj, owned(store, Kind::Pod, obj)).await
        }
        Kind::StatefulSet => {
            let owned = owned(store, Kind::Pod, obj);
            sync_statefulset(
                &api(Kind::Pod),
                &api(Kind::PersistentVolumeClaim),
                obj,
                &owned,
            )
            .await
        }
        Kind::DaemonSet => {
            sync_daemonset(&api(Kind::Pod), obj, &owned(store, Kind::Pod, obj)).await
        }
        Kind::Job => sync_job(&api(Kind::Pod), obj, &owned(store, Kind::Pod, obj)).await,
        Kind::PersistentVolumeClaim | Kind::Pod => Ok(()),
    }
}

/// A Pod from `owner`'s template, on the simulated node.
fn pod_from(owner: &Value, kind: Kind, template: &Value, labels: &Map<String, Value>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    merge_into(&mut pod, "/metadata/labels", labels);
    merge_into(
        &mut pod,
        "/metadata/annotations",
        &health_annotations(owner),
    );
    if let Some(meta) = pod["metadata"].as_object_mut() {
        meta.remove("name");
        meta.remove("namespace");
        meta.insert(
            "ownerReferences".into(),
            json!([reference(owner, kind, true)]),
        );
    }
    if let Some(spec) = pod["spec"].as_object_mut() {
        spec.insert("nodeName".into(), json!(NODE));
    }
    pod
}

fn generated(mut obj: Value, prefix: &str) -> Value {
    obj["metadata"]["generateName"] = json!(format!("{prefix}-"));
    obj
}

/// One ReplicaSet per pod template: the current one scaled to the
/// Deployment's replicas, the others to zero.
async fn sync_deployment(
    replicasets: &Api<DynamicObject>,
    deployment: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(deployment, "/metadata/name");
    let replicas = int_at(deployment, "/spec/replicas", 1);
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hash = template_hash(Some(&template));
    let current = format!("{name}-{hash}");
    let health = health_annotations(deployment);
    let revision = |rs: &Value| {
        rs.pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let mut found = false;
    for rs in owned {
        let rs_name = text_at(rs, "/metadata/name");
        let want = if rs_name == current { replicas } else { 0 };
        found |= rs_name == current;
        let annotations = rs.pointer("/metadata/annotations");
        let same_health = health
            .iter()
            .all(|(k, v)| annotations.and_then(|a| a.get(k)).unwrap_or(&Value::Null) == v);
        if int_at(rs, "/spec/replicas", 1) != want || !same_health {
            let patch = json!({"metadata": {"annotations": health}, "spec": {"replicas": want}});
            replicasets
                .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    if found {
        return Ok(());
    }
    let mut labels = Map::new();
    labels.insert(TEMPLATE_HASH.into(), json!(hash));
    let mut rs_template = template;
    merge_into(&mut rs_template, "/metadata/labels", &labels);
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    merge_into(&mut selector, "/matchLabels", &labels);
    let mut annotations = health;
    let next = owned.iter().map(revision).max().unwrap_or(0) + 1;
    annotations.insert(REVISION.into(), json!(next.to_string()));
    annotations.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        json!(replicas.to_string()),
    );
    let mut rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": current,
            "labels": rs_template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": [reference(deployment, Kind::Deployment, true)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
    });
    merge_into(&mut rs, "/metadata/annotations", &annotations);
    create(replicasets, rs).await
}

/// `spec.replicas` pods with generated names; extra ones deleted, newest first.
async fn sync_replicaset(
    pods: &Api<DynamicObject>,
    rs: &Value,
    mut owned: Vec<Value>,
) -> Result<(), kube::Error> {
    let name = text_at(rs, "/metadata/name");
    let want = usize::try_from(int_at(rs, "/spec/replicas", 1)).unwrap_or(0);
    let template = rs
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for _ in owned.len()..want {
        let pod = pod_from(rs, Kind::ReplicaSet, &template, &Map::new());
        create(pods, generated(pod, name)).await?;
    }
    owned.sort_by(|a, b| {
        text_at(b, "/metadata/creationTimestamp").cmp(text_at(a, "/metadata/creationTimestamp"))
    });
    for pod in owned.iter().take(owned.len().saturating_sub(want)) {
        delete(pods, text_at(pod, "/metadata/name")).await?;
    }
    Ok(())
}

/// Pods `<name>-0` to `<name>-(N-1)` with their claims from `volumeClaimTemplates`,
/// honouring `persistentVolumeClaimRetentionPolicy`.
async fn sync_statefulset(
    pods: &Api<DynamicObject>,
    claims: &Api<DynamicObject>,
    sts: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(sts, "/metadata/name");
    let want = int_at(sts, "/spec/replicas", 1).max(0);
    let revision = format!("{name}-{}", template_hash(sts.pointer("/spec/template")));
    let policy = |when: &str| {
        sts.pointer(&format!(
            "/spec/persistentVolumeClaimRetentionPolicy/{when}"
        ))
        .and_then(Value::as_str)
            == Some("Delete")
    };
    let templates: Vec<Value> = sts
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let claim_name = |template: &Value, ordinal: i64| {
        format!("{}-{name}-{ordinal}", text_at(template, "/metadata/name"))
    };
    let ordinal_of = |pod: &Value| {
        text_at(pod, "/metadata/name")
            .strip_prefix(&format!("{name}-"))
            .and_then(|o| o.parse::<i64>().ok())
    };
    for pod in owned {
        if ordinal_of(pod).is_none_or(|o| o >= want) {
            delete(pods, text_at(pod, "/metadata/name")).await?;
            if let Some(ordinal) = ordinal_of(pod).filter(|_| policy("whenScaled")) {
                for template in &templates {
                    delete(claims, &claim_name(template, ordinal)).await?;
                }
            }
        }
    }
    let template = sts
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let selector_labels = sts
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for ordinal in 0..want {
        for template in &templates {
            let mut claim = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
                "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            });
            claim["metadata"]["name"] = json!(claim_name(template, ordinal));
            merge_into(&mut claim, "/metadata/labels", &selector_labels);
            if policy("whenDeleted") {
                claim["metadata"]["ownerReferences"] =
                    json!([reference(sts, Kind::StatefulSet, false)]);
            }
            create(claims, claim).await?;
        }
        let pod_name = format!("{name}-{ordinal}");
        if owned
            .iter()
            .any(|p| text_at(p, "/metadata/name") == pod_name)
        {
            continue;
        }
        let labels: Map<String, Value> = [
            ("apps.kubernetes.io/pod-index", json!(ordinal.to_string())),
            ("statefulset.kubernetes.io/pod-name", json!(pod_name)),
            ("controller-revision-hash", json!(revision)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut pod = pod_from(sts, Kind::StatefulSet, &template, &labels);
        pod["metadata"]["name"] = json!(pod_name);
        if let Some(spec) = pod["spec"].as_object_mut() {
            spec.insert("hostname".into(), json!(pod_name));
            if let Some(service) = sts.pointer("/spec/serviceName") {
                spec.insert("subdomain".into(), service.clone());
            }
            let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
            if let Some(volumes) = volumes.as_array_mut() {
                for template in &templates {
                    volumes.push(json!({
                        "name": text_at(template, "/metadata/name"),
                        "persistentVolumeClaim": {"claimName": claim_name(template, ordinal)},
                    }));
                }
            }
        }
        create(pods, pod).await?;
    }
    Ok(())
}

/// One pod, unless the Job is suspended, finished or already has one.
async fn sync_job(
    pods: &Api<DynamicObject>,
    job: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    if !owned.is_empty() || suspended || job_finished(job).is_some() {
        return Ok(());
    }
    let template = job
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let pod = pod_from(job, Kind::Job, &template, &Map::new());
    create(pods, generated(pod, text_at(job, "/metadata/name"))).await
}

/// One pod on the one simulated node.
async fn sync_daemonset(
    pods: &Api<DynamicObject>,
    ds: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(ds, "/metadata/name");
    for extra in owned.iter().skip(1) {
        delete(pods, text_at(extra, "/metadata/name")).await?;
    }
    if !owned.is_empty() {
        return Ok(());
    }
    let template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let labels: Map<String, Value> = [
        (
            "controller-revision-hash".to_string(),
            json!(template_hash(Some(&template))),
        ),
        (
            "pod-template-generation".to_string(),
            json!(int_at(ds, "/metadata/generation", 1).to_string()),
        ),
    ]
    .into_iter()
    .collect();
    let pod = pod_from(ds, Kind::DaemonSet, &template, &labels);
    create(pods, generated(pod, name)).await
}

/// What a CronJob needs now: maybe a Job to create, finished Jobs past the
/// history limits to delete, and its status.
#[derive(Debug, PartialEq)]
struct CronPlan {
    job: Option<Value>,
    delete: Vec<String>,
    status: Value,
}

/// Finished Jobs beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1), oldest first.
fn beyond_history(cronjob: &Value, owned: &[&Value]) -> Vec<String> {
    let mut delete = Vec::new();
    for (outcome, field, default) in [
        ("Complete", "/spec/successfulJobsHistoryLimit", 3),
        ("Failed", "/spec/failedJobsHistoryLimit", 1),
    ] {
        let limit = usize::try_from(int_at(cronjob, field, default)).unwrap_or(0);
        let mut finished: Vec<(String, String)> = owned
            .iter()
            .filter(|j| job_finished(j) == Some(outcome))
            .map(|j| {
                let text = |p: &str| {
                    j.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                (text("/metadata/creationTimestamp"), text("/metadata/name"))
            })
            .collect();
        finished.sort();
        let excess = finished.len().saturating_sub(limit);
        delete.extend(finished.into_iter().take(excess).map(|(_, name)| name));
    }
    delete
}

fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn job_finished(job: &Value) -> Option<&'static str> {
    let conditions = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c["type"] == *t && c["status"] == "True")
    })
}

/// The CronJob controller's decision at `now`, given the Jobs of its namespace.
fn cron_plan(cronjob: &Value, jobs: &[Value], now: Timestamp) -> Result<CronPlan, String> {
    let name = cronjob
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let uid = cronjob
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let current = cronjob.get("status").cloned().unwrap_or_else(|| json!({}));
    let owned: Vec<&Value> = jobs
        .iter()
        .filter(|j| {
            j.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .collect();
    let reference = |j: &Value| {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": j.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "namespace": j.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
            "uid": j.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
            "resourceVersion": j.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
        })
    };
    let mut active: Vec<Value> = owned
        .iter()
        .filter(|j| job_finished(j).is_none())
        .map(|j| reference(j))
        .collect();
    let last_success = owned
        .iter()
        .filter(|j| job_finished(j) == Some("Complete"))
        .filter_map(|j| parse_time(j.pointer("/status/completionTime")))
        .max()
        .or_else(|| parse_time(current.get("lastSuccessfulTime")));

    let mut last_schedule = parse_time(current.get("lastScheduleTime"));
    let mut job = None;
    let mut replaced: Vec<String> = Vec::new();
    let suspended = cronjob.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let forbid = cronjob
        .pointer("/spec/concurrencyPolicy")
        .and_then(Value::as_str)
        == Some("Forbid");
    let blocked = forbid && !active.is_empty();
    if !suspended && !blocked {
        let schedule = cronjob
            .pointer("/spec/schedule")
            .and_then(Value::as_str)
            .unwrap_or("");
        let cron: Cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(schedule)
            .map_err(|e| format!("unparseable schedule {schedule:?}: {e}"))?;
        let zone = cronjob
            .pointer("/spec/timeZone")
            .and_then(Value::as_str)
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let earliest = last_schedule
            .or_else(|| parse_time(cronjob.pointer("/metadata/creationTimestamp")))
            .unwrap_or(now);
        let due = cron
            .find_previous_occurrence(&now.to_zoned(zone), true)
            .map_err(|e| e.to_string())?
            .timestamp();
        let deadline = cronjob
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_i64);
        let missed = deadline.is_some_and(|d| now.as_second() - due.as_second() > d);
        if due > earliest && !missed {
            let job_name = format!("{name}-{}", due.as_second() / 60);
            let exists = jobs
                .iter()
                .any(|j| j.pointer("/metadata/name").and_then(Value::as_str) == Some(&job_name));
            if !exists {
                let template = cronjob
                    .pointer("/spec/jobTemplate")
                    .cloned()
                    .unwrap_or_default();
                let mut annotations = template
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                annotations.insert(
                    "batch.kubernetes.io/cronjob-scheduled-timestamp".into(),
                    json!(due.to_string()),
                );
                let new_job = json!({
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {
                        "name": job_name,
                        "namespace": cronjob.pointer("/metadata/namespace"),
                        "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
                        "annotations": annotations,
                        "ownerReferences": [{
                            "apiVersion": "batch/v1", "kind": "CronJob", "name": name, "uid": uid,
                            "controller": true, "blockOwnerDeletion": true,
                        }],
                    },
                    "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
                });
                let replace = cronjob
                    .pointer("/spec/concurrencyPolicy")
                    .and_then(Value::as_str)
                    == Some("Replace");
                if replace {
                    replaced = active
                        .drain(..)
                        .filter_map(|a| a.get("name").and_then(Value::as_str).map(String::from))
                        .collect();
                }
                active.push(
                    json!({"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                    "namespace": cronjob.pointer("/metadata/namespace")}),
                );
                job = Some(new_job);
            }
            last_schedule = Some(due);
        }
    }
    let mut status = Map::new();
    if !active.is_empty() {
        status.insert("active".into(), Value::Array(active));
    }
    if let Some(t) = last_schedule {
        status.insert("lastScheduleTime".into(), json!(rfc3339(t)));
    }
    if let Some(t) = last_success {
        status.insert("lastSuccessfulTime".into(), json!(rfc3339(t)));
    }
    let mut delete = replaced;
    delete.extend(beyond_history(cronjob, &owned));
    Ok(CronPlan {
        job,
        delete,
        status: Value::Object(status),
    })
}

async fn cron_loop(client: kube::Client, simulation: Simulation) {
    let cronjobs_resource = ApiResource::erase::<CronJob>(&());
    let jobs_resource = ApiResource::erase::<Job>(&());
    let cronjobs: Api<DynamicObject> = Api::all_with(client.clone(), &cronjobs_resource);
    let jobs: Api<DynamicObject> = Api::all_with(client.clone(), &jobs_resource);
    loop {
        tokio::time::sleep(CRON_TICK).await;
        let Ok(list) = cronjobs.list(&ListParams::default()).await else {
            continue;
        };
        if list.items.is_empty() {
            continue;
        }
        let Ok(all_jobs) = jobs.list(&ListParams::default()).await else {
            continue;
        };
        let all_jobs: Vec<Value> = all_jobs
            .items
            .iter()
            .filter_map(|j| serde_json::to_value(j).ok())
            .collect();
        for cronjob in &list.items {
            let Ok(cronjob) = serde_json::to_value(cronjob) else {
                continue;
            };
            if let Err(error) =
                sync_cronjob(&client, &cronjob, &all_jobs, simulation.clock.now()).await
            {
                tracing::debug!(%error, "simulated CronJob not synced");
            }
        }
    }
}

async fn sync_cronjob(
    client: &kube::Client,
    cronjob: &Value,
    all_jobs: &[Value],
    now: Timestamp,
) -> Result<(), String> {
    let (namespace, name) = key_of(cronjob);
    let jobs: Vec<Value> = all_jobs
        .iter()
        .filter(|j| j.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&namespace))
        .cloned()
        .collect();
    let plan = cron_plan(cronjob, &jobs, now)?;
    let api = api_for(client, &ApiResource::erase::<Job>(&()), &namespace);
    for name in &plan.delete {
        api.delete(name, &DeleteParams::background())
            .await
            .map_err(|e| e.to_string())?;
    }
    if let Some(job) = plan.job {
        let job: DynamicObject = serde_json::from_value(job).map_err(|e| e.to_string())?;
        api.create(&PostParams::default(), &job)
            .await
            .map_err(|e| e.to_string())?;
    }
    if cronjob.get("status").unwrap_or(&json!({})) != &plan.status {
        let api = api_for(client, &ApiResource::erase::<CronJob>(&()), &namespace);
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = status_patch(cronjob.get("status"), &plan.status);
        api.patch_status(&name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: &str = "2030-01-01T00:00:00Z";

    fn deployment(annotations: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 3, "annotations": annotations},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}})
    }

    fn condition_of<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == kind))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn deployments_become_available_like_the_real_controller() {
        let status =
            desired_status(Kind::Deployment, &deployment(json!({})), NOW).unwrap_or_default();
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["replicas"], 2);
        assert_eq!(status["readyReplicas"], 2);
        assert_eq!(status["availableReplicas"], 2);
        assert_eq!(status["updatedReplicas"], 2);
        let available = condition_of(&status, "Available");
        assert_eq!(available["status"], "True");
        assert_eq!(available["reason"], "MinimumReplicasAvailable");
        assert_eq!(available["message"], "Deployment has minimum availability.");
        assert_eq!(available["lastTransitionTime"], NOW);
        let progressing = condition_of(&status, "Progressing");
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert!(
            progressing["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ReplicaSet \"web-")
                    && m.ends_with("\" has successfully progressed."))
        );
    }

    #[test]
    fn settled_status_is_stable_and_keeps_its_timestamps() {
        let mut obj = deployment(json!({}));
        let first = desired_status(Kind::Deployment, &obj, NOW).unwrap_or_default();
        obj["status"] = first.clone();
        let later =
            desired_status(Kind::Deployment, &obj, "2030-01-01T01:00:00Z").unwrap_or_default();
        assert_eq!(first, later);
    }

    #[test]
    fn annotations_make_unhappy_paths() {
        let never = desired_status(
            Kind::Deployment,
            &deployment(json!({NEVER_READY: "true"})),
            NOW,
        )
        .unwrap_or_default();
        assert_eq!(condition_of(&never, "Available")["status"], "False");
        assert_eq!(
            condition_of(&never, "Available")["reason"],
            "MinimumReplicasUnavailable"
        );
        assert_eq!(condition_of(&never, "Progressing")["status"], "True");
        assert_eq!(never.get("readyReplicas"), None);
        assert_eq!(never["unavailableReplicas"], 2);
        let failed = desired_status(Kind::Deployment, &deployment(json!({FAIL: "true"})), NOW)
            .unwrap_or_default();
        assert_eq!(condition_of(&failed, "Progressing")["status"], "False");
        assert_eq!(
            condition_of(&failed, "Progressing")["reason"],
            "ProgressDeadlineExceeded"
        );

        let job = json!({"metadata": {"name": "j", "annotations": {FAIL: "true"}}, "spec": {"backoffLimit": 2}});
        let failed_job = desired_status(Kind::Job, &job, NOW).unwrap_or_default();
        assert_eq!(
            condition_of(&failed_job, "Failed")["reason"],
            "BackoffLimitExceeded"
        );
        assert_eq!(failed_job["failed"], 3);
    }

    #[test]
    fn pods_run_or_stay_pending_or_crash() {
        let pod = |annotations: Value, restart: &str| {
            json!({"metadata": {"name": "p", "uid": "abc", "annotations": annotations},
                "spec": {"restartPolicy": restart, "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}})
        };
        let running = desired_status(Kind::Pod, &pod(json!({}), "Always"), NOW).unwrap_or_default();
        assert_eq!(running["phase"], "Running");
        assert_eq!(condition_of(&running, "Ready")["status"], "True");
        assert_eq!(
            condition_of(&running, "Ready")["lastProbeTime"],
            Value::Null
        );
        assert_eq!(
            running["containerStatuses"][1]["state"]["running"]["startedAt"],
            NOW
        );
        assert!(
            running["podIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.244.0."))
        );
        let pending = desired_status(Kind::Pod, &pod(json!({NEVER_READY: "true"}), "Always"), NOW)
            .unwrap_or_default();
        assert_eq!(pending["phase"], "Pending");
        assert_eq!(
            condition_of(&pending, "Ready")["message"],
            "containers with unready status: [a b]"
        );
        let mut owned = pod(json!({NEVER_READY: "true"}), "Always");
        owned["metadata"]["ownerReferences"] = json!([{"uid": "rs", "controller": true}]);
        let probing = desired_status(Kind::Pod, &owned, NOW).unwrap_or_default();
        assert_eq!(probing["phase"], "Running");
        assert_eq!(condition_of(&probing, "Ready")["status"], "False");
        assert_eq!(probing["containerStatuses"][0]["started"], true);
        assert_eq!(probing["containerStatuses"][0]["ready"], false);
        let mut job_pod = pod(json!({}), "Never");
        job_pod["metadata"]["ownerReferences"] =
            json!([{"kind": "Job", "uid": "j", "controller": true}]);
        let done = desired_status(Kind::Pod, &job_pod, NOW).unwrap_or_default();
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(condition_of(&done, "Ready")["reason"], "PodCompleted");
        assert_eq!(
            done["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        let crashing = desired_status(Kind::Pod, &pod(json!({FAIL: "true"}), "Always"), NOW)
            .unwrap_or_default();
        assert_eq!(
            crashing["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        let failed = desired_status(Kind::Pod, &pod(json!({FAIL: "true"}), "Never"), NOW)
            .unwrap_or_default();
        assert_eq!(failed["phase"], "Failed");
        // Stable once written.
        let mut settled = pod(json!({}), "Always");
        settled["status"] = running.clone();
        assert_eq!(
            desired_status(Kind::Pod, &settled, "2031-01-01T00:00:00Z"),
            Some(running)
        );
    }

    #[test]
    fn paused_deployments_say_so() {
        let mut d = deployment(json!({}));
        d["spec"]["paused"] = json!(true);
        let status = desired_status(Kind::Deployment, &d, NOW).unwrap_or_default();
        assert_eq!(
            condition_of(&status, "Progressing")["reason"],
            "DeploymentPaused"
        );
        assert_eq!(condition_of(&status, "Progressing")["status"], "Unknown");
    }

    #[test]
    fn jobs_complete_and_other_kinds_settle() {
        let job = json!({"metadata": {"name": "j"}, "spec": {"completions": 3}});
        let status = desired_status(Kind::Job, &job, NOW).unwrap_or_default();
        assert_eq!(status["succeeded"], 3);
        assert_eq!(status["completionTime"], NOW);
        assert_eq!(condition_of(&status, "Complete")["status"], "True");
        let suspended = json!({"metadata": {"name": "j"}, "spec": {"suspend": true}});
        assert_eq!(desired_status(Kind::Job, &suspended, NOW), None);

        let pvc = json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(
            desired_status(Kind::PersistentVolumeClaim, &pvc, NOW),
            Some(
                json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}})
            )
        );
        let sts = json!({"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 3}});
        let status = desired_status(Kind::StatefulSet, &sts, NOW).unwrap_or_default();
        assert_eq!(status["readyReplicas"], 3);
        assert_eq!(status["currentRevision"], status["updateRevision"]);
        let ds = json!({"metadata": {"name": "agent", "generation": 1}});
        assert_eq!(
            desired_status(Kind::DaemonSet, &ds, NOW).unwrap_or_default()["numberReady"],
            1
        );
        let rs = json!({"metadata": {"name": "web-x", "generation": 1}, "spec": {"replicas": 0}});
        assert_eq!(
            desired_status(Kind::ReplicaSet, &rs, NOW),
            Some(json!({"observedGeneration": 1, "replicas": 0}))
        );
    }

    fn cronjob(schedule: &str, status: Value) -> Value {
        json!({"metadata": {"name": "backup", "namespace": "default", "uid": "u1",
                "creationTimestamp": "2030-01-01T00:00:30Z"},
            "spec": {"schedule": schedule, "jobTemplate": {"metadata": {"labels": {"app": "backup"}},
                "spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}}},
            "status": status})
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn cronjobs_create_jobs_when_due() {
        let cj = cronjob("*/5 * * * *", json!({}));
        let early =
            cron_plan(&cj, &[], at("2030-01-01T00:04:59Z")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(early.job, None);
        assert_eq!(early.status, json!({}));

        let due = cron_plan(&cj, &[], at("2030-01-01T00:05:10Z")).unwrap_or_else(|e| panic!("{e}"));
        let job = due.job.unwrap_or_default();
        let minutes = at("2030-01-01T00:05:00Z").as_second() / 60;
        assert_eq!(job["metadata"]["name"], format!("backup-{minutes}"));
        assert_eq!(job["metadata"]["labels"], json!({"app": "backup"}));
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(due.status["lastScheduleTime"], "2030-01-01T00:05:00Z");
        assert_eq!(due.status["active"][0]["name"], format!("backup-{minutes}"));

        // Once scheduled, nothing more until the next slot.
        let scheduled = cronjob(
            "*/5 * * * *",
            json!({"lastScheduleTime": "2030-01-01T00:05:00Z"}),
        );
        let created = json!({"metadata": {"name": format!("backup-{minutes}"), "namespace": "default", "uid": "j1",
            "ownerReferences": [{"uid": "u1"}]},
            "status": {"completionTime": "2030-01-01T00:06:00Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        let quiet = cron_plan(
            &scheduled,
            std::slice::from_ref(&created),
            at("2030-01-01T00:09:00Z"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(quiet.job, None);
        assert_eq!(
            quiet.status,
            json!({"lastScheduleTime": "2030-01-01T00:05:00Z", "lastSuccessfulTime": "2030-01-01T00:06:00Z"})
        );
    }

    #[test]
    fn finished_jobs_beyond_the_history_limits_go() {
        let mut cj = cronjob(
            "@hourly",
            json!({"lastScheduleTime": "2030-01-01T05:00:00Z"}),
        );
        cj["spec"]["successfulJobsHistoryLimit"] = json!(1);
        let job = |name: &str, created: &str, outcome: &str| {
            json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created,
                "ownerReferences": [{"uid": "u1"}]},
                "status": {"conditions": [{"type": outcome, "status": "True"}]}})
        };
        let jobs = [
            job("old", "2030-01-01T03:00:00Z", "Complete"),
            job("new", "2030-01-01T04:00:00Z", "Complete"),
            job("f1", "2030-01-01T01:00:00Z", "Failed"),
            job("f2", "2030-01-01T02:00:00Z", "Failed"),
        ];
        let plan =
            cron_plan(&cj, &jobs, at("2030-01-01T05:30:00Z")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.delete, ["old", "f1"]);
    }

    #[test]
    fn replace_deletes_running_jobs_and_deadlines_skip_late_runs() {
        let running = json!({"metadata": {"name": "backup-1", "namespace": "default", "uid": "j1",
            "ownerReferences": [{"uid": "u1"}]}, "status": {"active": 1}});
        let mut cj = cronjob(
            "*/5 * * * *",
            json!({"lastScheduleTime": "2030-01-01T00:05:00Z"}),
        );
        cj["spec"]["concurrencyPolicy"] = json!("Replace");
        let plan = cron_plan(
            &cj,
            std::slice::from_ref(&running),
            at("2030-01-01T00:10:05Z"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.delete, ["backup-1"]);
        assert!(plan.job.is_some());
        assert_eq!(plan.status["active"].as_array().map(Vec::len), Some(1));

        let mut late = cronjob(
            "*/5 * * * *",
            json!({"lastScheduleTime": "2030-01-01T00:05:00Z"}),
        );
        late["spec"]["startingDeadlineSeconds"] = json!(10);
        let plan =
            cron_plan(&late, &[], at("2030-01-01T00:10:30Z")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.job, None);
    }

    #[test]
    fn suspended_forbidden_and_invalid_cronjobs() {
        let mut cj = cronjob("@hourly", json!({}));
        cj["spec"]["suspend"] = json!(true);
        assert_eq!(
            cron_plan(&cj, &[], at("2030-01-01T05:00:00Z")).map(|p| p.job),
            Ok(None)
        );
        let bad = cronjob("not a schedule", json!({}));
        assert!(cron_plan(&bad, &[], at("2030-01-01T05:00:00Z")).is_err());
        let hourly = cronjob("@hourly", json!({}));
        assert!(cron_plan(&hourly, &[], at("2030-01-01T01:00:00Z")).is_ok_and(|p| p.job.is_some()));
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(at(NOW));
        clock.advance(Duration::from_secs(61));
        assert_eq!(rfc3339(clock.now()), "2030-01-01T00:01:01Z");
        clock.set(at("2031-01-01T00:00:00Z"));
        assert_eq!(rfc3339(clock.now()), "2031-01-01T00:00:00Z");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
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

    proptest! {
        #[test]
        fn arbitrary_objects_never_panic(obj in arb_json(), jobs in prop::collection::vec(arb_json(), 0..3)) {
            for kind in Kind::ALL {
                let _ = desired_status(kind, &obj, NOW);
            }
            let _ = cron_plan(&obj, &jobs, at(NOW));
        }
    }
}
