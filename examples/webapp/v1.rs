//! The WebApp custom resource, version `v1`: still served, deprecated, converted to and from
//! the hub (`v2`, `types.rs`) by the conversion webhook.
//!
//! `v1` has one `image` string and `replicas` at the top of the spec. The image's pull policy,
//! which `v1` cannot hold, is kept in an annotation by opkit when a `v1` client reads an
//! object, and restored when it writes it back.

use opkit::k8s::{ResourceRequirements, SecurityContext};
use opkit::prelude::*;

use super::types::{self, Image, Scale, WebAppStatus, default_port};

/// A web application: a Deployment of `image` behind a Service on `port`.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "WebApp",
    namespaced,
    status = "WebAppStatus",
    shortname = "wa",
    deprecated,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
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
    /// The container's security context (default: restricted).
    #[serde(default, rename = "securityContext", skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

impl From<WebApp> for types::WebApp {
    fn from(old: WebApp) -> Self {
        let spec = types::WebAppSpec {
            image: Image::parse(&old.spec.image),
            scale: Scale { replicas: old.spec.replicas },
            port: old.spec.port,
            resources: old.spec.resources,
            security_context: old.spec.security_context,
        };
        types::WebApp { metadata: old.metadata, spec, status: old.status }
    }
}

impl From<types::WebApp> for WebApp {
    fn from(new: types::WebApp) -> Self {
        let spec = WebAppSpec {
            replicas: new.spec.scale.replicas,
            image: new.spec.image.reference(),
            port: new.spec.port,
            resources: new.spec.resources,
            security_context: new.spec.security_context,
        };
        WebApp { metadata: new.metadata, spec, status: new.status }
    }
}
