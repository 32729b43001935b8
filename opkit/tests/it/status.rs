//! Point 5: status conditions, observedGeneration, transitions and the generation filter.

use std::time::Duration;

use kube::api::{Patch, PatchParams};

use crate::fixture::*;

#[tokio::test]
async fn conditions_follow_generation_and_transition_times_move_only_on_change() {
    let mut h = Harness::start().await;
    h.create("cond", spec(1)).await;
    let first = ready(&h, "cond").await;
    let status = first.status.clone().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.observed_generation, first.metadata.generation);
    let ready_since = condition(&first, "Ready")
        .expect("Ready")
        .last_transition_time
        .clone();
    assert!(!is_true(&first, "Progressing"));
    assert!(!is_true(&first, "Degraded"));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let patch = serde_json::json!({"spec": {"size": 2}});
    h.widgets()
        .patch("cond", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    let second = ready(&h, "cond").await;
    assert_eq!(second.metadata.generation, Some(2));
    let c = condition(&second, "Ready").expect("Ready");
    assert_eq!(c.observed_generation, Some(2));
    assert_eq!(c.message, "size 2");
    assert_eq!(
        c.last_transition_time, ready_since,
        "Ready stayed True: no transition"
    );

    let patch = serde_json::json!({"spec": {"fail": "permanent"}});
    h.widgets()
        .patch("cond", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    let api = h.widgets();
    let failed = eventually("Ready=False after a permanent error", || {
        let api = api.clone();
        async move {
            let w = api.get("cond").await.ok()?;
            (!is_true(&w, "Ready") && condition(&w, "Ready")?.observed_generation == Some(3))
                .then_some(w)
        }
    })
    .await;
    let c = condition(&failed, "Ready").expect("Ready");
    assert_eq!(c.reason, "InvalidSpec");
    assert!(
        c.last_transition_time.0 > ready_since.0,
        "Ready flipped: transition time moved"
    );
    h.stop().await;
}

#[tokio::test]
async fn status_only_changes_do_not_trigger_but_dependent_changes_do() {
    let mut h = Harness::start().await;
    h.create("quiet", spec(1)).await;
    ready(&h, "quiet").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = h.probe.reconciles();
    let patch = serde_json::json!({"status": {"phase": "Poked"}});
    h.widgets()
        .patch_status("quiet", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status patch");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        h.probe.reconciles(),
        before,
        "a status-only change triggered a reconcile"
    );

    let patch = serde_json::json!({"metadata": {"labels": {"touched": "yes"}}});
    h.config_maps("default")
        .patch(
            "quiet-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("touch dependent");
    eventually(
        "a change of the dependent to trigger a reconcile",
        || async { (h.probe.reconciles() > before).then_some(()) },
    )
    .await;
    h.stop().await;
}
