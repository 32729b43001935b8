//! The WebApp in its two versions with the real kubectl: `v1` and `v2` clients on the same
//! objects, the operator reconciling the hub without writes on a resync, and `migrate` run as
//! the operator's command.

use opkit_examples::webapp::{app, v1, versions};

use crate::support::{Kubectl, reconciled};
use crate::webapp::demo;

const SHOP_V1: &str = "apiVersion: example.com/v1
kind: WebApp
metadata:
  name: shop
spec:
  replicas: 2
  image: nginx:1.27
  port: 80
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_clients_see_the_same_webapp_and_nothing_is_lost() {
    let mut demo = demo().await;
    demo.apply(SHOP_V1).await;
    demo.wait_until("webapp/shop", "condition=Ready").await;
    let v2 = "webapps.v2.example.com/shop";
    let v1 = "webapps.v1.example.com/shop";
    assert_eq!(
        demo.jsonpath(
            v2,
            "{.spec.image.repository}:{.spec.image.tag} {.spec.scale.replicas}"
        )
        .await,
        "nginx:1.27 2"
    );
    // v1 is deprecated: a v1 client is warned, a v2 client is not.
    let stderr = async |what: &str| {
        let out = demo.run(&["get", what], None).await;
        assert!(out.status.success(), "kubectl get {what} failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warned = stderr(v1).await;
    assert!(
        warned.contains("Warning: example.com/v1 WebApp is deprecated; use example.com/v2 WebApp"),
        "{warned}"
    );
    let warned = stderr(v2).await;
    assert!(!warned.contains("deprecated"), "{warned}");
    // A v2 client sets what v1 cannot hold; the operator, on the hub, hands it to the Deployment.
    demo.patch(v2, r#"{"spec":{"image":{"pullPolicy":"Always"}}}"#)
        .await;
    let pull_policy = "{.spec.template.spec.containers[0].imagePullPolicy}";
    demo.wait_jsonpath("deployment/shop", pull_policy, "Always")
        .await;
    // A v1 client reads it kept in the annotation, and applies a change of its own.
    assert_eq!(
        demo.jsonpath(
            v1,
            r"{.spec.image} {.metadata.annotations.opkit\.dev/conversion-data}"
        )
        .await,
        r#"nginx:1.27 {"spec":{"image":{"pullPolicy":"Always"}}}"#
    );
    demo.apply(&SHOP_V1.replace("replicas: 2", "replicas: 3"))
        .await;
    demo.wait_jsonpath("deployment/shop", "{.spec.replicas}", "3")
        .await;
    assert_eq!(
        demo.jsonpath(v2, "{.spec.scale.replicas} {.spec.image.pullPolicy}")
            .await,
        "3 Always"
    );
    assert_eq!(
        demo.jsonpath("deployment/shop", pull_policy).await,
        "Always"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_writes_nothing_on_a_resync_whichever_version_wrote_its_webapps() {
    let mut demo = demo().await;
    demo.apply(SHOP_V1).await;
    demo.apply(
        "apiVersion: example.com/v2
kind: WebApp
metadata:
  name: blog
spec:
  scale: {replicas: 1}
  image: {repository: nginx, tag: '1.27', pullPolicy: IfNotPresent}
",
    )
    .await;
    for name in ["webapp/shop", "webapp/blog"] {
        demo.wait_until(name, "condition=Ready").await;
    }
    demo.stop().await;
    demo.env.reset_stats();
    let running = opkit::Manager::new(demo.env.client())
        .operator::<opkit_examples::webapp::types::WebApp>()
        .start();
    reconciled(&running, "webapp", 2).await;
    let stats = demo.env.stats();
    assert_eq!(stats.writes(), 0, "the restarted operator wrote: {stats:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrate_command_moves_every_webapp_to_v2() {
    let env = crate::support::env().await;
    // WebApps written while v1 was the only version are stored in v1.
    env.install_crd::<v1::WebApp>().await.expect("v1 installs");
    let kubectl = Kubectl::new(&env);
    for name in ["a", "b", "c"] {
        kubectl
            .apply(&SHOP_V1.replace("name: shop", &format!("name: {name}")))
            .await;
    }
    let conversion = crate::support::serve_versions(&env, versions()).await;
    let stored = r#"jsonpath={.status.storedVersions}"#;
    assert_eq!(
        kubectl
            .ok(&["get", "crd", "webapps.example.com", "-o", stored])
            .await,
        r#"["v1","v2"]"#
    );
    env.reset_stats();
    let kubeconfig = kubectl.kubeconfig();
    let cli = <opkit::app::Cli as clap::Parser>::parse_from([
        "webapp-operator".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "migrate".as_ref(),
    ]);
    app()
        .execute_until(cli, std::future::ready(()))
        .await
        .expect("migrated");
    assert_eq!(env.stats().count_code("patch", "webapps", 200), 3);
    assert_eq!(
        kubectl
            .ok(&["get", "crd", "webapps.example.com", "-o", stored])
            .await,
        r#"["v2"]"#
    );
    // v1 may now leave the CRD; the WebApps read in v2.
    assert_eq!(
        kubectl
            .jsonpath(
                "webapps.v2.example.com/b",
                "{.spec.image.repository} {.spec.scale.replicas}"
            )
            .await,
        "nginx 2"
    );
    conversion.shutdown().await;
}
