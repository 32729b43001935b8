//! Point 9: CRD and least-privilege RBAC manifests, accepted by the API server.

use k8s_openapi::api::rbac::v1::ClusterRole;
use opkit::k8s::*;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn rbac_output_applies_and_names_exact_verbs() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    let app = opkit::App::new("widget-operator").controller(widget_controller(&Default::default()));
    let yaml = app.rbac_yaml("operators").expect("rbac yaml");
    let namespace = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some("operators".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client())
        .create(&Default::default(), &namespace)
        .await
        .expect("namespace");
    let applied = opkit::manifests::apply_yaml(&env.client(), "test", &yaml)
        .await
        .expect("apply");
    assert_eq!(
        applied,
        [
            "ServiceAccount operators/widget-operator",
            "ClusterRole widget-operator",
            "ClusterRoleBinding widget-operator",
            "ClusterRole widget-operator-metrics-reader",
            "Role operators/widget-operator-leader-election",
            "RoleBinding operators/widget-operator-leader-election"
        ]
    );
    let role = Api::<ClusterRole>::all(env.client())
        .get("widget-operator")
        .await
        .expect("role");
    let rules = role.rules.unwrap_or_default();
    let verbs_on = |group: &str, resource: &str| -> Vec<String> {
        rules
            .iter()
            .find(|r| {
                r.api_groups.as_deref() == Some(&[group.to_string()])
                    && r.resources.as_deref() == Some(&[resource.to_string()])
            })
            .map(|r| r.verbs.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        verbs_on("test.opkit.dev", "widgets"),
        ["get", "list", "patch", "watch"]
    );
    assert_eq!(
        verbs_on("test.opkit.dev", "widgets/status"),
        ["get", "patch", "update"]
    );
    assert_eq!(verbs_on("test.opkit.dev", "widgets/finalizers"), ["update"]);
    assert_eq!(
        verbs_on("", "configmaps"),
        ["create", "delete", "get", "list", "patch", "watch"]
    );
    assert_eq!(verbs_on("events.k8s.io", "events"), ["create", "patch"]);
    // The secured /metrics reviews its callers.
    assert_eq!(
        verbs_on("authentication.k8s.io", "tokenreviews"),
        ["create"]
    );
    assert_eq!(
        verbs_on("authorization.k8s.io", "subjectaccessreviews"),
        ["create"]
    );
    assert!(rules.iter().all(|r| !r.verbs.iter().any(|v| v == "*")));
    assert!(
        rules
            .iter()
            .all(|r| !r.resources.iter().flatten().any(|v| v == "*"))
    );
}

#[tokio::test]
async fn crd_output_installs() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    let yaml = opkit::App::new("widget-operator")
        .controller(widget_controller(&Default::default()))
        .crd_yaml()
        .expect("crd yaml");
    env.install_crd_yaml(&yaml).await.expect("installs");
    let api: Api<Widget> = Api::namespaced(env.client(), "default");
    api.create(&Default::default(), &Widget::new("w", spec(1)))
        .await
        .expect("a widget can be created");
}
