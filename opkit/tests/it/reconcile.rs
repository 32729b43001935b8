//! Point 3: the reconcile contract is level-triggered: drift is repaired, restarts change nothing.

use kube::api::{Patch, PatchParams};

use crate::fixture::*;

#[tokio::test]
async fn drift_in_a_dependent_is_repaired() {
    let mut h = Harness::start().await;
    h.create("drift", spec(5)).await;
    ready(&h, "drift").await;
    let patch = serde_json::json!({"data": {"size": "999"}});
    h.config_maps("default")
        .patch(
            "drift-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("manual edit");
    let cms = h.config_maps("default");
    eventually("the ConfigMap to be put back", || {
        let cms = cms.clone();
        async move {
            let cm = cms.get("drift-config").await.ok()?;
            (cm.data?.get("size")?.as_str() == "5").then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_dependent_is_recreated() {
    let mut h = Harness::start().await;
    h.create("again", spec(2)).await;
    ready(&h, "again").await;
    h.config_maps("default")
        .delete("again-config", &Default::default())
        .await
        .expect("delete");
    let cms = h.config_maps("default");
    eventually("the ConfigMap to be recreated", || {
        let cms = cms.clone();
        async move { cms.get_opt("again-config").await.ok()?.map(|_| ()) }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_restarted_operator_changes_nothing() {
    let mut h = Harness::start().await;
    h.create("steady", spec(2)).await;
    ready(&h, "steady").await;
    h.quiet("steady").await;
    h.stop().await;
    h.env.reset_stats();
    let running = opkit::Manager::new(h.env.client())
        .controller(widget_controller(&h.probe))
        .start();
    // Two widgets listed (steady and the barrier): both reconciled and their status flushed.
    eventually(
        "the restarted operator to reconcile both widgets",
        || async { (succeeded(&running) >= 2).then_some(()) },
    )
    .await;
    let stats = h.env.stats();
    assert_eq!(stats.writes(), 0, "writes after restart: {stats:?}");
    // Reconciles wait for the caches, so dependents are read from them, never fetched.
    assert_eq!(stats.verb("get"), 0, "gets after restart: {stats:?}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_new_primarys_dependents_are_written_once_and_never_fetched() {
    let mut h = Harness::start().await;
    h.barrier().await;
    h.env.reset_stats();
    h.create("fresh", spec(3)).await;
    ready(&h, "fresh").await;
    // The ConfigMap's own watch event reconciles again; it must neither fetch nor write it.
    h.quiet("fresh").await;
    let stats = h.env.stats();
    // The synced cache answers "absent" and, until its watch catches up, the write itself.
    assert_eq!(stats.count("get", "configmaps"), 0, "{stats:?}");
    assert_eq!(stats.writes_on("configmaps"), 1, "{stats:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_recreated_primary_with_the_same_name_is_reconciled() {
    let mut h = Harness::start().await;
    h.create("phoenix", spec(1)).await;
    ready(&h, "phoenix").await;
    h.widgets()
        .delete("phoenix", &Default::default())
        .await
        .expect("delete");
    let widgets = h.widgets();
    eventually("the first widget to be gone", || {
        let widgets = widgets.clone();
        async move {
            widgets
                .get_opt("phoenix")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    h.create("phoenix", spec(2)).await;
    let again = ready(&h, "phoenix").await;
    assert_eq!(
        again.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    h.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_reconciles_finish() {
    let mut h = Harness::start().await;
    let mut s = spec(1);
    s.delay_ms = Some(800);
    h.create("slow", s).await;
    eventually("the slow reconcile to start", || async {
        (h.probe.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    h.stop().await;
    assert_eq!(
        h.probe.in_flight.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "shutdown cut a reconcile short"
    );
    let w = h.widgets().get("slow").await.expect("get");
    assert!(
        is_true(&w, "Ready"),
        "the drained reconcile did not finish its status write"
    );
}
