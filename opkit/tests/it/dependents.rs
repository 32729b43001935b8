//! Point 2: dependents through `Ensure`.

use std::time::Duration;

use opkit::k8s::*;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn dependent_gets_a_controller_owner_reference_and_is_collected_with_its_owner() {
    let mut h = Harness::start().await;
    let widget = h.create("owned", spec(3)).await;
    ready(&h, "owned").await;
    let cm = h
        .config_maps("default")
        .get("owned-config")
        .await
        .expect("ConfigMap exists");
    let owner = cm
        .metadata
        .owner_references
        .as_ref()
        .and_then(|r| r.first())
        .expect("owner reference");
    assert_eq!(owner.kind, "Widget");
    assert_eq!(owner.uid, widget.metadata.uid.clone().unwrap_or_default());
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert_eq!(
        cm.data.and_then(|d| d.get("size").cloned()).as_deref(),
        Some("3")
    );
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"widget-operator".to_string()),
        "{managers:?}"
    );

    h.widgets()
        .delete("owned", &Default::default())
        .await
        .expect("delete");
    let cms = h.config_maps("default");
    eventually("the ConfigMap to be garbage collected", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("owned-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn converged_operator_makes_zero_writes_on_resync() {
    let mut h = Harness::start_with(|d| d.requeue(Duration::from_millis(200))).await;
    h.create("calm", spec(1)).await;
    ready(&h, "calm").await;
    // Let the status write of the first Ready settle before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.env.reset_stats();
    let before = h.probe.reconciles();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(h.probe.reconciles() >= before + 3, "resyncs happened");
    let stats = h.env.stats();
    assert_eq!(stats.writes(), 0, "writes while converged: {stats:?}");
    h.stop().await;
}

#[tokio::test]
async fn an_object_controlled_by_someone_else_is_not_adopted() {
    let mut h = Harness::start().await;
    let cms = h.config_maps("default");
    let owner = ConfigMap {
        metadata: ObjectMeta {
            name: Some("someone-else".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let owner = cms
        .create(&Default::default(), &owner)
        .await
        .expect("create owner");
    let foreign = ConfigMap {
        metadata: ObjectMeta {
            name: Some("taken-config".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "someone-else".into(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        data: Some([("size".to_string(), "untouched".to_string())].into()),
        ..Default::default()
    };
    cms.create(&Default::default(), &foreign)
        .await
        .expect("create foreign");
    h.create("taken", spec(2)).await;
    let api = h.widgets();
    let degraded = eventually("Degraded=True with reason NotOwned", || {
        let api = api.clone();
        async move {
            let w = api.get("taken").await.ok()?;
            condition(&w, "Degraded")
                .filter(|c| c.status == "True" && c.reason == "NotOwned")
                .cloned()
        }
    })
    .await;
    assert!(
        degraded.message.contains("someone-else"),
        "{}",
        degraded.message
    );
    let cm = h
        .config_maps("default")
        .get("taken-config")
        .await
        .expect("still there");
    assert_eq!(
        cm.data.and_then(|d| d.get("size").cloned()).as_deref(),
        Some("untouched")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_disabled_dependent_is_deleted() {
    let mut h = Harness::start().await;
    h.create("toggle", spec(1)).await;
    ready(&h, "toggle").await;
    assert!(
        h.config_maps("default")
            .get_opt("toggle-config")
            .await
            .expect("get")
            .is_some()
    );
    let patch = serde_json::json!({"spec": {"expose": false}});
    h.widgets()
        .patch(
            "toggle",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    let cms = h.config_maps("default");
    eventually("the disabled ConfigMap to be deleted", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("toggle-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_cross_namespace_dependent_carries_owner_labels_and_is_deleted_on_cleanup() {
    let mut h = Harness::start().await;
    let ns = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some("shared".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Namespace>::all(h.env.client())
        .create(&Default::default(), &ns)
        .await
        .expect("namespace");
    let mut s = spec(4);
    s.config_namespace = Some("shared".into());
    let widget = h.create("far", s).await;
    ready(&h, "far").await;
    let cm = h
        .config_maps("shared")
        .get("far-config")
        .await
        .expect("ConfigMap in shared");
    assert!(cm.metadata.owner_references.unwrap_or_default().is_empty());
    let labels = cm.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(opkit::ensure::OWNER_UID_LABEL),
        widget.metadata.uid.as_ref()
    );
    assert_eq!(
        labels
            .get(opkit::ensure::OWNER_NAMESPACE_LABEL)
            .map(String::as_str),
        Some("default")
    );

    h.widgets()
        .delete("far", &Default::default())
        .await
        .expect("delete");
    let cms = h.config_maps("shared");
    eventually("the labelled ConfigMap to be deleted by cleanup", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("far-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    let widgets = h.widgets();
    eventually("the widget to be gone", || {
        let widgets = widgets.clone();
        async move { widgets.get_opt("far").await.ok()?.is_none().then_some(()) }
    })
    .await;
    h.stop().await;
}
