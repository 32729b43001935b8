//! The AppConfig operator with the real kubectl: rendering per environment, rolling the
//! Deployments that use the ConfigMap only when its data changes, refusal of bad input.

use opkit_examples::appconfig::*;

use std::collections::BTreeMap;

use opkit_envtest::TestEnv;
use types::{AppConfig, AppConfigSpec, Environment};

use super::support::{Kubectl, Served, eventually, operator_client, reconciled};

fn app_config(config: &str) -> String {
    format!(
        "apiVersion: config.example.com/v1
kind: AppConfig
metadata:
  name: shop
spec:
  application: shop
  environment: prod
  config:
{config}"
    )
}

const CONFIG: &str = "    LOG_LEVEL: debug
    prod.LOG_LEVEL: warn
    dev.FEATURE_PREVIEW: \"true\"
    DATABASE_URL: postgres://db.${ENVIRONMENT}.svc/${APPLICATION}
";

/// A Deployment whose pod template reads `shop-config` as `how`, or nothing.
fn deployment(name: &str, how: &str) -> String {
    let (container_extra, volumes) = match how {
        "envFrom" => (
            "          envFrom:\n            - configMapRef:\n                name: shop-config\n",
            "",
        ),
        "env" => (
            "          env:\n            - name: LOG_LEVEL\n              valueFrom:\n                configMapKeyRef:\n                  name: shop-config\n                  key: LOG_LEVEL\n",
            "",
        ),
        "volume" => (
            "",
            "      volumes:\n        - name: config\n          projected:\n            sources:\n              - configMap:\n                  name: shop-config\n",
        ),
        _ => (
            "          envFrom:\n            - configMapRef:\n                name: unrelated\n",
            "",
        ),
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: app
          image: nginx:1.27
{container_extra}{volumes}"
    )
}

struct Demo {
    env: TestEnv,
    kubectl: Kubectl,
    running: Option<opkit::Running>,
}

impl Demo {
    async fn start() -> Demo {
        let env = TestEnv::start().await.expect("embedded API server starts");
        env.install_crd::<AppConfig>().await.expect("CRD installs");
        let kubectl = Kubectl::new(&env);
        let running = Some(
            opkit::Manager::new(operator_client(&env, &app::app()).await)
                .operator::<AppConfig>()
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

    /// The checksum annotation and generation of a Deployment.
    async fn stamp(&self, name: &str) -> (String, String) {
        let path = "{.spec.template.metadata.annotations.checksum\\.config\\.example\\.com/shop-config} {.metadata.generation}";
        let out = self
            .kubectl
            .jsonpath(&format!("deployment/{name}"), path)
            .await;
        let (stamp, generation) = out.rsplit_once(' ').unwrap_or_default();
        (stamp.to_owned(), generation.to_owned())
    }

    /// Waits until the AppConfig's status describes its current generation.
    async fn observed(&self) {
        let generation = self
            .kubectl
            .jsonpath("appconfig/shop", "{.metadata.generation}")
            .await;
        self.kubectl
            .wait_for(
                &[
                    "get",
                    "appconfig",
                    "shop",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].observedGeneration}",
                ],
                &generation,
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_is_rendered_for_the_environment() {
    let mut demo = Demo::start().await;
    demo.kubectl.apply(&app_config(CONFIG)).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "appconfig/shop",
            "--timeout=30s",
        ])
        .await;
    let data = demo
        .kubectl
        .jsonpath("configmap/shop-config", "{.data}")
        .await;
    let data: BTreeMap<String, String> = serde_json::from_str(&data).expect("data is JSON");
    assert_eq!(
        data,
        BTreeMap::from([
            ("LOG_LEVEL".to_owned(), "warn".to_owned()),
            (
                "DATABASE_URL".to_owned(),
                "postgres://db.prod.svc/shop".to_owned()
            ),
        ])
    );
    let owner = demo
        .kubectl
        .jsonpath(
            "configmap/shop-config",
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
        )
        .await;
    assert_eq!(owner, "AppConfig/shop");

    // Deleting the AppConfig takes its ConfigMap with it.
    demo.kubectl.ok(&["delete", "appconfig", "shop"]).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=delete",
            "configmap/shop-config",
            "--timeout=30s",
        ])
        .await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_roll_when_the_data_changes_and_only_then() {
    let mut demo = Demo::start().await;
    for (name, how) in [
        ("web", "envFrom"),
        ("worker", "env"),
        ("static", "volume"),
        ("other", "none"),
    ] {
        demo.kubectl.apply(&deployment(name, how)).await;
    }
    demo.kubectl.apply(&app_config(CONFIG)).await;
    demo.observed().await;
    demo.kubectl
        .wait_for(
            &[
                "get",
                "appconfig",
                "shop",
                "-o",
                "jsonpath={.status.deployments}",
            ],
            r#"["static","web","worker"]"#,
        )
        .await;
    // Creating the ConfigMap rolls nothing: the pods read it when they start.
    for name in ["web", "worker", "static", "other"] {
        assert_eq!(demo.stamp(name).await, (String::new(), "1".to_owned()));
    }

    // No-op changes: a label, a value the prod override hides, a restart of the operator.
    demo.kubectl
        .ok(&["label", "appconfig", "shop", "team=checkout"])
        .await;
    let hidden = CONFIG.replace("LOG_LEVEL: debug", "LOG_LEVEL: info");
    demo.kubectl.apply(&app_config(&hidden)).await;
    demo.observed().await;
    demo.stop().await;
    let restarted = opkit::Manager::new(operator_client(&demo.env, &app::app()).await)
        .operator::<AppConfig>()
        .start();
    // The restarted operator's first reconcile of shop is complete (it would have rolled first).
    reconciled(&restarted, "appconfig", 1).await;
    demo.running = Some(restarted);
    for name in ["web", "worker", "static", "other"] {
        assert_eq!(
            demo.stamp(name).await,
            (String::new(), "1".to_owned()),
            "{name} was rolled although the data did not change"
        );
    }

    // A change of the rendered data rolls every user, once, and leaves the others alone.
    let changed = CONFIG.replace("prod.LOG_LEVEL: warn", "prod.LOG_LEVEL: error");
    demo.kubectl.apply(&app_config(&changed)).await;
    demo.observed().await;
    let hash = demo
        .kubectl
        .jsonpath("appconfig/shop", "{.status.configHash}")
        .await;
    for name in ["web", "worker", "static"] {
        let want = (hash.clone(), "2".to_owned());
        eventually(&format!("{name} to be rolled to {hash}"), || async {
            (demo.stamp(name).await == want).then_some(())
        })
        .await;
    }
    assert_eq!(demo.stamp("other").await, (String::new(), "1".to_owned()));
    let level = demo
        .kubectl
        .jsonpath("configmap/shop-config", "{.data.LOG_LEVEL}")
        .await;
    assert_eq!(level, "error");
    demo.kubectl
        .ok(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await;
    let events = demo
        .kubectl
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "reason=RolledDeployment",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(events.lines().count(), 3, "{events}");

    // A restart after the roll changes nothing.
    demo.stop().await;
    let client = operator_client(&demo.env, &app::app()).await;
    demo.env.reset_stats();
    let running = opkit::Manager::new(client).operator::<AppConfig>().start();
    reconciled(&running, "appconfig", 1).await;
    let stats = demo.env.stats();
    assert_eq!(stats.writes(), 0, "the restarted operator wrote: {stats:?}");
    assert_eq!(demo.stamp("web").await, (hash, "2".to_owned()));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_application_retires_its_old_configmap() {
    let mut demo = Demo::start().await;
    demo.kubectl.apply(&app_config(CONFIG)).await;
    demo.observed().await;
    let renamed = app_config(CONFIG).replace("application: shop", "application: store");
    demo.kubectl.apply(&renamed).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=delete",
            "configmap/shop-config",
            "--timeout=30s",
        ])
        .await;
    demo.kubectl.ok(&["get", "configmap", "store-config"]).await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_appconfigs_are_refused_or_reported() {
    let mut demo = Demo::start().await;
    let cases = [
        (
            "environment: prod",
            "environment: production",
            "spec.environment",
        ),
        (
            "application: shop",
            "application: Shop_App",
            "spec.application",
        ),
        ("    LOG_LEVEL: debug", "    LOG_LEVEL: 3", "spec.config"),
    ];
    for (from, to, field) in cases {
        let stderr = demo
            .kubectl
            .refused(&app_config(CONFIG).replace(from, to))
            .await;
        assert!(
            stderr.contains(field),
            "the error does not name {field}: {stderr}"
        );
    }

    // A typo in a variable is caught before anything is written.
    let typo = CONFIG.replace("${ENVIRONMENT}", "${ENVIROMENT}");
    demo.kubectl.apply(&app_config(&typo)).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=Degraded",
            "appconfig/shop",
            "--timeout=30s",
        ])
        .await;
    let message = demo
        .kubectl
        .jsonpath(
            "appconfig/shop",
            "{.status.conditions[?(@.type==\"Ready\")].message}",
        )
        .await;
    assert!(message.contains("ENVIROMENT"), "{message}");
    let out = demo
        .kubectl
        .run(&["get", "configmap", "shop-config"], None)
        .await;
    assert!(
        !out.status.success(),
        "a ConfigMap was written from an invalid template"
    );
    let warnings = demo
        .kubectl
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "type=Warning",
            "-o",
            "name",
        ])
        .await;
    assert!(!warnings.is_empty(), "no Warning event");

    // Fixing it converges.
    demo.kubectl.apply(&app_config(CONFIG)).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "appconfig/shop",
            "--timeout=30s",
        ])
        .await;
    demo.stop().await;
}

fn spec(environment: Environment, config: &[(&str, &str)]) -> AppConfigSpec {
    AppConfigSpec {
        application: "shop".to_owned(),
        environment,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn overrides_apply_to_their_environment_only() {
    let config = [
        ("LOG_LEVEL", "debug"),
        ("prod.LOG_LEVEL", "warn"),
        ("staging.REPLICAS", "2"),
        ("app.properties", "x=1"),
    ];
    let prod = render::render(&spec(Environment::Prod, &config)).expect("renders");
    assert_eq!(prod.get("LOG_LEVEL").map(String::as_str), Some("warn"));
    assert!(!prod.contains_key("REPLICAS") && !prod.contains_key("staging.REPLICAS"));
    assert_eq!(prod.get("app.properties").map(String::as_str), Some("x=1"));
    let staging = render::render(&spec(Environment::Staging, &config)).expect("renders");
    assert_eq!(staging.get("LOG_LEVEL").map(String::as_str), Some("debug"));
    assert_eq!(staging.get("REPLICAS").map(String::as_str), Some("2"));
    assert_ne!(render::hash(&prod), render::hash(&staging));
}

#[test]
fn variables_are_substituted_and_escapable() {
    let config = [("URL", "${APPLICATION}.${ENVIRONMENT}:$$${HOME} costs $5")];
    let out = render::render(&spec(Environment::Dev, &config)).expect("renders");
    assert_eq!(
        out.get("URL").map(String::as_str),
        Some("shop.dev:$${HOME} costs $5")
    );
    for bad in ["${HOME}", "${ENVIRONMENT", "${}"] {
        assert!(
            render::render(&spec(Environment::Dev, &[("X", bad)])).is_err(),
            "{bad}"
        );
    }
    assert!(render::render(&spec(Environment::Dev, &[("dev.", "x")])).is_err());
    assert!(render::render(&spec(Environment::Dev, &[("a b", "x")])).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_example_appconfig_serves_the_sample_until_stopped() {
    let served = Served::start(app::app());
    served.wait_exists("appconfig/shop").await;
    let kubectl = &served.kubectl;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "appconfig/shop",
            "--timeout=30s",
        ])
        .await;
    let level = kubectl
        .jsonpath("configmap/shop-config", "{.data.LOG_LEVEL}")
        .await;
    assert_eq!(level, "warn");
    kubectl
        .ok(&["rollout", "status", "deployment/shop", "--timeout=30s"])
        .await;
    served.stop().await;
}

#[test]
fn the_manifests_carry_the_validation_and_least_privilege() {
    let (_, rbac) =
        crate::support::manifests(&app::app(), &["- dev\n", "- prod\n", "maxLength: 56"], &[]);
    assert!(!rbac.contains("secrets"), "{rbac}");
}
