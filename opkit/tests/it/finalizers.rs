//! Point 4: finalizers.

use std::sync::atomic::Ordering;

use kube::api::{Patch, PatchParams};
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn the_finalizer_is_added_before_any_side_effect() {
    let mut h = Harness::start().await;
    h.create("guarded", spec(1)).await;
    let w = ready(&h, "guarded").await;
    assert!(w.finalizers().iter().any(|f| f == FINALIZER));
    assert!(
        !h.probe.finalizer_missing.load(Ordering::SeqCst),
        "reconcile ran on an object without the finalizer"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_finalizer_and_reports_until_it_succeeds() {
    let mut h = Harness::start().await;
    h.create("stubborn", spec(1)).await;
    ready(&h, "stubborn").await;
    h.probe.block_cleanup.store(true, Ordering::SeqCst);
    h.widgets()
        .delete("stubborn", &Default::default())
        .await
        .expect("delete");
    let api = h.widgets();
    let degraded = eventually("Degraded=True with reason CleanupFailed", || {
        let api = api.clone();
        async move {
            let w = api.get("stubborn").await.ok()?;
            condition(&w, "Degraded")
                .filter(|c| c.status == "True" && c.reason == "CleanupFailed")
                .cloned()
        }
    })
    .await;
    assert!(
        degraded.message.contains("still in use"),
        "{}",
        degraded.message
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(h.env.client(), "default");
    eventually("a CleanupFailed Warning event", || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("CleanupFailed")
                        && e.type_.as_deref() == Some("Warning")
                })
                .then_some(())
        }
    })
    .await;
    let w = h
        .widgets()
        .get("stubborn")
        .await
        .expect("still present while cleanup fails");
    assert!(w.finalizers().iter().any(|f| f == FINALIZER));
    let retries = h.probe.cleanups.load(Ordering::SeqCst);
    eventually("cleanup to be retried", || async {
        (h.probe.cleanups.load(Ordering::SeqCst) > retries).then_some(())
    })
    .await;

    h.probe.block_cleanup.store(false, Ordering::SeqCst);
    let api = h.widgets();
    eventually("the widget to be deleted after cleanup succeeds", || {
        let api = api.clone();
        async move { api.get_opt("stubborn").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(
        h.metrics()
            .contains("opkit_finalizer_cleanups_total{controller=\"widget\",result=\"success\"} 1")
    );
    h.stop().await;
}

#[tokio::test]
async fn an_object_deleted_before_the_finalizer_was_added_is_never_stuck() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Widget>().await.expect("crd");
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    let mut held = Widget::new("early", spec(1));
    held.metadata.finalizers = Some(vec!["test.opkit.dev/hold".into()]);
    api.create(&Default::default(), &held)
        .await
        .expect("create");
    api.delete("early", &Default::default())
        .await
        .expect("delete");

    let probe = std::sync::Arc::new(Spy::default());
    let running = opkit::Manager::new(env.client())
        .controller(widget_controller(&probe))
        .start();
    // A widget created now is reconciled after the one in the initial list would have been.
    api.create(&Default::default(), &Widget::new(BARRIER, spec(1)))
        .await
        .expect("create");
    eventually("the barrier widget to be reconciled", || async {
        (probe.reconciles_of(BARRIER) > 0).then_some(())
    })
    .await;
    let w = api.get("early").await.expect("held by the other finalizer");
    assert_eq!(w.finalizers(), ["test.opkit.dev/hold".to_string()]);
    assert_eq!(
        probe.reconciles_of("early"),
        0,
        "no reconcile of a deleting object"
    );

    let release = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch("early", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("release");
    eventually("the widget to be gone", || {
        let api = api.clone();
        async move { api.get_opt("early").await.ok()?.is_none().then_some(()) }
    })
    .await;
    running.shutdown().await;
}

/// The value of the metric line starting with `series`, 0 when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_object_gone_while_its_cleanup_ran_is_not_a_failure() {
    const SUCCESS: &str =
        "controller_runtime_reconcile_total{controller=\"widget\",result=\"success\"}";
    const ERROR: &str =
        "controller_runtime_reconcile_total{controller=\"widget\",result=\"error\"}";
    let mut h = Harness::start().await;
    h.create("vanishing", spec(1)).await;
    ready(&h, "vanishing").await;
    h.probe.gate_cleanup.store(true, Ordering::SeqCst);
    let api = h.widgets();
    api.delete("vanishing", &Default::default())
        .await
        .expect("delete");
    h.probe.cleanup_entered.notified().await;
    // Someone else lets the object go while opkit's cleanup still runs.
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch(
        "vanishing",
        &PatchParams::default(),
        &Patch::Merge(&release),
    )
    .await
    .expect("release");
    eventually("the widget to be gone", || {
        let api = api.clone();
        async move { api.get_opt("vanishing").await.ok()?.is_none().then_some(()) }
    })
    .await;
    let before = h.metrics();
    let (successes, errors) = (counter(&before, SUCCESS), counter(&before, ERROR));
    h.probe.cleanup_release.notify_one();
    let after = eventually("the cleanup's reconcile to be counted", || async {
        let now = h.metrics();
        (counter(&now, SUCCESS) > successes || counter(&now, ERROR) > errors).then_some(now)
    })
    .await;
    assert_eq!(
        counter(&after, ERROR),
        errors,
        "removing the finalizer of an object already gone failed the reconcile"
    );
    h.stop().await;
}
