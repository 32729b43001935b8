//! The status and scale subresources.

use crate::support::{WEBAPP_CRD, deployment, env, webapp, webapps};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn the_main_endpoint_ignores_status_and_status_ignores_the_rest() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    let mut obj = webapp("st", 1);
    obj.data["status"] = json!({"phase": "Made up"});
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert!(created.data.get("status").is_none());

    let with_status = api
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["phase"], "Ready");
    assert_eq!(with_status.data["spec"]["replicas"], 1);
    assert_eq!(with_status.metadata.generation, Some(1));

    let spec_change = api
        .patch(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Broken"}, "spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec_change.data["status"]["phase"], "Ready");
    assert_eq!(spec_change.data["spec"]["replicas"], 2);
    assert_eq!(spec_change.metadata.generation, Some(2));
}

#[tokio::test]
async fn status_can_be_replaced_and_applied() {
    let env = env().await;
    let api: Api<Deployment> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let mut live = api.get_status("web").await.unwrap();
    live.status = Some(serde_json::from_value(json!({"replicas": 2, "readyReplicas": 2})).unwrap());
    let replaced = api
        .replace_status("web", &PostParams::default(), &live)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().ready_replicas, Some(2));
    let applied = api
        .patch_status(
            "web",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"},
                "status": {"observedGeneration": 1},
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.status.unwrap().observed_generation, Some(1));
}

#[tokio::test]
async fn scale_reads_and_writes_replicas() {
    let env = env().await;
    let api: Api<Deployment> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &deployment("sc"))
        .await
        .unwrap();
    let scale = api.get_scale("sc").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=sc"));
    let patched = api
        .patch_scale(
            "sc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(4));
    let live = api.get("sc").await.unwrap();
    assert_eq!(live.spec.unwrap().replicas, Some(4));
    assert_eq!(live.metadata.generation, Some(2));
}

#[tokio::test]
async fn custom_resources_scale_through_their_declared_paths() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    api.create(&PostParams::default(), &webapp("cs", 1))
        .await
        .unwrap();
    let scaled = api
        .patch_scale(
            "cs",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    assert_eq!(api.get("cs").await.unwrap().data["spec"]["replicas"], 3);
}
