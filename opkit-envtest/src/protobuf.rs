//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) for the kinds kubectl's typed
//! generators send (`kubectl create configmap|secret|deployment|...`).
//!
//! The body is the `k8s\0` magic followed by a `runtime.Unknown` envelope
//! whose `raw` field holds the object. Objects are decoded with a table of
//! the generated.proto field numbers of the messages those generators fill;
//! fields outside the table are skipped. Zero values are dropped, as Go's
//! `omitempty` JSON encoding drops them.

use serde_json::{Map, Value, json};

/// The protobuf media type.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A body that is not a protobuf object this server can read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DecodeError(String);

#[derive(Clone, Copy)]
enum Kind {
    Str,
    /// An integer whose zero is dropped (`omitempty`).
    Int,
    /// A pointer integer whose explicit zero is meaningful (`replicas`).
    OptInt,
    Bool,
    Msg(&'static str),
    /// An embedded message whose fields JSON inlines in the parent.
    Inline(&'static str),
    MapStr,
    MapBytes,
    MapQuantity,
    IntOrString,
    Time,
    RepStr,
    RepMsg(&'static str),
}

use Kind::*;

type Fields = &'static [(u64, &'static str, Kind)];

#[rustfmt::skip]
const MESSAGES: &[(&str, Fields)] = &[
    ("ObjectMeta", &[
        (1, "name", Str), (2, "generateName", Str), (3, "namespace", Str), (5, "uid", Str),
        (6, "resourceVersion", Str), (7, "generation", Int), (8, "creationTimestamp", Time),
        (11, "labels", MapStr), (12, "annotations", MapStr),
        (13, "ownerReferences", RepMsg("OwnerReference")), (14, "finalizers", RepStr),
    ]),
    ("OwnerReference", &[
        (1, "kind", Str), (3, "name", Str), (4, "uid", Str), (5, "apiVersion", Str),
        (6, "controller", Bool), (7, "blockOwnerDeletion", Bool),
    ]),
    ("LabelSelector", &[
        (1, "matchLabels", MapStr), (2, "matchExpressions", RepMsg("LabelSelectorRequirement")),
    ]),
    ("LabelSelectorRequirement", &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)]),
    ("ConfigMap", &[
        (1, "metadata", Msg("ObjectMeta")), (2, "data", MapStr), (3, "binaryData", MapBytes),
        (4, "immutable", Bool),
    ]),
    ("Secret", &[
        (1, "metadata", Msg("ObjectMeta")), (2, "data", MapBytes), (3, "type", Str),
        (4, "stringData", MapStr), (5, "immutable", Bool),
    ]),
    ("Namespace", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("NamespaceSpec"))]),
    ("NamespaceSpec", &[(1, "finalizers", RepStr)]),
    ("ServiceAccount", &[
        (1, "metadata", Msg("ObjectMeta")), (4, "automountServiceAccountToken", Bool),
    ]),
    ("Service", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("ServiceSpec"))]),
    ("ServiceSpec", &[
        (1, "ports", RepMsg("ServicePort")), (2, "selector", MapStr), (3, "clusterIP", Str),
        (4, "type", Str), (5, "externalIPs", RepStr), (7, "sessionAffinity", Str),
        (10, "externalName", Str),
    ]),
    ("ServicePort", &[
        (1, "name", Str), (2, "protocol", Str), (3, "port", Int), (4, "targetPort", IntOrString),
        (5, "nodePort", Int),
    ]),
    ("Deployment", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("DeploymentSpec"))]),
    ("DeploymentSpec", &[
        (1, "replicas", OptInt), (2, "selector", Msg("LabelSelector")),
        (3, "template", Msg("PodTemplateSpec")), (4, "strategy", Msg("DeploymentStrategy")),
        (5, "minReadySeconds", Int), (6, "revisionHistoryLimit", OptInt), (7, "paused", Bool),
        (9, "progressDeadlineSeconds", OptInt),
    ]),
    ("DeploymentStrategy", &[(1, "type", Str)]),
    ("PodTemplateSpec", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("PodSpec"))]),
    ("PodSpec", &[
        (2, "containers", RepMsg("Container")), (3, "restartPolicy", Str),
        (4, "terminationGracePeriodSeconds", OptInt), (6, "dnsPolicy", Str),
        (7, "nodeSelector", MapStr), (8, "serviceAccountName", Str), (10, "nodeName", Str),
        (11, "hostNetwork", Bool), (19, "schedulerName", Str), (20, "initContainers", RepMsg("Container")),
    ]),
    ("Container", &[
        (1, "name", Str), (2, "image", Str), (3, "command", RepStr), (4, "args", RepStr),
        (5, "workingDir", Str), (6, "ports", RepMsg("ContainerPort")), (7, "env", RepMsg("EnvVar")),
        (8, "resources", Msg("ResourceRequirements")), (13, "terminationMessagePath", Str),
        (14, "imagePullPolicy", Str), (16, "stdin", Bool), (17, "stdinOnce", Bool), (18, "tty", Bool),
        (20, "terminationMessagePolicy", Str),
    ]),
    ("ContainerPort", &[
        (1, "name", Str), (2, "hostPort", Int), (3, "containerPort", Int), (4, "protocol", Str),
        (5, "hostIP", Str),
    ]),
    ("EnvVar", &[(1, "name", Str), (2, "value", Str)]),
    ("ResourceRequirements", &[(1, "limits", MapQuantity), (2, "requests", MapQuantity)]),
    ("Job", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("JobSpec"))]),
    ("JobSpec", &[
        (1, "parallelism", OptInt), (2, "completions", OptInt), (3, "activeDeadlineSeconds", OptInt),
        (4, "selector", Msg("LabelSelector")), (5, "manualSelector", Bool),
        (6, "template", Msg("PodTemplateSpec")), (7, "backoffLimit", OptInt),
        (8, "ttlSecondsAfterFinished", OptInt), (9, "completionMode", Str), (10, "suspend", Bool),
    ]),
    ("CronJob", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("CronJobSpec"))]),
    ("CronJobSpec", &[
        (1, "schedule", Str), (2, "startingDeadlineSeconds", OptInt), (3, "concurrencyPolicy", Str),
        (4, "suspend", Bool), (5, "jobTemplate", Msg("JobTemplateSpec")),
        (6, "successfulJobsHistoryLimit", OptInt), (7, "failedJobsHistoryLimit", OptInt),
        (8, "timeZone", Str),
    ]),
    ("JobTemplateSpec", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("JobSpec"))]),
    ("Role", &[(1, "metadata", Msg("ObjectMeta")), (2, "rules", RepMsg("PolicyRule"))]),
    ("PolicyRule", &[
        (1, "verbs", RepStr), (2, "apiGroups", RepStr), (3, "resources", RepStr),
        (4, "resourceNames", RepStr), (5, "nonResourceURLs", RepStr),
    ]),
    ("RoleBinding", &[
        (1, "metadata", Msg("ObjectMeta")), (2, "subjects", RepMsg("Subject")),
        (3, "roleRef", Msg("RoleRef")),
    ]),
    ("Subject", &[(1, "kind", Str), (2, "apiGroup", Str), (3, "name", Str), (4, "namespace", Str)]),
    ("RoleRef", &[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)]),
    ("PodDisruptionBudget", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("PodDisruptionBudgetSpec"))]),
    ("PodDisruptionBudgetSpec", &[
        (1, "minAvailable", IntOrString), (2, "selector", Msg("LabelSelector")),
        (3, "maxUnavailable", IntOrString),
    ]),
    ("Ingress", &[(1, "metadata", Msg("ObjectMeta")), (2, "spec", Msg("IngressSpec"))]),
    ("IngressSpec", &[
        (1, "defaultBackend", Msg("IngressBackend")), (2, "tls", RepMsg("IngressTLS")),
        (3, "rules", RepMsg("IngressRule")), (4, "ingressClassName", Str),
    ]),
    ("IngressTLS", &[(1, "hosts", RepStr), (2, "secretName", Str)]),
    ("IngressRule", &[(1, "host", Str), (2, "", Inline("IngressRuleValue"))]),
    ("IngressRuleValue", &[(1, "http", Msg("HTTPIngressRuleValue"))]),
    ("HTTPIngressRuleValue", &[(1, "paths", RepMsg("HTTPIngressPath"))]),
    ("HTTPIngressPath", &[(1, "path", Str), (2, "backend", Msg("IngressBackend")), (3, "pathType", Str)]),
    ("IngressBackend", &[(4, "service", Msg("IngressServiceBackend"))]),
    ("IngressServiceBackend", &[(1, "name", Str), (2, "port", Msg("ServiceBackendPort"))]),
    ("ServiceBackendPort", &[(1, "name", Str), (2, "number", Int)]),
];

/// Top-level kinds: (apiVersion, kind) → message.
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "ConfigMap", "ConfigMap"),
    ("v1", "Secret", "Secret"),
    ("v1", "Namespace", "Namespace"),
    ("v1", "ServiceAccount", "ServiceAccount"),
    ("v1", "Service", "Service"),
    ("apps/v1", "Deployment", "Deployment"),
    ("batch/v1", "Job", "Job"),
    ("batch/v1", "CronJob", "CronJob"),
    ("rbac.authorization.k8s.io/v1", "Role", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "RoleBinding"),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "RoleBinding",
    ),
    ("policy/v1", "PodDisruptionBudget", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress", "Ingress"),
];

/// One wire-format field.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| DecodeError("truncated varint".into()))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint too long".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| DecodeError("truncated field".into()))?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Bytes(self.take(8)?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| DecodeError("field too long".into()))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Bytes(self.take(4)?),
            other => return Err(DecodeError(format!("unsupported wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, DecodeError> {
    let mut reader = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while let Some(field) = reader.next()? {
        out.push(field);
    }
    Ok(out)
}

fn string(wire: &Wire<'_>) -> Result<String, DecodeError> {
    match wire {
        Wire::Bytes(b) => String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError("invalid UTF-8 in a string field".into())),
        Wire::Varint(_) => Err(DecodeError("expected a string".into())),
    }
}

fn bytes<'a>(wire: &Wire<'a>) -> Result<&'a [u8], DecodeError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        Wire::Varint(_) => Err(DecodeError("expected a message".into())),
    }
}

fn varint(wire: &Wire<'_>) -> Result<i64, DecodeError> {
    match wire {
        // Negative int32/int64 values are sign-extended to 64 bits on the wire.
        Wire::Varint(v) => Ok(*v as i64),
        Wire::Bytes(_) => Err(DecodeError("expected an integer".into())),
    }
}

/// A `map<string, V>` entry: key 1, value 2.
fn entry<'a>(wire: &Wire<'a>) -> Result<(String, Option<Wire<'a>>), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    for (n, w) in fields(bytes(wire)?)? {
        match n {
            1 => key = string(&w)?,
            2 => value = Some(w),
            _ => {}
        }
    }
    Ok((key, value))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
    }
}

fn message(name: &str, buf: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let schema = MESSAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| DecodeError(format!("no decoder for {name}")))?;
    let mut out = Map::new();
    for (number, wire) in fields(buf)? {
        let Some((_, json_name, kind)) = schema.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let key = json_name.to_string();
        match *kind {
            Str => {
                let s = string(&wire)?;
                if !s.is_empty() {
                    out.insert(key, json!(s));
                }
            }
            Int => {
                let v = varint(&wire)?;
                if v != 0 {
                    out.insert(key, json!(v));
                }
            }
            OptInt => {
                out.insert(key, json!(varint(&wire)?));
            }
            Bool => {
                if varint(&wire)? != 0 {
                    out.insert(key, json!(true));
                }
            }
            Msg(inner) => {
                let v = Value::Object(message(inner, bytes(&wire)?)?);
                if !is_empty(&v) {
                    out.insert(key, v);
                }
            }
            Inline(inner) => out.extend(message(inner, bytes(&wire)?)?),
            RepStr => push(&mut out, key, json!(string(&wire)?)),
            RepMsg(inner) => push(&mut out, key, Value::Object(message(inner, bytes(&wire)?)?)),
            MapStr | MapBytes | MapQuantity => {
                let (k, v) = entry(&wire)?;
                let value = match (kind, v) {
                    (_, None) => json!(""),
                    (MapStr, Some(w)) => json!(string(&w)?),
                    (MapBytes, Some(w)) => json!(crate::defaults::base64(bytes(&w)?)),
                    (_, Some(w)) => quantity(bytes(&w)?)?,
                };
                if let Value::Object(map) = out.entry(key).or_insert_with(|| json!({})) {
                    map.insert(k, value);
                }
            }
            IntOrString => {
                let v = int_or_string(bytes(&wire)?)?;
                out.insert(key, v);
            }
            Time => {
                let mut seconds = 0;
                for (n, w) in fields(bytes(&wire)?)? {
                    if n == 1 {
                        seconds = varint(&w)?;
                    }
                }
                if seconds != 0
                    && let Ok(ts) = jiff::Timestamp::from_second(seconds)
                {
                    out.insert(key, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                }
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Map<String, Value>, key: String, value: Value) {
    if let Value::Array(items) = out.entry(key).or_insert_with(|| json!([])) {
        items.push(value);
    }
}

fn quantity(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut text = String::new();
    for (n, w) in fields(buf)? {
        if n == 1 {
            text = string(&w)?;
        }
    }
    Ok(json!(text))
}

/// `intstr.IntOrString`: type 1 (0 int, 1 string), intVal 2, strVal 3.
fn int_or_string(buf: &[u8]) -> Result<Value, DecodeError> {
    let (mut ty, mut int, mut text) = (0, 0, String::new());
    for (n, w) in fields(buf)? {
        match n {
            1 => ty = varint(&w)?,
            2 => int = varint(&w)?,
            3 => text = string(&w)?,
            _ => {}
        }
    }
    Ok(if ty == 1 { json!(text) } else { json!(int) })
}

/// Decodes a `k8s\0`-prefixed protobuf object into its JSON form.
pub(crate) fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| DecodeError("provided object is not protobuf (missing k8s magic)".into()))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, w) in fields(envelope)? {
        match n {
            1 => {
                for (m, tw) in fields(bytes(&w)?)? {
                    match m {
                        1 => api_version = string(&tw)?,
                        2 => kind = string(&tw)?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(&w)?,
            _ => {}
        }
    }
    let name = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
        .ok_or_else(|| {
            DecodeError(format!(
                "protobuf bodies of {kind} in {api_version} are not supported; send JSON or YAML"
            ))
        })?;
    let mut object = message(name, raw)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::decode;
    use serde_json::json;

    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let meta = [field(1, b"cm"), field(3, b"")].concat();
        let entry = [field(1, b"a"), field(2, b"b")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn refuses_truncated_and_unknown_bodies() {
        assert!(decode(b"k8s\0\x0a\x05ab").is_err());
        assert!(decode(b"{}").is_err());
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta)].concat();
        assert!(decode(&body).is_err());
    }
}
