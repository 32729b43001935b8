//! The WebApp example's admission policies through the real kubectl: each
//! validating policy denies with its message, the mutating one's changes are stored, warnings
//! are printed.

use super::app;
use super::policy::WebAppPolicy;
use crate::support::Served;

const DENIED: &str = "admission webhook \"validate.webapps.example.com\" denied the request";

fn webapp(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_meets_the_webapp_admission_policies() {
    let served = Served::start(app::with_policy(
        WebAppPolicy::from_env().max_production_replicas(5),
    ));
    served.wait_exists("webapp/my-webapp").await;
    let kubectl = &served.kubectl;
    // The sample went through the mutating webhook.
    assert_eq!(
        kubectl
            .jsonpath("webapp/my-webapp", "{.metadata.labels}")
            .await,
        r#"{"managed-by":"webapp-operator","version":"v1"}"#
    );
    kubectl.ok(&["create", "namespace", "production"]).await;

    let limits = "  resources:\n    limits:\n      cpu: 500m\n      memory: 128Mi\n";
    let too_many = webapp(
        "big",
        "production",
        &format!("  replicas: 6\n  image: nginx:1.27\n{limits}"),
    );
    let replicas = format!(
        "Error from server (Forbidden): error when creating \"STDIN\": {DENIED}: production workloads cannot exceed 5 replicas"
    );
    kubectl.refused_naming(&too_many, &replicas).await;

    let foreign = webapp(
        "foreign",
        "default",
        "  replicas: 1\n  image: quay.io/someone/app:1\n",
    );
    let registry = format!(
        "{DENIED}: images must come from an approved registry (docker.io/library/); quay.io/someone/app:1 does not"
    );
    kubectl.refused_naming(&foreign, &registry).await;

    let unlimited = webapp(
        "unlimited",
        "production",
        "  replicas: 2\n  image: nginx:1.27\n",
    );
    let limits_required = format!("{DENIED}: resource limits required in production");
    kubectl.refused_naming(&unlimited, &limits_required).await;

    // Outside production the same WebApp is fine; an unpinned image is allowed with a warning.
    let out = kubectl
        .run(
            &["apply", "-f", "-"],
            Some(&webapp(
                "relaxed",
                "default",
                "  replicas: 2\n  image: nginx\n",
            )),
        )
        .await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: image nginx has no tag or digest"),
        "{stderr}"
    );

    // A compliant production WebApp is stored with the restricted security context, and the
    // operator hands it and the limits to the container.
    let good = webapp(
        "good",
        "production",
        &format!("  replicas: 2\n  image: nginx:1.27\n{limits}"),
    );
    kubectl.apply(&good).await;
    assert_eq!(
        kubectl
            .ok(&[
                "get",
                "webapp/good",
                "-n",
                "production",
                "-o",
                "jsonpath={.spec.securityContext.runAsUser} {.spec.securityContext.runAsNonRoot} {.spec.securityContext.allowPrivilegeEscalation}",
            ])
            .await,
        "1000 true false"
    );
    kubectl
        .wait_for(
            &[
                "get",
                "deployment/good",
                "-n",
                "production",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].securityContext.runAsUser} {.spec.template.spec.containers[0].resources.limits.cpu}",
            ],
            "1000 500m",
        )
        .await;

    // Updates are reviewed too: scaling past the cap is refused, and the object is unchanged.
    let out = kubectl
        .run(
            &[
                "patch",
                "webapps.v1.example.com/good",
                "-n",
                "production",
                "--type=merge",
                "-p",
                r#"{"spec":{"replicas":9}}"#,
            ],
            None,
        )
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("production workloads cannot exceed 5 replicas")
    );
    assert_eq!(
        kubectl
            .ok(&[
                "get",
                "webapps.v1.example.com/good",
                "-n",
                "production",
                "-o",
                "jsonpath={.spec.replicas}"
            ])
            .await,
        "2"
    );
    served.stop().await;
}

#[tokio::test]
async fn the_webhooks_subcommand_prints_the_webapp_configurations() {
    let app = app::app();
    let yaml = app.webhooks_yaml("webapp-system", true).expect("YAML");
    assert!(yaml.contains("kind: MutatingWebhookConfiguration"));
    assert!(yaml.contains("kind: ValidatingWebhookConfiguration"));
    assert!(yaml.contains("path: /validate-example-com-v2-webapp"));
    assert!(yaml.contains("path: /mutate-example-com-v2-webapp"));
    assert!(yaml.contains("# webapps.example.com at /convert-example-com-webapp"));
    assert!(yaml.contains("cert-manager.io/inject-ca-from: webapp-system/webapp-operator-webhook"));
}
