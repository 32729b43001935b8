//! The default roles and bindings a kube-apiserver creates at start
//! (labelled `kubernetes.io/bootstrapping: rbac-defaults`): `cluster-admin`
//! for `system:masters`; `admin`, `edit` and `view`, aggregated from the
//! `system:aggregate-to-*` roles; discovery, basic-user and public-info for
//! every user; the `system:` roles of the control-plane components, nodes,
//! certificate approvers and auth delegation.

use super::{CLUSTER_ROLES, ROLES, reaggregate};
use crate::store::Txn;
use serde_json::{Value, json};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
/// Every verb of a resource: what `ReadWrite` grants.
const READ_WRITE: &[&str] = crate::resources::ALL_VERBS;
const EVENTS: &[&str] = &["create", "patch", "update"];

/// A resource rule.
fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

/// A resource rule restricted to names.
fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

/// A non-resource rule.
fn urls(verbs: &[&str], paths: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": paths})
}

/// Events in both Event APIs.
fn events() -> Value {
    r(EVENTS, &["", "events.k8s.io"], &["events"])
}

const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

fn aggregate_to_edit() -> Vec<Value> {
    vec![
        r(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        r(&["impersonate"], &[""], &["serviceaccounts"]),
        r(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        r(&["create"], &[""], &["pods/eviction"]),
        r(
            WRITE,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        r(&["create"], &[""], &["serviceaccounts/token"]),
        r(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        r(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        r(WRITE, &["batch"], &["cronjobs", "jobs"]),
        r(
            WRITE,
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
        ),
        r(WRITE, &["policy"], &["poddisruptionbudgets"]),
        r(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        r(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
    ]
}

fn aggregate_to_view() -> Vec<Value> {
    vec![
        r(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        r(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        r(READ, &[""], &["namespaces"]),
        r(READ, &["discovery.k8s.io"], &["endpointslices"]),
        r(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        r(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        r(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        r(
            READ,
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
        ),
        r(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        r(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

fn approver(signer: &str) -> Vec<Value> {
    vec![named(
        &["approve"],
        &["certificates.k8s.io"],
        &["signers"],
        &[signer],
    )]
}

/// A default ClusterRole: its name, the aggregation label it carries, the label
/// its `aggregationRule` selects, and its rules.
type DefaultRole = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Vec<Value>,
);

/// Every default ClusterRole.
fn cluster_roles() -> Vec<DefaultRole> {
    let health = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        (
            "cluster-admin",
            None,
            None,
            vec![r(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        (
            "system:discovery",
            None,
            None,
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        (
            "system:monitoring",
            None,
            None,
            vec![urls(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        (
            "system:basic-user",
            None,
            None,
            vec![
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                r(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        (
            "system:public-info-viewer",
            None,
            None,
            vec![urls(&["get"], &health)],
        ),
        ("admin", None, Some(AGGREGATE_TO_ADMIN), Vec::new()),
        (
            "edit",
            Some(AGGREGATE_TO_ADMIN),
            Some(AGGREGATE_TO_EDIT),
            Vec::new(),
        ),
        (
            "view",
            Some(AGGREGATE_TO_EDIT),
            Some(AGGREGATE_TO_VIEW),
            Vec::new(),
        ),
        (
            "system:aggregate-to-admin",
            Some(AGGREGATE_TO_ADMIN),
            None,
            vec![
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                r(
                    READ_WRITE,
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                ),
            ],
        ),
        (
            "system:aggregate-to-edit",
            Some(AGGREGATE_TO_EDIT),
            None,
            aggregate_to_edit(),
        ),
        (
            "system:aggregate-to-view",
            Some(AGGREGATE_TO_VIEW),
            None,
            aggregate_to_view(),
        ),
        (
            "system:auth-delegator",
            None,
            None,
            vec![
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        (
            "system:heapster",
            None,
            None,
            vec![
                r(READ, &[""], &["events", "namespaces", "nodes", "pods"]),
                r(READ, &["extensions"], &["deployments"]),
            ],
        ),
        (
            "system:kube-aggregator",
            None,
            None,
            vec![r(READ, &[""], &["endpoints", "services"])],
        ),
        (
            "system:kube-controller-manager",
            None,
            None,
            vec![
                events(),
                r(&["create"], &["coordination.k8s.io"], &["leases"]),
                named(
                    &["get", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["kube-controller-manager"],
                ),
                r(&["create"], &[""], &["secrets", "serviceaccounts"]),
                r(&["delete"], &[""], &["secrets"]),
                r(
                    &["get"],
                    &[""],
                    &["configmaps", "namespaces", "secrets", "serviceaccounts"],
                ),
                r(&["update"], &[""], &["secrets", "serviceaccounts"]),
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                r(&["list", "watch"], &["*"], &["*"]),
                r(&["create"], &[""], &["serviceaccounts/token"]),
            ],
        ),
        (
            "system:kube-dns",
            None,
            None,
            vec![r(&["list", "watch"], &[""], &["endpoints", "services"])],
        ),
        (
            "system:kube-scheduler",
            None,
            None,
            vec![
                events(),
                r(&["create"], &["coordination.k8s.io"], &["leases"]),
                named(
                    &["get", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["kube-scheduler"],
                ),
                r(READ, &[""], &["nodes"]),
                r(&["delete", "get", "list", "watch"], &[""], &["pods"]),
                r(&["create"], &[""], &["bindings", "pods/binding"]),
                r(&["patch", "update"], &[""], &["pods/status"]),
                r(READ, &[""], &["replicationcontrollers", "services"]),
                r(READ, &["apps", "extensions"], &["replicasets"]),
                r(READ, &["apps"], &["statefulsets"]),
                r(READ, &["policy"], &["poddisruptionbudgets"]),
                r(
                    READ,
                    &[""],
                    &["persistentvolumeclaims", "persistentvolumes"],
                ),
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                r(READ, &["storage.k8s.io"], &["csinodes"]),
                r(READ, &[""], &["namespaces"]),
                r(
                    READ,
                    &["storage.k8s.io"],
                    &["csidrivers", "csistoragecapacities"],
                ),
            ],
        ),
        (
            "system:volume-scheduler",
            None,
            None,
            vec![
                r(
                    &["get", "list", "patch", "update", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(
                    &["get", "list", "patch", "update", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        (
            "system:node",
            None,
            None,
            vec![
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews", "subjectaccessreviews"],
                ),
                r(READ, &[""], &["services"]),
                r(&["create", "get", "list", "watch"], &[""], &["nodes"]),
                r(&["patch", "update"], &[""], &["nodes/status"]),
                r(&["patch", "update"], &[""], &["nodes"]),
                events(),
                r(READ, &[""], &["pods"]),
                r(&["create", "delete"], &[""], &["pods"]),
                r(&["patch", "update"], &[""], &["pods/status"]),
                r(&["create"], &[""], &["pods/eviction"]),
                r(READ, &[""], &["configmaps", "secrets"]),
                r(
                    &["get"],
                    &[""],
                    &["persistentvolumeclaims", "persistentvolumes"],
                ),
                r(&["get"], &[""], &["endpoints"]),
                r(
                    &["create", "get", "list", "watch"],
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                ),
                r(
                    &["create", "delete", "get", "patch", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                ),
                r(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
                r(&["create"], &[""], &["serviceaccounts/token"]),
                r(
                    &["patch", "update"],
                    &[""],
                    &["persistentvolumeclaims/status"],
                ),
            ],
        ),
        (
            "system:node-proxier",
            None,
            None,
            vec![
                r(&["list", "watch"], &[""], &["endpoints", "services"]),
                r(READ, &[""], &["nodes"]),
                events(),
                r(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        (
            "system:node-bootstrapper",
            None,
            None,
            vec![r(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        (
            "system:node-problem-detector",
            None,
            None,
            vec![
                r(&["get"], &[""], &["nodes"]),
                r(&["patch"], &[""], &["nodes/status"]),
                events(),
            ],
        ),
        (
            "system:kubelet-api-admin",
            None,
            None,
            vec![
                r(&["get", "list", "watch", "proxy"], &[""], &["nodes"]),
                r(
                    &["*"],
                    &[""],
                    &["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"],
                ),
            ],
        ),
        (
            "system:persistent-volume-provisioner",
            None,
            None,
            vec![
                r(
                    &["create", "delete", "get", "list", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                r(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                r(READ, &["storage.k8s.io"], &["storageclasses"]),
                r(&["watch"], &[""], &["events"]),
                events(),
            ],
        ),
        (
            "system:service-account-issuer-discovery",
            None,
            None,
            vec![urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            None,
            None,
            vec![r(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            None,
            None,
            vec![r(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        (
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            None,
            None,
            approver("kubernetes.io/kube-apiserver-client"),
        ),
        (
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            None,
            None,
            approver("kubernetes.io/kube-apiserver-client-kubelet"),
        ),
        (
            "system:certificates.k8s.io:kubelet-serving-approver",
            None,
            None,
            approver("kubernetes.io/kubelet-serving"),
        ),
        (
            "system:certificates.k8s.io:legacy-unknown-approver",
            None,
            None,
            approver("kubernetes.io/legacy-unknown"),
        ),
    ]
}

/// `(role, subjects)` of every default ClusterRoleBinding; subjects are `(kind, name)`,
/// ServiceAccounts as `namespace/name`.
const CLUSTER_ROLE_BINDINGS: &[(&str, &[(&str, &str)])] = &[
    ("cluster-admin", &[("Group", "system:masters")]),
    ("system:basic-user", &[("Group", "system:authenticated")]),
    ("system:discovery", &[("Group", "system:authenticated")]),
    (
        "system:public-info-viewer",
        &[
            ("Group", "system:authenticated"),
            ("Group", "system:unauthenticated"),
        ],
    ),
    ("system:monitoring", &[("Group", "system:monitoring")]),
    (
        "system:service-account-issuer-discovery",
        &[("Group", "system:serviceaccounts")],
    ),
    (
        "system:kube-controller-manager",
        &[("User", "system:kube-controller-manager")],
    ),
    (
        "system:kube-scheduler",
        &[("User", "system:kube-scheduler")],
    ),
    (
        "system:volume-scheduler",
        &[("User", "system:kube-scheduler")],
    ),
    ("system:node-proxier", &[("User", "system:kube-proxy")]),
    (
        "system:kube-dns",
        &[("ServiceAccount", "kube-system/kube-dns")],
    ),
    ("system:node", &[]),
];

fn metadata(name: &str, namespace: Option<&str>, created: &str) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": created,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn subject(kind: &str, name: &str) -> Value {
    match kind {
        "ServiceAccount" => {
            let (namespace, name) = name.split_once('/').unwrap_or(("default", name));
            json!({"kind": kind, "name": name, "namespace": namespace})
        }
        _ => json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}),
    }
}

/// Stores the default roles and bindings, as a real server does at start.
pub(crate) fn bootstrap(txn: &mut Txn<'_>) {
    let created = crate::meta::now();
    for (name, label, aggregated_from, rules) in cluster_roles() {
        let mut role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(name, None, &created),
            "rules": rules,
        });
        if let Some(label) = label {
            role["metadata"]["labels"][label] = json!("true");
        }
        if let Some(selector) = aggregated_from {
            role["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {selector: "true"}}]});
        }
        txn.put(CLUSTER_ROLES, role);
    }
    for (role, subjects) in CLUSTER_ROLE_BINDINGS {
        let subjects: Vec<Value> = subjects.iter().map(|(k, n)| subject(k, n)).collect();
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(role, None, &created),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        });
        if !subjects.is_empty() {
            binding["subjects"] = json!(subjects);
        }
        txn.put(super::CLUSTER_ROLE_BINDINGS, binding);
    }
    // What aggregated API servers and operators read their client CA with.
    let reader = "extension-apiserver-authentication-reader";
    txn.put(
        ROLES,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata(reader, Some("kube-system"), &created),
            "rules": [named(READ, &[""], &["configmaps"], &["extension-apiserver-authentication"])],
        }),
    );
    txn.put(
        super::ROLE_BINDINGS,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(&format!("system::{reader}"), Some("kube-system"), &created),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": reader},
            "subjects": [
                subject("User", "system:kube-controller-manager"),
                subject("User", "system:kube-scheduler"),
            ],
        }),
    );
    reaggregate(txn);
}
