//! CEL at admission through the real kubectl: webhook `matchConditions`.

use crate::kubectl::Kubectl;

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
