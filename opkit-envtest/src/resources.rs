//! The resource registry: which kinds the server serves, and how.
//!
//! Built-in kinds are listed here; custom resources are added when a
//! CustomResourceDefinition is created and removed when it is deleted.

use crate::schema::Rules;
use serde_json::Value;
use std::sync::Arc;

/// How a resource is served: its names, scope, subresources and (for custom
/// resources) its schema and printer columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names kubectl accepts, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether the `/status` subresource is served.
    pub status_subresource: bool,
    /// The `/scale` subresource, where served.
    pub scale: Option<ScaleSubresource>,
    /// Extra columns for `kubectl get` (custom resources).
    pub printer_columns: Vec<PrinterColumn>,
    /// The `openAPIV3Schema` of a custom resource version; `None` for built-ins.
    pub schema: Option<Value>,
    /// The compiled CEL validation rules of that schema, if it has any.
    pub(crate) rules: Option<Arc<Rules>>,
    /// Whether this version is the storage version (custom resources).
    pub storage: bool,
    /// The verbs served on the resource itself.
    pub verbs: &'static [&'static str],
    /// Field selector labels beyond the kind's own (a CRD version's `selectableFields`).
    pub selectable_fields: Vec<String>,
    /// Subresources served besides `status` and `scale`.
    pub subresources: &'static [Subresource],
    /// The versions of the CRD this one belongs to, and how objects convert between them.
    pub(crate) versions: Option<Arc<crate::conversion::Versions>>,
}

/// A subresource with its own verbs and kind (`pods/log`, `serviceaccounts/token`).
#[derive(Clone, Debug, PartialEq)]
pub struct Subresource {
    /// The path segment, e.g. `token`.
    pub name: &'static str,
    /// The group of the kind it answers with; empty with `version` for the resource's own.
    pub group: &'static str,
    /// The version of that kind.
    pub version: &'static str,
    /// The kind it answers with, e.g. `TokenRequest`.
    pub kind: &'static str,
    /// The verbs it serves.
    pub verbs: &'static [&'static str],
}

/// Every verb of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Resources that only answer a question (reviews): they store nothing.
const CREATE_ONLY: &[&str] = &["create"];

const fn sub(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

const POD_SUBRESOURCES: &[Subresource] = &[
    sub("attach", "", "v1", "PodAttachOptions", &["create", "get"]),
    sub("binding", "", "v1", "Binding", &["create"]),
    sub(
        "ephemeralcontainers",
        "",
        "",
        "Pod",
        &["get", "patch", "update"],
    ),
    sub("eviction", "policy", "v1", "Eviction", &["create"]),
    sub("exec", "", "v1", "PodExecOptions", &["create", "get"]),
    sub("log", "", "", "Pod", &["get"]),
    sub(
        "portforward",
        "",
        "v1",
        "PodPortForwardOptions",
        &["create", "get"],
    ),
];

const SERVICE_ACCOUNT_SUBRESOURCES: &[Subresource] = &[sub(
    "token",
    "authentication.k8s.io",
    "v1",
    "TokenRequest",
    &["create"],
)];

const CSR_SUBRESOURCES: &[Subresource] = &[sub(
    "approval",
    "",
    "",
    "CertificateSigningRequest",
    &["get", "patch", "update"],
)];

/// Resources computed by the server that clients only read (component statuses).
const READ_ONLY: &[&str] = &["get", "list"];

const NAMESPACE_SUBRESOURCES: &[Subresource] = &[sub("finalize", "", "", "Namespace", &["update"])];

/// Where the scale subresource reads and writes replica counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSubresource {
    /// JSON path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas_path: String,
    /// JSON path of the observed replicas, e.g. `.status.replicas`.
    pub status_replicas_path: String,
    /// JSON path of the label selector string, if any.
    pub label_selector_path: Option<String>,
}

/// One `additionalPrinterColumns` entry of a custom resource version.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    /// Optional OpenAPI format.
    pub format: Option<String>,
    /// Column description.
    pub description: Option<String>,
    /// 0 for the default view; higher only with `-o wide`.
    pub priority: i32,
    /// JSONPath evaluated against each object.
    pub json_path: String,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of lists of this resource, e.g. `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The extra subresource `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource only answers questions (reviews) and stores nothing.
    pub fn is_review(&self) -> bool {
        self.verbs == CREATE_ONLY
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    in_all: bool,
    status: bool,
    scale: bool,
    verbs: &'static [&'static str],
    subresources: &'static [Subresource],
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        in_all: false,
        status: false,
        scale: false,
        verbs: ALL_VERBS,
        subresources: &[],
    }
}

impl Builtin {
    const fn all(mut self) -> Self {
        self.in_all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn review(mut self) -> Self {
        self.verbs = CREATE_ONLY;
        self
    }
    const fn read_only(mut self) -> Self {
        self.verbs = READ_ONLY;
        self
    }
    const fn subresources(mut self, subresources: &'static [Subresource]) -> Self {
        self.subresources = subresources;
        self
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

/// The built-in kinds, with the names and subresources a real kube-apiserver serves.
#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", CLUSTER, &["ns"]).status().subresources(NAMESPACE_SUBRESOURCES),
    b("", "v1", "ConfigMap", "configmaps", NS, &["cm"]),
    b("", "v1", "Secret", "secrets", NS, &[]),
    b("", "v1", "Service", "services", NS, &["svc"]).all().status(),
    b("", "v1", "ServiceAccount", "serviceaccounts", NS, &["sa"]).subresources(SERVICE_ACCOUNT_SUBRESOURCES),
    b("", "v1", "Pod", "pods", NS, &["po"]).all().status().subresources(POD_SUBRESOURCES),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", NS, &["pvc"]).status(),
    b("", "v1", "PersistentVolume", "persistentvolumes", CLUSTER, &["pv"]).status(),
    b("", "v1", "Event", "events", NS, &["ev"]),
    b("", "v1", "Endpoints", "endpoints", NS, &["ep"]),
    b("", "v1", "ResourceQuota", "resourcequotas", NS, &["quota"]).status(),
    b("", "v1", "LimitRange", "limitranges", NS, &["limits"]),
    b("", "v1", "Node", "nodes", CLUSTER, &["no"]).status(),
    b("", "v1", "ComponentStatus", "componentstatuses", CLUSTER, &["cs"]).read_only(),
    b("apps", "v1", "Deployment", "deployments", NS, &["deploy"]).all().status().scale(),
    b("apps", "v1", "StatefulSet", "statefulsets", NS, &["sts"]).all().status().scale(),
    b("apps", "v1", "ReplicaSet", "replicasets", NS, &["rs"]).all().status().scale(),
    b("apps", "v1", "DaemonSet", "daemonsets", NS, &["ds"]).all().status(),
    b("batch", "v1", "Job", "jobs", NS, &[]).all().status(),
    b("batch", "v1", "CronJob", "cronjobs", NS, &["cj"]).all().status(),
    b("networking.k8s.io", "v1", "Ingress", "ingresses", NS, &["ing"]).status(),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", NS, &["netpol"]),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", NS, &["pdb"]).status(),
    b("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, &["hpa"])
        .all()
        .status(),
    b("coordination.k8s.io", "v1", "Lease", "leases", NS, &[]),
    b("events.k8s.io", "v1", "Event", "events", NS, &["ev"]),
    b("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", CLUSTER, &[]).review(),
    b("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", CLUSTER, &[]).review(),
    b("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", CLUSTER, &[])
        .review(),
    b("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", CLUSTER, &[])
        .review(),
    b("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", CLUSTER, &[]).review(),
    b("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", NS, &[])
        .review(),
    b("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", CLUSTER, &["csr"])
        .status()
        .subresources(CSR_SUBRESOURCES),
    b("apiregistration.k8s.io", "v1", "APIService", "apiservices", CLUSTER, &[]).status(),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", NS, &[]),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", NS, &[]),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", CLUSTER, &[]),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER, &[]),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        CLUSTER,
        &[],
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        CLUSTER,
        &[],
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        CLUSTER,
        &[],
    )
    .status(),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        CLUSTER,
        &[],
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        CLUSTER,
        &["crd", "crds"],
    )
    .status(),
];

/// The built-in resources this server serves from the start.
pub fn builtins() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|b| ResourceInfo {
            group: b.group.to_string(),
            version: b.version.to_string(),
            kind: b.kind.to_string(),
            plural: b.plural.to_string(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: if b.in_all {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            status_subresource: b.status,
            scale: b.scale.then(|| ScaleSubresource {
                spec_replicas_path: ".spec.replicas".to_string(),
                status_replicas_path: ".status.replicas".to_string(),
                label_selector_path: Some(".status.selector".to_string()),
            }),
            printer_columns: Vec::new(),
            schema: None,
            rules: None,
            storage: true,
            verbs: b.verbs,
            selectable_fields: Vec::new(),
            subresources: b.subresources,
            versions: None,
        })
        .collect()
}
