//! Point 8: events on dependent writes and failures.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams};
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn putting_back_a_changed_dependent_publishes_a_normal_event_on_the_primary() {
    let mut h = Harness::start().await;
    h.create("noisy", spec(1)).await;
    ready(&h, "noisy").await;
    let patch = serde_json::json!({"data": {"size": "99"}});
    h.config_maps("default")
        .patch(
            "noisy-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("drift the ConfigMap");
    let events: Api<Event> = Api::namespaced(h.env.client(), "default");
    let (corrected, all) = eventually("a DriftCorrected event", || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            let corrected = list
                .items
                .iter()
                .find(|e| e.reason.as_deref() == Some("DriftCorrected"))
                .cloned()?;
            Some((corrected, list.items))
        }
    })
    .await;
    assert_eq!(corrected.type_.as_deref(), Some("Normal"));
    assert_eq!(
        corrected.note.as_deref(),
        Some("Put back ConfigMap default/noisy-config: it was changed outside the operator")
    );
    let regarding = corrected.regarding.expect("regarding");
    assert_eq!(
        (regarding.kind.as_deref(), regarding.name.as_deref()),
        (Some("Widget"), Some("noisy"))
    );
    assert_eq!(
        corrected.reporting_controller.as_deref(),
        Some("widget-operator")
    );
    // Creating the dependent was what the user asked for: logged and counted, not an Event.
    let reasons: Vec<_> = all.iter().filter_map(|e| e.reason.as_deref()).collect();
    assert!(!reasons.contains(&"Created"), "{reasons:?}");
    let size = h
        .config_maps("default")
        .get("noisy-config")
        .await
        .expect("get");
    assert_eq!(size.data.expect("data")["size"], "1");
    h.stop().await;
}

#[tokio::test]
async fn a_failed_reconcile_publishes_a_warning() {
    let mut h = Harness::start().await;
    let mut s = spec(1);
    s.fail = Some("permanent".into());
    h.create("sad", s).await;
    let events: Api<Event> = Api::namespaced(h.env.client(), "default");
    let warning = eventually("a ReconcileFailed event", || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("ReconcileFailed"))
        }
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.note.as_deref(),
        Some("invalid spec: size must be even")
    );
    h.stop().await;
}
