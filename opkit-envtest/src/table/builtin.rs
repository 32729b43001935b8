//! The columns and cells of the built-in kinds, as the real server's printers make them.

use super::format::{
    OrIfEmpty, access_modes, age_of, array, containers, first_text, first_value, human_duration,
    human_since, int, labels, len, or_na, or_none, quantity, replicas, selector, text,
};
use super::{Cell, Column, age_column, col};
use serde_json::{Value, json};

/// The extra columns (after Name) of the built-in kinds the real server has printers for.
pub(super) fn builtin_columns(group: &str, kind: &str) -> Option<Vec<Column>> {
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
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => vec![
            col("Validations", "integer", 0, |o| json!(len(o, "/spec/validations"))),
            col("ParamKind", "string", 0, |o| match o.pointer("/spec/paramKind") {
                Some(kind) if !kind.is_null() => {
                    json!(format!("{}/{}", text(kind, "/apiVersion"), text(kind, "/kind")))
                }
                _ => json!("<unset>"),
            }),
            age(),
        ],
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => vec![
            col("PolicyName", "string", 0, |o| json!(text(o, "/spec/policyName"))),
            col("ParamRef", "string", 0, |o| match o.pointer("/spec/paramRef") {
                Some(r) if !r.is_null() => json!(format!("{}/{}", text(r, "/namespace"), text(r, "/name"))),
                _ => json!("<unset>"),
            }),
            age(),
        ],
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
