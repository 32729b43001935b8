//! Field labels: which fields each kind's field selectors accept, and the
//! value a selector compares with, as kube-apiserver's field label
//! conversion functions and `GetAttrs` define them. Every kind accepts
//! `metadata.name` and `metadata.namespace`; a label a kind does not support
//! is 400 `field label not supported: <label>`; an absent field has its type's
//! zero value (`spec.unschedulable` is `"false"` on a Node without it).

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::FieldSelector;
use serde_json::Value;

/// A field label of a kind: where its value is read, and the value when absent.
struct Label {
    label: &'static str,
    pointer: &'static str,
    absent: &'static str,
}

const fn l(label: &'static str, pointer: &'static str, absent: &'static str) -> Label {
    Label {
        label,
        pointer,
        absent,
    }
}

const POD: &[Label] = &[
    l("spec.nodeName", "/spec/nodeName", ""),
    l("spec.restartPolicy", "/spec/restartPolicy", ""),
    l("spec.schedulerName", "/spec/schedulerName", ""),
    l("spec.serviceAccountName", "/spec/serviceAccountName", ""),
    l("spec.hostNetwork", "/spec/hostNetwork", "false"),
    l("status.phase", "/status/phase", ""),
    l("status.podIP", "/status/podIP", ""),
    l("status.podIPs", "/status/podIPs/0/ip", ""),
    l("status.nominatedNodeName", "/status/nominatedNodeName", ""),
];

const EVENT: &[Label] = &[
    l("involvedObject.kind", "/involvedObject/kind", ""),
    l("involvedObject.namespace", "/involvedObject/namespace", ""),
    l("involvedObject.name", "/involvedObject/name", ""),
    l("involvedObject.uid", "/involvedObject/uid", ""),
    l(
        "involvedObject.apiVersion",
        "/involvedObject/apiVersion",
        "",
    ),
    l(
        "involvedObject.resourceVersion",
        "/involvedObject/resourceVersion",
        "",
    ),
    l("involvedObject.fieldPath", "/involvedObject/fieldPath", ""),
    l("reason", "/reason", ""),
    l("reportingComponent", "/reportingComponent", ""),
    l("source", "/source/component", ""),
    l("type", "/type", ""),
];

/// `events.k8s.io/v1` Events are stored in the core form: their labels read its fields.
const EVENTS_V1: &[Label] = &[
    l("regarding.kind", "/involvedObject/kind", ""),
    l("regarding.namespace", "/involvedObject/namespace", ""),
    l("regarding.name", "/involvedObject/name", ""),
    l("regarding.uid", "/involvedObject/uid", ""),
    l("regarding.apiVersion", "/involvedObject/apiVersion", ""),
    l(
        "regarding.resourceVersion",
        "/involvedObject/resourceVersion",
        "",
    ),
    l("regarding.fieldPath", "/involvedObject/fieldPath", ""),
    l("reason", "/reason", ""),
    l("reportingController", "/reportingComponent", ""),
    l("deprecatedSource.component", "/source/component", ""),
    l("type", "/type", ""),
];

const NODE: &[Label] = &[l("spec.unschedulable", "/spec/unschedulable", "false")];
const NAMESPACE: &[Label] = &[l("status.phase", "/status/phase", "")];
const SECRET: &[Label] = &[l("type", "/type", "")];
const SERVICE: &[Label] = &[
    l("spec.clusterIP", "/spec/clusterIP", ""),
    l("spec.type", "/spec/type", ""),
];
const REPLICAS: &[Label] = &[l("status.replicas", "/status/replicas", "0")];
const JOB: &[Label] = &[l("status.successful", "/status/succeeded", "0")];
const CSR: &[Label] = &[l("spec.signerName", "/spec/signerName", "")];

/// The labels `kind` of `group` accepts besides `metadata.name` and `metadata.namespace`.
fn labels(group: &str, kind: &str) -> &'static [Label] {
    match (group, kind) {
        ("", "Pod") => POD,
        ("", "Node") => NODE,
        ("", "Event") => EVENT,
        ("events.k8s.io", "Event") => EVENTS_V1,
        ("", "Namespace") => NAMESPACE,
        ("", "Secret") => SECRET,
        ("", "Service") => SERVICE,
        ("", "ReplicationController") | ("apps", "ReplicaSet") => REPLICAS,
        ("batch", "Job") => JOB,
        ("certificates.k8s.io", "CertificateSigningRequest") => CSR,
        _ => &[],
    }
}

/// Refuses a selector naming a field the kind's selectors do not support.
pub(crate) fn check(info: &ResourceInfo, selector: &FieldSelector) -> Result<(), ApiError> {
    for label in selector.labels() {
        let supported = matches!(label, "metadata.name" | "metadata.namespace")
            || labels(&info.group, &info.kind)
                .iter()
                .any(|l| l.label == label)
            || info.selectable_fields.iter().any(|f| f == label);
        if !supported {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {label}"
            )));
        }
    }
    Ok(())
}

/// The value `label` has on `obj` (in its stored form) of `kind` in `group`, as a selector
/// compares it.
pub(crate) fn value(group: &str, kind: &str, obj: &Value, label: &str) -> String {
    let (pointer, absent) = match labels(group, kind).iter().find(|l| l.label == label) {
        Some(known) => (known.pointer.to_string(), known.absent),
        None => (format!("/{}", label.replace('.', "/")), ""),
    };
    match obj.pointer(&pointer) {
        None | Some(Value::Null) => absent.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;
    use serde_json::json;

    fn info(group: &str, kind: &str) -> ResourceInfo {
        builtins()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
            .unwrap_or_else(|| panic!("{kind}"))
    }

    fn selector(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn absent_fields_have_their_zero_value() {
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert_eq!(value("", "Node", &node, "spec.unschedulable"), "false");
        let cordoned = json!({"spec": {"unschedulable": true}});
        assert_eq!(value("", "Node", &cordoned, "spec.unschedulable"), "true");
        assert!(
            selector("spec.unschedulable==false").matches_with(|l| value("", "Node", &node, l))
        );
        let event = json!({"involvedObject": {"name": "web"}, "source": {"component": "kubelet"}});
        assert_eq!(
            value("events.k8s.io", "Event", &event, "regarding.name"),
            "web"
        );
        assert_eq!(
            value(
                "events.k8s.io",
                "Event",
                &event,
                "deprecatedSource.component"
            ),
            "kubelet"
        );
    }

    #[test]
    fn unsupported_labels_are_refused() {
        let pods = info("", "Pod");
        assert!(check(&pods, &selector("spec.nodeName=a,metadata.name=b")).is_ok());
        let refused = check(&pods, &selector("spec.containers=x")).unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (400, "field label not supported: spec.containers")
        );
        assert!(check(&info("", "ConfigMap"), &selector("data.a=b")).is_err());
    }
}
