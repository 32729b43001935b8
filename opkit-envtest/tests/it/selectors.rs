//! Field selectors as kube-apiserver supports them per kind, and metadata-only
//! (`PartialObjectMetadata`) answers to writes.

use crate::support::{configmap, configmaps, env, status};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchParams,
};
use serde_json::{Value, json};

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut names: Vec<String> = items.iter().filter_map(|o| o.meta().name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_absent_field_compares_as_its_zero_value() {
    let env = env().await;
    let nodes: Api<Node> = Api::all(env.client());
    for (name, spec) in [
        ("open", json!({})),
        ("cordoned", json!({"unschedulable": true})),
    ] {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
            .expect("valid Node");
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
    let schedulable = nodes
        .list(&ListParams::default().fields("spec.unschedulable==false"))
        .await
        .unwrap();
    let schedulable = names(&schedulable.items);
    assert!(schedulable.contains(&"open".to_string()), "{schedulable:?}");
    assert!(!schedulable.contains(&"cordoned".to_string()));
    let cordoned = nodes
        .list(&ListParams::default().fields("spec.unschedulable=true"))
        .await
        .unwrap();
    assert_eq!(names(&cordoned.items), ["cordoned"]);
}

#[tokio::test]
async fn an_unsupported_field_label_is_a_bad_request() {
    let env = env().await;
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let refused = status(
        pods.list(&ListParams::default().fields("spec.containers=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (
            refused.code,
            refused.reason.as_str(),
            refused.message.as_str()
        ),
        (
            400,
            "BadRequest",
            "field label not supported: spec.containers"
        )
    );
    let watch = pods
        .watch(&WatchParams::default().fields("status.hostIP=1.2.3.4"), "0")
        .await;
    assert_eq!(status(watch.err().expect("the watch is refused")).code, 400);
    let cms = configmaps(&env, "default");
    let refused = status(
        cms.list(&ListParams::default().fields("data.key=value"))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.message, "field label not supported: data.key");
    // Labels the kind supports select as documented.
    let supported = pods
        .list(&ListParams::default().fields("spec.nodeName=,status.phase!=Running"))
        .await
        .unwrap();
    assert!(supported.items.is_empty());
}

const GADGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
    - name: v1
      served: true
      storage: true
      selectableFields:
        - jsonPath: .spec.color
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                color: {type: string}
                size: {type: integer}
"#;

#[tokio::test]
async fn custom_resources_select_on_their_selectable_fields() {
    let env = env().await;
    env.install_crd_yaml(GADGET_CRD).await.unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &resource);
    for (name, color) in [("a", "blue"), ("b", "red"), ("c", "blue")] {
        let gadget =
            DynamicObject::new(name, &resource).data(json!({"spec": {"color": color, "size": 1}}));
        gadgets
            .create(&PostParams::default(), &gadget)
            .await
            .unwrap();
    }
    let blue = gadgets
        .list(&ListParams::default().fields("spec.color=blue"))
        .await
        .unwrap();
    assert_eq!(names(&blue.items), ["a", "c"]);
    let refused = status(
        gadgets
            .list(&ListParams::default().fields("spec.size=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (400, "field label not supported: spec.size")
    );
}

const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

#[tokio::test]
async fn metadata_only_writes_answer_with_partial_object_metadata() {
    let env = env().await;
    let cms = configmaps(&env, "default");
    cms.create(&PostParams::default(), &configmap("meta"))
        .await
        .unwrap();
    let patched = cms
        .patch_metadata(
            "meta",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"patched": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.labels.unwrap_or_default()["patched"],
        "yes"
    );

    let mut current: ConfigMap = cms.get("meta").await.unwrap();
    current.data = Some([("key".to_string(), "replaced".to_string())].into());
    let request = http::Request::put("/api/v1/namespaces/default/configmaps/meta")
        .header(http::header::ACCEPT, METADATA_ONLY)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&current).unwrap())
        .unwrap();
    let replaced: Value = env.client().request(request).await.unwrap();
    assert_eq!(replaced["kind"], "PartialObjectMetadata");
    assert_eq!(replaced["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(replaced["metadata"]["name"], "meta");
    assert!(replaced.get("data").is_none(), "{replaced}");
    assert_eq!(
        cms.get("meta").await.unwrap().data.unwrap()["key"],
        "replaced"
    );
}
