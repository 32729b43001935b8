//! Request statistics, from the library and at /metrics.

use crate::support::{WEBAPP_CRD, configmap, configmaps, env};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn requests_are_counted_by_verb_resource_and_code() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("s"))
        .await
        .unwrap();
    api.get("s").await.unwrap();
    let _ = api.get("missing").await;
    api.list(&ListParams::default()).await.unwrap();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"n": "1"}})),
    )
    .await
    .unwrap();
    let stats = env.stats();
    assert_eq!(stats.count("create", "configmaps"), 1);
    assert_eq!(stats.count("get", "configmaps"), 2);
    assert_eq!(stats.count_code("get", "configmaps", 404), 1);
    assert_eq!(stats.count("list", "configmaps"), 1);
    assert_eq!(stats.writes(), 2);
    assert_eq!(stats.writes_on("configmaps"), 2);
    env.reset_stats();
    assert_eq!(env.stats().total(), 0);
}

#[tokio::test]
async fn installing_crds_is_not_counted() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    assert_eq!(env.stats().total(), 0);
}

#[tokio::test]
async fn subresources_are_counted_separately() {
    let env = env().await;
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &crate::support::deployment("d"))
        .await
        .unwrap();
    api.get_status("d").await.unwrap();
    assert_eq!(env.stats().count("get", "deployments/status"), 1);
    assert_eq!(env.stats().count("get", "deployments"), 0);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_format() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("m"))
        .await
        .unwrap();
    let text = env
        .client()
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE opkit_envtest_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            "opkit_envtest_requests_total{verb=\"create\",resource=\"configmaps\",code=\"201\"} 1"
        ),
        "{text}"
    );
}
