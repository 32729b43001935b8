//! The {= kind =} custom resource ({= group =}/{= version =}) and its controller.

mod reconcile;
// cargo-opkit: modules

{% if "data" in fields %}
use std::collections::BTreeMap;

{% endif %}
{% if owns %}
use opkit::k8s::{Condition, {= owned_kinds | join(", ") =}};
{% else %}
use opkit::k8s::Condition;
{% endif %}
use opkit::prelude::*;

/// The desired state of a {= kind =}; `kubectl explain {= lower =}.spec` shows these comments.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "{= group =}",
    version = "{= version =}",
    kind = "{= kind =}",
{% if namespaced %}
    namespaced,
{% endif %}
    status = "{= kind =}Status",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
{% if owns %}
#[operator(owns({= owned_kinds | join(", ") =}))]
{% endif %}
pub struct {= kind =}Spec {
{% if "namespace" in fields %}
    /// The namespace the {= kind =}'s objects go to.
    pub namespace: String,
{% endif %}
{% if "image" in fields %}
    /// The container image.
    pub image: String,
{% endif %}
{% if "replicas" in fields %}
    /// How many pods run it.
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
{% endif %}
{% if "port" in fields %}
    /// The port the container listens on{% if "Service" in owned_kinds %} and the Service exposes{% endif %}.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
{% endif %}
{% if "schedule" in fields %}
    /// When the job runs, in cron syntax (`*/5 * * * *`: every five minutes).
    pub schedule: String,
{% endif %}
{% if "data" in fields %}
    /// The entries of the ConfigMap.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
{% endif %}
{% if "storage" in fields %}
    /// The size of the volume, such as `1Gi`.
    pub storage: String,
{% endif %}
{% if "message" in fields %}
    /// An example field: replace it with what your operator needs.
    pub message: String,
{% endif %}
}

/// What the operator observed; opkit writes it after each reconcile, only when it changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct {= kind =}Status {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
