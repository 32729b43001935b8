//! The WebApp operator's integration script, run with the real kubectl
//! against an embedded API server, plus the level-triggered cases.

use opkit_examples::webapp::*;
// The admission policies' tests, beside the example's modules: a file is loaded as a module once.
#[path = "webhooks.rs"]
mod webhooks;

use crate::support::{
    Demo, Served, condition, env, eventually, operator_client, reconciled, serve_versions,
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use opkit::k8s::{ConfigMap, ObjectMeta};
use opkit::prelude::*;
use types::WebApp;

/// The WebApp operator on an embedded API server serving `v1` and `v2`, and kubectl for it.
pub async fn demo() -> Demo {
    let env = env().await;
    let conversion = serve_versions(&env, versions()).await;
    Demo::start(env, &app::app(), |m| m.operator::<WebApp>())
        .await
        .serving(conversion)
}

/// The `v1` WebApp `name`, for patches in `v1`'s shape (`webapp/...` is the preferred `v2`).
fn v1(name: &str) -> String {
    format!("webapps.v1.example.com/{name}")
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
async fn the_integration_script_passes() {
    let mut demo = demo().await;
    demo.apply(TEST_WEBAPP).await;
    demo.wait_until("deployment/test-webapp", "condition=Available")
        .await;
    demo.ok(&["get", "service", "test-webapp"]).await;
    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;

    demo.patch(&v1("test-webapp"), r#"{"spec":{"replicas":3}}"#)
        .await;
    demo.wait_until("deployment/test-webapp", "jsonpath={.spec.replicas}=3")
        .await;
    demo.wait_jsonpath("webapp/test-webapp", "{.status.readyReplicas}", "3")
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
    demo.wait_until("deployment/test-webapp", "delete").await;
    assert!(
        !demo.exists("service/test-webapp").await,
        "the Service outlived its WebApp"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_with_a_restricted_security_context() {
    let mut demo = demo().await;
    demo.apply(TEST_WEBAPP).await;
    demo.wait_until("deployment/test-webapp", "condition=Available")
        .await;
    let sc = demo
        .jsonpath(
            "deployment/test-webapp",
            "{.spec.template.spec.containers[0].securityContext}",
        )
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
async fn pod_security_admits_its_pods_and_reports_a_template_it_refuses() {
    let mut demo = demo().await;
    demo.restricted_namespace("locked").await;
    // The operator's pods meet `restricted`: admitted, and the WebApp becomes Ready.
    demo.ok_with(&["apply", "-n", "locked", "-f", "-"], Some(TEST_WEBAPP))
        .await;
    let pods = demo.ready_with_pods("locked", "webapp/test-webapp").await;
    assert_eq!(pods.len(), 2, "{pods:?}");

    // A Deployment whose pod template breaks it: kubectl warns on create, and its ReplicaSet
    // cannot create pods.
    let out = demo
        .run(
            &[
                "create",
                "deployment",
                "plain",
                "--image=nginx:1.27",
                "-n",
                "locked",
            ],
            None,
        )
        .await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"),
        "{stderr}"
    );
    demo.wait_jsonpath_in(
        "locked",
        "replicasets",
        "{.items[?(@.metadata.labels.app==\"plain\")].status.conditions[?(@.type==\"ReplicaFailure\")].reason}",
        "FailedCreate",
    )
    .await;

    // A WebApp whose security context breaks it is not Ready, and says why.
    let escalating = TEST_WEBAPP.replace("test-webapp", "escalating")
        + "  securityContext:\n    allowPrivilegeEscalation: true\n";
    demo.ok_with(&["apply", "-n", "locked", "-f", "-"], Some(&escalating))
        .await;
    demo.wait_jsonpath_in(
        "locked",
        "webapp/escalating",
        &condition("Degraded", "status"),
        "True",
    )
    .await;
    let ready = demo
        .jsonpath_in(
            "locked",
            "webapp/escalating",
            &format!(
                "{} {}",
                condition("Ready", "status"),
                condition("Degraded", "message")
            ),
        )
        .await;
    assert!(
        ready.starts_with("False FailedCreate: pods \"escalating-")
            && ready.contains("is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"),
        "{ready}"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_is_level_triggered() {
    let mut demo = demo().await;
    demo.apply(TEST_WEBAPP).await;
    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;

    demo.ok(&["scale", "deployment/test-webapp", "--replicas=5"])
        .await;
    demo.wait_jsonpath("deployment/test-webapp", "{.spec.replicas}", "2")
        .await;

    demo.ok(&["delete", "service", "test-webapp"]).await;
    demo.wait_exists("service/test-webapp").await;

    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;
    demo.stop().await;
    let client = operator_client(&demo.env, &app::app()).await;
    demo.env.reset_stats();
    let running = opkit::Manager::new(client).operator::<WebApp>().start();
    reconciled(&running, "webapp", 1).await;
    let stats = demo.env.stats();
    assert_eq!(stats.writes(), 0, "the restarted operator wrote: {stats:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_webapps_are_refused_with_the_field_path() {
    let mut demo = demo().await;
    let cases = [
        ("replicas: 0\n  image: nginx", "spec.replicas"),
        ("replicas: 2", "spec.image"),
        ("replicas: \"two\"\n  image: nginx", "spec.replicas"),
    ];
    for (spec, field) in cases {
        let manifest = format!(
            "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: bad\nspec:\n  {spec}\n"
        );
        demo.refused_naming(&manifest, field).await;
    }
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rollout_is_explained_not_stuck_deploying() {
    let mut demo = demo().await;
    demo.apply(TEST_WEBAPP).await;
    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;
    // The embedded server's workload simulation fails this rollout as an unpullable image would.
    demo.ok(&[
        "annotate",
        "deployment/test-webapp",
        "envtest.opkit.dev/fail=true",
    ])
    .await;
    demo.patch(
        &v1("test-webapp"),
        r#"{"spec":{"image":"nginx:does-not-exist"}}"#,
    )
    .await;
    demo.wait_until("webapp/test-webapp", "condition=Degraded")
        .await;
    let reason = demo
        .jsonpath("webapp/test-webapp", &condition("Degraded", "reason"))
        .await;
    assert_eq!(reason, "Stalled");
    let message = demo
        .jsonpath("webapp/test-webapp", &condition("Ready", "message"))
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
        .wait_jsonpath("webapp/my-webapp", "{.status.phase}", "Running")
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

/// A second controller on WebApp, in the same process as the operator's own: it records each
/// WebApp's image in a ConfigMap `<name>-audit`, labelled with its team.
struct Auditor {
    team: String,
}

struct Audit<'a>(&'a WebApp, &'a str);

impl Ensure for Audit<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("{}-audit", self.0.name_any())),
                labels: Some([("team".to_string(), self.1.to_string())].into()),
                ..Default::default()
            },
            data: Some([("image".to_string(), self.0.spec.image.reference())].into()),
            ..Default::default()
        }
    }
}

impl Reconcile<Auditor> for WebApp {
    async fn reconcile(&self, ctx: &Context<Self, Auditor>) -> opkit::Result<Action> {
        ctx.ensure(Audit(self, &ctx.data().team)).await?;
        Ok(Action::done())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_on_webapp_each_under_its_own_name() {
    let env = env().await;
    let conversion = serve_versions(&env, versions()).await;
    let auditor = || {
        opkit::Controller::<WebApp, _>::new(
            "webapp-auditor",
            Auditor {
                team: "security".into(),
            },
        )
        .owns::<ConfigMap>()
    };
    let both = app::app().controller(auditor());
    let mut demo = Demo::start(env, &both, |m| m.operator::<WebApp>().controller(auditor()))
        .await
        .serving(conversion);
    demo.apply(TEST_WEBAPP).await;
    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;
    demo.wait_jsonpath(
        "configmap/test-webapp-audit",
        "{.data.image}",
        "nginx:alpine",
    )
    .await;
    demo.patch(&v1("test-webapp"), r#"{"spec":{"image":"nginx:1.27"}}"#)
        .await;
    demo.wait_jsonpath("configmap/test-webapp-audit", "{.data.image}", "nginx:1.27")
        .await;
    let audit = demo
        .jsonpath(
            "configmap/test-webapp-audit",
            "{.metadata.managedFields[*].manager}",
        )
        .await;
    assert_eq!(audit, "webapp-auditor-operator");
    let deployment = demo
        .jsonpath(
            "deployment/test-webapp",
            "{.metadata.managedFields[*].manager}",
        )
        .await;
    assert!(
        deployment.contains("webapp-operator") && !deployment.contains("auditor"),
        "{deployment}"
    );
    let owner = demo
        .jsonpath(
            "configmap/test-webapp-audit",
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
        )
        .await;
    assert_eq!(owner, "WebApp/test-webapp");
    let metrics = demo.running().metrics().encode();
    for controller in ["webapp", "webapp-auditor"] {
        let total = format!(
            "controller_runtime_reconcile_total{{controller=\"{controller}\",result=\"success\"}}"
        );
        assert!(
            metrics.contains(&total),
            "no reconciles of {controller}:\n{metrics}"
        );
    }
    demo.stop().await;
}

/// Removes `verb` from the rule on `resource` of the ClusterRole `name`.
async fn revoke(client: kube::Client, name: &str, resource: &str, verb: &str) {
    let roles: Api<ClusterRole> = Api::all(client);
    let mut role = roles.get(name).await.expect("the operator's ClusterRole");
    for rule in role.rules.iter_mut().flatten() {
        if rule.resources.iter().flatten().any(|r| r == resource) {
            rule.verbs.retain(|v| v != verb);
        }
    }
    roles
        .replace(name, &Default::default(), &role)
        .await
        .expect("the ClusterRole is replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rbac_rule_is_reported_and_retried_until_granted() {
    let env = env().await;
    let conversion = serve_versions(&env, versions()).await;
    let quick = opkit::Backoff {
        base: std::time::Duration::from_millis(100),
        max: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let mut demo = Demo::start(env, &app::app(), |m| {
        m.controller(WebApp::controller(()).backoff(quick))
    })
    .await
    .serving(conversion);
    revoke(demo.client(), "webapp-operator", "services", "patch").await;
    demo.apply(TEST_WEBAPP).await;

    demo.wait_degraded("webapp/test-webapp", "Forbidden").await;
    let forbidden = r#"services "test-webapp" is forbidden: User "system:serviceaccount:operators:webapp-operator" cannot patch resource "services" in API group "" in the namespace "default""#;
    let message = demo
        .jsonpath("webapp/test-webapp", &condition("Ready", "message"))
        .await;
    assert!(message.contains(forbidden), "{message}");
    let events = demo
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "type=Warning,reason=ReconcileFailed,involvedObject.name=test-webapp",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(events.contains(forbidden), "{events}");
    let failures = "opkit_reconcile_failures_total{controller=\"webapp\",reason=\"Forbidden\"} ";
    let metrics = demo.running().metrics().encode();
    assert!(metrics.contains(failures), "{metrics}");

    // Granting the rule again is enough: nothing changes on the WebApp, the retries pick it up.
    operator_client(&demo.env, &app::app()).await;
    demo.wait_until("webapp/test-webapp", "condition=Ready")
        .await;
    demo.wait_jsonpath(
        "webapp/test-webapp",
        &condition("Degraded", "status"),
        "False",
    )
    .await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_list_rule_is_counted_for_the_watched_kind() {
    let env = env().await;
    env.install_crd::<WebApp>().await.expect("CRD installs");
    let client = operator_client(&env, &app::app()).await;
    revoke(env.client(), "webapp-operator", "services", "list").await;
    let running = opkit::Manager::new(client).operator::<WebApp>().start();
    let forbidden =
        "opkit_watch_errors_total{controller=\"webapp\",kind=\"Service\",reason=\"Forbidden\"} ";
    eventually("the refused list of Services to be counted", || async {
        running.metrics().encode().contains(forbidden).then_some(())
    })
    .await;
    assert!(!running.is_synced(), "synced without listing Services");
    running.shutdown().await;
}
