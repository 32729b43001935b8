//! The seed's part 5 integration script for the WebApp operator, run with the real kubectl
//! against an embedded API server, plus the level-triggered cases.

// The example's own formatting settings apply to these files, not the tests'.
#[rustfmt::skip]
#[path = "../../examples/webapp/app.rs"]
pub(crate) mod app;
#[rustfmt::skip]
#[path = "../../examples/webapp/reconcile.rs"]
pub(crate) mod reconcile;
#[rustfmt::skip]
#[path = "../../examples/webapp/types.rs"]
pub(crate) mod types;
#[rustfmt::skip]
#[path = "../../examples/webapp/policy.rs"]
pub(crate) mod policy;
// The admission policies' tests, beside the example's modules: a file is loaded as a module once.
#[path = "webhooks.rs"]
mod webhooks;

use std::time::{Duration, Instant};

use crate::support::{Kubectl, Served};
use opkit_envtest::TestEnv;
use types::WebApp;

/// The WebApp operator on an embedded API server, and kubectl for it.
struct Demo {
    env: TestEnv,
    kubectl: Kubectl,
    running: Option<opkit::Running>,
}

impl std::ops::Deref for Demo {
    type Target = Kubectl;

    fn deref(&self) -> &Kubectl {
        &self.kubectl
    }
}

impl Demo {
    async fn start() -> Demo {
        let env = TestEnv::start().await.expect("embedded API server starts");
        env.install_crd::<WebApp>().await.expect("CRD installs");
        let kubectl = Kubectl::new(&env);
        let running = Some(
            opkit::Manager::new(env.client())
                .operator::<WebApp>()
                .start(),
        );
        Demo {
            env,
            kubectl,
            running,
        }
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

const TEST_WEBAPP: &str = "apiVersion: example.com/v1
kind: WebApp
metadata:
  name: test-webapp
spec:
  replicas: 2
  image: nginx:alpine
  port: 80
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_integration_script_passes() {
    let mut demo = Demo::start().await;
    demo.ok_with(&["apply", "-f", "-"], Some(TEST_WEBAPP)).await;
    demo.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/test-webapp",
        "--timeout=60s",
    ])
    .await;
    demo.ok(&["get", "service", "test-webapp"]).await;
    demo.ok(&[
        "wait",
        "--for=condition=Ready",
        "webapp/test-webapp",
        "--timeout=60s",
    ])
    .await;

    demo.ok(&[
        "patch",
        "webapp",
        "test-webapp",
        "--type=merge",
        "-p={\"spec\":{\"replicas\":3}}",
    ])
    .await;
    demo.ok(&[
        "wait",
        "--for=jsonpath={.spec.replicas}=3",
        "deployment/test-webapp",
        "--timeout=60s",
    ])
    .await;
    demo.wait_for(
        &[
            "get",
            "webapp",
            "test-webapp",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        "3",
    )
    .await;
    let table = demo.ok(&["get", "webapps"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("REPLICAS") && table.contains("PHASE") && table.contains("READY"),
        "{table}"
    );
    assert!(
        table.contains("test-webapp   3          Running   3"),
        "{table}"
    );

    demo.ok(&["delete", "webapp", "test-webapp"]).await;
    demo.ok(&[
        "wait",
        "--for=delete",
        "deployment/test-webapp",
        "--timeout=60s",
    ])
    .await;
    let out = demo.run(&["get", "service", "test-webapp"], None).await;
    assert!(!out.status.success(), "the Service outlived its WebApp");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_with_a_restricted_security_context() {
    let mut demo = Demo::start().await;
    demo.ok_with(&["apply", "-f", "-"], Some(TEST_WEBAPP)).await;
    demo.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/test-webapp",
        "--timeout=60s",
    ])
    .await;
    let sc = demo
        .ok(&[
            "get",
            "deployment",
            "test-webapp",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].securityContext}",
        ])
        .await;
    let sc: serde_json::Value = serde_json::from_str(&sc).expect("securityContext JSON");
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_is_level_triggered() {
    let mut demo = Demo::start().await;
    demo.ok_with(&["apply", "-f", "-"], Some(TEST_WEBAPP)).await;
    demo.ok(&[
        "wait",
        "--for=condition=Ready",
        "webapp/test-webapp",
        "--timeout=60s",
    ])
    .await;

    demo.ok(&["scale", "deployment/test-webapp", "--replicas=5"])
        .await;
    demo.wait_for(
        &[
            "get",
            "deployment",
            "test-webapp",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        "2",
    )
    .await;

    demo.ok(&["delete", "service", "test-webapp"]).await;
    demo.wait_for(
        &[
            "get",
            "service",
            "test-webapp",
            "-o",
            "jsonpath={.metadata.name}",
        ],
        "test-webapp",
    )
    .await;

    demo.ok(&[
        "wait",
        "--for=condition=Ready",
        "webapp/test-webapp",
        "--timeout=60s",
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    demo.stop().await;
    demo.env.reset_stats();
    let running = opkit::Manager::new(demo.env.client())
        .operator::<WebApp>()
        .start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !running
        .metrics()
        .encode()
        .contains("controller_runtime_reconcile_total{controller=\"webapp\"")
    {
        assert!(
            Instant::now() < deadline,
            "the restarted operator never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = demo.env.stats();
    assert_eq!(stats.writes(), 0, "the restarted operator wrote: {stats:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_webapps_are_refused_with_the_field_path() {
    let mut demo = Demo::start().await;
    let cases = [
        ("replicas: 0\n  image: nginx", "spec.replicas"),
        ("replicas: 2", "spec.image"),
        ("replicas: \"two\"\n  image: nginx", "spec.replicas"),
    ];
    for (spec, field) in cases {
        let manifest = format!(
            "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: bad\nspec:\n  {spec}\n"
        );
        let out = demo.run(&["apply", "-f", "-"], Some(&manifest)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "accepted an invalid WebApp:\n{manifest}"
        );
        assert!(
            stderr.contains(field),
            "the error does not name {field}: {stderr}"
        );
    }
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rollout_is_explained_not_stuck_deploying() {
    let mut demo = Demo::start().await;
    demo.ok_with(&["apply", "-f", "-"], Some(TEST_WEBAPP)).await;
    demo.ok(&[
        "wait",
        "--for=condition=Ready",
        "webapp/test-webapp",
        "--timeout=60s",
    ])
    .await;
    // The embedded server's workload simulation fails this rollout as an unpullable image would.
    demo.ok(&[
        "annotate",
        "deployment/test-webapp",
        "envtest.opkit.dev/fail=true",
    ])
    .await;
    demo.ok(&[
        "patch",
        "webapp",
        "test-webapp",
        "--type=merge",
        "-p={\"spec\":{\"image\":\"nginx:does-not-exist\"}}",
    ])
    .await;
    demo.ok(&[
        "wait",
        "--for=condition=Degraded",
        "webapp/test-webapp",
        "--timeout=60s",
    ])
    .await;
    let reason = demo
        .ok(&[
            "get",
            "webapp",
            "test-webapp",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Degraded\")].reason}",
        ])
        .await;
    assert_eq!(reason, "RolloutStalled");
    let message = demo
        .ok(&[
            "get",
            "webapp",
            "test-webapp",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
        ])
        .await;
    assert!(
        message.contains("progress"),
        "Ready message does not explain the stall: {message}"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_example_webapp_serves_the_sample_until_stopped() {
    let served = Served::start(app::app());
    served.wait_exists("webapp/my-webapp").await;
    served
        .kubectl
        .wait_for(
            &[
                "get",
                "webapp",
                "my-webapp",
                "-o",
                "jsonpath={.status.phase}",
            ],
            "Running",
        )
        .await;
    assert_eq!(
        served
            .kubectl
            .jsonpath("deployment/my-webapp", "{.spec.replicas}")
            .await,
        "3"
    );
    served.stop().await;
}
