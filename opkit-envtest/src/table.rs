//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for.
//!
//! Built-in kinds get the columns of the real server's printers; custom
//! resources get their `additionalPrinterColumns` (an `Age` column when they
//! declare none). Like the real server, every column is sent, `-o wide` ones
//! with a priority above 0 that kubectl hides by default, and ages are
//! rendered by the server (`5m`, `3d2h`).
//!
//! Watches (`kubectl get -w`) ask for Tables too: [`watch_event`] wraps each
//! event's object in a one-row Table.

use crate::jsonpath;
use crate::resources::{PrinterColumn, ResourceInfo};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Whether the `Accept` header asks for a Table (`as=Table;g=meta.k8s.io`,
/// version `v1` or `v1beta1`).
///
/// ```
/// use opkit_envtest::table::wants_table;
/// assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
/// assert!(!wants_table("application/json"));
/// ```
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let mut parts = media.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| *pk == k && *pv == v);
        essence.eq_ignore_ascii_case("application/json")
            && has("as", "Table")
            && has("g", "meta.k8s.io")
            && (has("v", "v1") || has("v", "v1beta1"))
    })
}

/// Renders objects as a Table with the kind's columns; `include_object` is the
/// `includeObject` query parameter (`None`, `Metadata` (default) or `Object`).
/// `list_metadata` (`resourceVersion`, `continue`) becomes the Table's metadata.
///
/// ```
/// use opkit_envtest::{resources::builtins, table::table};
/// let configmaps = builtins().into_iter().find(|r| r.kind == "ConfigMap").unwrap();
/// let cm = serde_json::json!({"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}});
/// let t = table(&configmaps, &[cm], serde_json::json!({"resourceVersion": "7"}), "Metadata");
/// assert_eq!(t["rows"][0]["cells"][0], "settings");
/// assert_eq!(t["rows"][0]["cells"][1], 2);
/// ```
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    list_metadata: Value,
    include_object: &str,
) -> Value {
    let columns = columns(info);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells: Vec<Value> = columns.iter().map(|c| c.cell(object)).collect();
            let mut row = json!({"cells": cells});
            match include_object {
                "None" => {}
                "Object" => row["object"] = object.clone(),
                _ => row["object"] = partial_metadata(object),
            }
            row
        })
        .collect();
    let definitions: Vec<Value> = columns.iter().map(Column::definition).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// One watch event as the real server sends it to a client that asked for
/// Tables: `{"type": ..., "object": <Table with one row>}`. `BOOKMARK` and
/// `ERROR` events carry their object unchanged.
///
/// ```
/// use opkit_envtest::{resources::builtins, table::watch_event};
/// let pods = builtins().into_iter().find(|r| r.kind == "Pod").unwrap();
/// let pod = serde_json::json!({"metadata": {"name": "p", "resourceVersion": "9"}});
/// let event = watch_event(&pods, "ADDED", &pod, "Metadata");
/// assert_eq!(event["object"]["kind"], "Table");
/// assert_eq!(event["object"]["metadata"]["resourceVersion"], "9");
/// ```
pub fn watch_event(
    info: &ResourceInfo,
    event_type: &str,
    object: &Value,
    include_object: &str,
) -> Value {
    if matches!(event_type, "BOOKMARK" | "ERROR") {
        return json!({"type": event_type, "object": object});
    }
    let resource_version = object
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or_else(|| json!(""));
    let table = table(
        info,
        std::slice::from_ref(object),
        json!({"resourceVersion": resource_version}),
        include_object,
    );
    json!({"type": event_type, "object": table})
}

fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// How a column computes its cell.
enum Cell {
    Name,
    Age,
    /// Creation time as RFC 3339 (the real server's default convertor).
    CreatedAt,
    Builtin(fn(&Value) -> Value),
    Printer(PrinterColumn),
}

struct Column {
    name: String,
    type_: &'static str,
    format: String,
    description: String,
    priority: i32,
    cell: Cell,
}

impl Column {
    fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    fn cell(&self, object: &Value) -> Value {
        match &self.cell {
            Cell::Name => json!(text(object, "/metadata/name")),
            Cell::Age => json!(age_of(object.pointer("/metadata/creationTimestamp"))),
            Cell::CreatedAt => json!(text(object, "/metadata/creationTimestamp")),
            Cell::Builtin(f) => f(object),
            Cell::Printer(column) => printer_cell(column, object),
        }
    }
}

fn name_column() -> Column {
    Column {
        name: "Name".into(),
        type_: "string",
        format: "name".into(),
        description: "Name must be unique within a namespace.".into(),
        priority: 0,
        cell: Cell::Name,
    }
}

fn age_column() -> Column {
    Column {
        name: "Age".into(),
        type_: "string",
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        cell: Cell::Age,
    }
}

fn col(name: &str, type_: &'static str, priority: i32, f: fn(&Value) -> Value) -> Column {
    Column {
        name: name.into(),
        type_,
        format: String::new(),
        description: String::new(),
        priority,
        cell: Cell::Builtin(f),
    }
}

fn columns(info: &ResourceInfo) -> Vec<Column> {
    let mut out = vec![name_column()];
    if let Some(extra) = builtin_columns(&info.group, &info.kind) {
        if matches!(info.kind.as_str(), "Event") {
            // Events lead with when they were last seen and have no name column by default.
            out = extra;
            let mut name = name_column();
            name.priority = 1;
            out.push(name);
        } else {
            out.extend(extra);
        }
        return out;
    }
    if info.printer_columns.is_empty() {
        out.push(age_column());
        return out;
    }
    out.extend(info.printer_columns.iter().map(|c| Column {
        name: c.name.clone(),
        type_: match c.type_.as_str() {
            "integer" => "integer",
            "number" => "number",
            "boolean" => "boolean",
            "date" => "date",
            _ => "string",
        },
        format: c.format.clone().unwrap_or_default(),
        description: c.description.clone().unwrap_or_default(),
        priority: c.priority,
        cell: Cell::Printer(c.clone()),
    }));
    out
}

/// A custom resource column: the first match of its JSONPath, typed as
/// declared; dates become ages as the real server renders them.
fn printer_cell(column: &PrinterColumn, object: &Value) -> Value {
    let Some(value) = jsonpath::evaluate(object, &column.json_path)
        .into_iter()
        .next()
    else {
        return Value::Null;
    };
    match column.type_.as_str() {
        "integer" => value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match value.as_str() {
            Some(s) => json!(
                s.parse::<jiff::Timestamp>()
                    .map(human_since)
                    .unwrap_or_else(|_| "<invalid>".to_string())
            ),
            None => Value::Null,
        },
        _ => match value {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// The extra columns (after Name) of the built-in kinds the real server has printers for.
fn builtin_columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    let age = age_column;
    let columns = match (group, kind) {
        ("", "Pod") => vec![
            col("Ready", "string", 0, pod_ready),
            col("Status", "string", 0, pod_status),
            col("Restarts", "string", 0, pod_restarts),
            age(),
            col("IP", "string", 1, |o| or_none(text(o, "/status/podIP"))),
            col("Node", "string", 1, |o| or_none(text(o, "/spec/nodeName"))),
            col("Nominated Node", "string", 1, |o| or_none(text(o, "/status/nominatedNodeName"))),
            col("Readiness Gates", "string", 1, readiness_gates),
        ],
        ("apps", "Deployment") => vec![
            col("Ready", "string", 0, |o| {
                json!(format!("{}/{}", int(o, "/status/readyReplicas"), replicas(o)))
            }),
            col("Up-to-date", "integer", 0, |o| json!(int(o, "/status/updatedReplicas"))),
            col("Available", "integer", 0, |o| json!(int(o, "/status/availableReplicas"))),
            age(),
            col("Containers", "string", 1, |o| containers(o, "name")),
            col("Images", "string", 1, |o| containers(o, "image")),
            col("Selector", "string", 1, |o| json!(selector(o.pointer("/spec/selector")))),
        ],
        ("apps", "ReplicaSet") => vec![
            col("Desired", "integer", 0, |o| json!(replicas(o))),
            col("Current", "integer", 0, |o| json!(int(o, "/status/replicas"))),
            col("Ready", "integer", 0, |o| json!(int(o, "/status/readyReplicas"))),
            age(),
            col("Containers", "string", 1, |o| containers(o, "name")),
            col("Images", "string", 1, |o| containers(o, "image")),
            col("Selector", "string", 1, |o| json!(selector(o.pointer("/spec/selector")))),
        ],
        ("apps", "StatefulSet") => vec![
            col("Ready", "string", 0, |o| {
                json!(format!("{}/{}", int(o, "/status/readyReplicas"), replicas(o)))
            }),
            age(),
            col("Containers", "string", 1, |o| containers(o, "name")),
            col("Images", "string", 1, |o| containers(o, "image")),
        ],
        ("apps", "DaemonSet") => vec![
            col("Desired", "integer", 0, |o| json!(int(o, "/status/desiredNumberScheduled"))),
            col("Current", "integer", 0, |o| json!(int(o, "/status/currentNumberScheduled"))),
            col("Ready", "integer", 0, |o| json!(int(o, "/status/numberReady"))),
            col("Up-to-date", "integer", 0, |o| json!(int(o, "/status/updatedNumberScheduled"))),
            col("Available", "integer", 0, |o| json!(int(o, "/status/numberAvailable"))),
            col("Node Selector", "string", 0, |o| {
                json!(labels(o.pointer("/spec/template/spec/nodeSelector")))
            }),
            age(),
            col("Containers", "string", 1, |o| containers(o, "name")),
            col("Images", "string", 1, |o| containers(o, "image")),
            col("Selector", "string", 1, |o| json!(selector(o.pointer("/spec/selector")))),
        ],
        ("", "Service") => vec![
            col("Type", "string", 0, |o| json!(service_type(o))),
            col("Cluster-IP", "string", 0, |o| {
                or_none(
                    o.pointer("/spec/clusterIPs/0")
                        .or_else(|| o.pointer("/spec/clusterIP"))
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            }),
            col("External-IP", "string", 0, service_external_ip),
            col("Port(s)", "string", 0, service_ports),
            age(),
            col("Selector", "string", 1, |o| json!(labels(o.pointer("/spec/selector")))),
        ],
        ("", "ConfigMap") => vec![
            col("Data", "integer", 0, |o| json!(len(o, "/data") + len(o, "/binaryData"))),
            age(),
        ],
        ("", "Secret") => vec![
            col("Type", "string", 0, |o| json!(text(o, "/type"))),
            col("Data", "integer", 0, |o| json!(len(o, "/data"))),
            age(),
        ],
        ("", "ServiceAccount") => vec![
            col("Secrets", "integer", 0, |o| json!(len(o, "/secrets"))),
            age(),
        ],
        ("", "Namespace") => vec![
            col("Status", "string", 0, |o| json!(text(o, "/status/phase").or_if_empty("Active"))),
            age(),
        ],
        ("", "PersistentVolumeClaim") => vec![
            col("Status", "string", 0, |o| {
                if o.pointer("/metadata/deletionTimestamp").is_some() {
                    json!("Terminating")
                } else {
                    json!(text(o, "/status/phase").or_if_empty("Pending"))
                }
            }),
            col("Volume", "string", 0, |o| json!(text(o, "/spec/volumeName"))),
            col("Capacity", "string", 0, |o| json!(quantity(o, "/status/capacity/storage"))),
            col("Access Modes", "string", 0, |o| json!(access_modes(o, "/status/accessModes"))),
            col("StorageClass", "string", 0, |o| {
                json!(
                    text(o, "/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                        .or_if_empty(text(o, "/spec/storageClassName"))
                        .or_if_empty("<unset>")
                )
            }),
            col("VolumeAttributesClass", "string", 0, |o| {
                json!(text(o, "/spec/volumeAttributesClassName").or_if_empty("<unset>"))
            }),
            age(),
            col("VolumeMode", "string", 1, |o| json!(text(o, "/spec/volumeMode").or_if_empty("Filesystem"))),
        ],
        ("", "PersistentVolume") => vec![
            col("Capacity", "string", 0, |o| json!(quantity(o, "/spec/capacity/storage"))),
            col("Access Modes", "string", 0, |o| json!(access_modes(o, "/spec/accessModes"))),
            col("Reclaim Policy", "string", 0, |o| {
                json!(text(o, "/spec/persistentVolumeReclaimPolicy").or_if_empty("Retain"))
            }),
            col("Status", "string", 0, |o| json!(text(o, "/status/phase"))),
            col("Claim", "string", 0, |o| {
                let name = text(o, "/spec/claimRef/name");
                if name.is_empty() {
                    json!("")
                } else {
                    json!(format!("{}/{name}", text(o, "/spec/claimRef/namespace")))
                }
            }),
            col("StorageClass", "string", 0, |o| json!(text(o, "/spec/storageClassName"))),
            col("VolumeAttributesClass", "string", 0, |o| {
                json!(text(o, "/spec/volumeAttributesClassName").or_if_empty("<unset>"))
            }),
            col("Reason", "string", 0, |o| json!(text(o, "/status/reason"))),
            age(),
            col("VolumeMode", "string", 1, |o| json!(text(o, "/spec/volumeMode").or_if_empty("Filesystem"))),
        ],
        ("", "Node") => vec![
            col("Status", "string", 0, node_status),
            col("Roles", "string", 0, node_roles),
            age(),
            col("Version", "string", 0, |o| json!(text(o, "/status/nodeInfo/kubeletVersion"))),
            col("Internal-IP", "string", 1, |o| node_address(o, "InternalIP")),
            col("External-IP", "string", 1, |o| node_address(o, "ExternalIP")),
            col("OS-Image", "string", 1, |o| {
                json!(text(o, "/status/nodeInfo/osImage").or_if_empty("<unknown>"))
            }),
            col("Kernel-Version", "string", 1, |o| {
                json!(text(o, "/status/nodeInfo/kernelVersion").or_if_empty("<unknown>"))
            }),
            col("Container-Runtime", "string", 1, |o| {
                json!(text(o, "/status/nodeInfo/containerRuntimeVersion").or_if_empty("<unknown>"))
            }),
        ],
        ("", "Endpoints") => vec![col("Endpoints", "string", 0, endpoints), age()],
        ("", "Event") | ("events.k8s.io", "Event") => event_columns(),
        ("batch", "Job") => vec![
            col("Status", "string", 0, job_status),
            col("Completions", "string", 0, job_completions),
            col("Duration", "string", 0, job_duration),
            age(),
            col("Containers", "string", 1, |o| containers(o, "name")),
            col("Images", "string", 1, |o| containers(o, "image")),
            col("Selector", "string", 1, |o| json!(selector(o.pointer("/spec/selector")))),
        ],
        ("batch", "CronJob") => vec![
            col("Schedule", "string", 0, |o| json!(text(o, "/spec/schedule"))),
            col("Timezone", "string", 0, |o| or_none(text(o, "/spec/timeZone"))),
            col("Suspend", "boolean", 0, |o| {
                json!(if o.pointer("/spec/suspend").and_then(Value::as_bool).unwrap_or(false) {
                    "True"
                } else {
                    "False"
                })
            }),
            col("Active", "integer", 0, |o| json!(len(o, "/status/active"))),
            col("Last Schedule", "string", 0, |o| {
                match o.pointer("/status/lastScheduleTime") {
                    Some(t) => json!(age_of(Some(t))),
                    None => json!("<none>"),
                }
            }),
            age(),
            col("Containers", "string", 1, |o| cronjob_containers(o, "name")),
            col("Images", "string", 1, |o| cronjob_containers(o, "image")),
            col("Selector", "string", 1, |o| {
                json!(selector(o.pointer("/spec/jobTemplate/spec/selector")))
            }),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            col("Holder", "string", 0, |o| json!(text(o, "/spec/holderIdentity"))),
            age(),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            col("Class", "string", 0, |o| or_none(text(o, "/spec/ingressClassName"))),
            col("Hosts", "string", 0, ingress_hosts),
            col("Address", "string", 0, |o| {
                json!(load_balancer_ips(o.pointer("/status/loadBalancer/ingress")))
            }),
            col("Ports", "string", 0, |o| {
                json!(if len(o, "/spec/tls") > 0 { "80, 443" } else { "80" })
            }),
            age(),
        ],
        ("networking.k8s.io", "NetworkPolicy") => vec![
            col("Pod-Selector", "string", 0, |o| {
                json!(selector(o.pointer("/spec/podSelector")).or_if_empty("<none>"))
            }),
            age(),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            col("Min Available", "string", 0, |o| or_na(o.pointer("/spec/minAvailable"))),
            col("Max Unavailable", "string", 0, |o| or_na(o.pointer("/spec/maxUnavailable"))),
            col("Allowed Disruptions", "integer", 0, |o| json!(int(o, "/status/disruptionsAllowed"))),
            age(),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            col("Reference", "string", 0, |o| {
                json!(format!(
                    "{}/{}",
                    text(o, "/spec/scaleTargetRef/kind"),
                    text(o, "/spec/scaleTargetRef/name")
                ))
            }),
            col("Targets", "string", 0, hpa_targets),
            col("MinPods", "string", 0, |o| {
                json!(o.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1).to_string())
            }),
            col("MaxPods", "integer", 0, |o| json!(int(o, "/spec/maxReplicas"))),
            col("Replicas", "integer", 0, |o| json!(int(o, "/status/currentReplicas"))),
            age(),
        ],
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => vec![Column {
            name: "Created At".into(),
            type_: "date",
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell: Cell::CreatedAt,
        }],
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => vec![
            col("Role", "string", 0, |o| {
                json!(format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name")))
            }),
            age(),
            col("Users", "string", 1, |o| subjects(o, "User")),
            col("Groups", "string", 1, |o| subjects(o, "Group")),
            col("ServiceAccounts", "string", 1, |o| subjects(o, "ServiceAccount")),
        ],
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration") => {
            vec![col("Webhooks", "integer", 0, |o| json!(len(o, "/webhooks"))), age()]
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => vec![Column {
            name: "Created At".into(),
            type_: "date",
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
            priority: 0,
            cell: Cell::CreatedAt,
        }],
        _ => return None,
    };
    Some(columns)
}

fn event_columns() -> Vec<Column> {
    vec![
        col("Last Seen", "string", 0, |o| json!(event_last_seen(o))),
        col("Type", "string", 0, |o| json!(text(o, "/type"))),
        col("Reason", "string", 0, |o| json!(text(o, "/reason"))),
        col("Object", "string", 0, |o| {
            let (kind, name) = event_target(o);
            if name.is_empty() {
                json!(kind.to_lowercase())
            } else {
                json!(format!("{}/{name}", kind.to_lowercase()))
            }
        }),
        col("Subobject", "string", 1, |o| {
            json!(first_text(
                o,
                &["/involvedObject/fieldPath", "/regarding/fieldPath"]
            ))
        }),
        col("Source", "string", 1, event_source),
        col("Message", "string", 0, |o| {
            json!(first_text(o, &["/message", "/note"]).trim())
        }),
        col("First Seen", "string", 1, |o| json!(event_first_seen(o))),
        col("Count", "integer", 1, event_count),
    ]
}

// Cells of the built-in printers.

fn pod_ready(o: &Value) -> Value {
    let total = len(o, "/spec/containers");
    let ready = array(o, "/status/containerStatuses")
        .iter()
        .filter(|c| c["ready"].as_bool() == Some(true) && c.pointer("/state/running").is_some())
        .count();
    json!(format!("{ready}/{total}"))
}

fn pod_status(o: &Value) -> Value {
    let phase = text(o, "/status/phase").or_if_empty("Pending");
    let mut reason = text(o, "/status/reason").or_if_empty(phase.clone());
    let total_init = len(o, "/spec/initContainers");
    let mut initializing = false;
    for (i, c) in array(o, "/status/initContainerStatuses").iter().enumerate() {
        let terminated = c.pointer("/state/terminated");
        let exit = terminated.and_then(|t| t["exitCode"].as_i64());
        if terminated.is_some() && exit.unwrap_or(0) == 0 {
            continue;
        }
        reason = if let Some(t) = terminated {
            match (
                t["reason"].as_str().filter(|r| !r.is_empty()),
                t["signal"].as_i64().filter(|s| *s != 0),
            ) {
                (Some(r), _) => format!("Init:{r}"),
                (None, Some(signal)) => format!("Init:Signal:{signal}"),
                (None, None) => format!("Init:ExitCode:{}", exit.unwrap_or(0)),
            }
        } else if let Some(r) = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{total_init}")
        };
        initializing = true;
        break;
    }
    let initialized = array(o, "/status/conditions")
        .iter()
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    if initializing && !initialized {
        if o.pointer("/metadata/deletionTimestamp").is_some() {
            reason = "Terminating".to_string();
        }
        return json!(reason);
    }
    let mut has_running = false;
    for c in array(o, "/status/containerStatuses").iter().rev() {
        if let Some(r) = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if let Some(r) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if let Some(t) = c.pointer("/state/terminated") {
            reason = match t["signal"].as_i64().filter(|s| *s != 0) {
                Some(signal) => format!("Signal:{signal}"),
                None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
            };
        } else if c["ready"].as_bool() == Some(true) && c.pointer("/state/running").is_some() {
            has_running = true;
        }
    }
    if reason == "Completed" && has_running {
        let ready = array(o, "/status/conditions")
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        reason = if ready { "Running" } else { "NotReady" }.to_string();
    }
    if o.pointer("/metadata/deletionTimestamp").is_some()
        && !matches!(phase.as_str(), "Succeeded" | "Failed")
    {
        reason = "Terminating".to_string();
    }
    json!(reason)
}

fn pod_restarts(o: &Value) -> Value {
    let mut restarts = 0;
    let mut last: Option<jiff::Timestamp> = None;
    let statuses = array(o, "/status/initContainerStatuses")
        .iter()
        .chain(array(o, "/status/containerStatuses"));
    for c in statuses {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        {
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    }
    match last {
        Some(t) if restarts > 0 => json!(format!("{restarts} ({} ago)", human_since(t))),
        _ => json!(restarts.to_string()),
    }
}

fn readiness_gates(o: &Value) -> Value {
    let gates = array(o, "/spec/readinessGates");
    if gates.is_empty() {
        return json!("<none>");
    }
    let conditions = array(o, "/status/conditions");
    let ready = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
        })
        .count();
    json!(format!("{ready}/{}", gates.len()))
}

fn service_type(o: &Value) -> String {
    text(o, "/spec/type").or_if_empty("ClusterIP")
}

fn service_external_ip(o: &Value) -> Value {
    let external: Vec<&str> = array(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ip = match service_type(o).as_str() {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_ips(o.pointer("/status/loadBalancer/ingress"));
            let all: Vec<&str> = lb
                .split(',')
                .filter(|s| !s.is_empty())
                .chain(external.iter().copied())
                .collect();
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(o, "/spec/externalName"),
        _ => "<unknown>".to_string(),
    };
    json!(ip)
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = array(o, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            let port = p["port"].as_i64().unwrap_or(0);
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(node) => format!("{port}:{node}/{protocol}"),
                None => format!("{port}/{protocol}"),
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn load_balancer_ips(ingress: Option<&Value>) -> String {
    ingress
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The first three hosts, then how many rules there are beyond three.
fn ingress_hosts(o: &Value) -> Value {
    let rules = array(o, "/spec/rules");
    let hosts: Vec<&str> = rules
        .iter()
        .take(3)
        .filter_map(|r| r["host"].as_str())
        .filter(|h| !h.is_empty())
        .collect();
    json!(match (hosts.is_empty(), rules.len() > 3) {
        (true, _) => "*".to_string(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - 3),
        (false, false) => hosts.join(","),
    })
}

fn endpoints(o: &Value) -> Value {
    let mut out = Vec::new();
    for subset in array(o, "/subsets") {
        let ports: Vec<i64> = subset["ports"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["port"].as_i64()).collect())
            .unwrap_or_default();
        for address in subset["addresses"].as_array().into_iter().flatten() {
            let ip = address["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                out.push(ip.to_string());
            }
            out.extend(ports.iter().map(|p| format!("{ip}:{p}")));
        }
    }
    or_none(out.join(","))
}

fn node_status(o: &Value) -> Value {
    let ready = array(o, "/status/conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let unschedulable = o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
    json!(if unschedulable {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_string()
    })
}

fn node_address(o: &Value, kind: &str) -> Value {
    let address = array(o, "/status/addresses")
        .iter()
        .find(|a| a["type"] == kind)
        .and_then(|a| a["address"].as_str())
        .unwrap_or_default();
    or_none(address)
}

fn node_roles(o: &Value) -> Value {
    let mut roles: Vec<&str> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    or_none(roles.join(","))
}

fn job_status(o: &Value) -> Value {
    let conditions = array(o, "/status/conditions");
    let has = |t: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    json!(status)
}

fn job_completions(o: &Value) -> Value {
    let succeeded = int(o, "/status/succeeded");
    let text = match o.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match o.pointer("/spec/parallelism").and_then(Value::as_i64) {
            Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    json!(text)
}

fn job_duration(o: &Value) -> Value {
    let time = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    };
    let Some(start) = time("/status/startTime") else {
        return json!("");
    };
    let end = time("/status/completionTime").unwrap_or_else(jiff::Timestamp::now);
    json!(human_duration(end.as_second() - start.as_second()))
}

/// `cpu: 42%/80%, memory: <unknown>/1Gi`, at most two metrics, as kubectl shows them.
fn hpa_targets(o: &Value) -> Value {
    let specs = array(o, "/spec/metrics");
    if specs.is_empty() {
        return json!("<none>");
    }
    let statuses = array(o, "/status/currentMetrics");
    let shown: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let kind = spec["type"].as_str().unwrap_or_default();
            let field = match kind {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                "Pods" => "pods",
                "Object" => "object",
                "External" => "external",
                _ => return "<unknown type>".to_string(),
            };
            let source = &spec[field];
            let current = &statuses
                .get(i)
                .map(|s| &s[field]["current"])
                .unwrap_or(&Value::Null);
            let target = &source["target"];
            let quantity = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let (now, goal) = if let Some(goal) = quantity(&target["averageValue"]) {
                (quantity(&current["averageValue"]), goal)
            } else if let Some(goal) = quantity(&target["value"]) {
                (quantity(&current["value"]), goal)
            } else {
                let goal = target["averageUtilization"]
                    .as_i64()
                    .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                (
                    current["averageUtilization"]
                        .as_i64()
                        .map(|u| format!("{u}%")),
                    goal,
                )
            };
            let now = now.unwrap_or_else(|| "<unknown>".to_string());
            match kind {
                "Resource" | "ContainerResource" => {
                    format!(
                        "{}: {now}/{goal}",
                        source["name"].as_str().unwrap_or_default()
                    )
                }
                "Object" | "External" if target.get("averageValue").is_some() => {
                    format!("{now}/{goal} (avg)")
                }
                _ => format!("{now}/{goal}"),
            }
        })
        .collect();
    let text = if shown.len() > 2 {
        format!("{} + {} more...", shown[..2].join(", "), shown.len() - 2)
    } else {
        shown.join(", ")
    };
    json!(text)
}

fn cronjob_containers(o: &Value, field: &str) -> Value {
    let names: Vec<&str> = array(o, "/spec/jobTemplate/spec/template/spec/containers")
        .iter()
        .filter_map(|c| c[field].as_str())
        .collect();
    json!(names.join(","))
}

fn subjects(o: &Value, kind: &str) -> Value {
    let names: Vec<String> = array(o, "/subjects")
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| match (kind, s["namespace"].as_str()) {
            ("ServiceAccount", Some(ns)) => {
                format!("{ns}/{}", s["name"].as_str().unwrap_or_default())
            }
            _ => s["name"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    json!(names.join(", "))
}

/// `(kind, name)` of the object an Event is about, in either Event API.
fn event_target(o: &Value) -> (String, String) {
    (
        first_text(o, &["/involvedObject/kind", "/regarding/kind"]),
        first_text(o, &["/involvedObject/name", "/regarding/name"]),
    )
}

fn event_source(o: &Value) -> Value {
    let component = first_text(
        o,
        &[
            "/source/component",
            "/deprecatedSource/component",
            "/reportingController",
        ],
    );
    let instance = first_text(
        o,
        &[
            "/source/host",
            "/deprecatedSource/host",
            "/reportingInstance",
        ],
    );
    json!(if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    })
}

fn event_first_seen(o: &Value) -> String {
    match first_value(o, &["/firstTimestamp", "/deprecatedFirstTimestamp"]) {
        Some(t) => age_of(Some(t)),
        None => age_of(o.get("eventTime")),
    }
}

fn event_last_seen(o: &Value) -> String {
    if let Some(t) = o.pointer("/series/lastObservedTime") {
        return age_of(Some(t));
    }
    match first_value(o, &["/lastTimestamp", "/deprecatedLastTimestamp"]) {
        Some(t) => age_of(Some(t)),
        None => event_first_seen(o),
    }
}

fn event_count(o: &Value) -> Value {
    let count = o
        .pointer("/series/count")
        .or_else(|| first_value(o, &["/count", "/deprecatedCount"]))
        .and_then(Value::as_i64)
        .filter(|c| *c != 0)
        .unwrap_or(1);
    json!(count)
}

// Small helpers.

trait OrIfEmpty {
    fn or_if_empty(self, fallback: impl Into<String>) -> String;
}

impl OrIfEmpty for String {
    fn or_if_empty(self, fallback: impl Into<String>) -> String {
        if self.is_empty() {
            fallback.into()
        } else {
            self
        }
    }
}

fn text(o: &Value, pointer: &str) -> String {
    o.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn first_value<'a>(o: &'a Value, pointers: &[&str]) -> Option<&'a Value> {
    pointers
        .iter()
        .filter_map(|p| o.pointer(p))
        .find(|v| !v.is_null())
}

fn first_text(o: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .map(|p| text(o, p))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

fn int(o: &Value, pointer: &str) -> i64 {
    o.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `spec.replicas`, which the real server defaults to 1.
fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn array<'a>(o: &'a Value, pointer: &str) -> &'a [Value] {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn len(o: &Value, pointer: &str) -> usize {
    match o.pointer(pointer) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    }
}

fn or_none(s: impl Into<String>) -> Value {
    let s = s.into();
    json!(if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    })
}

fn or_na(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

fn quantity(o: &Value, pointer: &str) -> String {
    match o.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Abbreviated access modes, in Kubernetes' order whatever the object's.
fn access_modes(o: &Value, pointer: &str) -> String {
    let modes = array(o, pointer);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn containers(o: &Value, field: &str) -> Value {
    let values: Vec<&str> = array(o, "/spec/template/spec/containers")
        .iter()
        .filter_map(|c| c[field].as_str())
        .collect();
    json!(values.join(","))
}

/// `k=v,k2=v2`, sorted by key, or `<none>`.
fn labels(map: Option<&Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = map
        .and_then(Value::as_object)
        .map(Map::iter)
        .into_iter()
        .flatten()
        .collect();
    let text: Vec<String> = sorted
        .into_iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if text.is_empty() {
        "<none>".into()
    } else {
        text.join(",")
    }
}

/// A label selector as `kubectl` prints it: `app=web,tier in (a,b),!legacy`.
fn selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort_unstable();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.sort();
    parts.join(",")
}

/// The age of a timestamp, as the real server prints it; `<unknown>` when absent.
fn age_of(timestamp: Option<&Value>) -> String {
    match timestamp
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => human_since(t),
        None => "<unknown>".into(),
    }
}

fn human_since(t: jiff::Timestamp) -> String {
    human_duration(jiff::Timestamp::now().as_second() - t.as_second())
}

/// Kubernetes' `duration.HumanDuration`: `45s`, `3m20s`, `15m`, `5h10m`, `3d4h`, `2y5d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;

    fn info(group: &str, kind: &str) -> ResourceInfo {
        builtins()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
            .expect("built-in kind")
    }

    fn headers(t: &Value) -> Vec<String> {
        t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap_or_default().to_uppercase())
            .collect()
    }

    fn ago(seconds: i64) -> String {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds)).to_string()
    }

    #[test]
    fn human_durations_match_kubernetes() {
        for (seconds, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 600, "5h10m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
            (2 * 365 * 86400 + 5 * 86400, "2y5d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn deployment_columns_match_kubectl() {
        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(300), "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let t = table(
            &info("apps", "Deployment"),
            &[deployment],
            json!({"resourceVersion": "5"}),
            "Metadata",
        );
        assert_eq!(
            headers(&t),
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "2/3", 3, 2, "5m", "nginx", "nginx:1.27", "app=web"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
        assert_eq!(t["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn builtin_headers_match_kubectl() {
        for (group, kind, expected) in [
            (
                "",
                "Pod",
                vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            ),
            (
                "",
                "Service",
                vec![
                    "NAME",
                    "TYPE",
                    "CLUSTER-IP",
                    "EXTERNAL-IP",
                    "PORT(S)",
                    "AGE",
                ],
            ),
            ("apps", "StatefulSet", vec!["NAME", "READY", "AGE"]),
            ("", "ConfigMap", vec!["NAME", "DATA", "AGE"]),
            ("", "Secret", vec!["NAME", "TYPE", "DATA", "AGE"]),
            ("", "Namespace", vec!["NAME", "STATUS", "AGE"]),
            (
                "batch",
                "Job",
                vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            ),
            (
                "batch",
                "CronJob",
                vec![
                    "NAME",
                    "SCHEDULE",
                    "TIMEZONE",
                    "SUSPEND",
                    "ACTIVE",
                    "LAST SCHEDULE",
                    "AGE",
                ],
            ),
            (
                "",
                "Event",
                vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            ),
            (
                "events.k8s.io",
                "Event",
                vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            ),
            (
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                vec!["NAME", "CREATED AT"],
            ),
            (
                "coordination.k8s.io",
                "Lease",
                vec!["NAME", "HOLDER", "AGE"],
            ),
            (
                "",
                "PersistentVolumeClaim",
                vec![
                    "NAME",
                    "STATUS",
                    "VOLUME",
                    "CAPACITY",
                    "ACCESS MODES",
                    "STORAGECLASS",
                    "VOLUMEATTRIBUTESCLASS",
                    "AGE",
                ],
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                vec!["NAME", "CREATED AT"],
            ),
            (
                "rbac.authorization.k8s.io",
                "RoleBinding",
                vec!["NAME", "ROLE", "AGE"],
            ),
        ] {
            let t = table(&info(group, kind), &[], json!({}), "Metadata");
            assert_eq!(headers(&t), expected, "{group}/{kind}");
        }
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        let object = json!({"metadata": {"name": "x", "namespace": "default"}});
        for r in builtins() {
            let t = table(&r, std::slice::from_ref(&object), json!({}), "Object");
            let columns = t["columnDefinitions"].as_array().expect("columns").len();
            assert_eq!(
                t["rows"][0]["cells"].as_array().expect("cells").len(),
                columns,
                "{}",
                r.kind
            );
            assert_eq!(t["rows"][0]["object"], object);
        }
    }

    #[test]
    fn pod_and_service_cells() {
        let pod = json!({
            "metadata": {"name": "p", "creationTimestamp": ago(30)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
        });
        let t = table(&info("", "Pod"), &[pod], json!({}), "None");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "p",
                "1/2",
                "CrashLoopBackOff",
                "2",
                "30s",
                "10.0.0.7",
                "<none>",
                "<none>",
                "<none>"
            ])
        );
        assert!(t["rows"][0].get("object").is_none());

        let svc = json!({
            "metadata": {"name": "s", "creationTimestamp": ago(7200)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "dns"}},
        });
        let t = table(&info("", "Service"), &[svc], json!({}), "Metadata");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "s",
                "NodePort",
                "10.96.0.10",
                "<none>",
                "80:30080/TCP,53/UDP",
                "120m",
                "app=dns"
            ])
        );
    }

    #[test]
    fn hpa_targets_show_current_over_target() {
        let hpa = json!({
            "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
            ]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42}}},
            ]},
        });
        let t = table(
            &info("autoscaling", "HorizontalPodAutoscaler"),
            &[hpa],
            json!({}),
            "None",
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "h",
                "Deployment/web",
                "cpu: 42%/80%, memory: <unknown>/1Gi + 1 more...",
                "1",
                5,
                2,
                "<unknown>"
            ])
        );
    }

    #[test]
    fn pod_status_follows_init_containers_then_containers() {
        let status = |pod: Value| pod_status(&pod);
        let init = |state: Value| {
            json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": "Pending", "initContainerStatuses": [
                       {"name": "a", "state": {"terminated": {"exitCode": 0}}},
                       {"name": "b", "state": state}]}})
        };
        assert_eq!(status(init(json!({"running": {}}))), "Init:1/2");
        assert_eq!(
            status(init(json!({"waiting": {"reason": "ImagePullBackOff"}}))),
            "Init:ImagePullBackOff"
        );
        assert_eq!(
            status(init(json!({"terminated": {"exitCode": 3}}))),
            "Init:ExitCode:3"
        );
        assert_eq!(
            status(init(
                json!({"terminated": {"exitCode": 1, "reason": "Error"}})
            )),
            "Init:Error"
        );
        assert_eq!(status(json!({})), "Pending");
        assert_eq!(
            status(json!({"status": {"phase": "Running", "containerStatuses": [
                {"ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"ready": true, "state": {"running": {}}}],
                "conditions": [{"type": "Ready", "status": "False"}]}})),
            "NotReady"
        );
        assert_eq!(
            status(
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}})
            ),
            "Terminating"
        );
    }

    #[test]
    fn storage_and_ingress_cells() {
        let pvc = json!({"metadata": {"name": "data", "annotations": {"volume.beta.kubernetes.io/storage-class": "fast"}},
            "spec": {"volumeName": "pv-1"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}});
        let t = table(
            &info("", "PersistentVolumeClaim"),
            &[pvc],
            json!({}),
            "None",
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "data",
                "Bound",
                "pv-1",
                "1Gi",
                "RWO,RWX",
                "fast",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ])
        );
        let rules: Vec<Value> = (0..5)
            .map(|i| json!({"host": format!("h{i}.example.com")}))
            .collect();
        let ingress = json!({"metadata": {"name": "i"}, "spec": {"rules": rules, "tls": [{}]}});
        let t = table(
            &info("networking.k8s.io", "Ingress"),
            &[ingress],
            json!({}),
            "None",
        );
        assert_eq!(
            t["rows"][0]["cells"][2],
            "h0.example.com,h1.example.com,h2.example.com + 2 more..."
        );
        assert_eq!(t["rows"][0]["cells"][4], "80, 443");
    }

    #[test]
    fn events_show_the_object_and_count() {
        let event = json!({
            "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "type": "Normal", "message": " Scaled up \n",
            "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 3,
            "source": {"component": "deployment-controller"},
            "reportingInstance": "kcm-1",
        });
        let t = table(&info("", "Event"), &[event], json!({}), "Metadata");
        let cells = &t["rows"][0]["cells"];
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let cell = |name: &str| &cells[names.iter().position(|n| *n == name).expect("column")];
        assert_eq!(cell("Last Seen"), "60s");
        assert_eq!(cell("Object"), "deployment/web");
        assert_eq!(cell("Message"), "Scaled up");
        assert_eq!(cell("Count"), 3);
        assert_eq!(cell("First Seen"), "10m");
        assert_eq!(cell("Source"), "deployment-controller, kcm-1");
        assert_eq!(cell("Name"), "web.1");
    }

    #[test]
    fn custom_resources_use_printer_columns() {
        let mut webapps = info("apps", "Deployment");
        webapps.group = "example.com".into();
        webapps.kind = "WebApp".into();
        webapps.schema = Some(json!({"type": "object"}));
        let t = table(&webapps, &[], json!({}), "Metadata");
        assert_eq!(headers(&t), ["NAME", "AGE"]);

        let column = |name: &str, type_: &str, path: &str, priority| PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: None,
            description: None,
            priority,
            json_path: path.into(),
        };
        webapps.printer_columns = vec![
            column("Replicas", "integer", ".spec.replicas", 0),
            column("Image", "string", ".spec.image", 0),
            column(
                "Ready",
                "string",
                r#".status.conditions[?(@.type=="Ready")].status"#,
                0,
            ),
            column("Ports", "string", ".spec.ports", 1),
            column("Paused", "boolean", ".spec.paused", 0),
            column("Age", "date", ".metadata.creationTimestamp", 0),
        ];
        let webapp = json!({
            "metadata": {"name": "my-webapp", "creationTimestamp": ago(90)},
            "spec": {"replicas": 3, "image": "nginx:1.21", "ports": [80, 443]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        });
        let t = table(&webapps, &[webapp], json!({}), "Metadata");
        assert_eq!(
            headers(&t),
            ["NAME", "REPLICAS", "IMAGE", "READY", "PAUSED", "AGE"]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "my-webapp",
                3,
                "nginx:1.21",
                "True",
                "[80,443]",
                null,
                "90s"
            ])
        );
        assert_eq!(t["columnDefinitions"][6]["type"], "date");
    }

    #[test]
    fn watch_events_carry_one_row_tables() {
        let pods = info("", "Pod");
        let pod = json!({"metadata": {"name": "p", "resourceVersion": "12"}});
        let event = watch_event(&pods, "MODIFIED", &pod, "Object");
        assert_eq!(event["type"], "MODIFIED");
        assert_eq!(event["object"]["rows"][0]["object"], pod);
        let bookmark = json!({"kind": "Pod", "metadata": {"resourceVersion": "13"}});
        assert_eq!(
            watch_event(&pods, "BOOKMARK", &bookmark, "Object")["object"],
            bookmark
        );
    }

    #[test]
    fn table_accept_negotiation() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(wants_table(
            "application/json; g=meta.k8s.io; v=v1beta1; as=Table"
        ));
        assert!(!wants_table(
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
        ));
        assert!(!wants_table("application/yaml"));
    }
}
