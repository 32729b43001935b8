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

mod builtin;
mod format;

use crate::jsonpath;
use crate::resources::{PrinterColumn, ResourceInfo};
use builtin::builtin_columns;
use format::{age_of, human_since, text};
use serde_json::{Value, json};

/// Whether the `Accept` header asks for a Table (`as=Table;g=meta.k8s.io`,
/// version `v1` or `v1beta1`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;

    #[test]
    fn configmap_rows_and_pod_watch_events() {
        let all = builtins();
        let find = |kind: &str| {
            all.iter()
                .find(|r| r.kind == kind)
                .cloned()
                .unwrap_or_else(|| panic!("{kind}"))
        };
        let cm =
            serde_json::json!({"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}});
        let t = table(
            &find("ConfigMap"),
            &[cm],
            serde_json::json!({"resourceVersion": "7"}),
            "Metadata",
        );
        assert_eq!(t["rows"][0]["cells"][0], "settings");
        assert_eq!(t["rows"][0]["cells"][1], 2);
        let pod = serde_json::json!({"metadata": {"name": "p", "resourceVersion": "9"}});
        let event = watch_event(&find("Pod"), "ADDED", &pod, "Metadata");
        assert_eq!(event["object"]["kind"], "Table");
        assert_eq!(event["object"]["metadata"]["resourceVersion"], "9");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
    }

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
