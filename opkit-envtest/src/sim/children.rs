//! The objects the workload controllers create: ReplicaSets, Pods and claims.

use super::cron::job_finished;
use super::{FAIL, Kind, NEVER_READY, api_for, controller_uid, int_at, template_hash, text_at};
use crate::store::Store;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};

/// The label the Deployment controller puts on its ReplicaSets and their pods.
const TEMPLATE_HASH: &str = "pod-template-hash";

/// The annotation numbering a Deployment's ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// The workload controlling `pod`, if the simulation made it.
pub(super) fn controller_of(pod: &DynamicObject) -> Option<(Kind, String)> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))?;
    let kind = match owner.kind.as_str() {
        "ReplicaSet" => Kind::ReplicaSet,
        "StatefulSet" => Kind::StatefulSet,
        "DaemonSet" => Kind::DaemonSet,
        "Job" => Kind::Job,
        _ => return None,
    };
    Some((kind, owner.name.clone()))
}

fn reference(owner: &Value, kind: Kind, controller: bool) -> Value {
    let resource = kind.resource();
    json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": text_at(owner, "/metadata/name"),
        "uid": text_at(owner, "/metadata/uid"),
        "controller": controller,
        "blockOwnerDeletion": true,
    })
}

/// The health annotations a child inherits from its workload, `null` where absent
/// (so a merge patch also clears them).
fn health_annotations(owner: &Value) -> Map<String, Value> {
    [NEVER_READY, FAIL]
        .into_iter()
        .map(|key| {
            let value = owner
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or(Value::Null);
            (key.to_string(), value)
        })
        .collect()
}

/// Merges `extra` into the object at `pointer`, creating it, dropping `null`s.
fn merge_into(obj: &mut Value, pointer: &str, extra: &Map<String, Value>) {
    let mut merged = obj
        .pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in extra {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(parent) = obj.pointer_mut(parent).and_then(Value::as_object_mut) {
        parent.insert(field.to_string(), Value::Object(merged));
    }
}

/// The live objects of `kind` that `owner` controls, from the store's owner
/// index: a list by selector would scan the whole namespace for every owner.
pub(super) fn owned(store: &Store, kind: Kind, owner: &Value) -> Vec<Value> {
    let uid = text_at(owner, "/metadata/uid");
    let resource = kind.resource();
    let storage = format!("{}/{}", resource.group, resource.plural);
    let state = store.read();
    state
        .dependents(uid)
        .into_iter()
        .filter(|key| *key.storage == *storage)
        .filter_map(|key| state.get(&key.storage, &key.namespace, &key.name))
        .filter(|o| controller_uid(o) == Some(uid) && !meta_deleting(o))
        .collect()
}

fn meta_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// Creates `obj`, an existing one of the same name being fine.
async fn create(api: &Api<DynamicObject>, obj: Value) -> Result<(), kube::Error> {
    let Ok(obj) = serde_json::from_value::<DynamicObject>(obj) else {
        return Ok(());
    };
    match api.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Creates a pod; a refusal by admission (Pod Security, a policy, a webhook)
/// is the message its controller reports as `FailedCreate`.
async fn create_pod(api: &Api<DynamicObject>, pod: Value) -> Result<Option<String>, kube::Error> {
    match create(api, pod).await {
        Err(kube::Error::Api(status)) if matches!(status.code, 403 | 422) => {
            Ok(Some(status.message))
        }
        other => other.map(|()| None),
    }
}

/// Deletes `name`, one already gone being fine.
async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Creates and deletes the objects a workload's controller would: ReplicaSets
/// for Deployments, Pods for the others, claims for StatefulSets. Returns why
/// a ReplicaSet's pod was refused, if it was.
pub(super) async fn sync_children(
    client: kube::Client,
    store: &Store,
    kind: Kind,
    obj: &Value,
) -> Result<Option<String>, kube::Error> {
    let namespace = text_at(obj, "/metadata/namespace");
    if meta_deleting(obj) || namespace.is_empty() {
        return Ok(None);
    }
    let api = |kind: Kind| api_for(&client, &kind.resource(), namespace);
    match kind {
        Kind::Deployment => {
            let owned = owned(store, Kind::ReplicaSet, obj);
            sync_deployment(&api(Kind::ReplicaSet), obj, &owned).await
        }
        Kind::ReplicaSet => {
            return sync_replicaset(&api(Kind::Pod), obj, owned(store, Kind::Pod, obj)).await;
        }
        Kind::StatefulSet => {
            let owned = owned(store, Kind::Pod, obj);
            sync_statefulset(
                &api(Kind::Pod),
                &api(Kind::PersistentVolumeClaim),
                obj,
                &owned,
            )
            .await
        }
        Kind::DaemonSet => {
            sync_daemonset(&api(Kind::Pod), obj, &owned(store, Kind::Pod, obj)).await
        }
        Kind::Job => sync_job(&api(Kind::Pod), obj, &owned(store, Kind::Pod, obj)).await,
        Kind::PersistentVolumeClaim | Kind::Pod => Ok(()),
    }
    .map(|()| None)
}

/// A Pod from `owner`'s template, on the simulated node.
fn pod_from(owner: &Value, kind: Kind, template: &Value, labels: &Map<String, Value>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    merge_into(&mut pod, "/metadata/labels", labels);
    merge_into(
        &mut pod,
        "/metadata/annotations",
        &health_annotations(owner),
    );
    if let Some(meta) = pod["metadata"].as_object_mut() {
        meta.remove("name");
        meta.remove("namespace");
        meta.insert(
            "ownerReferences".into(),
            json!([reference(owner, kind, true)]),
        );
    }
    if let Some(spec) = pod["spec"].as_object_mut() {
        spec.insert("nodeName".into(), json!(super::node::NAME));
    }
    pod
}

fn generated(mut obj: Value, prefix: &str) -> Value {
    obj["metadata"]["generateName"] = json!(format!("{prefix}-"));
    obj
}

/// One ReplicaSet per pod template: the current one scaled to the
/// Deployment's replicas, the others to zero.
async fn sync_deployment(
    replicasets: &Api<DynamicObject>,
    deployment: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(deployment, "/metadata/name");
    let replicas = int_at(deployment, "/spec/replicas", 1);
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hash = template_hash(Some(&template));
    let current = format!("{name}-{hash}");
    let health = health_annotations(deployment);
    let revision = |rs: &Value| {
        rs.pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let mut found = false;
    for rs in owned {
        let rs_name = text_at(rs, "/metadata/name");
        let want = if rs_name == current { replicas } else { 0 };
        found |= rs_name == current;
        let annotations = rs.pointer("/metadata/annotations");
        let same_health = health
            .iter()
            .all(|(k, v)| annotations.and_then(|a| a.get(k)).unwrap_or(&Value::Null) == v);
        if int_at(rs, "/spec/replicas", 1) != want || !same_health {
            let patch = json!({"metadata": {"annotations": health}, "spec": {"replicas": want}});
            replicasets
                .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    if found {
        return Ok(());
    }
    let mut labels = Map::new();
    labels.insert(TEMPLATE_HASH.into(), json!(hash));
    let mut rs_template = template;
    merge_into(&mut rs_template, "/metadata/labels", &labels);
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    merge_into(&mut selector, "/matchLabels", &labels);
    let mut annotations = health;
    let next = owned.iter().map(revision).max().unwrap_or(0) + 1;
    annotations.insert(REVISION.into(), json!(next.to_string()));
    annotations.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        json!(replicas.to_string()),
    );
    let mut rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": current,
            "labels": rs_template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": [reference(deployment, Kind::Deployment, true)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
    });
    merge_into(&mut rs, "/metadata/annotations", &annotations);
    create(replicasets, rs).await
}

/// `spec.replicas` pods with generated names; extra ones deleted, newest
/// first. Stops at the first pod refused, and returns why.
async fn sync_replicaset(
    pods: &Api<DynamicObject>,
    rs: &Value,
    mut owned: Vec<Value>,
) -> Result<Option<String>, kube::Error> {
    let name = text_at(rs, "/metadata/name");
    let want = usize::try_from(int_at(rs, "/spec/replicas", 1)).unwrap_or(0);
    let template = rs
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for _ in owned.len()..want {
        let pod = pod_from(rs, Kind::ReplicaSet, &template, &Map::new());
        if let Some(refused) = create_pod(pods, generated(pod, name)).await? {
            return Ok(Some(refused));
        }
    }
    owned.sort_by(|a, b| {
        text_at(b, "/metadata/creationTimestamp").cmp(text_at(a, "/metadata/creationTimestamp"))
    });
    for pod in owned.iter().take(owned.len().saturating_sub(want)) {
        delete(pods, text_at(pod, "/metadata/name")).await?;
    }
    Ok(None)
}

/// Pods `<name>-0` to `<name>-(N-1)` with their claims from `volumeClaimTemplates`,
/// honouring `persistentVolumeClaimRetentionPolicy`.
async fn sync_statefulset(
    pods: &Api<DynamicObject>,
    claims: &Api<DynamicObject>,
    sts: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(sts, "/metadata/name");
    let want = int_at(sts, "/spec/replicas", 1).max(0);
    let revision = format!("{name}-{}", template_hash(sts.pointer("/spec/template")));
    let policy = |when: &str| {
        sts.pointer(&format!(
            "/spec/persistentVolumeClaimRetentionPolicy/{when}"
        ))
        .and_then(Value::as_str)
            == Some("Delete")
    };
    let templates: Vec<Value> = sts
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let claim_name = |template: &Value, ordinal: i64| {
        format!("{}-{name}-{ordinal}", text_at(template, "/metadata/name"))
    };
    let ordinal_of = |pod: &Value| {
        text_at(pod, "/metadata/name")
            .strip_prefix(&format!("{name}-"))
            .and_then(|o| o.parse::<i64>().ok())
    };
    for pod in owned {
        if ordinal_of(pod).is_none_or(|o| o >= want) {
            delete(pods, text_at(pod, "/metadata/name")).await?;
            if let Some(ordinal) = ordinal_of(pod).filter(|_| policy("whenScaled")) {
                for template in &templates {
                    delete(claims, &claim_name(template, ordinal)).await?;
                }
            }
        }
    }
    let template = sts
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let selector_labels = sts
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for ordinal in 0..want {
        for template in &templates {
            let mut claim = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
                "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            });
            claim["metadata"]["name"] = json!(claim_name(template, ordinal));
            merge_into(&mut claim, "/metadata/labels", &selector_labels);
            if policy("whenDeleted") {
                claim["metadata"]["ownerReferences"] =
                    json!([reference(sts, Kind::StatefulSet, false)]);
            }
            create(claims, claim).await?;
        }
        let pod_name = format!("{name}-{ordinal}");
        if owned
            .iter()
            .any(|p| text_at(p, "/metadata/name") == pod_name)
        {
            continue;
        }
        let labels: Map<String, Value> = [
            ("apps.kubernetes.io/pod-index", json!(ordinal.to_string())),
            ("statefulset.kubernetes.io/pod-name", json!(pod_name)),
            ("controller-revision-hash", json!(revision)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut pod = pod_from(sts, Kind::StatefulSet, &template, &labels);
        pod["metadata"]["name"] = json!(pod_name);
        if let Some(spec) = pod["spec"].as_object_mut() {
            spec.insert("hostname".into(), json!(pod_name));
            if let Some(service) = sts.pointer("/spec/serviceName") {
                spec.insert("subdomain".into(), service.clone());
            }
            let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
            if let Some(volumes) = volumes.as_array_mut() {
                for template in &templates {
                    volumes.push(json!({
                        "name": text_at(template, "/metadata/name"),
                        "persistentVolumeClaim": {"claimName": claim_name(template, ordinal)},
                    }));
                }
            }
        }
        create(pods, pod).await?;
    }
    Ok(())
}

/// One pod, unless the Job is suspended, finished or already has one.
async fn sync_job(
    pods: &Api<DynamicObject>,
    job: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    if !owned.is_empty() || suspended || job_finished(job).is_some() {
        return Ok(());
    }
    let template = job
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let pod = pod_from(job, Kind::Job, &template, &Map::new());
    create(pods, generated(pod, text_at(job, "/metadata/name"))).await
}

/// One pod on the one simulated node.
async fn sync_daemonset(
    pods: &Api<DynamicObject>,
    ds: &Value,
    owned: &[Value],
) -> Result<(), kube::Error> {
    let name = text_at(ds, "/metadata/name");
    for extra in owned.iter().skip(1) {
        delete(pods, text_at(extra, "/metadata/name")).await?;
    }
    if !owned.is_empty() {
        return Ok(());
    }
    let template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let labels: Map<String, Value> = [
        (
            "controller-revision-hash".to_string(),
            json!(template_hash(Some(&template))),
        ),
        (
            "pod-template-generation".to_string(),
            json!(int_at(ds, "/metadata/generation", 1).to_string()),
        ),
    ]
    .into_iter()
    .collect();
    let pod = pod_from(ds, Kind::DaemonSet, &template, &labels);
    create(pods, generated(pod, name)).await
}
