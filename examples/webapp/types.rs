//! The WebApp custom resource, version `v2`: an image run as a Deployment behind a Service.
//!
//! `v2` is the hub: the version stored and reconciled. Against `v1` (still served, see
//! `v1.rs`) the image is split into repository, tag and digest, gains a pull policy, and the
//! replica count moved under `scale`.

use opkit::k8s::{Condition, Deployment, ResourceRequirements, SecurityContext, Service};
use opkit::prelude::*;

/// A web application: a Deployment of `image` behind a Service on `port`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v2",
    kind = "WebApp",
    namespaced,
    status = "WebAppStatus",
    shortname = "wa",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.scale.replicas"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image.repository","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[operator(owns(Deployment, Service), finalizer = "webapp.example.com/finalizer", requeue = "5m")]
pub struct WebAppSpec {
    /// The container image.
    pub image: Image,
    /// How many pods run.
    pub scale: Scale,
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

/// A container image by parts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Registry and path, e.g. `nginx` or `registry.example.com/team/web`.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// The tag, e.g. `1.27`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The digest, e.g. `sha256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `Always`, `IfNotPresent` or `Never` (default: Kubernetes' choice from the tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(Always|IfNotPresent|Never)$"))]
    pub pull_policy: Option<String>,
}

impl Image {
    /// Splits a reference such as `registry:5000/web:1.2@sha256:...` into its parts.
    pub fn parse(reference: &str) -> Self {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (reference, None),
        };
        // A colon after the last slash starts the tag; one before it is a registry's port.
        let name_start = rest.rfind('/').map_or(0, |slash| slash + 1);
        let (repository, tag) = match rest[name_start..].split_once(':') {
            Some((name, tag)) => (format!("{}{name}", &rest[..name_start]), Some(tag.to_owned())),
            None => (rest.to_owned(), None),
        };
        Self { repository, tag, digest, pull_policy: None }
    }

    /// The reference a container runtime pulls: `repository[:tag][@digest]`.
    pub fn reference(&self) -> String {
        let mut reference = self.repository.clone();
        if let Some(tag) = &self.tag {
            reference.push(':');
            reference.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            reference.push('@');
            reference.push_str(digest);
        }
        reference
    }
}

/// How many pods run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Scale {
    /// Number of pods, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub replicas: i32,
}

pub(crate) fn default_port() -> i32 {
    8080
}

/// What the operator observed; the same in every version.
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

#[cfg(test)]
mod tests {
    use super::Image;

    #[test]
    fn references_split_into_parts_and_back() {
        for reference in [
            "nginx",
            "nginx:1.27",
            "localhost:5000/web",
            "localhost:5000/web:2",
            "registry.example.com/team/web:1@sha256:00",
            "web@sha256:00",
            "",
        ] {
            assert_eq!(Image::parse(reference).reference(), reference);
        }
        let image = Image::parse("localhost:5000/web:2");
        assert_eq!(
            (image.repository.as_str(), image.tag.as_deref()),
            ("localhost:5000/web", Some("2"))
        );
    }
}
