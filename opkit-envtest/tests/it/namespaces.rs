//! Namespaces: the initial ones, existence checks, termination.

use crate::support::{configmap, configmaps, env, eventually, status};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn the_usual_namespaces_exist_and_cannot_be_deleted() {
    let env = env().await;
    let api: Api<Namespace> = Api::all(env.client());
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = api.get(name).await.unwrap();
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    }
    let err = status(
        api.delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found() {
    let env = env().await;
    let err = status(
        configmaps(&env, "nowhere")
            .create(&PostParams::default(), &configmap("c"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn deleting_a_namespace_terminates_it_and_its_contents() {
    let env = env().await;
    let api: Api<Namespace> = Api::all(env.client());
    api.create(&PostParams::default(), &namespace("team"))
        .await
        .unwrap();
    let cms = configmaps(&env, "team");
    cms.create(&PostParams::default(), &configmap("plain"))
        .await
        .unwrap();
    let mut held = configmap("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    api.delete("team", &DeleteParams::default()).await.unwrap();
    let ns = api.get("team").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let err = status(
        cms.create(&PostParams::default(), &configmap("late"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message.contains("because it is being terminated"),
        "{}",
        err.message
    );

    eventually("the plain object to be deleted", || {
        let cms = cms.clone();
        async move { cms.get_opt("plain").await.unwrap().is_none() }
    })
    .await;
    assert!(api.get_opt("team").await.unwrap().is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the namespace to disappear", || {
        let api = api.clone();
        async move { api.get_opt("team").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn namespace_names_must_be_dns_labels() {
    let env = env().await;
    let api: Api<Namespace> = Api::all(env.client());
    let err = status(
        api.create(&PostParams::default(), &namespace("a.b"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.contains("RFC 1123 label"), "{}", err.message);
}
