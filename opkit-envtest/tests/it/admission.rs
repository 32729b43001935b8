//! CEL at admission through the real kubectl: webhook `matchConditions`.

use crate::kubectl::Kubectl;
use crate::support::eventually;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams};

/// A validating webhook at an address nothing listens on: a request it is
/// called for fails (failurePolicy Fail), one it skips goes through.
fn unreachable_webhook(conditions: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: checks}}
webhooks:
- name: check.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  clientConfig: {{url: "https://127.0.0.1:1/validate"}}
  rules:
  - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}}
  matchConditions:{conditions}
"#
    )
}

#[tokio::test]
async fn webhooks_are_skipped_by_their_match_conditions() {
    let k = Kubectl::start().await;
    let conditions = r#"
  - {name: checked-only, expression: "object.metadata.name.startsWith('checked-')"}
  - {name: not-dry-run, expression: "!request.dryRun"}"#;
    k.run_with_stdin(&["apply", "-f", "-"], &unreachable_webhook(conditions))
        .await
        .ok();

    k.run(&["create", "configmap", "plain", "--from-literal=a=b"])
        .await
        .ok()
        .stdout_has("configmap/plain created");
    k.run(&["create", "configmap", "checked-one", "--from-literal=a=b"])
        .await
        .failed()
        .stderr_has("Internal error occurred: failed calling webhook \"check.example.com\": failed to call webhook: Post \"https://127.0.0.1:1/validate");
    k.run(&[
        "create",
        "configmap",
        "checked-two",
        "--from-literal=a=b",
        "--dry-run=server",
    ])
    .await
    .ok();

    let failing = r#"
  - {name: needs-data, expression: "object.data.missing == 'x'"}"#;
    k.run_with_stdin(&["apply", "-f", "-"], &unreachable_webhook(failing))
        .await
        .ok();
    k.run(&["create", "configmap", "other", "--from-literal=a=b"])
        .await
        .failed()
        .stderr_has("configmaps \"other\" is forbidden: expression 'object.data.missing == 'x'' resulted in error: no such key: missing");

    let broken = r#"
  - {name: typo, expression: "objct.metadata.name == 'x'"}"#;
    k.run_with_stdin(&["apply", "-f", "-"], &unreachable_webhook(broken))
        .await
        .failed()
        .stderr_has("webhooks[0].matchConditions[0].expression: Invalid value: \"objct.metadata.name == 'x'\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'objct' (in container '')");
}

const REPLICA_POLICY: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replica-limit}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  variables:
  - {name: limit, expression: "int(params.data.maxReplicas)"}
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be at most ' + string(variables.limit)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: limit-prod}
spec:
  policyName: replica-limit
  validationActions: [Deny]
  paramRef: {name: replica-limits, namespace: default, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector: {matchLabels: {env: prod}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: limit-dev}
spec:
  policyName: replica-limit
  validationActions: [Warn]
  paramRef: {name: replica-limits, namespace: default, parameterNotFoundAction: Allow}
  matchResources:
    namespaceSelector: {matchLabels: {env: dev}}
"#;

fn deployment(namespace: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "nginx:1.27"}}]}}
"#
    )
}

#[tokio::test]
async fn a_policy_with_a_param_denies_and_warns_as_bound() {
    let k = Kubectl::start().await;
    for (namespace, env) in [("shop", "prod"), ("sandbox", "dev")] {
        k.run(&["create", "namespace", namespace]).await.ok();
        k.run(&["label", "namespace", namespace, &format!("env={env}")])
            .await
            .ok();
    }
    k.run(&[
        "create",
        "configmap",
        "replica-limits",
        "--from-literal=maxReplicas=3",
    ])
    .await
    .ok();
    k.run_with_stdin(&["apply", "-f", "-"], REPLICA_POLICY)
        .await
        .ok();

    let denied = k
        .run_with_stdin(&["apply", "-f", "-"], &deployment("shop", 5))
        .await
        .failed();
    // kubectl prints a 422 by its causes; this one has no field, as on a real server.
    denied.stderr_has("The deployments \"web\" is invalid: : ValidatingAdmissionPolicy 'replica-limit' with binding 'limit-prod' denied request: replicas must be at most 3");
    k.run_with_stdin(&["apply", "-f", "-"], &deployment("shop", 2))
        .await
        .ok();

    let warned = k
        .run_with_stdin(&["apply", "-f", "-"], &deployment("sandbox", 5))
        .await
        .ok();
    warned.stderr_has("Warning: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'limit-dev': replicas must be at most 3");
    warned.stdout_has("deployment.apps/web created");

    // Without the parameter, one binding denies and the other allows.
    k.run(&["delete", "configmap", "replica-limits"]).await.ok();
    k.run(&["label", "deployment", "web", "-n", "shop", "tier=front"])
        .await
        .failed()
        .stderr_has("ValidatingAdmissionPolicy 'replica-limit' with binding 'limit-prod' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction");
    k.run(&["label", "deployment", "web", "-n", "sandbox", "tier=front"])
        .await
        .ok();
}

#[tokio::test]
async fn policies_and_bindings_are_checked_when_written() {
    let k = Kubectl::start().await;
    let broken = REPLICA_POLICY
        .split("---")
        .next()
        .expect("the policy")
        .replace(
            "object.spec.replicas <= variables.limit",
            "object.spec.replicas <=",
        );
    k.run_with_stdin(&["apply", "-f", "-"], &broken)
        .await
        .failed()
        .stderr_has("spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>'");
    let both = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: both}
spec:
  policyName: replica-limit
  validationActions: [Deny, Warn]
"#;
    k.run_with_stdin(&["apply", "-f", "-"], both)
        .await
        .failed()
        .stderr_has("spec.validationActions: Invalid value: []v1.ValidationAction{\"Deny\", \"Warn\"}: must not contain both Deny and Warn");
    k.run(&["get", "validatingadmissionpolicies"])
        .await
        .ok()
        .stderr_has("No resources found");
}

/// What the `restricted` level says of a pod whose one container `name` sets nothing.
fn restricted(name: &str) -> String {
    format!(
        "PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"{name}\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"{name}\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"{name}\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"{name}\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    )
}

#[tokio::test]
async fn pod_security_refuses_pods_warns_workloads_and_their_replica_sets_fail() {
    let k = Kubectl::start().await;
    k.run(&["create", "namespace", "secure"]).await.ok();
    k.run(&[
        "label",
        "namespace",
        "secure",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ])
    .await
    .ok();

    let created = k
        .run(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            "secure",
        ])
        .await
        .ok();
    created.stdout_has("deployment.apps/web created");
    created.stderr_has(&format!("Warning: would violate {}", restricted("nginx")));

    let replicasets: Api<ReplicaSet> = Api::namespaced(k.env.client(), "secure");
    eventually("the ReplicaSet reports FailedCreate", || async {
        let listed = replicasets
            .list(&ListParams::default())
            .await
            .expect("listed");
        listed.items.iter().any(|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "ReplicaFailure" && c.reason.as_deref() == Some("FailedCreate")
                    })
                })
        })
    })
    .await;
    k.run(&[
        "wait",
        "--for=condition=ReplicaFailure",
        "deployment/web",
        "-n",
        "secure",
        "--timeout=30s",
    ])
    .await
    .ok();
    let available = k
        .run(&[
            "get",
            "deployment",
            "web",
            "-n",
            "secure",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
        ])
        .await
        .ok();
    assert_eq!(available.stdout.trim(), "False");
    let events = k
        .run(&[
            "get",
            "events",
            "-n",
            "secure",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[0].message}",
        ])
        .await
        .ok();
    assert!(
        events.stdout.starts_with("Error creating: pods \"web-"),
        "{}",
        events.stdout
    );
    events.stdout_has(&format!("is forbidden: violates {}", restricted("nginx")));
    k.run(&["get", "pods", "-n", "secure"])
        .await
        .ok()
        .stderr_has("No resources found in secure namespace.");

    k.run(&["run", "bare", "--image=nginx", "-n", "secure"])
        .await
        .failed()
        .stderr_has(&format!(
            "Error from server (Forbidden): pods \"bare\" is forbidden: violates {}",
            restricted("bare")
        ));
    let hardened = r#"apiVersion: v1
kind: Pod
metadata: {name: hardened, namespace: secure}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: nginx:1.27
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#;
    let run = k.run_with_stdin(&["apply", "-f", "-"], hardened).await.ok();
    assert!(!run.stderr.contains("Warning"), "{}", run.stderr);
}

#[tokio::test]
async fn tightening_a_namespace_warns_about_its_pods_and_bad_labels_are_refused() {
    let k = Kubectl::start().await;
    k.run(&["create", "namespace", "loose"]).await.ok();
    k.run(&["run", "one", "--image=nginx", "-n", "loose"])
        .await
        .ok();
    k.run(&["run", "two", "--image=nginx", "-n", "loose"])
        .await
        .ok();
    let labelled = k
        .run(&[
            "label",
            "namespace",
            "loose",
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .await
        .ok();
    labelled.stderr_has("Warning: existing pods in namespace \"loose\" violate the new PodSecurity enforce level \"restricted:latest\"");
    labelled.stderr_has("Warning: one (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile");
    k.run(&["label", "namespace", "loose", "pod-security.kubernetes.io/warn=strict"])
        .await
        .failed()
        .stderr_has("The Namespace \"loose\" is invalid: metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"strict\": must be one of privileged, baseline, restricted");
}
