//! Point 9: several controllers in one process; cluster-scoped primaries.

use opkit::k8s::*;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn two_controllers_share_a_process_and_a_cluster_scoped_primary_owns_a_namespaced_dependent()
{
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Widget>().await.expect("widget crd");
    env.install_crd::<Gadget>().await.expect("gadget crd");
    let probe = std::sync::Arc::new(Spy::default());
    let running = opkit::Manager::new(env.client())
        .controller(widget_controller(&probe))
        .operator::<Gadget>()
        .start();

    let widgets: Api<Widget> = Api::namespaced(env.client(), "default");
    widgets
        .create(&Default::default(), &Widget::new("w", spec(1)))
        .await
        .expect("widget");
    let gadgets: Api<Gadget> = Api::all(env.client());
    let gadget = Gadget::new(
        "g",
        GadgetSpec {
            namespace: "default".into(),
        },
    );
    let gadget = gadgets
        .create(&Default::default(), &gadget)
        .await
        .expect("gadget");

    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let cm = eventually("the gadget's ConfigMap", || {
        let cms = cms.clone();
        async move { cms.get_opt("gadget-g").await.ok()? }
    })
    .await;
    let owner = cm.metadata.owner_references.unwrap_or_default();
    assert_eq!(owner.len(), 1);
    assert_eq!(
        (owner[0].kind.as_str(), owner[0].uid.as_str()),
        ("Gadget", gadget.metadata.uid.as_deref().unwrap_or(""))
    );
    eventually("the gadget to be Ready", || {
        let gadgets = gadgets.clone();
        async move { is_ready_gadget(&gadgets.get("g").await.ok()?).then_some(()) }
    })
    .await;
    eventually("the widget's ConfigMap", || {
        let cms = cms.clone();
        async move { cms.get_opt("w-config").await.ok()? }
    })
    .await;

    gadgets
        .delete("g", &Default::default())
        .await
        .expect("delete gadget");
    eventually("the gadget's ConfigMap to be collected", || {
        let cms = cms.clone();
        async move { cms.get_opt("gadget-g").await.ok()?.is_none().then_some(()) }
    })
    .await;
    let text = running.metrics().encode();
    assert!(
        text.contains("controller=\"widget\"") && text.contains("controller=\"gadget\""),
        "{text}"
    );
    running.shutdown().await;
}

fn is_ready_gadget(g: &Gadget) -> bool {
    g.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[tokio::test]
async fn caches_report_synced_only_after_their_first_list() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Widget>().await.expect("crd");
    env.faults().fail(
        "list",
        "configmaps",
        1.0,
        opkit_envtest::Fault::InternalError,
    );
    let probe = std::sync::Arc::new(Spy::default());
    let running = opkit::Manager::new(env.client())
        .controller(widget_controller(&probe))
        .start();
    failed_lists(&env, "configmaps", 2).await;
    assert!(
        !running.is_synced(),
        "synced although the ConfigMap cache could not list"
    );
    env.faults().clear();
    tokio::time::timeout(std::time::Duration::from_secs(20), running.wait_synced())
        .await
        .expect("caches sync once listing works");
    assert!(running.is_synced());
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_cache_that_never_lists() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Widget>().await.expect("crd");
    env.faults().fail(
        "list",
        "configmaps",
        1.0,
        opkit_envtest::Fault::InternalError,
    );
    let widgets: Api<Widget> = Api::namespaced(env.client(), "default");
    widgets
        .create(&Default::default(), &Widget::new("waiting", spec(1)))
        .await
        .expect("create");
    let probe = std::sync::Arc::new(Spy::default());
    let running = opkit::Manager::new(env.client())
        .controller(widget_controller(&probe))
        .start();
    // The Widget's reconcile is queued behind the ConfigMap cache, which cannot list: once the
    // widgets were listed and the ConfigMaps' list failed twice (the second after the watcher's
    // backoff), a reconcile that did not wait would have run.
    eventually("the widgets to be listed", || async {
        (env.stats().count_code("list", "widgets", 200) >= 1).then_some(())
    })
    .await;
    failed_lists(&env, "configmaps", 2).await;
    assert!(
        probe.attempts().is_empty(),
        "reconciled before the caches synced"
    );
    let began = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(10), running.shutdown())
        .await
        .expect("shutdown within 10 s, not the 30 s drain deadline");
    assert!(began.elapsed() < std::time::Duration::from_secs(10));
}

/// Waits until the server has answered `n` lists of `resource` with an error.
async fn failed_lists(env: &opkit_envtest::TestEnv, resource: &str, n: u64) {
    eventually(&format!("{n} failed lists of {resource}"), || async {
        (env.stats().count_code("list", resource, 500) >= n).then_some(())
    })
    .await;
}
