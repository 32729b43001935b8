//! core/v1 and events.k8s.io/v1 Events are two views of one store.

use crate::support::{configmap, configmaps, env};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

#[tokio::test]
async fn recorder_events_show_up_as_core_events() {
    let env = env().await;
    let cm = configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("subject"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        env.client(),
        Reporter {
            controller: "demo-controller".into(),
            instance: None,
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Reconciled".into(),
                note: Some("all good".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &cm.object_ref(&()),
        )
        .await
        .unwrap();
    let core: Api<CoreEvent> = Api::namespaced(env.client(), "default");
    let events = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(events.items.len(), 1);
    let event = &events.items[0];
    assert!(event.series.is_none());
    assert_eq!(event.message.as_deref(), Some("all good"));
    assert_eq!(event.reason.as_deref(), Some("Reconciled"));
    assert_eq!(event.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("demo-controller")
    );
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("demo-controller")
    );

    // Publishing the same event again patches it into a series, as on a cluster.
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Reconciled".into(),
                note: Some("all good".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &cm.object_ref(&()),
        )
        .await
        .unwrap();
    let events = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        events.items[0].series.as_ref().and_then(|s| s.count),
        Some(2)
    );
}

#[tokio::test]
async fn core_events_read_back_through_events_v1() {
    let env = env().await;
    let core: Api<CoreEvent> = Api::namespaced(env.client(), "default");
    let event: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        "reason": "Started",
        "message": "hello",
        "count": 3,
        "type": "Warning",
    }))
    .unwrap();
    core.create(&PostParams::default(), &event).await.unwrap();
    let new: Api<NewEvent> = Api::namespaced(env.client(), "default");
    let read = new.get("e1").await.unwrap();
    assert_eq!(read.note.as_deref(), Some("hello"));
    assert_eq!(read.deprecated_count, Some(3));
    assert_eq!(read.regarding.unwrap().name.as_deref(), Some("x"));
    assert_eq!(read.type_.as_deref(), Some("Warning"));
}
