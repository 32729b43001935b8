//! Owner-reference garbage collection.

use crate::support::{configmap, configmaps, env, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn owned_by<K: Resource<DynamicType = ()>>(name: &str, owner: &K, block: bool) -> ConfigMap {
    let mut cm = configmap(name);
    cm.metadata.owner_references = Some(vec![OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap(),
        uid: owner.meta().uid.clone().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }]);
    cm
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let owner = api
        .create(&PostParams::default(), &configmap("owner"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &owned_by("child", &owner, false))
        .await
        .unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the dependent to be collected", || {
        let api = api.clone();
        async move { api.get_opt("child").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let owner = api
        .create(&PostParams::default(), &configmap("fg-owner"))
        .await
        .unwrap();
    let mut child = owned_by("fg-child", &owner, true);
    child.metadata.finalizers = Some(vec!["example.com/slow".into()]);
    api.create(&PostParams::default(), &child).await.unwrap();
    api.delete("fg-owner", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the dependent to be deleting", || {
        let api = api.clone();
        async move {
            api.get("fg-child")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        }
    })
    .await;
    let held = api.get("fg-owner").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    api.patch(
        "fg-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the owner to go once its dependent is gone", || {
        let api = api.clone();
        async move { api.get_opt("fg-owner").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let owner = api
        .create(&PostParams::default(), &configmap("or-owner"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &owned_by("or-child", &owner, false))
        .await
        .unwrap();
    api.delete("or-owner", &DeleteParams::orphan())
        .await
        .unwrap();
    eventually("the owner to go", || {
        let api = api.clone();
        async move { api.get_opt("or-owner").await.unwrap().is_none() }
    })
    .await;
    let child = api.get("or-child").await.unwrap();
    assert!(
        child
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn cluster_scoped_owners_collect_namespaced_dependents() {
    let env = env().await;
    let namespaces: Api<Namespace> = Api::all(env.client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let owner = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &owned_by("cross", &owner, false))
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the dependent of the namespace to be collected", || {
        let api = api.clone();
        async move { api.get_opt("cross").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn dependents_of_an_absent_owner_are_collected() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut ghost = configmap("ghost-owner");
    ghost.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
    api.create(&PostParams::default(), &owned_by("orphaned", &ghost, false))
        .await
        .unwrap();
    eventually("the dependent of a missing owner to be collected", || {
        let api = api.clone();
        async move { api.get_opt("orphaned").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn garbage_collection_does_not_count_as_client_writes() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let owner = api
        .create(&PostParams::default(), &configmap("s-owner"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &owned_by("s-child", &owner, false))
        .await
        .unwrap();
    env.reset_stats();
    api.delete("s-owner", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the dependent to be collected", || {
        let api = api.clone();
        async move { api.get_opt("s-child").await.unwrap().is_none() }
    })
    .await;
    assert_eq!(env.stats().writes(), 1);
}

#[tokio::test]
async fn an_owner_in_another_namespace_counts_as_absent() {
    let env = env().await;
    let owner = configmaps(&env, "kube-system")
        .create(&PostParams::default(), &configmap("elsewhere"))
        .await
        .unwrap();
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &owned_by("stray", &owner, false))
        .await
        .unwrap();
    eventually(
        "the dependent of an owner in another namespace to be collected",
        || {
            let api = api.clone();
            async move { api.get_opt("stray").await.unwrap().is_none() }
        },
    )
    .await;
}
