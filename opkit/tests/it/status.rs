//! Point 5: status conditions, observedGeneration, transitions and the generation filter.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use opkit::clock::ManualClock;

use crate::fixture::*;

#[tokio::test]
async fn conditions_follow_generation_and_transition_times_move_only_on_change() {
    let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("a timestamp");
    let clock = Arc::new(ManualClock::new(start));
    let mut h = Harness::start_with_clock(clock.clone()).await;
    h.create("cond", spec(1)).await;
    let first = ready(&h, "cond").await;
    let status = first.status.clone().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.observed_generation, first.metadata.generation);
    let ready_since = condition(&first, "Ready")
        .expect("Ready")
        .last_transition_time
        .clone();
    assert_eq!(
        ready_since.0, start,
        "the transition is stamped by the clock"
    );
    assert!(!is_true(&first, "Progressing"));
    assert!(!is_true(&first, "Degraded"));

    clock.advance(jiff::SignedDuration::from_secs(60));
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

    clock.advance(jiff::SignedDuration::from_secs(60));
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
    assert_eq!(
        c.last_transition_time.0,
        start + jiff::SignedDuration::from_secs(120),
        "Ready flipped: the transition time is the clock's"
    );
    h.stop().await;
}

#[tokio::test]
async fn status_only_changes_do_not_trigger_but_dependent_changes_do() {
    let mut h = Harness::start().await;
    h.create("quiet", spec(1)).await;
    ready(&h, "quiet").await;
    let before = h.quiet("quiet").await;
    let patch = serde_json::json!({"status": {"phase": "Poked"}});
    h.widgets()
        .patch_status("quiet", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status patch");
    h.barrier().await;
    assert_eq!(
        h.probe.reconciles_of("quiet"),
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
        || async { (h.probe.reconciles_of("quiet") > before).then_some(()) },
    )
    .await;
    h.stop().await;
}
