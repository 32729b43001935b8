//! The WebApp example's admission policies through the real kubectl: each rule of its
//! ValidatingAdmissionPolicy denies with its message, the parameters are live, the warning policy
//! warns, and the mutating webhook's changes are stored.

use super::app;
use super::policy::WebAppPolicy;
use crate::support::Served;

fn denied(name: &str) -> String {
    format!(
        "webapps.example.com \"{name}\" is forbidden: ValidatingAdmissionPolicy 'webapp-policy' with binding 'webapp-policy' denied request"
    )
}

fn webapp(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_meets_the_webapp_admission_policies() {
    let served = Served::start(app::with_policy(
        WebAppPolicy::new(["docker.io/library", "registry.example.com/"])
            .max_production_replicas(5),
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
        "Error from server (Forbidden): error when creating \"STDIN\": {}: production workloads cannot exceed 5 replicas",
        denied("big")
    );
    kubectl.refused_naming(&too_many, &replicas).await;

    let foreign = webapp(
        "foreign",
        "default",
        "  replicas: 1\n  image: quay.io/someone/app:1\n",
    );
    let registry = format!(
        "{}: images must come from an approved registry (docker.io/library, registry.example.com); quay.io/someone/app:1 does not",
        denied("foreign")
    );
    kubectl.refused_naming(&foreign, &registry).await;
    // A v2 client meets the same rules, read from the image's parts and from scale.
    let v2 = |name: &str, namespace: &str, spec: &str| {
        format!(
            "apiVersion: example.com/v2\nkind: WebApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
        )
    };
    let foreign_v2 = v2(
        "foreign-v2",
        "default",
        "  scale: {replicas: 1}\n  image: {repository: quay.io/someone/app, tag: '1'}\n",
    );
    let registry_v2 = format!(
        "{}: images must come from an approved registry (docker.io/library, registry.example.com); quay.io/someone/app:1 does not",
        denied("foreign-v2")
    );
    kubectl.refused_naming(&foreign_v2, &registry_v2).await;
    let too_many_v2 = v2(
        "big-v2",
        "production",
        &format!("  scale: {{replicas: 6}}\n  image: {{repository: nginx, tag: '1.27'}}\n{limits}"),
    );
    let replicas_v2 = format!(
        "Error from server (Forbidden): error when creating \"STDIN\": {}: production workloads cannot exceed 5 replicas",
        denied("big-v2")
    );
    kubectl.refused_naming(&too_many_v2, &replicas_v2).await;
    // References resolve as a container runtime resolves them.
    let images = [
        ("bitnami/nginx:1", false),
        ("localhost:5000/web:1", false),
        ("docker.io/library/nginx:1.27", true),
        ("registry.example.com/team/web:2", true),
        ("registry.example.com.evil/web:2", false),
    ];
    for (i, (image, allowed)) in images.into_iter().enumerate() {
        let manifest = webapp(
            &format!("resolved-{i}"),
            "default",
            &format!("  replicas: 1\n  image: {image}\n"),
        );
        if allowed {
            kubectl.apply(&manifest).await;
        } else {
            kubectl
                .refused_naming(&manifest, &format!("{image} does not"))
                .await;
        }
    }

    let unlimited = webapp(
        "unlimited",
        "production",
        "  replicas: 2\n  image: nginx:1.27\n",
    );
    let limits_required = format!(
        "{}: resource limits required in production",
        denied("unlimited")
    );
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
        stderr.contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'webapp-pinned-images' with binding 'webapp-pinned-images': image nginx has no tag or digest"
        ),
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
    let scale_to_nine = [
        "patch",
        "webapps.v1.example.com/good",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":9}}"#,
    ];
    let out = kubectl.run(&scale_to_nine, None).await;
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
    // The cap is a parameter: raising it in the ConfigMap admits what was refused.
    kubectl
        .patch(
            "configmap/webapp-policy",
            r#"{"data":{"maxProductionReplicas":"9"}}"#,
        )
        .await;
    kubectl.ok(&scale_to_nine).await;
    served.stop().await;
}

#[tokio::test]
async fn the_policies_subcommand_prints_the_webapp_policies_and_their_parameters() {
    let yaml = app::app().policies_yaml("webapp-system").expect("YAML");
    for expected in [
        "kind: ValidatingAdmissionPolicy\n",
        "kind: ValidatingAdmissionPolicyBinding\n",
        "name: webapp-pinned-images",
        "- Warn",
        "namespace: webapp-system",
        "maxProductionReplicas: '10'",
        "registries: docker.io/library",
    ] {
        assert!(yaml.contains(expected), "{expected} missing from:\n{yaml}");
    }
}

#[tokio::test]
async fn the_webhooks_subcommand_prints_the_webapp_configurations() {
    let app = app::app();
    let yaml = app.webhooks_yaml("webapp-system", true).expect("YAML");
    assert!(yaml.contains("kind: MutatingWebhookConfiguration"));
    assert!(
        !yaml.contains("kind: ValidatingWebhookConfiguration"),
        "validation is the policies' job"
    );
    assert!(yaml.contains("path: /mutate-example-com-v2-webapp"));
    assert!(yaml.contains("# webapps.example.com at /convert-example-com-webapp"));
    assert!(yaml.contains("cert-manager.io/inject-ca-from: webapp-system/webapp-operator-webhook"));
}
