//! The deploy artifacts with the real tools on an embedded API server: the Helm chart (`helm lint`,
//! `helm template`) and the kustomize trees `config/<operator>/default`, each accepted by a
//! server-side dry run and a real apply, then the deployment guide's check
//! `kubectl wait --for=condition=Available deployment/<operator> -n <namespace>`.
//!
//! A cluster that runs these manifests has cert-manager and the Prometheus Operator installed; the
//! tests install stand-in CRDs for their kinds first, as a user installs the real ones first.

use std::path::PathBuf;

use clap::Parser;
use opkit_envtest::TestEnv;
use serde::Deserialize;

use super::manifests::{PLATFORM_NAMESPACE, WEBAPP_NAMESPACE};
use super::support::Kubectl;
use opkit_examples::webapp::policy;
use opkit_examples::webapp::types::WebApp;

const CHART: &str = "charts/webapp-operator";

/// Every optional part of the chart switched on.
const ALL_OPTIONS: &str = "webhook.certManager.enabled=true,metrics.serviceMonitor.enabled=true,\
                           metrics.prometheusRule.enabled=true";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs helm from the repository root; fails the test unless it succeeds; returns stdout.
async fn helm(args: &[&str]) -> String {
    helm_on(None, args).await
}

/// [`helm`] against the cluster of `kubectl`.
async fn helm_on(kubectl: Option<&Kubectl>, args: &[&str]) -> String {
    let helm = opkit_envtest::tools::helm().expect("helm is available");
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let shown = args.join(" ");
    let kubeconfig = kubectl.map(|k| k.kubeconfig());
    let out = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(helm);
        command.args(&args).current_dir(repository());
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        command.output().expect("helm runs")
    })
    .await
    .expect("helm task");
    assert!(
        out.status.success(),
        "helm {shown} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` of the chart as release `webapp-operator`, with its CRDs, and `--set values`.
async fn render(values: Option<&str>) -> String {
    let mut args = vec![
        "template",
        "webapp-operator",
        CHART,
        "--namespace",
        WEBAPP_NAMESPACE,
        "--include-crds",
    ];
    if let Some(values) = values {
        args.extend(["--set", values]);
    }
    helm(&args).await
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kinds(yaml: &str) -> Vec<String> {
    let mut kinds: Vec<String> = documents(yaml)
        .iter()
        .filter_map(|doc| doc["kind"].as_str().map(str::to_owned))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Every Deployment's container arguments are a command line the operator binary accepts.
fn assert_operator_accepts_args(yaml: &str) {
    let deployments: Vec<_> = documents(yaml)
        .into_iter()
        .filter(|doc| doc["kind"] == "Deployment")
        .collect();
    assert!(!deployments.is_empty(), "no Deployment in:\n{yaml}");
    for deployment in deployments {
        let args: Vec<String> = serde_json::from_value(
            deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .expect("the container has args");
        let command_line = std::iter::once("operator".to_owned()).chain(args.iter().cloned());
        if let Err(error) = opkit::app::Cli::try_parse_from(command_line) {
            panic!(
                "the operator refuses the args of Deployment {}: {args:?}\n{error}",
                deployment["metadata"]["name"]
            );
        }
    }
}

/// Stand-ins for the CRDs of cert-manager and the Prometheus Operator: their kinds, specs unchecked.
fn stand_in_crds() -> String {
    [
        ("cert-manager.io", "Issuer", "issuers"),
        ("cert-manager.io", "Certificate", "certificates"),
        ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
        ("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
    ]
    .map(|(group, kind, plural)| {
        let singular = kind.to_lowercase();
        format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  names:
    kind: {kind}
    plural: {plural}
    singular: {singular}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"
        )
    })
    .join("---\n")
}

/// An embedded API server with the stand-in CRDs and `namespace`, and kubectl for it.
async fn cluster(namespace: &str) -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await.expect("embedded API server starts");
    let kubectl = prepare(&env, namespace).await;
    (env, kubectl)
}

/// Installs the stand-in CRDs and creates `namespace` on `env`; returns kubectl for it.
async fn prepare(env: &TestEnv, namespace: &str) -> Kubectl {
    let kubectl = Kubectl::new(env);
    kubectl.apply(&stand_in_crds()).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=30s",
        ])
        .await;
    // A server-side dry run of objects in a namespace that does not exist yet fails on a real
    // cluster too (the Namespace itself is only dry-run), so the namespace comes first.
    kubectl
        .ok(&["create", "namespace", namespace, "--save-config"])
        .await;
    kubectl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_lints_and_renders_every_option() {
    helm(&["lint", "--strict", CHART]).await;
    helm(&["lint", "--strict", CHART, "--set", ALL_OPTIONS]).await;

    let default = render(None).await;
    assert_eq!(
        kinds(&default),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "MutatingWebhookConfiguration",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    assert_operator_accepts_args(&default);
    // The policies' parameters live in the release's namespace, where their bindings look.
    let rendered = documents(&default);
    let binding = rendered
        .iter()
        .find(|doc| {
            doc["kind"] == "ValidatingAdmissionPolicyBinding"
                && doc["metadata"]["name"] == "webapp-policy"
        })
        .expect("the policy's binding");
    assert_eq!(binding["spec"]["paramRef"]["namespace"], WEBAPP_NAMESPACE);
    let params = rendered
        .iter()
        .find(|doc| doc["kind"] == "ConfigMap")
        .expect("the policy's parameters");
    assert_eq!(params["metadata"]["namespace"], WEBAPP_NAMESPACE);
    assert_eq!(params["data"]["registries"], "docker.io/library");
    assert!(
        !kinds(&render(Some("policies.enabled=false")).await)
            .contains(&"ValidatingAdmissionPolicy".to_string()),
        "policies.enabled=false still renders the policies"
    );
    // The templates carry the rules the operator prints, unchanged.
    let printed = documents(
        &opkit_examples::webapp::app()
            .rbac_yaml(WEBAPP_NAMESPACE)
            .expect("RBAC renders"),
    );
    let rendered = documents(&default);
    for kind in ["ClusterRole", "Role"] {
        let rules = |docs: &[serde_json::Value]| {
            docs.iter()
                .find(|doc| doc["kind"] == kind)
                .map(|doc| doc["rules"].clone())
                .unwrap_or_else(|| panic!("no {kind}"))
        };
        assert_eq!(rules(&rendered), rules(&printed), "{kind} rules differ");
    }
    let metrics_reader = |docs: &[serde_json::Value]| {
        docs.iter()
            .find(|doc| {
                doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|name| name.ends_with("-metrics-reader"))
            })
            .map(|doc| doc["rules"].clone())
    };
    assert!(
        metrics_reader(&printed).is_some(),
        "no metrics-reader role printed"
    );
    assert_eq!(metrics_reader(&rendered), metrics_reader(&printed));

    let everything = render(Some(ALL_OPTIONS)).await;
    for kind in ["Issuer", "Certificate", "ServiceMonitor", "PrometheusRule"] {
        assert!(kinds(&everything).iter().any(|k| k == kind), "no {kind}");
    }
    assert!(
        !kinds(&everything).iter().any(|k| k == "Secret"),
        "cert-manager makes the Secret"
    );
    assert_operator_accepts_args(&everything);

    let bare = render(Some(
        "leaderElection.enabled=false,webhook.enabled=false,metrics.enabled=false",
    ))
    .await;
    for kind in ["Role", "Secret", "ValidatingWebhookConfiguration"] {
        assert!(!kinds(&bare).iter().any(|k| k == kind), "{kind} rendered");
    }
    assert_operator_accepts_args(&bare);
}

/// The chart with its self-signed webhook certificate, then the operator as its pod would run:
/// the controllers, and the webhook server on the certificate from the chart's Secret, which the
/// embedded server reaches through the chart's Service and trusts through the chart's caBundle
/// (the conversion webhook through the CA the operator puts into the chart's CRD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_is_accepted_becomes_available_and_serves_its_webhooks() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let webhook_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let env = TestEnv::builder()
        .webhook_service(
            format!("{WEBAPP_NAMESPACE}/webapp-operator-webhook:443"),
            webhook_addr,
        )
        .build()
        .await
        .expect("embedded API server starts");
    let kubectl = prepare(&env, WEBAPP_NAMESPACE).await;
    let monitoring = "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true";
    for values in [None, Some(ALL_OPTIONS), Some(monitoring)] {
        let rendered = render(values).await;
        kubectl
            .ok_with(&["apply", "--dry-run=server", "-f", "-"], Some(&rendered))
            .await;
    }
    kubectl.apply(&render(Some(monitoring)).await).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Available",
            "deployment/webapp-operator",
            "-n",
            WEBAPP_NAMESPACE,
            "--timeout=60s",
        ])
        .await;

    // Without the operator's webhook server, failurePolicy Fail refuses WebApps, as on a cluster
    // whose operator pods are down.
    let sample = config("webapp/samples");
    let out = kubectl.run(&["apply", "-k", &sample], None).await;
    assert!(
        !out.status.success(),
        "a WebApp was admitted without the webhook server"
    );

    let certs = tempfile::tempdir().expect("temp dir");
    for file in ["ca.crt", "tls.crt", "tls.key"] {
        let template = format!("go-template={{{{index .data \"{file}\" | base64decode}}}}");
        let pem = kubectl
            .ok(&[
                "get",
                "secret",
                "webapp-operator-webhook-tls",
                "-n",
                WEBAPP_NAMESPACE,
                "-o",
                &template,
            ])
            .await;
        std::fs::write(certs.path().join(file), pem).expect("write the mounted file");
    }
    // As the operator's pod starts them: on the mounted certificate, with the CRD (static in
    // the chart) pointed at the release's Service and CA.
    let flags = opkit::webhook::WebhookFlags {
        webhook_port: port,
        webhook_cert_dir: Some(certs.path().to_path_buf()),
    };
    let server = opkit::webhook::Webhooks::new("webapp-operator")
        .mutator::<WebApp>(policy::WebAppDefaults)
        .conversion(opkit_examples::webapp::versions())
        .start_in_cluster(&env.client(), &flags, WEBAPP_NAMESPACE)
        .await
        .expect("the webhook server starts")
        .expect("the webhook server is served");
    // The operator as its pod runs it: as the chart's ServiceAccount, /metrics over HTTPS.
    let operator = env
        .service_account_client(WEBAPP_NAMESPACE, "webapp-operator")
        .expect("the chart's ServiceAccount");
    let metrics_certificates =
        opkit::webhook::Certificates::self_signed(&["localhost"]).expect("a certificate");
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let running = opkit::Manager::new(operator)
        .operator::<WebApp>()
        .secure_metrics_endpoint(metrics, &metrics_certificates)
        .expect("a TLS configuration")
        .start();

    kubectl.ok(&["apply", "-k", &sample]).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "webapp/my-webapp",
            "--timeout=60s",
        ])
        .await;
    let managed_by = kubectl
        .jsonpath("webapp/my-webapp", "{.metadata.labels.managed-by}")
        .await;
    assert_eq!(
        managed_by, "webapp-operator",
        "the mutating webhook did not run"
    );
    let refused = kubectl
        .refused(
            "apiVersion: example.com/v1
kind: WebApp
metadata:
  name: unapproved
spec:
  replicas: 1
  image: registry.invalid/web:1.0
  port: 80
",
        )
        .await;
    assert!(
        refused.contains(
            "ValidatingAdmissionPolicy 'webapp-policy' with binding 'webapp-policy' denied request: images must come from an approved registry"
        ),
        "{refused}"
    );

    // Scraped as the chart's ServiceMonitor scrapes: a ServiceAccount's token over HTTPS without
    // verifying the self-signed certificate; only one bound to the chart's metrics-reader role.
    let addr = running.metrics_address().expect("metrics are served");
    kubectl.ok(&["create", "namespace", "monitoring"]).await;
    for account in ["prometheus", "nosy"] {
        kubectl
            .ok(&["create", "serviceaccount", account, "-n", "monitoring"])
            .await;
    }
    kubectl
        .ok(&[
            "create",
            "clusterrolebinding",
            "prometheus-reads-webapp-operator",
            "--clusterrole=webapp-operator-metrics-reader",
            "--serviceaccount=monitoring:prometheus",
        ])
        .await;
    let scrape = |account: &'static str| {
        let kubectl = &kubectl;
        async move {
            let token = kubectl
                .ok(&["create", "token", account, "-n", "monitoring"])
                .await;
            let server = format!("--server=https://{addr}");
            let token = format!("--token={}", token.trim());
            // No cluster, user or CA of its own: what the flags say is all it knows.
            let scraper = Kubectl::unconfigured();
            std::fs::write(scraper.kubeconfig(), "apiVersion: v1\nkind: Config\n")
                .expect("an empty kubeconfig");
            scraper
                .run(
                    &[
                        &server,
                        &token,
                        "--insecure-skip-tls-verify",
                        "get",
                        "--raw",
                        "/metrics",
                    ],
                    None,
                )
                .await
        }
    };
    let scraped = scrape("prometheus").await;
    let metrics = String::from_utf8_lossy(&scraped.stdout);
    assert!(
        scraped.status.success() && metrics.contains("controller_runtime_reconcile_total"),
        "{metrics}{}",
        String::from_utf8_lossy(&scraped.stderr)
    );
    let refused = scrape("nosy").await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("Forbidden"),
        "{stderr}"
    );

    running.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_and_upgrade_keep_the_webhook_ca() {
    let env = TestEnv::start().await.expect("embedded API server starts");
    let kubectl = Kubectl::new(&env);
    let install = [
        "install",
        "ops",
        CHART,
        "--namespace",
        "operators",
        "--create-namespace",
        "--wait",
        "--timeout=60s",
    ];
    let notes = helm_on(Some(&kubectl), &install).await;
    assert!(
        notes.contains(
            "kubectl wait --for=condition=Available deployment/ops-webapp-operator -n operators"
        ),
        "NOTES.txt does not say what to run next:\n{notes}"
    );
    let before = ca(&kubectl).await;
    assert!(!before.is_empty(), "the self-signed mode made no CA");
    helm_on(
        Some(&kubectl),
        &[
            "upgrade",
            "ops",
            CHART,
            "--namespace",
            "operators",
            "--set",
            "replicaCount=3",
            "--wait",
            "--timeout=60s",
        ],
    )
    .await;
    assert_eq!(
        ca(&kubectl).await,
        before,
        "an upgrade replaced the webhook CA"
    );
    kubectl
        .wait_for(
            &[
                "get",
                "deployment/ops-webapp-operator",
                "-n",
                "operators",
                "-o",
                "jsonpath={.status.availableReplicas}",
            ],
            "3",
        )
        .await;
}

/// The CA of the chart's self-signed webhook certificate in release `ops`.
async fn ca(kubectl: &Kubectl) -> String {
    kubectl
        .ok(&[
            "get",
            "secret",
            "ops-webapp-operator-webhook-tls",
            "-n",
            "operators",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ])
        .await
}

fn config(path: &str) -> String {
    repository().join("config").join(path).display().to_string()
}

/// `config/<operator>/default` through a server-side dry run and a real apply, then available;
/// then its samples, which the operator's `webhooks` (if any) must admit.
async fn kustomize(operator: &str, namespace: &str, deployment: &str, webhooks: bool) {
    let (_env, kubectl) = cluster(namespace).await;
    let default = config(&format!("{operator}/default"));
    assert_operator_accepts_args(&kubectl.ok(&["kustomize", &default]).await);
    kubectl
        .ok(&["apply", "-k", &default, "--dry-run=server"])
        .await;
    kubectl.ok(&["apply", "-k", &default]).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Available",
            &format!("deployment/{deployment}"),
            "-n",
            namespace,
            "--timeout=60s",
        ])
        .await;
    let account = kubectl
        .ok(&[
            "get",
            &format!("deployment/{deployment}"),
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.template.spec.serviceAccountName}",
        ])
        .await;
    kubectl
        .ok(&["get", "serviceaccount", &account, "-n", namespace])
        .await;
    let samples = config(&format!("{operator}/samples"));
    let out = kubectl.run(&["apply", "-k", &samples], None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if webhooks {
        // The webhook configurations are live and name the operator's Service; no pod serves it.
        assert!(
            !out.status.success() && stderr.contains("webhook"),
            "a sample was admitted without the webhook server: {stderr}"
        );
    } else {
        assert!(out.status.success(), "the samples were refused: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_kustomization_is_accepted_and_becomes_available() {
    kustomize(
        "webapp",
        WEBAPP_NAMESPACE,
        "webapp-operator-controller-manager",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_kustomization_is_accepted_and_becomes_available() {
    kustomize(
        "platform",
        PLATFORM_NAMESPACE,
        "ecommerceplatform-operator-controller-manager",
        false,
    )
    .await;
}
