//! The CronJob controller: Jobs created when due by the clock.

use super::status::status_patch;
use super::{MANAGER, Simulation, api_for, int_at, key_of, rfc3339};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// How often CronJobs are checked against the clock.
const CRON_TICK: Duration = Duration::from_millis(100);

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

pub(super) fn job_finished(job: &Value) -> Option<&'static str> {
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

pub(super) async fn cron_loop(client: kube::Client, simulation: Simulation) {
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
    use crate::sim::tests::arb_json;
    use proptest::prelude::*;

    const NOW: &str = "2030-01-01T00:00:00Z";

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

    proptest! {
        #[test]
        fn arbitrary_cronjobs_never_panic(obj in arb_json(), jobs in prop::collection::vec(arb_json(), 0..3)) {
            let _ = cron_plan(&obj, &jobs, at(NOW));
        }
    }
}
