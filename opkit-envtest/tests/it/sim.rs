//! Simulated workload controllers: statuses as the real controllers write
//! them, seen through kube::Client and the real kubectl.

use crate::support::{deployment, env, eventually};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use opkit_envtest::TestEnv;
use opkit_envtest::sim::{FAIL, ManualClock, NEVER_READY, Simulation};
use serde_json::{Value, json};
use std::time::Duration;

/// Runs kubectl against `env`; returns (success, stdout + stderr).
async fn kubectl(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let kubectl = opkit_envtest::tools::Kubectl::new(env).expect("kubectl is available");
    let output = kubectl.run(args, None).await.expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn annotated(name: &str, annotation: &str) -> Deployment {
    let mut d = deployment(name);
    d.metadata.annotations = Some([(annotation.to_string(), "true".to_string())].into());
    d
}

fn condition(status: &Value, kind: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn status_of<K>(api: &Api<K>, name: &str) -> Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj = api.get(name).await.expect("the object exists");
    serde_json::to_value(&obj).expect("serializable")["status"].clone()
}

#[tokio::test]
async fn kubectl_wait_for_available_succeeds() {
    let env = env().await;
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .expect("created");
    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("deployment.apps/web condition met"), "{out}");

    let live = api.get("web").await.expect("exists");
    let status = live.status.expect("a status");
    assert_eq!(status.observed_generation, live.metadata.generation);
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    let (ok, out) = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
}

#[tokio::test]
async fn spec_changes_are_observed_again() {
    let env = env().await;
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .expect("created");
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scaled");
    let generation = scaled.metadata.generation;
    eventually("five available replicas of the new generation", || async {
        let d = api.get("web").await.expect("exists");
        let s = d.status.unwrap_or_default();
        s.available_replicas == Some(5) && s.observed_generation == generation
    })
    .await;
}

#[tokio::test]
async fn never_ready_keeps_a_deployment_unavailable() {
    let env = env().await;
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &annotated("stuck", NEVER_READY))
        .await
        .expect("created");
    eventually("the Available condition", || async {
        condition(&status_of(&api, "stuck").await, "Available") != Value::Null
    })
    .await;
    let status = status_of(&api, "stuck").await;
    assert_eq!(condition(&status, "Available")["status"], "False");
    assert_eq!(
        condition(&status, "Available")["reason"],
        "MinimumReplicasUnavailable"
    );
    assert_eq!(condition(&status, "Progressing")["status"], "True");
    assert_eq!(status.get("readyReplicas"), None);
    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/stuck",
            "--timeout=1s",
        ],
    )
    .await;
    assert!(!ok, "kubectl wait should time out: {out}");
}

#[tokio::test]
async fn fail_exceeds_the_progress_deadline_and_fails_jobs() {
    let env = env().await;
    let deployments: Api<Deployment> = Api::default_namespaced(env.client());
    deployments
        .create(&PostParams::default(), &annotated("broken", FAIL))
        .await
        .expect("created");
    let jobs: Api<Job> = Api::default_namespaced(env.client());
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "migrate", "annotations": {FAIL: "true"}},
        "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "m", "image": "busybox"}]}}}
    }))
    .expect("a Job");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("created");

    let (ok, out) = kubectl(
        &env,
        &["wait", "--for=jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=ProgressDeadlineExceeded",
            "deployment/broken", "--timeout=20s"],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Failed",
            "job/migrate",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let status = status_of(&jobs, "migrate").await;
    assert_eq!(
        condition(&status, "Failed")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(status["failed"], 2);
}

#[tokio::test]
async fn jobs_complete_claims_bind_and_sets_report_ready() {
    let env = env().await;
    let client = env.client();
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {"completions": 2, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("a Job");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("created");
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("a PVC");
    pvcs.create(&PostParams::default(), &pvc)
        .await
        .expect("created");
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}
    }))
    .expect("a StatefulSet");
    sets.create(&PostParams::default(), &sts)
        .await
        .expect("created");
    let daemons: Api<DaemonSet> = Api::default_namespaced(client.clone());
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "agent"}]}}}
    }))
    .expect("a DaemonSet");
    daemons
        .create(&PostParams::default(), &ds)
        .await
        .expect("created");

    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Complete",
            "job/once",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let status = status_of(&jobs, "once").await;
    assert_eq!(status["succeeded"], 2);
    assert!(status["completionTime"].is_string());
    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Bound",
            "pvc/data",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(ok, "{out}");
    eventually("three ready StatefulSet replicas", || async {
        status_of(&sets, "db").await["readyReplicas"] == 3
    })
    .await;
    let status = status_of(&sets, "db").await;
    assert_eq!(status["currentRevision"], status["updateRevision"]);
    eventually("a ready DaemonSet", || async {
        status_of(&daemons, "agent").await["numberReady"] == 1
    })
    .await;
}

#[tokio::test]
async fn pods_become_ready_for_kubectl_wait() {
    let env = env().await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    }))
    .expect("a Pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("created");
    let (ok, out) = kubectl(
        &env,
        &["wait", "--for=condition=Ready", "pod/web", "--timeout=20s"],
    )
    .await;
    assert!(ok, "{out}");
    let status = status_of(&pods, "web").await;
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    let (ok, out) = kubectl(&env, &["get", "pod", "web"]).await;
    assert!(
        ok && out.contains("1/1") && out.contains("Running"),
        "{out}"
    );
}

#[tokio::test]
async fn cronjobs_create_jobs_when_the_clock_says_so() {
    let clock = ManualClock::new(jiff::Timestamp::now());
    let env = TestEnv::builder()
        .simulation(
            Simulation::default()
                .delay(Duration::from_millis(20))
                .clock(clock.clone()),
        )
        .build()
        .await
        .expect("the server starts");
    let cronjobs: Api<CronJob> = Api::default_namespaced(env.client());
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "backup"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
            "metadata": {"labels": {"app": "backup"}},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "b", "image": "busybox"}]}}}}}
    }))
    .expect("a CronJob");
    cronjobs
        .create(&PostParams::default(), &cj)
        .await
        .expect("created");
    let jobs: Api<Job> = Api::default_namespaced(env.client());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let none = jobs.list(&ListParams::default()).await.expect("listed");
    assert!(
        none.items.is_empty(),
        "nothing is due before the clock moves"
    );

    clock.advance(Duration::from_secs(6 * 60));
    eventually("a Job for the schedule", || async {
        !jobs
            .list(&ListParams::default())
            .await
            .expect("listed")
            .items
            .is_empty()
    })
    .await;
    let listed = jobs.list(&ListParams::default()).await.expect("listed");
    let job = &listed.items[0];
    assert!(
        job.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("backup-"))
    );
    let owner = &job.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("CronJob", "backup", Some(true))
    );
    eventually("the Job's completion recorded on the CronJob", || async {
        let status = status_of(&cronjobs, "backup").await;
        status["lastScheduleTime"].is_string() && status["lastSuccessfulTime"].is_string()
    })
    .await;
    assert_eq!(
        jobs.list(&ListParams::default())
            .await
            .expect("listed")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn simulation_can_be_switched_off() {
    let env = TestEnv::builder()
        .without_simulation()
        .build()
        .await
        .expect("the server starts");
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .expect("created");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let live = api.get("web").await.expect("exists");
    assert!(live.status.and_then(|s| s.conditions).is_none());
}

#[tokio::test]
async fn simulated_writes_are_not_counted() {
    let env = env().await;
    env.reset_stats();
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .expect("created");
    eventually("an available Deployment", || async {
        condition(&status_of(&api, "web").await, "Available")["status"] == "True"
    })
    .await;
    assert_eq!(env.stats().writes(), 1, "only the test's create is counted");
}
