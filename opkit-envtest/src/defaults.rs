//! Cheap server-side defaults of the built-in kinds, where kubectl and
//! operators rely on them (Service clusterIP, Deployment strategy, pod
//! template fields, Secret stringData, Namespace phase...).

use crate::resources::ResourceInfo;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_CLUSTER_IP: AtomicU32 = AtomicU32::new(10);

fn cluster_ip() -> String {
    let n = NEXT_CLUSTER_IP.fetch_add(1, Ordering::Relaxed);
    format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
}

fn obj_mut<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let entry = parent.entry(key).or_insert_with(|| json!({}));
    if entry.is_null() {
        *entry = json!({});
    }
    entry.as_object_mut()
}

/// A workload's update strategy: `RollingUpdate` when no type is set (an empty
/// `strategy: {}` too, as from protobuf), and the rolling update's defaults.
fn rolling_update(spec: &mut Map<String, Value>, key: &str, defaults: &[(&str, Value)]) {
    let Some(strategy) = obj_mut(spec, key) else {
        return;
    };
    if strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        strategy.insert("type".into(), json!("RollingUpdate"));
    }
    if strategy.get("type").and_then(Value::as_str) != Some("RollingUpdate") {
        return;
    }
    if let Some(rolling) = obj_mut(strategy, "rollingUpdate") {
        for (field, value) in defaults {
            set_default(rolling, field, value.clone());
        }
    }
}

/// The objects of the list at `key`.
fn items_mut<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    parent
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// What kube-apiserver stores for a webhook left unset: `failurePolicy: Fail`,
/// `matchPolicy: Equivalent`, empty selectors, 10 s, rules of any scope, port 443,
/// and for mutating webhooks `reinvocationPolicy: Never`.
fn webhook_defaults(webhook: &mut Map<String, Value>, mutating: bool) {
    set_default(webhook, "failurePolicy", json!("Fail"));
    set_default(webhook, "matchPolicy", json!("Equivalent"));
    set_default(webhook, "namespaceSelector", json!({}));
    set_default(webhook, "objectSelector", json!({}));
    set_default(webhook, "timeoutSeconds", json!(10));
    if mutating {
        set_default(webhook, "reinvocationPolicy", json!("Never"));
    }
    for rule in items_mut(webhook, "rules") {
        set_default(rule, "scope", json!("*"));
    }
    if let Some(service) = webhook
        .get_mut("clientConfig")
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        set_default(service, "port", json!(443));
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = map.entry(key).or_insert(Value::Null);
    if entry.is_null() {
        *entry = value;
    }
}

/// Applies the defaults of `info`'s kind to `obj`; `old` is the live object on updates.
pub(crate) fn apply(info: &ResourceInfo, old: Option<&Value>, obj: &mut Value) {
    if info.schema.is_some() {
        return;
    }
    let name = crate::store::meta_str(obj, "name").to_string();
    let uid = crate::store::meta_str(obj, "uid").to_string();
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Namespace") => {
            if let Some(meta) = obj_mut(root, "metadata")
                && let Some(labels) = obj_mut(meta, "labels")
            {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = obj_mut(root, "status") {
                set_default(status, "phase", json!("Active"));
            }
        }
        ("", "Service") => service(root, old),
        ("", "Secret") => secret(root),
        ("", "Pod") => {
            if let Some(spec) = obj_mut(root, "spec") {
                pod_spec(spec);
                set_default(spec, "serviceAccountName", json!("default"));
                set_default(spec, "serviceAccount", json!("default"));
            }
            if let Some(status) = obj_mut(root, "status") {
                set_default(status, "phase", json!("Pending"));
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = obj_mut(root, "status") {
                set_default(status, "phase", json!("Pending"));
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                rolling_update(
                    spec,
                    "strategy",
                    &[("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))],
                );
                template(spec);
            }
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                rolling_update(spec, "updateStrategy", &[("partition", json!(0))]);
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                template(spec);
            }
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "replicas", json!(1));
                template(spec);
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "revisionHistoryLimit", json!(10));
                rolling_update(
                    spec,
                    "updateStrategy",
                    &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
                );
                template(spec);
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = obj_mut(root, "spec") {
                job_spec(spec, &name, &uid, old.is_none());
            }
        }
        (
            "admissionregistration.k8s.io",
            kind @ ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"),
        ) => {
            let mutating = kind == "MutatingWebhookConfiguration";
            for webhook in items_mut(root, "webhooks") {
                webhook_defaults(webhook, mutating);
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = obj_mut(root, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(job) = obj_mut(spec, "jobTemplate")
                    && let Some(job_spec) = obj_mut(job, "spec")
                {
                    template(job_spec);
                }
            }
        }
        _ => {}
    }
}

fn template(spec: &mut Map<String, Value>) {
    if let Some(template) = obj_mut(spec, "template")
        && let Some(pod) = obj_mut(template, "spec")
    {
        pod_spec(pod);
    }
}

fn pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for key in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let image = container
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let last = image.rsplit('/').next().unwrap_or("");
            let latest = !last.contains(':') || last.ends_with(":latest");
            let policy = if latest && !image.contains('@') {
                "Always"
            } else {
                "IfNotPresent"
            };
            set_default(container, "imagePullPolicy", json!(policy));
            set_default(
                container,
                "terminationMessagePath",
                json!("/dev/termination-log"),
            );
            set_default(container, "terminationMessagePolicy", json!("File"));
            set_default(container, "resources", json!({}));
            if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn service(root: &mut Map<String, Value>, old: Option<&Value>) {
    let Some(spec) = obj_mut(root, "spec") else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let external_name = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    if !external_name {
        let previous = old.and_then(|o| o.pointer("/spec/clusterIP")).cloned();
        let empty = spec
            .get("clusterIP")
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty));
        if empty {
            let ip = previous.unwrap_or_else(|| json!(cluster_ip()));
            spec.insert("clusterIP".into(), ip);
        }
        if let Some(ip) = spec.get("clusterIP").cloned() {
            set_default(spec, "clusterIPs", json!([ip]));
        }
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                set_default(port, "targetPort", number);
            }
        }
    }
    if let Some(status) = obj_mut(root, "status") {
        set_default(status, "loadBalancer", json!({}));
    }
}

fn secret(root: &mut Map<String, Value>) {
    set_default(root, "type", json!("Opaque"));
    let Some(Value::Object(string_data)) = root.remove("stringData") else {
        return;
    };
    if let Some(data) = obj_mut(root, "data") {
        for (key, value) in string_data {
            if let Some(text) = value.as_str() {
                data.insert(key, json!(BASE64.encode(text.as_bytes())));
            }
        }
    }
}

fn job_spec(spec: &mut Map<String, Value>, name: &str, uid: &str, creating: bool) {
    set_default(spec, "completions", json!(1));
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if creating && !uid.is_empty() && spec.get("manualSelector") != Some(&json!(true)) {
        let labels = json!({
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        });
        set_default(
            spec,
            "selector",
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        if let Some(template) = obj_mut(spec, "template")
            && let Some(meta) = obj_mut(template, "metadata")
            && let Some(existing) = obj_mut(meta, "labels")
            && let Some(labels) = labels.as_object()
        {
            for (k, v) in labels {
                existing.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(template) = obj_mut(spec, "template")
        && let Some(pod) = obj_mut(template, "spec")
    {
        set_default(pod, "restartPolicy", json!("Never"));
        pod_spec(pod);
    }
}
