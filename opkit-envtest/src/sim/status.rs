//! The statuses the real controllers would write.

use super::{Health, Kind, controller_kind, controller_uid, health, int_at, template_hash};
use serde_json::{Map, Value, json};

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

/// Inserts the counts that are not zero, as the API types omit empty counts.
fn counts(status: &mut Map<String, Value>, fields: &[(&str, i64)]) {
    for (name, value) in fields {
        if *value != 0 {
            status.insert((*name).into(), json!(value));
        }
    }
}

/// A Deployment's `Available` condition while its pods are not all available.
fn unavailable(current: &Value, now: &str) -> Value {
    condition(
        current,
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
        now,
        &["lastUpdateTime", "lastTransitionTime"],
    )
}

/// A Deployment's `Progressing` condition while ReplicaSet `rs` rolls out.
fn progressing(current: &Value, rs: &str, now: &str) -> Value {
    condition(
        current,
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        &format!("ReplicaSet \"{rs}\" is progressing."),
        now,
        &["lastUpdateTime", "lastTransitionTime"],
    )
}

/// The message of a workload's `ReplicaFailure` condition, if it has one.
pub(super) fn replica_failure(obj: &Value) -> Option<String> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
        .and_then(|c| c["message"].as_str())
        .map(str::to_string)
}

/// Turns `desired` into the status of a workload whose pods were refused:
/// none run, and a `ReplicaFailure` condition (`FailedCreate`) says why.
pub(super) fn failed_create(
    kind: Kind,
    obj: &Value,
    desired: &mut Value,
    message: &str,
    now: &str,
) {
    let current = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    let Some(s) = desired.as_object_mut() else {
        return;
    };
    for count in [
        "readyReplicas",
        "availableReplicas",
        "fullyLabeledReplicas",
        "updatedReplicas",
    ] {
        s.remove(count);
    }
    s.remove("replicas");
    // Deployments' conditions carry an update time, ReplicaSets' do not.
    let times: &[&str] = if kind == Kind::Deployment {
        &["lastUpdateTime", "lastTransitionTime"]
    } else {
        &["lastTransitionTime"]
    };
    let failure = condition(
        &current,
        "ReplicaFailure",
        "True",
        "FailedCreate",
        message,
        now,
        times,
    );
    let conditions = if kind == Kind::Deployment {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let rs = format!("{name}-{}", template_hash(obj.pointer("/spec/template")));
        counts(
            s,
            &[("unavailableReplicas", int_at(obj, "/spec/replicas", 1))],
        );
        json!([
            unavailable(&current, now),
            progressing(&current, &rs, now),
            failure
        ])
    } else {
        json!([failure])
    };
    s.insert("conditions".into(), conditions);
}

/// The status the real controller would report for `obj`, given its current one.
pub(super) fn desired_status(kind: Kind, obj: &Value, now: &str) -> Option<Value> {
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
                    progressing(&current, &rs, now)
                };
                (unavailable(&current, now), progressing)
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
        "hostIP": super::node::ADDRESS,
        "hostIPs": [{"ip": super::node::ADDRESS}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "qosClass": if any_resources { "Burstable" } else { "BestEffort" },
        "containerStatuses": statuses,
    })
}

/// A merge patch turning `current` into `desired` (fields to drop set to null).
pub(super) fn status_patch(current: Option<&Value>, desired: &Value) -> Value {
    let mut patch = desired.as_object().cloned().unwrap_or_default();
    if let Some(current) = current.and_then(Value::as_object) {
        for key in current.keys() {
            patch.entry(key.clone()).or_insert(Value::Null);
        }
    }
    json!({ "status": patch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tests::arb_json;
    use crate::sim::{FAIL, NEVER_READY};
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
    fn refused_pods_fail_the_replica_set_and_its_deployment() {
        let refused = "pods \"web-1\" is forbidden: violates PodSecurity";
        let rs = json!({"metadata": {"name": "web-1"}, "spec": {"replicas": 2}});
        let mut status = desired_status(Kind::ReplicaSet, &rs, NOW).expect("a status");
        failed_create(Kind::ReplicaSet, &rs, &mut status, refused, NOW);
        assert_eq!(status.get("readyReplicas"), None);
        assert_eq!(
            condition_of(&status, "ReplicaFailure")["reason"],
            "FailedCreate"
        );
        assert_eq!(condition_of(&status, "ReplicaFailure")["message"], refused);
        let failed = json!({"metadata": rs["metadata"], "status": status});
        assert_eq!(replica_failure(&failed).as_deref(), Some(refused));

        let web = deployment(json!({}));
        let mut status = desired_status(Kind::Deployment, &web, NOW).expect("a status");
        failed_create(Kind::Deployment, &web, &mut status, refused, NOW);
        assert_eq!(condition_of(&status, "Available")["status"], "False");
        assert_eq!(condition_of(&status, "ReplicaFailure")["message"], refused);
        assert_eq!(status["unavailableReplicas"], 2);
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

    proptest! {
        #[test]
        fn arbitrary_objects_never_panic(obj in arb_json()) {
            for kind in Kind::ALL {
                let _ = desired_status(kind, &obj, NOW);
            }
        }
    }
}
