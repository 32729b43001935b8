//! Custom resources in several versions with the `None` conversion strategy: the storage
//! version, `status.storedVersions`, deprecation warnings, pruning to each version's schema,
//! and the writes a storage migration relies on. Conversion webhooks are exercised with
//! opkit's webhook server in opkit's own tests.

use crate::kubectl::Kubectl;
use crate::support::status;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

/// Widgets in `v1` (storage, deprecated) and `v2`, which has no `colour`.
fn widgets_crd(storage: &str, versions: &[&str]) -> String {
    let schema = |colour: bool| {
        let colour = if colour {
            "\n                  colour: {type: string}"
        } else {
            ""
        };
        format!(
            r#"
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                  size: {{type: integer}}{colour}"#
        )
    };
    let mut yaml = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:"#
        .to_string();
    for version in versions {
        let deprecated = if *version == "v1" {
            "\n      deprecated: true"
        } else {
            ""
        };
        yaml.push_str(&format!(
            "\n    - name: {version}\n      served: true\n      storage: {}{deprecated}{}",
            *version == storage,
            schema(*version == "v1")
        ));
    }
    yaml.push('\n');
    yaml
}

fn api(env: &opkit_envtest::TestEnv, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.com", version, "Widget");
    Api::namespaced_with(
        env.client(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    )
}

fn widget(version: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("example.com/{version}"),
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a Widget")
}

async fn stored_versions(env: &opkit_envtest::TestEnv) -> Value {
    let crds: Api<DynamicObject> = Api::all_with(
        env.client(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd = crds.get("widgets.example.com").await.expect("the CRD");
    crd.data["status"]["storedVersions"].clone()
}

#[tokio::test]
async fn every_version_serves_the_object_pruned_to_its_schema() {
    let k = Kubectl::start().await;
    k.env
        .install_crd_yaml(&widgets_crd("v1", &["v1", "v2"]))
        .await
        .expect("installs");
    api(&k.env, "v1")
        .create(
            &PostParams::default(),
            &widget("v1", "a", json!({"size": 3, "colour": "red"})),
        )
        .await
        .expect("created in v1");
    let v2 = api(&k.env, "v2").get("a").await.expect("read in v2");
    assert_eq!(
        v2.types.map(|t| t.api_version).as_deref(),
        Some("example.com/v2")
    );
    assert_eq!(v2.data["spec"], json!({"size": 3}));
    let v1 = api(&k.env, "v1").get("a").await.expect("read in v1");
    assert_eq!(v1.data["spec"], json!({"size": 3, "colour": "red"}));
    let run = k
        .run(&[
            "get",
            "widgets.v2.example.com",
            "a",
            "-o",
            "jsonpath={.apiVersion} {.spec}",
        ])
        .await
        .ok();
    assert_eq!(run.stdout, r#"example.com/v2 {"size":3}"#);
}

#[tokio::test]
async fn deprecated_versions_answer_with_a_warning() {
    let k = Kubectl::start().await;
    k.env
        .install_crd_yaml(&widgets_crd("v1", &["v1", "v2"]))
        .await
        .expect("installs");
    let manifest =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n";
    let run = k.run_with_stdin(&["apply", "-f", "-"], manifest).await.ok();
    run.stderr_has("Warning: example.com/v1 Widget is deprecated; use example.com/v2 Widget");
    let run = k.run(&["get", "widgets.v1.example.com", "w"]).await.ok();
    run.stderr_has("Warning: example.com/v1 Widget is deprecated; use example.com/v2 Widget");
    let run = k.run(&["get", "widgets.v2.example.com", "w"]).await.ok();
    assert!(!run.stderr.contains("deprecated"), "{}", run.stderr);
    // Failed requests carry it too, as the warning belongs to the version.
    let run = k
        .run(&["get", "widgets.v1.example.com", "missing"])
        .await
        .failed();
    run.stderr_has("Warning: example.com/v1 Widget is deprecated");
}

#[tokio::test]
async fn a_new_storage_version_is_added_to_stored_versions_and_old_objects_rewritten_once() {
    let k = Kubectl::start().await;
    k.env
        .install_crd_yaml(&widgets_crd("v1", &["v1", "v2"]))
        .await
        .expect("installs");
    assert_eq!(stored_versions(&k.env).await, json!(["v1"]));
    let v2 = api(&k.env, "v2");
    v2.create(
        &PostParams::default(),
        &widget("v2", "old", json!({"size": 1})),
    )
    .await
    .expect("created");
    k.env
        .install_crd_yaml(&widgets_crd("v2", &["v1", "v2"]))
        .await
        .expect("updates");
    assert_eq!(stored_versions(&k.env).await, json!(["v1", "v2"]));
    // The object is still stored in v1: an unchanged write rewrites it in v2, and only once.
    let before = v2.get("old").await.expect("read");
    let first = v2
        .replace("old", &PostParams::default(), &before)
        .await
        .expect("rewritten");
    assert_ne!(
        first.metadata.resource_version,
        before.metadata.resource_version
    );
    let second = v2
        .replace("old", &PostParams::default(), &first)
        .await
        .expect("unchanged");
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
}

#[tokio::test]
async fn stored_versions_are_kept_until_a_migration_drops_them() {
    let k = Kubectl::start().await;
    k.env
        .install_crd_yaml(&widgets_crd("v1", &["v1", "v2"]))
        .await
        .expect("installs");
    k.env
        .install_crd_yaml(&widgets_crd("v2", &["v1", "v2"]))
        .await
        .expect("updates");
    // Dropping v1 while objects may be stored in it is refused.
    let run = k
        .run_with_stdin(&["apply", "-f", "-"], &widgets_crd("v2", &["v2"]))
        .await
        .failed();
    run.stderr_has("status.storedVersions[0]: Invalid value: \"v1\": missing from spec.versions; v1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 and removes v1 from status.storedVersions");
    // A migration's status write takes it out; then v1 may go.
    k.run(&[
        "patch",
        "crd",
        "widgets.example.com",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"storedVersions":["v2"]}}"#,
    ])
    .await
    .ok();
    assert_eq!(stored_versions(&k.env).await, json!(["v2"]));
    k.run_with_stdin(&["apply", "-f", "-"], &widgets_crd("v2", &["v2"]))
        .await
        .ok();
    let run = k.run(&["get", "widgets.v1.example.com"]).await.failed();
    run.stderr_has("the server could not find the requested resource");
}

#[tokio::test]
async fn conversion_settings_are_checked_with_the_servers_wording() {
    let env = crate::support::env().await;
    let crd = |conversion: &str| {
        widgets_crd("v1", &["v1", "v2"]).replace(
            "  versions:",
            &format!("  conversion:\n{conversion}\n  versions:"),
        )
    };
    let refused = |yaml: String| {
        let env = &env;
        async move {
            let object: DynamicObject = serde_yaml_ng::from_str(&yaml).expect("YAML");
            let crds: Api<DynamicObject> = Api::all_with(
                env.client(),
                &ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(
                        "apiextensions.k8s.io",
                        "v1",
                        "CustomResourceDefinition",
                    ),
                    "customresourcedefinitions",
                ),
            );
            status(
                crds.create(&PostParams::default(), &object)
                    .await
                    .expect_err("refused"),
            )
        }
    };
    let error = refused(crd("    strategy: Webhook")).await;
    assert_eq!(error.code, 422);
    assert_eq!(
        error.message,
        "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: [spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook, spec.conversion.conversionReviewVersions: Required value]"
    );
    let error = refused(crd(
        "    strategy: Webhook\n    webhook:\n      conversionReviewVersions: [v1]\n      clientConfig:\n        url: http://127.0.0.1:1/convert",
    ))
    .await;
    assert!(
        error
            .message
            .ends_with("spec.conversion.webhookClientConfig.url: Invalid value: \"http://127.0.0.1:1/convert\": 'https' is the only allowed URL scheme"),
        "{}",
        error.message
    );
    let error = refused(crd("    strategy: Sometimes")).await;
    assert!(
        error.message.ends_with(
            "spec.conversion.strategy: Unsupported value: \"Sometimes\": supported values: \"None\", \"Webhook\""
        ),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_unreachable_conversion_webhook_fails_reads_and_writes_and_stores_nothing() {
    let env = crate::support::env().await;
    let yaml = widgets_crd("v2", &["v1", "v2"]).replace(
        "  versions:",
        "  conversion:\n    strategy: Webhook\n    webhook:\n      conversionReviewVersions: [v1]\n      clientConfig:\n        url: https://127.0.0.1:1/convert\n  versions:",
    );
    env.install_crd_yaml(&yaml).await.expect("installs");
    let v2 = api(&env, "v2");
    v2.create(
        &PostParams::default(),
        &widget("v2", "a", json!({"size": 1})),
    )
    .await
    .expect("the storage version needs no conversion");
    let error = status(api(&env, "v1").get("a").await.expect_err("no webhook"));
    assert_eq!(error.code, 500);
    assert!(
        error.message.starts_with(
            "conversion webhook for example.com/v2, Kind=Widget failed: Post \"https://127.0.0.1:1/convert\": "
        ),
        "{}",
        error.message
    );
    let error = status(
        api(&env, "v1")
            .create(
                &PostParams::default(),
                &widget("v1", "b", json!({"size": 2})),
            )
            .await
            .expect_err("no webhook"),
    );
    assert!(
        error
            .message
            .starts_with("conversion webhook for example.com/v1, Kind=Widget failed"),
        "{}",
        error.message
    );
    let error = status(
        api(&env, "v1")
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 5}})),
            )
            .await
            .expect_err("no webhook"),
    );
    assert_eq!(error.code, 500);
    let names: Vec<String> = v2
        .list(&Default::default())
        .await
        .expect("listed in the storage version")
        .items
        .into_iter()
        .map(|w| w.metadata.name.unwrap_or_default())
        .collect();
    assert_eq!(names, ["a"]);
    assert_eq!(
        v2.get("a").await.expect("read").data["spec"],
        json!({"size": 1})
    );
}
