//! The simulated node and the Pod subresources: binding, eviction under
//! PodDisruptionBudgets, ephemeral containers.

use crate::support::{deployment, env, eventually, status};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn bare_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bare"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:stable"}]},
    }))
    .expect("valid Pod")
}

async fn running(pods: &Api<Pod>, name: &str) -> Pod {
    eventually("the pod runs", || async {
        pods.get(name)
            .await
            .ok()
            .and_then(|p| p.status?.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    pods.get(name).await.unwrap()
}

#[tokio::test]
async fn bare_pods_are_bound_to_the_simulated_node() {
    let env = env().await;
    let nodes: Api<Node> = Api::all(env.client());
    let node = nodes.get("envtest-node").await.unwrap();
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status);
    assert_eq!(ready.as_deref(), Some("True"));

    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    pods.create(&PostParams::default(), &bare_pod("solo"))
        .await
        .unwrap();
    let pod = running(&pods, "solo").await;
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some("envtest-node")
    );
    let on_node = pods
        .list(&ListParams::default().fields("spec.nodeName=envtest-node"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 1);

    let binding = http::Request::post("/api/v1/namespaces/default/pods/solo/binding")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "solo"},
                "target": {"kind": "Node", "name": "other"}})
            .to_string()
            .into_bytes(),
        )
        .unwrap();
    let refused = status(env.client().request::<Value>(binding).await.unwrap_err());
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            409,
            "Operation cannot be fulfilled on pods/binding \"solo\": pod solo is already assigned to node \"envtest-node\""
        )
    );
}

#[tokio::test]
async fn eviction_honours_the_disruption_budget() {
    let env = env().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    // kube::Client retries a 429 for minutes by default, as it would on a cluster.
    let mut config = env.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let ready = ListParams::default().labels("app=web");
    eventually("two ready pods", || async {
        pods.list(&ready).await.is_ok_and(|l| {
            l.items.len() == 2
                && l.items.iter().all(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
        })
    })
    .await;
    let victim = pods.list(&ready).await.unwrap().items[0].name_any();

    let budgets: Api<PodDisruptionBudget> = Api::namespaced(env.client(), "default");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    let blocked = status(
        pods.evict(&victim, &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (
            blocked.code,
            blocked.reason.as_str(),
            blocked.message.as_str()
        ),
        (
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget."
        )
    );
    let cause = blocked
        .details
        .and_then(|d| d.causes.into_iter().next())
        .expect("the budget as cause");
    assert_eq!(
        (cause.reason.as_str(), cause.message.as_str()),
        (
            "DisruptionBudget",
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        )
    );
    assert!(pods.get_opt(&victim).await.unwrap().is_some());

    budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": "50%"}})),
        )
        .await
        .unwrap();
    let evicted = pods.evict(&victim, &EvictParams::default()).await.unwrap();
    assert_eq!((evicted.code, evicted.is_success()), (201, true));
    assert!(pods.get_opt(&victim).await.unwrap().is_none());
    let status = budgets.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (
            status.current_healthy,
            status.desired_healthy,
            status.disruptions_allowed
        ),
        (2, 1, 0)
    );
    assert!(
        status
            .disrupted_pods
            .unwrap_or_default()
            .contains_key(&victim)
    );

    let missing = status_of(pods.evict("ghost", &EvictParams::default()).await);
    assert_eq!(missing.code, 404);
}

fn status_of(result: Result<kube::core::Status, kube::Error>) -> kube::core::Status {
    status(result.expect_err("the eviction is refused"))
}

#[tokio::test]
async fn ephemeral_containers_are_added_but_never_changed() {
    let env = env().await;
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    pods.create(&PostParams::default(), &bare_pod("debugged"))
        .await
        .unwrap();
    let initial = pods.get_ephemeral_containers("debugged").await.unwrap();
    assert_eq!(initial.spec.unwrap().ephemeral_containers, None);

    // Only the ephemeral containers change: the image of the app container stays.
    let replacement: Pod = serde_json::from_value(json!({
        "metadata": {"name": "debugged"},
        "spec": {
            "containers": [{"name": "app", "image": "changed"}],
            "ephemeralContainers": [{"name": "debug1", "image": "busybox:stable"}],
        },
    }))
    .unwrap();
    let replaced = pods
        .replace_ephemeral_containers("debugged", &PostParams::default(), &replacement)
        .await
        .unwrap();
    let spec = replaced.spec.unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("busybox:stable"));
    assert_eq!(spec.ephemeral_containers.unwrap_or_default().len(), 1);

    let added: Pod = serde_json::from_value(
        json!({"spec": {"ephemeralContainers": [{"name": "debug2", "image": "alpine"}]}}),
    )
    .unwrap();
    let patched = pods
        .patch_ephemeral_containers(
            "debugged",
            &PatchParams::default(),
            &Patch::Strategic(added),
        )
        .await
        .unwrap();
    let names: Vec<String> = patched
        .spec
        .unwrap()
        .ephemeral_containers
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["debug1", "debug2"]);

    let changed: Pod = serde_json::from_value(json!({
        "metadata": {"name": "debugged"},
        "spec": {"containers": [], "ephemeralContainers": [{"name": "debug1", "image": "other"}]},
    }))
    .unwrap();
    let refused = status(
        pods.replace_ephemeral_containers("debugged", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 422);
    assert!(
        refused
            .message
            .contains("spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug1\" may not be changed"),
        "{}",
        refused.message
    );
}
