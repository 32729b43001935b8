//! Simulated workload controllers: statuses as the real controllers write
//! them, seen through kube::Client and the real kubectl.

use crate::support::{deployment, env, eventually};
use k8s_openapi::api::apps::v1::{
    DaemonSet, Deployment, ReplicaSet, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use opkit_envtest::TestEnv;
use opkit_envtest::sim::{FAIL, ManualClock, NEVER_READY, Simulation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Debug;
use std::time::Duration;

/// What the generic helpers below need of a resource type.
trait Object: kube::Resource + Clone + DeserializeOwned + Serialize + Debug {}
impl<K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug> Object for K {}

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

/// Runs kubectl, which must succeed; returns stdout + stderr.
async fn kubectl_ok(env: &TestEnv, args: &[&str]) -> String {
    let (ok, out) = kubectl(env, args).await;
    assert!(ok, "kubectl {args:?} failed: {out}");
    out
}

/// `kubectl wait --for=<what> <target>`, which must succeed.
async fn wait_for(env: &TestEnv, what: &str, target: &str) -> String {
    let what = format!("--for={what}");
    kubectl_ok(env, &["wait", &what, target, "--timeout=20s"]).await
}

async fn assert_rolled_out(env: &TestEnv, target: &str) {
    let out = kubectl_ok(env, &["rollout", "status", target, "--timeout=20s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
}

/// `kubectl get pod` shows `name` with its one container ready and running.
async fn assert_pod_shown_ready(env: &TestEnv, name: &str) {
    let out = kubectl_ok(env, &["get", "pod", name]).await;
    assert!(out.contains("1/1") && out.contains("Running"), "{out}");
}

/// A server whose simulation is `simulation`.
async fn env_with(simulation: Simulation) -> TestEnv {
    TestEnv::builder()
        .simulation(simulation)
        .build()
        .await
        .expect("the server starts")
}

fn annotated<K: Object>(mut object: K, annotation: &str) -> K {
    object
        .meta_mut()
        .annotations
        .get_or_insert_default()
        .insert(annotation.to_string(), "true".to_string());
    object
}

/// A Job whose one busybox pod runs once.
fn job(name: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("a Job")
}

fn claim(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("a PVC")
}

/// The StatefulSet `db` of postgres pods.
fn db(replicas: i32) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}
    }))
    .expect("a StatefulSet")
}

/// The DaemonSet `agent`.
fn agent() -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "agent"}]}}}
    }))
    .expect("a DaemonSet")
}

/// The objects a Deployment's rollout involves.
struct Rollout {
    deployments: Api<Deployment>,
    replicasets: Api<ReplicaSet>,
    pods: Api<Pod>,
}

impl Rollout {
    fn in_default(env: &TestEnv) -> Self {
        Self {
            deployments: Api::default_namespaced(env.client()),
            replicasets: Api::default_namespaced(env.client()),
            pods: Api::default_namespaced(env.client()),
        }
    }
}

async fn create<K: Object>(api: &Api<K>, object: &K) -> K {
    api.create(&PostParams::default(), object)
        .await
        .expect("created")
}

async fn scale<K: Object>(api: &Api<K>, name: &str, replicas: i32) -> K {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scaled")
}

/// The objects `api` lists with `selector`; an empty one selects all.
async fn list<K: Object>(api: &Api<K>, selector: &str) -> Vec<K> {
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("listed")
        .items
}

/// The names of the objects `api` lists with `selector`.
async fn names<K: Object>(api: &Api<K>, selector: &str) -> Vec<String> {
    let mut names: Vec<String> = list(api, selector)
        .await
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    names.sort();
    names
}

fn condition(status: &Value, kind: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn status_of<K: Object>(api: &Api<K>, name: &str) -> Value {
    let obj = api.get(name).await.expect("the object exists");
    serde_json::to_value(&obj).expect("serializable")["status"].clone()
}

async fn until_available(deployments: &Api<Deployment>, name: &str) {
    eventually("an available Deployment", || async {
        condition(&status_of(deployments, name).await, "Available")["status"] == "True"
    })
    .await;
}

/// Creates the Deployment `web` and waits for its two pods.
async fn web_with_two_pods(env: &TestEnv) -> Rollout {
    let rollout = Rollout::in_default(env);
    create(&rollout.deployments, &deployment("web")).await;
    eventually("two pods", || async {
        names(&rollout.pods, "app=web").await.len() == 2
    })
    .await;
    rollout
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

#[tokio::test]
async fn kubectl_wait_for_available_succeeds() {
    let env = env().await;
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    create(&api, &deployment("web")).await;
    let out = wait_for(&env, "condition=Available", "deployment/web").await;
    assert!(out.contains("deployment.apps/web condition met"), "{out}");

    let live = api.get("web").await.expect("exists");
    let status = live.status.expect("a status");
    assert_eq!(status.observed_generation, live.metadata.generation);
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    assert_rolled_out(&env, "deployment/web").await;
}

#[tokio::test]
async fn spec_changes_are_observed_again() {
    let env = env().await;
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    create(&api, &deployment("web")).await;
    let generation = scale(&api, "web", 5).await.metadata.generation;
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
    create(&api, &annotated(deployment("stuck"), NEVER_READY)).await;
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
    create(&deployments, &annotated(deployment("broken"), FAIL)).await;
    let jobs: Api<Job> = Api::default_namespaced(env.client());
    let mut migrate = annotated(job("migrate"), FAIL);
    migrate.spec.get_or_insert_default().backoff_limit = Some(1);
    create(&jobs, &migrate).await;

    wait_for(
        &env,
        "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=ProgressDeadlineExceeded",
        "deployment/broken",
    )
    .await;
    wait_for(&env, "condition=Failed", "job/migrate").await;
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
    let mut once = job("once");
    once.spec.get_or_insert_default().completions = Some(2);
    create(&jobs, &once).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    create(&pvcs, &claim("data")).await;
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    create(&sets, &db(3)).await;
    let daemons: Api<DaemonSet> = Api::default_namespaced(client.clone());
    create(&daemons, &agent()).await;

    wait_for(&env, "condition=Complete", "job/once").await;
    let status = status_of(&jobs, "once").await;
    assert_eq!(status["succeeded"], 2);
    assert!(status["completionTime"].is_string());
    wait_for(&env, "jsonpath={.status.phase}=Bound", "pvc/data").await;
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
    create(&pods, &pod).await;
    wait_for(&env, "condition=Ready", "pod/web").await;
    let status = status_of(&pods, "web").await;
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    assert_pod_shown_ready(&env, "web").await;
}

#[tokio::test]
async fn cronjobs_create_jobs_when_the_clock_says_so() {
    let clock = ManualClock::new(jiff::Timestamp::now());
    let env = env_with(
        Simulation::default()
            .delay(Duration::from_millis(20))
            .clock(clock.clone()),
    )
    .await;
    let cronjobs: Api<CronJob> = Api::default_namespaced(env.client());
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "backup"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
            "metadata": {"labels": {"app": "backup"}},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "b", "image": "busybox"}]}}}}}
    }))
    .expect("a CronJob");
    create(&cronjobs, &cj).await;
    let jobs: Api<Job> = Api::default_namespaced(env.client());

    // Nothing is due before the clock moves: the single Job at the end is the one of the first
    // due time after the advance, not one made at creation.
    clock.advance(Duration::from_secs(6 * 60));
    eventually("a Job for the schedule", || async {
        !list(&jobs, "").await.is_empty()
    })
    .await;
    let listed = list(&jobs, "").await;
    let job = &listed[0];
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
    assert_eq!(list(&jobs, "").await.len(), 1);
}

#[tokio::test]
async fn simulation_can_be_switched_off() {
    let env = TestEnv::builder()
        .without_simulation()
        .build()
        .await
        .expect("the server starts");
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    create(&api, &deployment("web")).await;
    // The same Deployment on a server that simulates: once it is Available there, a simulation
    // of the first server would have acted too.
    let simulated = crate::support::env().await;
    let control: Api<Deployment> = Api::default_namespaced(simulated.client());
    create(&control, &deployment("web")).await;
    until_available(&control, "web").await;
    let live = api.get("web").await.expect("exists");
    assert!(live.status.and_then(|s| s.conditions).is_none());
}

#[tokio::test]
async fn simulated_writes_are_not_counted() {
    let env = env().await;
    env.reset_stats();
    let api: Api<Deployment> = Api::default_namespaced(env.client());
    create(&api, &deployment("web")).await;
    until_available(&api, "web").await;
    assert_eq!(env.stats().writes(), 1, "only the test's create is counted");
}

#[tokio::test]
async fn deployments_get_a_replicaset_and_ready_pods() {
    let env = env().await;
    let Rollout {
        deployments,
        replicasets,
        pods,
    } = Rollout::in_default(&env);
    let mut web = deployment("web");
    if let Some(spec) = web.spec.as_mut() {
        spec.replicas = Some(3);
    }
    let web = create(&deployments, &web).await;
    eventually("three ready pods", || async {
        let found = list(&pods, "app=web").await;
        found.len() == 3 && found.iter().all(ready)
    })
    .await;
    let sets = list(&replicasets, "").await;
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default();
    assert!(!hash.is_empty());
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .map(String::as_str),
        Some("1")
    );
    let owner = &rs.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );
    assert_eq!(Some(&owner.uid), web.metadata.uid.as_ref());
    for pod in list(&pods, "").await {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let suffix = name.strip_prefix(&format!("{rs_name}-")).unwrap_or("");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("pod-template-hash"), Some(&hash));
        let owner = &pod.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", rs_name.as_str())
        );
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.node_name.as_deref(), Some("envtest-node"));
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some());
        let containers = status.container_statuses.unwrap_or_default();
        assert_eq!(containers[0].image, "nginx:1.27");
        assert!(containers[0].ready);
    }
    let out = kubectl_ok(&env, &["get", "pods", "-l", "app=web"]).await;
    let running: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("1/1") && l.contains("Running"))
        .collect();
    assert_eq!(running.len(), 3, "{out}");
    let out = kubectl_ok(&env, &["get", "all", "-l", "app=web"]).await;
    assert!(
        out.contains("replicaset.apps/web-") && out.contains("pod/web-"),
        "{out}"
    );

    let before = names(&pods, "app=web").await;
    pods.delete(&before[0], &Default::default())
        .await
        .expect("deleted");
    eventually("a replacement pod", || async {
        let now = names(&pods, "app=web").await;
        now.len() == 3 && !now.contains(&before[0])
    })
    .await;

    scale(&deployments, "web", 1).await;
    eventually("one pod left", || async {
        names(&pods, "app=web").await.len() == 1
    })
    .await;
}

#[tokio::test]
async fn a_template_change_rolls_out_a_new_replicaset() {
    let env = env().await;
    let Rollout {
        deployments,
        replicasets,
        pods,
    } = web_with_two_pods(&env).await;
    let first = names(&replicasets, "app=web").await;
    assert_eq!(first.len(), 1);
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(image))
        .await
        .expect("patched");
    eventually("a second ReplicaSet owning both pods", || async {
        let sets = names(&replicasets, "app=web").await;
        let pods = list(&pods, "app=web").await;
        sets.len() == 2
            && pods.len() == 2
            && pods.iter().all(|p| {
                p.spec.as_ref().map(|s| s.containers[0].image.as_deref())
                    == Some(Some("nginx:1.28"))
            })
    })
    .await;
    let old = replicasets.get(&first[0]).await.expect("kept");
    assert_eq!(old.spec.and_then(|s| s.replicas), Some(0));
    assert_rolled_out(&env, "deployment/web").await;
}

#[tokio::test]
async fn deleting_a_deployment_collects_its_replicaset_and_pods() {
    let env = env().await;
    let Rollout {
        deployments,
        replicasets,
        pods,
    } = web_with_two_pods(&env).await;
    deployments
        .delete("web", &Default::default())
        .await
        .expect("deleted");
    eventually("no ReplicaSets and no pods", || async {
        names(&replicasets, "app=web").await.is_empty() && names(&pods, "app=web").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn statefulsets_get_ordinal_pods_and_their_claims() {
    let env = env().await;
    let sets: Api<StatefulSet> = Api::default_namespaced(env.client());
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(env.client());
    let mut sts = db(2);
    let spec = sts.spec.get_or_insert_default();
    spec.persistent_volume_claim_retention_policy =
        Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_scaled: Some("Delete".into()),
            ..Default::default()
        });
    spec.volume_claim_templates = Some(vec![claim("data")]);
    create(&sets, &sts).await;
    eventually("two ready pods and two bound claims", || async {
        let ready_pods = list(&pods, "app=db")
            .await
            .iter()
            .filter(|p| ready(p))
            .count();
        let bound = list(&claims, "")
            .await
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        ready_pods == 2 && bound == 2
    })
    .await;
    assert_eq!(names(&pods, "app=db").await, ["db-0", "db-1"]);
    assert_eq!(names(&claims, "app=db").await, ["data-db-0", "data-db-1"]);
    let pod = pods.get("db-1").await.expect("exists");
    let labels = pod.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("apps.kubernetes.io/pod-index")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        labels
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("db-1")
    );
    let volumes = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert_eq!(
        volumes[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("data-db-1")
    );
    assert_pod_shown_ready(&env, "db-0").await;

    scale(&sets, "db", 1).await;
    eventually("db-1 and its claim gone", || async {
        names(&pods, "app=db").await == ["db-0"] && names(&claims, "app=db").await == ["data-db-0"]
    })
    .await;
}

#[tokio::test]
async fn never_ready_pods_run_but_are_not_ready() {
    let env = env().await;
    let deployments: Api<Deployment> = Api::default_namespaced(env.client());
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    create(&deployments, &annotated(deployment("stuck"), NEVER_READY)).await;
    eventually("two running pods", || async {
        let found = list(&pods, "app=stuck").await;
        found.len() == 2 && found.iter().all(|p| phase(p) == Some("Running"))
    })
    .await;
    assert!(list(&pods, "app=stuck").await.iter().all(|p| !ready(p)));
    let out = kubectl_ok(&env, &["get", "pods", "-l", "app=stuck"]).await;
    assert!(out.contains("0/1") && !out.contains("1/1"), "{out}");
    let status = status_of(&deployments, "stuck").await;
    assert_eq!(condition(&status, "Available")["status"], "False");
}

#[tokio::test]
async fn daemonsets_get_one_pod_and_pods_can_be_switched_off() {
    let env = env().await;
    let daemons: Api<DaemonSet> = Api::default_namespaced(env.client());
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    create(&daemons, &agent()).await;
    eventually("one agent pod", || async {
        names(&pods, "app=agent").await.len() == 1
    })
    .await;

    let quiet = env_with(
        Simulation::default()
            .delay(Duration::from_millis(10))
            .pods(false),
    )
    .await;
    let Rollout {
        deployments,
        replicasets,
        pods,
    } = Rollout::in_default(&quiet);
    create(&deployments, &deployment("web")).await;
    until_available(&deployments, "web").await;
    assert!(names(&pods, "app=web").await.is_empty());
    assert!(names(&replicasets, "app=web").await.is_empty());
}

#[tokio::test]
async fn jobs_get_a_pod_that_succeeds() {
    let env = env().await;
    let jobs: Api<Job> = Api::default_namespaced(env.client());
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    create(&jobs, &job("once")).await;
    eventually("a Succeeded pod", || async {
        let found = list(&pods, "batch.kubernetes.io/job-name=once").await;
        found.len() == 1 && phase(&found[0]) == Some("Succeeded")
    })
    .await;
    let out = kubectl_ok(
        &env,
        &["get", "pods", "-l", "batch.kubernetes.io/job-name=once"],
    )
    .await;
    assert!(out.contains("Completed"), "{out}");
}
