//! get, list, create, update, patch, delete and deletecollection.

use crate::support::{configmap, configmaps, deployment, env, status};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn create_sets_server_metadata_and_get_returns_the_object() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let created = api
        .create(&PostParams::default(), &configmap("settings"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv > 0);
    let fetched = api.get("settings").await.unwrap();
    assert_eq!(fetched.metadata.uid, meta.uid);
    assert_eq!(fetched.data.unwrap()["key"], "value");
}

#[tokio::test]
async fn creation_timestamp_has_second_precision() {
    let env = env().await;
    let created = configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("ts"))
        .await
        .unwrap();
    let raw = serde_json::to_value(&created).unwrap();
    let ts = raw["metadata"]["creationTimestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 20, "{ts}");
    assert!(ts.ends_with('Z'));
}

#[tokio::test]
async fn generate_name_appends_a_random_suffix() {
    let env = env().await;
    let mut cm = configmap("");
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("job-".into());
    let created = configmaps(&env, "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn duplicate_create_is_already_exists() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("dup"))
        .await
        .unwrap();
    let err = status(
        api.create(&PostParams::default(), &configmap("dup"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "AlreadyExists");
    assert_eq!(err.message, "configmaps \"dup\" already exists");
}

#[tokio::test]
async fn missing_object_is_not_found_with_the_real_wording() {
    let env = env().await;
    let api: Api<Deployment> = Api::namespaced(env.client(), "default");
    let err = status(api.get("web").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(err.reason, "NotFound");
    assert_eq!(err.message, "deployments.apps \"web\" not found");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let first = api
        .create(&PostParams::default(), &configmap("cfg"))
        .await
        .unwrap();
    let mut fresh = first.clone();
    fresh.data = Some([("key".to_string(), "new".to_string())].into());
    let updated = api
        .replace("cfg", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        first.metadata.resource_version
    );
    let err = status(
        api.replace("cfg", &PostParams::default(), &first)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn resource_version_increases_on_every_write() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut last = 0u64;
    let created = api
        .create(&PostParams::default(), &configmap("rv"))
        .await
        .unwrap();
    for i in 0..3 {
        let obj = if i == 0 {
            created.clone()
        } else {
            api.patch(
                "rv",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"i": i.to_string()}})),
            )
            .await
            .unwrap()
        };
        let rv: u64 = obj.metadata.resource_version.unwrap().parse().unwrap();
        assert!(rv > last);
        last = rv;
    }
}

#[tokio::test]
async fn a_no_op_update_does_not_bump_the_resource_version() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let created = api
        .create(&PostParams::default(), &configmap("same"))
        .await
        .unwrap();
    let again = api
        .replace("same", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let env = env().await;
    let api: Api<Deployment> = Api::namespaced(env.client(), "default");
    let created = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
}

#[tokio::test]
async fn list_filters_by_labels_and_fields_and_paginates() {
    let env = env().await;
    let api = configmaps(&env, "default");
    for i in 0..5 {
        let mut cm = configmap(&format!("cm-{i}"));
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cm.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let even = api
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 3);
    let set = api
        .list(&ListParams::default().labels("tier in (odd),tier!=even"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 2);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=cm-3"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("a continue token");
    assert_eq!(page.metadata.remaining_item_count, Some(3));
    let rest = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert!(rest.metadata.continue_.is_none());
    let mut names: Vec<String> = page
        .items
        .iter()
        .chain(&rest.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 5);
}

#[tokio::test]
async fn list_across_namespaces() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("a"))
        .await
        .unwrap();
    configmaps(&env, "kube-system")
        .create(&PostParams::default(), &configmap("b"))
        .await
        .unwrap();
    let all: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::all(env.client());
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2);
    let only = all
        .list(&ListParams::default().fields("metadata.namespace=kube-system"))
        .await
        .unwrap();
    assert_eq!(only.items.len(), 1);
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let created = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &configmap("dry"),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("dry"));
    assert_eq!(status(api.get("dry").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn delete_removes_and_preconditions_are_checked() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("gone"))
        .await
        .unwrap();
    let stale = DeleteParams::default().preconditions(kube::api::Preconditions {
        uid: Some("00000000-0000-0000-0000-000000000000".into()),
        resource_version: None,
    });
    let err = status(api.delete("gone", &stale).await.unwrap_err());
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .contains("Precondition failed: UID in precondition"),
        "{}",
        err.message
    );
    let deleted = api.delete("gone", &DeleteParams::default()).await.unwrap();
    let success = deleted
        .right()
        .expect("an immediate delete answers with a Status");
    assert_eq!(
        success.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    assert_eq!(success.details.unwrap().name, "gone");
    assert_eq!(status(api.get("gone").await.unwrap_err()).code, 404);
    let err = status(
        api.delete("gone", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn delete_collection_honours_the_selector() {
    let env = env().await;
    let api = configmaps(&env, "default");
    for name in ["x1", "x2"] {
        api.create(&PostParams::default(), &configmap(name))
            .await
            .unwrap();
    }
    let mut other = configmap("keep");
    other.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    api.create(&PostParams::default(), &other).await.unwrap();
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=demo"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = left
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["keep".to_string()]);
}

#[tokio::test]
async fn merge_and_json_patches_apply() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("p"))
        .await
        .unwrap();
    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1", "key": null}})),
        )
        .await
        .unwrap();
    let data = merged.data.unwrap();
    assert_eq!(data.get("extra").map(String::as_str), Some("1"));
    assert!(!data.contains_key("key"));
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/other", "value": "2"},
        {"op": "remove", "path": "/data/extra"},
    ]))
    .unwrap();
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data["other"], "2");
}

#[tokio::test]
async fn strategic_merge_merges_containers_by_name() {
    let env = env().await;
    let api: Api<Deployment> = Api::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &deployment("sm"))
        .await
        .unwrap();
    let patched = api
        .patch(
            "sm",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox"},
                {"name": "app", "image": "nginx:1.28"},
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    let app = containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.image.as_deref(), Some("nginx:1.28"));
}

#[tokio::test]
async fn server_side_apply_creates_tracks_owners_and_reports_conflicts() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let desired = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa"},
        "data": {"owner": "a"},
    });
    let created = api
        .patch(
            "ssa",
            &PatchParams::apply("manager-a"),
            &Patch::Apply(&desired),
        )
        .await
        .unwrap();
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["manager-a".to_string()]);
    let rival = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa"},
        "data": {"owner": "b"},
    });
    let err = status(
        api.patch(
            "ssa",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(&rival),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .starts_with("Apply failed with 1 conflict: conflict with \"manager-a\""),
        "{}",
        err.message
    );
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(&rival),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["owner"], "b");
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}});
    let err = api
        .patch("m", &PatchParams::default(), &Patch::Apply(&desired))
        .await
        .unwrap_err();
    // kube refuses client-side or the server answers 422; both mean the manager is required.
    if let kube::Error::Api(status) = err {
        assert_eq!(status.code, 422);
        assert!(
            status.message.contains("fieldManager"),
            "{}",
            status.message
        );
    }
}

#[tokio::test]
async fn services_get_a_cluster_ip_and_deployments_get_defaults() {
    let env = env().await;
    let services: Api<Service> = Api::namespaced(env.client(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    let ip = spec.cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!(port.target_port.is_some());
    assert!(services.get("kubernetes").await.is_ok());

    let deployments: Api<Deployment> = Api::namespaced(env.client(), "default");
    let d = deployments
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(
        spec.strategy.unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        pod.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
}

#[tokio::test]
async fn secret_string_data_is_merged_into_data() {
    let env = env().await;
    let api: Api<Secret> = Api::namespaced(env.client(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    assert!(created.string_data.is_none());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(created.data.unwrap()["password"].0, b"hunter2".to_vec());
}

#[tokio::test]
async fn leases_and_rbac_kinds_are_stored() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let env = env().await;
    let leases: Api<Lease> = Api::namespaced(env.client(), "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let taken = leases
        .patch(
            "leader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "pod-b"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        taken.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
    let roles: Api<ClusterRole> = Api::all(env.client());
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "system:operator"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }))
    .unwrap();
    let created = roles.create(&PostParams::default(), &role).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("system:operator"));
    let fetched = roles.get("system:operator").await.unwrap();
    assert_eq!(fetched.metadata.uid, created.metadata.uid);
    let escaped: ClusterRole = env
        .client()
        .request(
            http::Request::get("/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aoperator")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(escaped.metadata.uid, created.metadata.uid);
}

#[tokio::test]
async fn an_exact_list_of_an_old_version_is_gone() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let first = api
        .create(&PostParams::default(), &configmap("old"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("new"))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let err = status(
        api.list(
            &ListParams::default()
                .at(&rv)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 410);
}

#[tokio::test]
async fn yaml_is_served_to_clients_that_accept_only_yaml() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("y"))
        .await
        .unwrap();
    let request = http::Request::get("/api/v1/namespaces/default/configmaps/y")
        .header("accept", "application/yaml")
        .body(Vec::new())
        .unwrap();
    let text = env.client().request_text(request).await.unwrap();
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(parsed["metadata"]["name"], "y");
    assert!(text.contains("kind: ConfigMap"), "{text}");
}

#[tokio::test]
async fn dry_run_updates_patches_and_deletes_change_nothing() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let created = api
        .create(&PostParams::default(), &configmap("keep"))
        .await
        .unwrap();
    let patched = api
        .patch(
            "keep",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"key": "changed"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["key"], "changed");
    api.delete("keep", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    let live = api.get("keep").await.unwrap();
    assert_eq!(live.data.unwrap()["key"], "value");
    assert_eq!(
        live.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn objects_are_written_in_go_field_order() {
    let env = env().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("ordered"))
        .await
        .unwrap();
    let text = |path: &str| {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        let client = env.client();
        async move { client.request_text(request).await.unwrap() }
    };
    let one = text("/apis/apps/v1/namespaces/default/deployments/ordered").await;
    assert!(
        one.starts_with(r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"#),
        "{one}"
    );
    let spec = one.find(r#"},"spec":{"#).expect("spec after metadata");
    let status = one.find(r#""status":{"#).unwrap_or(one.len());
    assert!(spec < status, "{one}");
    let list = text("/apis/apps/v1/namespaces/default/deployments").await;
    assert!(
        list.starts_with(r#"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"#),
        "{list}"
    );
    assert!(list.contains(r#""items":[{"kind":"Deployment","apiVersion":"apps/v1","metadata":"#));
}
