//! CEL validation rules of custom resources (`x-kubernetes-validations`),
//! through the real kubectl and through kube-rs's own CEL types.

use crate::kubectl::{Kubectl, Run};
use crate::support::{env, status};
use kube::api::{Api, PostParams};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A CRD with a cross-field rule naming its field and a transition rule.
fn scaler_crd(rules: bool, name_limit: Option<u32>) -> String {
    let validations = if rules {
        r#"
            x-kubernetes-validations:
            - rule: self.minReplicas <= self.maxReplicas
              message: minReplicas must not exceed maxReplicas
              fieldPath: .minReplicas
            - rule: self.engine == oldSelf.engine
              message: engine is immutable
              reason: FieldValueForbidden"#
    } else {
        ""
    };
    let limit = name_limit.map_or(String::new(), |n| {
        format!("\n                  maxLength: {n}")
    });
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: scalers.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: scalers, singular: scaler, kind: Scaler}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object{validations}
            properties:
              engine: {{type: string, maxLength: 20}}
              minReplicas: {{type: integer}}
              maxReplicas: {{type: integer}}
              label:
                  type: string{limit}
"#
    )
}

fn scaler(min: i64, max: i64, engine: &str, label: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Scaler\nmetadata: {{name: web}}\nspec: {{minReplicas: {min}, maxReplicas: {max}, engine: {engine}, label: {label}}}\n"
    )
}

async fn apply(k: &Kubectl, manifest: &str) -> Run {
    k.run_with_stdin(&["apply", "-f", "-"], manifest).await
}

/// `kubectl patch scaler web --type=merge -p <patch>`.
async fn merge_patch(k: &Kubectl, patch: &str) -> Run {
    k.run(&["patch", "scaler", "web", "--type=merge", "-p", patch])
        .await
}

#[tokio::test]
async fn rules_refuse_with_their_message_and_field_path() {
    let k = Kubectl::start().await;
    apply(&k, &scaler_crd(true, None)).await.ok();
    let refused = apply(&k, &scaler(5, 2, "v1", "a")).await.failed();
    refused.stderr_has(
        "The Scaler \"web\" is invalid: spec.minReplicas: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
    );
    let scalers = k.dynamic("example.com", "v1", "Scaler", "scalers");
    let object = serde_yaml_ng::from_str(&scaler(5, 2, "v1", "a")).expect("manifest");
    let error = status(
        scalers
            .create(&PostParams::default(), &object)
            .await
            .expect_err("refused"),
    );
    assert_eq!((error.code, error.reason.as_str()), (422, "Invalid"));
    let cause = &error.details.expect("details").causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec.minReplicas", "FieldValueInvalid")
    );

    apply(&k, &scaler(1, 3, "v1", "a")).await.ok();
    let immutable = merge_patch(&k, r#"{"spec":{"engine":"v2"}}"#)
        .await
        .failed();
    immutable.stderr_has("The Scaler \"web\" is invalid: spec: Forbidden: engine is immutable");
    merge_patch(&k, r#"{"spec":{"maxReplicas":4}}"#).await.ok();
    let stored = scalers.get("web").await.expect("stored");
    assert_eq!(stored.data["spec"]["engine"], "v1");
    assert_eq!(stored.data["spec"]["maxReplicas"], 4);
}

#[tokio::test]
async fn a_rule_that_does_not_compile_refuses_the_crd() {
    let k = Kubectl::start().await;
    let crd = scaler_crd(true, None).replace(
        "rule: self.minReplicas <= self.maxReplicas",
        "rule: self.minReplicas <=",
    );
    let refused = apply(&k, &crd).await.failed();
    refused.stderr_has(
        "The CustomResourceDefinition \"scalers.example.com\" is invalid: spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.minReplicas <=\"",
    );
    refused.stderr_has(
        "compilation failed: ERROR: <input>:1:20: Syntax error: mismatched input '<EOF>'",
    );
    let undefined = scaler_crd(true, None).replace(
        "self.engine == oldSelf.engine",
        "self.motor == oldSelf.motor",
    );
    apply(&k, &undefined)
        .await
        .failed()
        .stderr_has("compilation failed: ERROR: <input>:1:5: undefined field 'motor'");
    let expensive = scaler_crd(false, None).replace(
        "              label:\n",
        "              tags:\n                type: array\n                items: {type: string}\n                x-kubernetes-validations:\n                - rule: self.all(a, self.all(b, a == b || a != b))\n              label:\n",
    );
    apply(&k, &expensive).await.failed().stderr_has(
        "spec.validation.openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x",
    );
    k.run(&["get", "crd", "scalers.example.com"]).await.failed();
}

#[tokio::test]
async fn unchanged_invalid_values_ratchet_on_update() {
    let k = Kubectl::start().await;
    apply(&k, &scaler_crd(false, None)).await.ok();
    apply(&k, &scaler(5, 2, "v1", "toolong")).await.ok();
    // The CRD tightens: the stored object now breaks a rule and a maxLength.
    apply(&k, &scaler_crd(true, Some(3))).await.ok();

    let labelled = k.run(&["label", "scaler", "web", "team=a"]).await.ok();
    labelled.stderr_has(
        "Warning: spec.minReplicas: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
    );
    labelled.stdout_has("scaler.example.com/web labeled");

    let still_invalid = r#"{"spec":{"maxReplicas":3}}"#;
    merge_patch(&k, still_invalid).await.failed().stderr_has(
        "spec.minReplicas: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
    );
    let longer = r#"{"spec":{"label":"longer"}}"#;
    merge_patch(&k, longer)
        .await
        .failed()
        .stderr_has("spec.label: Too long: may not be more than 3 bytes");
    let fixed = r#"{"spec":{"minReplicas":1,"maxReplicas":3}}"#;
    merge_patch(&k, fixed).await.ok();
}

/// kube-rs's own example of CEL rules on a derived type.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug)]
#[kube(
    group = "example.kube.rs",
    version = "v1",
    kind = "Autoscaler",
    namespaced,
    cel,
    validation = "self.spec.minReplicas <= self.spec.maxReplicas"
)]
#[x_kube(cel, validation = "self.minReplicas <= self.maxReplicas")]
#[serde(rename_all = "camelCase")]
struct AutoscalerSpec {
    #[x_kube(validation = "self >= 0")]
    min_replicas: i32,
    max_replicas: i32,
    #[x_kube(validation = "self == oldSelf")]
    tier: String,
}

fn autoscaler(min: i32, max: i32, tier: &str) -> Autoscaler {
    Autoscaler::new(
        "web",
        AutoscalerSpec {
            min_replicas: min,
            max_replicas: max,
            tier: tier.into(),
        },
    )
}

#[tokio::test]
async fn kube_rs_cel_types_behave_as_their_client_side_check_says() {
    let env = env().await;
    env.install_crd::<Autoscaler>()
        .await
        .expect("the CRD installs");
    let api: Api<Autoscaler> = Api::namespaced(env.client(), "default");
    for candidate in [autoscaler(9, 5, "standard"), autoscaler(-1, 5, "standard")] {
        assert!(candidate.validate_cel().is_err());
        let error = status(
            api.create(&PostParams::default(), &candidate)
                .await
                .expect_err("refused"),
        );
        assert_eq!(error.code, 422, "{}", error.message);
    }
    let valid = autoscaler(1, 5, "standard");
    assert!(valid.validate_cel().is_ok());
    let stored = api
        .create(&PostParams::default(), &valid)
        .await
        .expect("created");

    let mut changed = stored.clone();
    changed.spec.tier = "premium".into();
    assert!(changed.validate_cel_update(&stored).is_err());
    let error = status(
        api.replace("web", &PostParams::default(), &changed)
            .await
            .expect_err("refused"),
    );
    assert_eq!(
        error.message,
        "Autoscaler.example.kube.rs \"web\" is invalid: spec.tier: Invalid value: \"string\": failed rule: self == oldSelf"
    );

    let mut scaled = stored.clone();
    scaled.spec.max_replicas = 8;
    assert!(scaled.validate_cel_update(&stored).is_ok());
    let replaced = api
        .replace("web", &PostParams::default(), &scaled)
        .await
        .expect("accepted");
    assert_eq!(replaced.spec.max_replicas, 8);
}
