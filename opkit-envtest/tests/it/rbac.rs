//! Authorization by RBAC: bindings and roles, resource names, subresources,
//! non-resource URLs, aggregation, the default roles, the escalation and bind
//! checks and the access reviews.

use crate::support::{env, status};
use k8s_openapi::api::authorization::v1::{
    SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use opkit_envtest::TestEnv;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn from<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

async fn create<K>(api: &Api<K>, value: Value) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &from(value))
        .await
        .unwrap()
}

async fn robot(env: &TestEnv) -> kube::Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    create(&accounts, json!({"metadata": {"name": "robot"}})).await;
    env.service_account_client("default", "robot").unwrap()
}

async fn role(env: &TestEnv, name: &str, rules: Value) {
    let roles: Api<Role> = Api::namespaced(env.client(), "default");
    create(&roles, json!({"metadata": {"name": name}, "rules": rules})).await;
}

async fn bind_robot(env: &TestEnv, name: &str, kind: &str, role: &str) {
    let bindings: Api<RoleBinding> = Api::namespaced(env.client(), "default");
    create(
        &bindings,
        json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}],
        }),
    )
    .await;
}

async fn can(client: &kube::Client, attributes: Value) -> (bool, String) {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &from(json!({"spec": attributes})))
        .await
        .unwrap();
    let status = review.status.unwrap();
    (status.allowed, status.reason.unwrap_or_default())
}

#[tokio::test]
async fn a_service_account_may_do_what_its_bindings_grant_and_nothing_else() {
    let env = env().await;
    let client = robot(&env).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let refused = status(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        r#"configmaps is forbidden: User "system:serviceaccount:default:robot" cannot list resource "configmaps" in API group "" in the namespace "default""#
    );
    let details = refused.details.unwrap();
    assert_eq!(
        (details.kind.as_str(), details.group.as_str()),
        ("configmaps", "")
    );

    role(
        &env,
        "cm-reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
    )
    .await;
    bind_robot(&env, "robot-reads", "Role", "cm-reader").await;
    assert!(cms.list(&ListParams::default()).await.is_ok());
    // Another namespace, another verb: still refused.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    assert_eq!(
        status(elsewhere.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    let write = status(
        cms.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "x"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        write.message,
        r#"configmaps is forbidden: User "system:serviceaccount:default:robot" cannot create resource "configmaps" in API group "" in the namespace "default""#
    );
}

#[tokio::test]
async fn resource_names_and_subresources_narrow_a_rule() {
    let env = env().await;
    let client = robot(&env).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    for name in ["mine", "theirs"] {
        create(&cms, json!({"metadata": {"name": name}})).await;
    }
    role(
        &env,
        "one-cm",
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ]),
    )
    .await;
    bind_robot(&env, "robot-one-cm", "Role", "one-cm").await;
    let robot_cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(robot_cms.get("mine").await.is_ok());
    let theirs = status(robot_cms.get("theirs").await.unwrap_err());
    assert_eq!(
        theirs.message,
        r#"configmaps "theirs" is forbidden: User "system:serviceaccount:default:robot" cannot get resource "configmaps" in API group "" in the namespace "default""#
    );
    // A list is allowed by name only through a metadata.name field selector.
    assert_eq!(
        status(robot_cms.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    let one = robot_cms
        .list(&ListParams::default().fields("metadata.name=mine"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let (logs, _) = can(
        &client,
        json!({"resourceAttributes": {"namespace": "default", "resource": "pods", "subresource": "log", "verb": "get"}}),
    )
    .await;
    let (pods, _) = can(
        &client,
        json!({"resourceAttributes": {"namespace": "default", "resource": "pods", "verb": "get"}}),
    )
    .await;
    assert!(logs && !pods);
}

#[tokio::test]
async fn the_default_cluster_roles_exist_and_view_aggregates() {
    let env = env().await;
    let roles: Api<ClusterRole> = Api::all(env.client());
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:auth-delegator",
        "system:aggregate-to-view",
        "system:node",
    ] {
        let role = roles.get(name).await.unwrap();
        let labels = role.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels["kubernetes.io/bootstrapping"], "rbac-defaults",
            "{name}"
        );
    }
    let view = roles.get("view").await.unwrap();
    let rules = view.rules.unwrap();
    assert!(rules.iter().any(|r| {
        r.resources
            .as_ref()
            .is_some_and(|r| r.contains(&"pods".to_string()))
    }));
    let edit = roles.get("edit").await.unwrap().rules.unwrap();
    let admin = roles.get("admin").await.unwrap().rules.unwrap();
    // admin holds edit's rules, edit view's: aggregation goes up the chain.
    assert!(rules.iter().all(|r| edit.contains(r)));
    assert!(edit.iter().all(|r| admin.contains(r)));
    let bindings: Api<ClusterRoleBinding> = Api::all(env.client());
    let admin_binding = bindings.get("cluster-admin").await.unwrap();
    assert_eq!(admin_binding.subjects.unwrap()[0].name, "system:masters");

    // A new role labelled to aggregate into view reaches view, and admin, at once.
    create(
        &roles,
        json!({
            "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}],
        }),
    )
    .await;
    let admin = roles.get("admin").await.unwrap().rules.unwrap();
    assert!(
        admin
            .iter()
            .any(|r| r.api_groups == Some(vec!["example.com".to_string()]))
    );
    let client = robot(&env).await;
    let bindings: Api<RoleBinding> = Api::namespaced(env.client(), "default");
    create(
        &bindings,
        json!({
            "metadata": {"name": "robot-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}],
        }),
    )
    .await;
    let (widgets, reason) = can(
        &client,
        json!({"resourceAttributes": {"namespace": "default", "group": "example.com", "resource": "widgets", "verb": "get"}}),
    )
    .await;
    assert!(widgets);
    assert_eq!(
        reason,
        r#"RBAC: allowed by RoleBinding "robot-view/default" of ClusterRole "view" to ServiceAccount "robot/default""#
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert!(pods.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    let env = env().await;
    let client = robot(&env).await;
    role(
        &env,
        "rbac-writer",
        json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ]),
    )
    .await;
    bind_robot(&env, "robot-rbac", "Role", "rbac-writer").await;
    let roles: Api<Role> = Api::namespaced(client.clone(), "default");
    // Rules it holds: fine.
    create(
        &roles,
        json!({"metadata": {"name": "cm-get"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    )
    .await;
    // More than it holds: refused, listing what is missing.
    let escalating: Role = from(json!({
        "metadata": {"name": "secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "list"]}],
    }));
    let refused = status(
        roles
            .create(&PostParams::default(), &escalating)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        "roles.rbac.authorization.k8s.io \"secrets\" is forbidden: user \"system:serviceaccount:default:robot\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:default\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"list\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"list\"]}"
    );
    // Binding a role it does not hold the rules of: refused, until it may `bind` it.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "default");
    let binding: RoleBinding = from(json!({
        "metadata": {"name": "give-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}],
    }));
    let refused = status(
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 403);
    assert!(refused.message.starts_with(r#"rolebindings.rbac.authorization.k8s.io "give-edit" is forbidden: user "system:serviceaccount:default:robot""#), "{}", refused.message);
    role(
        &env,
        "edit-binder",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit"]}]),
    )
    .await;
    bind_robot(&env, "robot-binds-edit", "Role", "edit-binder").await;
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_binding_to_a_missing_role_says_so_in_the_refusal() {
    let env = env().await;
    let client = robot(&env).await;
    bind_robot(&env, "robot-ghost", "ClusterRole", "ghost").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let refused = status(cms.list(&ListParams::default()).await.unwrap_err());
    assert!(
        refused
            .message
            .ends_with(r#": RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found"#),
        "{}",
        refused.message
    );
}

#[tokio::test]
async fn subject_access_reviews_answer_for_anyone() {
    let env = env().await;
    let reviews: Api<SubjectAccessReview> = Api::all(env.client());
    let ask = |user: &str, groups: Value, verb: &str| {
        from::<SubjectAccessReview>(json!({"spec": {
            "user": user, "groups": groups,
            "resourceAttributes": {"namespace": "default", "resource": "pods", "verb": verb},
        }}))
    };
    let admin = reviews
        .create(
            &PostParams::default(),
            &ask("root", json!(["system:masters"]), "delete"),
        )
        .await
        .unwrap();
    assert!(admin.status.unwrap().allowed);
    let jane = reviews
        .create(&PostParams::default(), &ask("jane", json!([]), "get"))
        .await
        .unwrap();
    assert!(!jane.status.unwrap().allowed);
    let urls = reviews
        .create(
            &PostParams::default(),
            &from(
                json!({"spec": {"user": "jane", "groups": ["system:authenticated"],
                "nonResourceAttributes": {"path": "/apis/apps/v1", "verb": "get"}}}),
            ),
        )
        .await
        .unwrap();
    let urls = urls.status.unwrap();
    assert!(urls.allowed);
    assert_eq!(
        urls.reason.as_deref(),
        Some(
            r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#
        )
    );
    let neither: SubjectAccessReview = from(json!({"spec": {"user": "jane"}}));
    assert_eq!(
        status(
            reviews
                .create(&PostParams::default(), &neither)
                .await
                .unwrap_err()
        )
        .code,
        422
    );
}

#[tokio::test]
async fn rules_reviews_list_what_a_user_may_do() {
    let env = env().await;
    let client = robot(&env).await;
    role(
        &env,
        "lease-holder",
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]}]),
    )
    .await;
    bind_robot(&env, "robot-leases", "Role", "lease-holder").await;
    let reviews: Api<SelfSubjectRulesReview> = Api::all(client);
    let review = reviews
        .create(
            &PostParams::default(),
            &from(json!({"spec": {"namespace": "default"}})),
        )
        .await
        .unwrap();
    let status = review.status.unwrap();
    assert!(!status.incomplete);
    assert!(status.resource_rules.iter().any(|r| {
        r.api_groups == Some(vec!["coordination.k8s.io".to_string()])
            && r.verbs == ["get", "update"]
    }));
    assert!(status.non_resource_rules.iter().any(|r| {
        r.non_resource_urls
            .as_ref()
            .is_some_and(|u| u.contains(&"/api".to_string()))
    }));
}

#[tokio::test]
async fn a_patch_or_status_write_needs_its_own_verb_and_subresource() {
    let env = env().await;
    let client = robot(&env).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    create(&cms, json!({"metadata": {"name": "settings"}})).await;
    role(
        &env,
        "cm-updater",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"]}]),
    )
    .await;
    bind_robot(&env, "robot-updates", "Role", "cm-updater").await;
    let robot_cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let patch = Patch::Merge(json!({"data": {"a": "1"}}));
    let refused = status(
        robot_cms
            .patch("settings", &PatchParams::default(), &patch)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        refused.message,
        r#"configmaps "settings" is forbidden: User "system:serviceaccount:default:robot" cannot patch resource "configmaps" in API group "" in the namespace "default""#
    );
}
