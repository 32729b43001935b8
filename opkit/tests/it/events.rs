//! Point 8: events on dependent writes and failures.

use k8s_openapi::api::events::v1::Event;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn creating_a_dependent_publishes_a_normal_event_on_the_primary() {
    let mut h = Harness::start().await;
    h.create("noisy", spec(1)).await;
    ready(&h, "noisy").await;
    let events: Api<Event> = Api::namespaced(h.env.client(), "default");
    let created = eventually("a Created event", || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("Created"))
        }
    })
    .await;
    assert_eq!(created.type_.as_deref(), Some("Normal"));
    assert_eq!(
        created.note.as_deref(),
        Some("Created ConfigMap default/noisy-config")
    );
    let regarding = created.regarding.expect("regarding");
    assert_eq!(
        (regarding.kind.as_deref(), regarding.name.as_deref()),
        (Some("Widget"), Some("noisy"))
    );
    assert_eq!(
        created.reporting_controller.as_deref(),
        Some("widget-operator")
    );
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
