//! Finalizers and deletionTimestamp.

use crate::support::{configmap, configmaps, env, status};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn finalizers_hold_deletion_until_the_last_is_removed() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut cm = configmap("held");
    cm.metadata.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    let deleted = api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = deleted
        .left()
        .expect("the object comes back while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let live = api.get("held").await.unwrap();
    assert!(live.metadata.deletion_timestamp.is_some());

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/b"]}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn no_new_finalizers_once_deleting() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut cm = configmap("closing");
    cm.metadata.finalizers = Some(vec!["example.com/a".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("closing", &DeleteParams::default())
        .await
        .unwrap();
    let err = status(
        api.patch(
            "closing",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/a", "example.com/new"]}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn deletion_timestamp_cannot_be_cleared_by_an_update() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut cm = configmap("sticky");
    cm.metadata.finalizers = Some(vec!["example.com/a".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("sticky", &DeleteParams::default())
        .await
        .unwrap();
    let mut live = api.get("sticky").await.unwrap();
    live.metadata.deletion_timestamp = None;
    let updated = api
        .replace("sticky", &PostParams::default(), &live)
        .await
        .unwrap();
    assert!(updated.metadata.deletion_timestamp.is_some());
}
