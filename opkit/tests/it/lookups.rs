//! Point 11: watched kinds, secondary indexes, event filters and the concurrency limit.

use std::sync::atomic::Ordering;

use kube::api::{Patch, PatchParams};
use opkit::k8s::*;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn a_watched_kind_triggers_the_primaries_its_mapper_names() {
    let mut h = Harness::start().await;
    h.create("watcher", spec(1)).await;
    ready(&h, "watcher").await;
    let before = h.quiet("watcher").await;
    let secret = |name: &str, widget: &str| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("widget".to_string(), widget.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(h.env.client(), "default");
    secrets
        .create(&Default::default(), &secret("other", "nobody"))
        .await
        .expect("secret");
    // The Secrets' watch delivers in order: once the barrier's Secret reconciled its widget, the
    // unrelated one was mapped too.
    let barrier = h.probe.reconciles_of(BARRIER);
    secrets
        .create(&Default::default(), &secret("barrier-credentials", BARRIER))
        .await
        .expect("secret");
    eventually("the barrier's Secret to trigger its widget", || async {
        (h.probe.reconciles_of(BARRIER) > barrier).then_some(())
    })
    .await;
    assert_eq!(
        h.probe.reconciles_of("watcher"),
        before,
        "an unrelated Secret triggered a reconcile"
    );
    let related = Secret {
        metadata: ObjectMeta {
            name: Some("credentials".into()),
            labels: Some([("widget".to_string(), "watcher".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets
        .create(&Default::default(), &related)
        .await
        .expect("secret");
    eventually("the labelled Secret to trigger its widget", || async {
        (h.probe.reconciles_of("watcher") > before).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn the_index_finds_primaries_by_key_and_follows_changes() {
    let mut h = Harness::start().await;
    h.create("small-a", spec(7)).await;
    h.create("small-b", spec(7)).await;
    h.create("big", spec(9)).await;
    for name in ["small-a", "small-b", "big"] {
        ready(&h, name).await;
    }
    let touch = |size: i32| serde_json::json!({"spec": {"size": size}});
    h.widgets()
        .patch("big", &PatchParams::default(), &Patch::Merge(&touch(7)))
        .await
        .expect("patch");
    eventually("the index to list all three widgets of size 7", || async {
        let seen = h
            .probe
            .same_size
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        (seen == ["big", "small-a", "small-b"]).then_some(())
    })
    .await;
    h.widgets()
        .patch("big", &PatchParams::default(), &Patch::Merge(&touch(8)))
        .await
        .expect("patch");
    eventually("the index to drop the widget that changed size", || async {
        let seen = h
            .probe
            .same_size
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        (seen == ["big"]).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn label_changes_trigger_only_when_asked() {
    for filter_labels in [false, true] {
        let mut h = Harness::start_with(move |c| {
            if filter_labels {
                c.on_label_changes()
            } else {
                c
            }
        })
        .await;
        h.create("labelled", spec(1)).await;
        ready(&h, "labelled").await;
        let before = h.quiet("labelled").await;
        let patch = serde_json::json!({"metadata": {"labels": {"tier": "gold"}}});
        h.widgets()
            .patch("labelled", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("label");
        if filter_labels {
            eventually("a label change to trigger a reconcile", || async {
                (h.probe.reconciles_of("labelled") > before).then_some(())
            })
            .await;
        } else {
            // The barrier's change follows the label change on the same watch.
            h.barrier().await;
            assert_eq!(
                h.probe.reconciles_of("labelled"),
                before,
                "a label change triggered without reconcile_on(labels)"
            );
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn concurrency_limits_reconciles_in_flight() {
    let mut h = Harness::start_with(|d| d.concurrency(2)).await;
    for i in 0..5 {
        let mut s = spec(i);
        s.delay_ms = Some(300);
        h.create(&format!("slow-{i}"), s).await;
    }
    for i in 0..5 {
        ready(&h, &format!("slow-{i}")).await;
    }
    assert_eq!(h.probe.max_in_flight.load(Ordering::SeqCst), 2);
    h.stop().await;
}
