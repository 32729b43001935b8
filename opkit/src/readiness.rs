//! Readiness of any object, read the way `kubectl rollout status` and `kubectl wait` read it.
//!
//! One notion per kind, used by [`Ensure::readiness`](crate::Ensure::readiness) unless a
//! dependent overrides it:
//!
//! | kind | ready when | stalled when |
//! |---|---|---|
//! | Deployment | the current generation is observed and every desired replica is updated and ready | `Progressing=False` (e.g. `ProgressDeadlineExceeded`) or `ReplicaFailure=True` (e.g. pods refused by admission) |
//! | StatefulSet, ReplicaSet | the current generation is observed and every desired replica is updated and ready | — |
//! | DaemonSet | the current generation is observed and every scheduled pod is updated and ready | — |
//! | Job | `Complete=True` | `Failed=True` |
//! | PersistentVolumeClaim | `status.phase` is `Bound` | `Lost` |
//! | Pod | `Ready=True`, or `Succeeded` | `Failed` |
//! | a custom resource | its `Ready` condition is `True` for its current generation | — |
//! | any other kind | it exists | — |
//!
//! A stalled object carries the reason in [`Readiness::message`], so a status built from it says
//! why instead of a silent "Deploying" forever.

use serde_json::Value;

use crate::object::{self, Object};

/// What an object's status says about it.
///
/// ```
/// let pending = opkit::Readiness::pending("waiting for the Deployment");
/// assert!(!pending.ready && !pending.stalled);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The object does what it was asked to.
    pub ready: bool,
    /// The object stopped making progress; `message` says why.
    pub stalled: bool,
    /// Replicas ready now (workloads only).
    pub ready_replicas: i32,
    /// Replicas wanted (workloads only).
    pub desired_replicas: i32,
    /// A human-readable summary.
    pub message: String,
}

impl Readiness {
    /// Not there yet, with a reason.
    ///
    /// ```
    /// let r = opkit::Readiness::pending("waiting for the StatefulSet");
    /// assert_eq!(r.message, "waiting for the StatefulSet");
    /// ```
    pub fn pending(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// Ready, with a summary.
    ///
    /// ```
    /// assert!(opkit::Readiness::ready("exists").ready);
    /// ```
    pub fn ready(message: impl Into<String>) -> Self {
        Self {
            ready: true,
            message: message.into(),
            ..Self::default()
        }
    }

    /// Stopped making progress, with the reason.
    ///
    /// ```
    /// let r = opkit::Readiness::stalled("BackoffLimitExceeded: Job has reached the specified backoff limit");
    /// assert!(r.stalled && !r.ready);
    /// ```
    pub fn stalled(message: impl Into<String>) -> Self {
        Self {
            stalled: true,
            message: message.into(),
            ..Self::default()
        }
    }

    /// The readiness of `obj` by its kind (see the [module docs](self)).
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// let d = Deployment {
    ///     metadata: kube::api::ObjectMeta { generation: Some(2), ..Default::default() },
    ///     spec: Some(DeploymentSpec { replicas: Some(3), ..Default::default() }),
    ///     status: Some(DeploymentStatus {
    ///         observed_generation: Some(2),
    ///         replicas: Some(3),
    ///         updated_replicas: Some(3),
    ///         ready_replicas: Some(3),
    ///         ..Default::default()
    ///     }),
    /// };
    /// let r = opkit::Readiness::of(&d);
    /// assert!(r.ready);
    /// assert_eq!(r.message, "3/3 replicas ready");
    /// assert!(opkit::Readiness::of(&ConfigMap::default()).ready);
    /// ```
    pub fn of<K: Object>(obj: &K) -> Self {
        match serde_json::to_value(obj) {
            Ok(value) => Self::of_value::<K>(&value),
            Err(error) => Self::pending(format!("cannot read the {}: {error}", K::kind(&()))),
        }
    }

    /// The readiness of an object of kind `K` given as JSON.
    pub(crate) fn of_value<K: Object>(value: &Value) -> Self {
        let kind = K::kind(&());
        let status = value.get("status").unwrap_or(&Value::Null);
        let generation = value
            .pointer("/metadata/generation")
            .and_then(Value::as_i64);
        let observed = status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .map_or(generation.is_none(), |o| Some(o) >= generation);
        match (K::group(&()).as_ref(), kind.as_ref()) {
            ("apps", "Deployment") => deployment(value, status, observed),
            ("apps", "StatefulSet" | "ReplicaSet") => {
                let desired = int(value.pointer("/spec/replicas")).unwrap_or(1);
                let updated = match kind.as_ref() {
                    "StatefulSet" => int(status.get("updatedReplicas")).unwrap_or(0),
                    _ => int(status.get("replicas")).unwrap_or(0),
                };
                workload(
                    &kind,
                    status,
                    observed,
                    desired,
                    updated,
                    int(status.get("readyReplicas")).unwrap_or(0),
                )
            }
            ("apps", "DaemonSet") => workload(
                &kind,
                status,
                observed,
                int(status.get("desiredNumberScheduled")).unwrap_or(0),
                int(status.get("updatedNumberScheduled")).unwrap_or(0),
                int(status.get("numberReady")).unwrap_or(0),
            ),
            ("batch", "Job") => job(status),
            ("", "PersistentVolumeClaim") => match status.get("phase").and_then(Value::as_str) {
                Some("Bound") => Self::ready("bound"),
                Some("Lost") => Self::stalled("the claim lost its volume"),
                Some(phase) => Self::pending(format!("the claim is {phase}")),
                None => Self::pending("the claim has no status yet"),
            },
            ("", "Pod") => pod(status),
            _ if !object::is_builtin::<K>() => custom(&kind, status, generation),
            _ => Self::ready("exists"),
        }
    }
}

fn int(v: Option<&Value>) -> Option<i32> {
    v.and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

/// The condition `type_` of a status, if any.
fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn is_true(condition: &Value) -> bool {
    condition.get("status").and_then(Value::as_str) == Some("True")
}

fn is_false(condition: &Value) -> bool {
    condition.get("status").and_then(Value::as_str) == Some("False")
}

/// "reason: message" of a condition, or what is there of it.
fn explain(condition: &Value, otherwise: &str) -> String {
    let reason = condition.get("reason").and_then(Value::as_str);
    let message = condition.get("message").and_then(Value::as_str);
    match (reason, message) {
        (Some(r), Some(m)) if !m.is_empty() => format!("{r}: {m}"),
        (_, Some(m)) if !m.is_empty() => m.to_owned(),
        (Some(r), _) => r.to_owned(),
        _ => otherwise.to_owned(),
    }
}

fn workload(
    kind: &str,
    status: &Value,
    observed: bool,
    desired: i32,
    updated: i32,
    ready: i32,
) -> Readiness {
    if status.is_null() {
        return Readiness::pending(format!("the {kind} has no status yet"));
    }
    let message = if observed {
        format!("{ready}/{desired} replicas ready")
    } else {
        "waiting for the controller to observe the new spec".to_owned()
    };
    Readiness {
        ready: observed && updated >= desired && ready >= desired,
        stalled: false,
        ready_replicas: ready,
        desired_replicas: desired,
        message,
    }
}

fn deployment(value: &Value, status: &Value, observed: bool) -> Readiness {
    let desired = int(value.pointer("/spec/replicas")).unwrap_or(1);
    let mut r = workload(
        "Deployment",
        status,
        observed,
        desired,
        int(status.get("updatedReplicas")).unwrap_or(0),
        int(status.get("readyReplicas")).unwrap_or(0),
    );
    if r.ready {
        return r;
    }
    if let Some(c) = condition(status, "ReplicaFailure").filter(|c| is_true(c)) {
        r.stalled = true;
        r.message = explain(c, "the Deployment cannot create its pods");
    } else if let Some(c) = condition(status, "Progressing").filter(|c| is_false(c)) {
        r.stalled = true;
        r.message = explain(c, "the Deployment stopped progressing");
    }
    r
}

fn job(status: &Value) -> Readiness {
    if let Some(c) = condition(status, "Complete").filter(|c| is_true(c)) {
        return Readiness::ready(explain(c, "complete"));
    }
    if let Some(c) = condition(status, "Failed").filter(|c| is_true(c)) {
        return Readiness::stalled(explain(c, "the Job failed"));
    }
    let active = int(status.get("active")).unwrap_or(0);
    Readiness::pending(format!("{active} pods active"))
}

fn pod(status: &Value) -> Readiness {
    match status.get("phase").and_then(Value::as_str) {
        Some("Succeeded") => return Readiness::ready("succeeded"),
        Some("Failed") => {
            let why = status
                .get("message")
                .or_else(|| status.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("the Pod failed");
            return Readiness::stalled(why);
        }
        _ => {}
    }
    match condition(status, "Ready") {
        Some(c) if is_true(c) => Readiness::ready("ready"),
        Some(c) => Readiness::pending(explain(c, "not ready")),
        None => Readiness::pending("the Pod has no Ready condition yet"),
    }
}

fn custom(kind: &str, status: &Value, generation: Option<i64>) -> Readiness {
    let Some(ready) = condition(status, "Ready") else {
        return Readiness::pending(format!("the {kind} has no Ready condition yet"));
    };
    let observed = ready
        .get("observedGeneration")
        .or_else(|| status.get("observedGeneration"))
        .and_then(Value::as_i64);
    if let (Some(observed), Some(generation)) = (observed, generation)
        && observed < generation
    {
        return Readiness::pending(format!(
            "waiting for the {kind}'s controller to observe generation {generation}"
        ));
    }
    if is_true(ready) {
        Readiness::ready(explain(ready, "ready"))
    } else {
        Readiness::pending(explain(ready, "not ready"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
    use serde_json::json;

    fn deployment(generation: i64, observed: i64, ready: i32) -> Value {
        json!({
            "metadata": {"generation": generation},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": observed, "updatedReplicas": 3, "readyReplicas": ready}
        })
    }

    #[test]
    fn a_stale_status_is_not_ready() {
        assert!(!Readiness::of_value::<Deployment>(&deployment(3, 2, 3)).ready);
        assert!(Readiness::of_value::<Deployment>(&deployment(3, 3, 3)).ready);
        assert!(!Readiness::of_value::<Deployment>(&deployment(3, 3, 2)).ready);
        assert!(!Readiness::of_value::<Deployment>(&json!({"spec": {"replicas": 1}})).ready);
    }

    #[test]
    fn a_stalled_rollout_says_why() {
        let mut d = deployment(1, 1, 0);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]);
        let r = Readiness::of_value::<Deployment>(&d);
        assert!(r.stalled && !r.ready);
        assert!(r.message.contains("timed out"), "{}", r.message);
        d["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True",
            "reason": "FailedCreate", "message": "pods \"web-1\" is forbidden: violates PodSecurity"}]);
        let r = Readiness::of_value::<Deployment>(&d);
        assert!(r.stalled);
        assert!(r.message.starts_with("FailedCreate: pods"), "{}", r.message);
    }

    #[test]
    fn jobs_claims_and_pods() {
        let complete = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert!(Readiness::of_value::<Job>(&complete).ready);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        let r = Readiness::of_value::<Job>(&failed);
        assert!(r.stalled && r.message == "BackoffLimitExceeded");
        assert!(!Readiness::of_value::<Job>(&json!({"status": {"active": 1}})).ready);
        assert!(
            Readiness::of_value::<PersistentVolumeClaim>(&json!({"status": {"phase": "Bound"}}))
                .ready
        );
        assert!(
            !Readiness::of_value::<PersistentVolumeClaim>(&json!({"status": {"phase": "Pending"}}))
                .ready
        );
        let ready_pod = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(Readiness::of_value::<Pod>(&ready_pod).ready);
        assert!(Readiness::of_value::<Pod>(&json!({"status": {"phase": "Failed"}})).stalled);
        assert!(Readiness::of_value::<Service>(&json!({})).ready);
    }
}
