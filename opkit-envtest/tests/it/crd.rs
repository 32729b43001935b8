//! CustomResourceDefinitions: serving, schema enforcement, versions, deletion.

use crate::support::{WEBAPP_CRD, env, eventually, status, webapp, webapp_resource, webapps};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn an_installed_crd_is_established_and_served() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let crd = crds.get("webapps.example.com").await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    for wanted in ["Established", "NamesAccepted"] {
        let c = conditions.iter().find(|c| c.type_ == wanted).unwrap();
        assert_eq!(c.status, "True");
    }
    let created = webapps(&env, "default")
        .create(&PostParams::default(), &webapp("shop", 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let discovery = kube::Discovery::new(env.client()).run().await.unwrap();
    let (resource, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "example.com",
            "v1",
            "WebApp",
        ))
        .expect("WebApp is discoverable");
    assert_eq!(resource.plural, "webapps");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
}

#[tokio::test]
async fn schema_violations_are_invalid_with_the_real_wording() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let err = status(
        webapps(&env, "default")
            .create(&PostParams::default(), &webapp("x", 0))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "WebApp.example.com \"x\" is invalid: spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    );
    let causes = err.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "spec.replicas");
}

#[tokio::test]
async fn every_cause_is_reported() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let bad = DynamicObject::new("y", &webapp_resource("v1")).data(json!({
        "spec": {"replicas": 11},
    }));
    let err = status(
        webapps(&env, "default")
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(fields.contains(&"spec.replicas".to_string()), "{fields:?}");
    assert!(fields.contains(&"spec.image".to_string()), "{fields:?}");
}

#[tokio::test]
async fn schema_is_enforced_on_patches_too() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    api.create(&PostParams::default(), &webapp("p", 1))
        .await
        .unwrap();
    let err = status(
        api.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 50}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("less than or equal to 10"),
        "{}",
        err.message
    );
    let live = api.get("p").await.unwrap();
    assert_eq!(live.data["spec"]["replicas"], 1);
}

#[tokio::test]
async fn defaults_are_applied_and_unknown_fields_pruned() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let obj = DynamicObject::new("d", &webapp_resource("v1")).data(json!({
        "spec": {"replicas": 1, "image": "nginx", "colour": "blue"},
    }));
    let created = webapps(&env, "default")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["port"], 8080);
    assert!(created.data["spec"].get("colour").is_none());
}

#[tokio::test]
async fn an_update_omitting_defaulted_fields_changes_nothing() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    let created = api
        .create(&PostParams::default(), &webapp("d", 2))
        .await
        .unwrap();
    // The same spec without the defaulted port, as a client that never set it sends it.
    let mut resent = webapp("d", 2);
    resent.metadata.resource_version = created.metadata.resource_version.clone();
    let replaced = api
        .replace("d", &PostParams::default(), &resent)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, created.metadata.generation);
    assert_eq!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(replaced.data["spec"]["port"], 8080);
}

#[tokio::test]
async fn strict_field_validation_refuses_unknown_fields() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let obj = json!({
        "apiVersion": "example.com/v1", "kind": "WebApp",
        "metadata": {"name": "strict"},
        "spec": {"replicas": 1, "image": "nginx", "colour": "blue"},
    });
    let request = http::Request::post(
        "/apis/example.com/v1/namespaces/default/webapps?fieldValidation=Strict",
    )
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&obj).unwrap())
    .unwrap();
    let err = env
        .client()
        .request::<DynamicObject>(request)
        .await
        .unwrap_err();
    let err = status(err);
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("unknown field \"spec.colour\""),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn every_served_version_reads_the_same_objects() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    webapps(&env, "default")
        .create(&PostParams::default(), &webapp("multi", 3))
        .await
        .unwrap();
    let beta: Api<DynamicObject> =
        Api::namespaced_with(env.client(), "default", &webapp_resource("v1beta1"));
    let obj = beta.get("multi").await.unwrap();
    assert_eq!(obj.types.unwrap().api_version, "example.com/v1beta1");
    assert_eq!(obj.data["spec"]["replicas"], 3);
}

#[tokio::test]
async fn strategic_merge_patch_is_unsupported_for_custom_resources() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    api.create(&PostParams::default(), &webapp("s", 1))
        .await
        .unwrap();
    let err = status(
        api.patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 415);
    assert_eq!(err.reason, "UnsupportedMediaType");
}

#[tokio::test]
async fn deleting_the_crd_deletes_its_objects_and_stops_serving() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    api.create(&PostParams::default(), &webapp("doomed", 1))
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    crds.delete("webapps.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD to be gone", || {
        let crds = crds.clone();
        async move { crds.get_opt("webapps.example.com").await.unwrap().is_none() }
    })
    .await;
    let err = status(api.get("doomed").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(
        err.message,
        "the server could not find the requested resource"
    );
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    assert!(api.get_opt("doomed").await.unwrap().is_none());
}

#[tokio::test]
async fn a_crd_with_finalized_objects_waits_for_them() {
    let env = env().await;
    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    let api = webapps(&env, "default");
    let mut obj = webapp("held", 1);
    obj.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &obj).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    crds.delete("webapps.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(crds.get_opt("webapps.example.com").await.unwrap().is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the CRD to be gone", || {
        let crds = crds.clone();
        async move { crds.get_opt("webapps.example.com").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn invalid_crds_are_refused() {
    let env = env().await;
    let bad = WEBAPP_CRD.replace("name: webapps.example.com", "name: wrong.example.com");
    let err = env.install_crd_yaml(&bad).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("must be spec.names.plural+\".\"+spec.group"),
        "{err}"
    );
}

mod typed {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(group = "example.com", version = "v1", kind = "Backup", namespaced)]
    pub struct BackupSpec {
        pub target: String,
    }
}

#[tokio::test]
async fn install_crd_takes_a_custom_resource_type() {
    let env = env().await;
    env.install_crd::<typed::Backup>().await.unwrap();
    env.install_crd::<typed::Backup>().await.unwrap();
    let api: Api<typed::Backup> = Api::namespaced(env.client(), "default");
    let backup = typed::Backup::new(
        "nightly",
        typed::BackupSpec {
            target: "s3".into(),
        },
    );
    let created = api.create(&PostParams::default(), &backup).await.unwrap();
    assert_eq!(created.spec.target, "s3");
}
