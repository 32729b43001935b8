//! The WebApp custom resource: an image run as a Deployment behind a Service.

use opkit::k8s::{Condition, Deployment, ResourceRequirements, SecurityContext, Service};
use opkit::prelude::*;

/// A web application: a Deployment of `image` behind a Service on `port`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "WebApp",
    namespaced,
    status = "WebAppStatus",
    shortname = "wa",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[operator(owns(Deployment, Service), finalizer = "webapp.example.com/finalizer", requeue = "5m")]
pub struct WebAppSpec {
    /// Number of pods, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub replicas: i32,
    /// Container image.
    pub image: String,
    /// Port the container listens on and the Service exposes.
    #[serde(default = "default_port")]
    pub port: i32,
    /// Requests and limits of the container; limits are required in `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The container's security context (default: restricted); the admission policy sets it in
    /// `production`.
    #[serde(default, rename = "securityContext", skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

fn default_port() -> i32 {
    8080
}

/// What the operator observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAppStatus {
    /// Pending, Deploying or Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Pods of the Deployment that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
