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
