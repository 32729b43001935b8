//! The EcommercePlatform and PostgreSQL operators in one process with the real kubectl: the
//! `production-store` sample, ordering behind readiness gates, environment defaults, the cache
//! toggle, monitoring with and without the Prometheus Operator's CRDs, refusal and deletion.

use opkit_examples::platform::*;

use monitoring::{PrometheusRule, ServiceMonitor};
use opkit_envtest::TestEnv;
use opkit_examples::postgresql::types::PostgreSQL;
use types::EcommercePlatform;

use super::support::{Demo, Kubectl, Served, condition, env, slow_env};

const PRODUCTION_STORE: &str = include_str!("../../examples/platform/sample.yaml");

fn platform(name: &str, environment: &str, extra: &str) -> String {
    format!(
        "apiVersion: platform.example.com/v1
kind: EcommercePlatform
metadata:
  name: {name}
spec:
  environment: {environment}
  frontend:
    image: shop/frontend:1.0
  backend:
    image: shop/backend:1.0
{extra}"
    )
}

async fn start(env: TestEnv) -> Demo {
    env.install_crd::<EcommercePlatform>()
        .await
        .expect("CRD installs");
    env.install_crd::<PostgreSQL>().await.expect("CRD installs");
    Demo::start(env, &app::app(), |m| {
        m.operator::<EcommercePlatform>().operator::<PostgreSQL>()
    })
    .await
}

async fn demo() -> Demo {
    start(env().await).await
}

async fn ready(demo: &Demo, name: &str) {
    demo.wait_until(&format!("ecommerceplatform/{name}"), "condition=Ready")
        .await;
}

/// Everything the `production-store` sample owns, as `kubectl get all` lists it.
async fn production_store_objects(kubectl: &Kubectl) -> String {
    kubectl
        .ok(&[
            "get",
            "all",
            "-l",
            "platform=production-store",
            "-n",
            "ecommerce-prod",
        ])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_component_runs_in_a_restricted_namespace() {
    let mut demo = demo().await;
    demo.restricted_namespace("locked").await;
    let out = demo
        .run(
            &["apply", "-n", "locked", "-f", "-"],
            Some(&platform("shop", "development", "")),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Pod Security admitted the pods of every workload (a refused one would leave its
    // ReplicaSet failing and the platform not Ready).
    let pods = demo
        .ready_with_pods("locked", "ecommerceplatform/shop")
        .await;
    assert!(pods.len() >= 3, "{pods:?}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_store_sample_converges() {
    let mut demo = demo().await;
    demo.apply(PRODUCTION_STORE).await;
    demo.ok(&[
        "wait",
        "--for=condition=Ready",
        "ecommerceplatform/production-store",
        "-n",
        "ecommerce-prod",
        "--timeout=60s",
    ])
    .await;

    let all = production_store_objects(&demo).await;
    for object in [
        "deployment.apps/production-store-frontend",
        "deployment.apps/production-store-backend",
        "deployment.apps/production-store-cache",
        "statefulset.apps/production-store-db",
        "service/production-store-db ",
        "service/production-store-frontend",
        "cronjob.batch/production-store-db-backup",
    ] {
        assert!(all.contains(object), "{object} is missing from:\n{all}");
    }
    let store = "ecommerceplatform/production-store";
    let db = demo
        .jsonpath_in(
            "ecommerce-prod",
            "postgresql/production-store-db",
            "{.spec.replicas} {.spec.storage} {.spec.version} {.spec.backup.enabled}",
        )
        .await;
    assert_eq!(
        db, "3 500Gi 14 true",
        "production defaults, with the user's storage and version"
    );
    let replicas = demo
        .jsonpath_in(
            "ecommerce-prod",
            "deployment/production-store-frontend",
            "{.spec.replicas}",
        )
        .await;
    assert_eq!(replicas, "5");
    let endpoints = demo
        .jsonpath_in("ecommerce-prod", store, "{.status.endpoints}")
        .await;
    let endpoints: serde_json::Value = serde_json::from_str(&endpoints).expect("endpoints JSON");
    assert_eq!(endpoints["database"], "production-store-db:5432");
    assert_eq!(endpoints["backend"], "http://production-store-backend:8080");
    let phase = demo
        .jsonpath_in("ecommerce-prod", store, "{.status.phase}")
        .await;
    assert_eq!(phase, "Running");
    for component in ["Database", "Cache", "Backend", "Frontend", "Ingress"] {
        let status = demo
            .jsonpath_in("ecommerce-prod", store, &condition(component, "status"))
            .await;
        assert_eq!(status, "True", "{component}");
    }
    let monitoring = demo
        .jsonpath_in("ecommerce-prod", store, &condition("Monitoring", "reason"))
        .await;
    assert_eq!(
        monitoring, "Skipped",
        "no Prometheus Operator CRDs on this server"
    );
    let ingress = demo
        .jsonpath_in(
            "ecommerce-prod",
            "ingress/production-store",
            "{.spec.rules[0].http.paths[*].path}",
        )
        .await;
    assert_eq!(ingress, "/api /");
    let secret = demo.jsonpath_in("ecommerce-prod", "deployment/production-store-backend", "{.spec.template.spec.containers[0].env[?(@.name==\"DATABASE_PASSWORD\")].valueFrom.secretKeyRef.name}",
    )
    .await;
    assert_eq!(secret, "production-store-db-credentials");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_waits_for_the_database() {
    let mut demo = start(slow_env().await).await;
    demo.apply(&platform("shop", "development", "")).await;
    // Past the simulated delay: the held database settled unready, the cache is ready.
    demo.hold_unready("shop-db").await;
    demo.wait_jsonpath(
        "ecommerceplatform/shop",
        &condition("Cache", "status"),
        "True",
    )
    .await;
    // The reconcile that wrote Cache=True had decided on the backend with the database unready.
    assert!(
        !demo.exists("deployment/shop-backend").await,
        "the backend started before the database"
    );
    assert!(!demo.exists("deployment/shop-frontend").await);
    let backend = demo
        .jsonpath("ecommerceplatform/shop", &condition("Backend", "reason"))
        .await;
    assert_eq!(backend, "WaitingForDependencies");
    assert!(
        !demo.exists("ingress/shop").await,
        "the Ingress opened before the frontend"
    );

    demo.release("shop-db").await;
    demo.wait_exists("deployment/shop-backend").await;
    ready(&demo, "shop").await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_give_defaults_and_user_values_win() {
    let mut demo = demo().await;
    demo.apply(&platform("dev", "development", "")).await;
    demo.apply(&platform("stage", "staging", "")).await;
    demo.apply(&platform(
        "custom",
        "production",
        "  database:\n    replicas: 1\n    storage: 20Gi\n    backups: false\n    version: \"16\"\n",
    ))
    .await;
    for name in ["dev", "stage", "custom"] {
        ready(&demo, name).await;
    }
    let spec = "{.spec.replicas} {.spec.storage} {.spec.backup.enabled}";
    assert_eq!(
        demo.jsonpath("postgresql/dev-db", spec).await,
        "1 10Gi false"
    );
    assert_eq!(
        demo.jsonpath("postgresql/stage-db", spec).await,
        "2 50Gi true"
    );
    assert_eq!(
        demo.jsonpath("postgresql/custom-db", spec).await,
        "1 20Gi false"
    );
    assert_eq!(
        demo.jsonpath("deployment/stage-backend", "{.spec.replicas}")
            .await,
        "2"
    );
    assert_eq!(
        demo.jsonpath("deployment/custom-frontend", "{.spec.replicas}")
            .await,
        "3"
    );
    let env = demo
        .jsonpath(
            "deployment/stage-backend",
            "{.spec.template.spec.containers[0].env[?(@.name==\"ENVIRONMENT\")].value}",
        )
        .await;
    assert_eq!(env, "staging");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_the_cache_deletes_redis() {
    let mut demo = demo().await;
    demo.apply(&platform("shop", "development", "")).await;
    ready(&demo, "shop").await;
    let redis = "{.spec.template.spec.containers[0].env[?(@.name==\"REDIS_URL\")].value}";
    assert_eq!(
        demo.jsonpath("deployment/shop-backend", redis).await,
        "redis://shop-cache:6379"
    );

    demo.patch(
        "ecommerceplatform/shop",
        r#"{"spec":{"cache":{"enabled":false}}}"#,
    )
    .await;
    demo.wait_gone("deployment/shop-cache").await;
    demo.wait_gone("service/shop-cache").await;
    demo.wait_jsonpath("deployment/shop-backend", redis, "")
        .await;
    demo.wait_jsonpath(
        "ecommerceplatform/shop",
        &condition("Cache", "reason"),
        "Disabled",
    )
    .await;
    ready(&demo, "shop").await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_objects_exist_only_where_their_crds_do() {
    let env = env().await;
    env.install_crd::<ServiceMonitor>()
        .await
        .expect("CRD installs");
    env.install_crd::<PrometheusRule>()
        .await
        .expect("CRD installs");
    let mut demo = start(env).await;
    demo.apply(&platform("shop", "production", "")).await;
    ready(&demo, "shop").await;
    let reason = demo
        .jsonpath("ecommerceplatform/shop", &condition("Monitoring", "reason"))
        .await;
    assert_eq!(reason, "Configured");
    let selector = demo
        .jsonpath("servicemonitor/shop", "{.spec.selector.matchLabels}")
        .await;
    assert!(selector.contains("backend"), "{selector}");
    let severity = demo
        .jsonpath(
            "prometheusrule/shop",
            "{.spec.groups[0].rules[0].labels.severity}",
        )
        .await;
    assert_eq!(severity, "critical");
    assert_eq!(
        demo.jsonpath("prometheusrule/shop", "{.metadata.labels.platform}")
            .await,
        "shop"
    );

    demo.patch(
        "ecommerceplatform/shop",
        r#"{"spec":{"monitoring":{"enabled":false}}}"#,
    )
    .await;
    demo.wait_gone("servicemonitor/shop").await;
    demo.wait_gone("prometheusrule/shop").await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_platforms_are_refused() {
    let mut demo = demo().await;
    let cases = [
        (platform("bad", "prod", ""), "spec.environment"),
        (
            platform("bad", "production", "")
                .replace("image: shop/frontend:1.0", "replicas: 0\n    image: x"),
            "spec.frontend.replicas",
        ),
        (
            platform("bad", "production", "  database:\n    storage: 10GB\n"),
            "spec.database.storage",
        ),
        (
            platform("bad", "production", "  database:\n    version: \"9\"\n"),
            "spec.database.version",
        ),
        (
            platform("bad", "production", "  database:\n    type: oracle\n"),
            "spec.database.type",
        ),
    ];
    for (manifest, field) in cases {
        demo.refused_naming(&manifest, field).await;
    }
    demo.apply(&platform(
        "legacy",
        "production",
        "  database:\n    type: mysql\n",
    ))
    .await;
    demo.wait_degraded("ecommerceplatform/legacy", "InvalidSpec")
        .await;
    assert!(
        !demo.exists("postgresql/legacy-db").await,
        "a database was created for an unsupported type"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_platform_removes_every_component() {
    let mut demo = demo().await;
    demo.apply(&platform("shop", "staging", "")).await;
    ready(&demo, "shop").await;
    demo.ok(&["delete", "ecommerceplatform", "shop"]).await;
    for what in [
        "postgresql/shop-db",
        "statefulset/shop-db",
        "secret/shop-db-credentials",
        "cronjob/shop-db-backup",
        "deployment/shop-backend",
        "deployment/shop-frontend",
        "deployment/shop-cache",
        "service/shop-frontend",
        "ingress/shop",
    ] {
        demo.wait_gone(what).await;
    }
    let all = demo.run(&["get", "all", "-l", "platform=shop"], None).await;
    let stdout = String::from_utf8_lossy(&all.stdout);
    assert!(stdout.trim().is_empty(), "left behind:\n{stdout}");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_example_platform_serves_the_sample_until_stopped() {
    let served = Served::start(app::app());
    served.wait_exists("namespace/ecommerce-prod").await;
    let kubectl = &served.kubectl;
    kubectl
        .wait_for(
            &[
                "get",
                "ecommerceplatform",
                "production-store",
                "-n",
                "ecommerce-prod",
                "-o",
                "jsonpath={.status.phase}",
            ],
            "Running",
        )
        .await;
    let all = production_store_objects(kubectl).await;
    assert!(
        all.contains("statefulset.apps/production-store-db"),
        "{all}"
    );
    served.stop().await;
}

#[test]
fn the_manifests_carry_both_operators() {
    crate::support::manifests(
        &app::app(),
        &[
            "name: ecommerceplatforms.platform.example.com",
            "name: postgresqls.database.example.com",
            "- development\n",
            "- production\n",
            "- mysql\n",
        ],
        &[
            "- postgresqls",
            "- ingresses",
            "- servicemonitors",
            "- prometheusrules",
            "- statefulsets",
        ],
    );
}
