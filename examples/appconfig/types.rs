//! The AppConfig custom resource: one application's configuration, rendered per environment.

use std::collections::BTreeMap;

use opkit::k8s::*;
use opkit::prelude::*;

/// Configuration of one application, rendered for one environment into the ConfigMap
/// `<application>-config`.
///
/// Keys of `config` may be prefixed with an environment (`prod.LOG_LEVEL`): such a key overrides
/// the plain key in that environment and is dropped in the others. `${ENVIRONMENT}` and
/// `${APPLICATION}` in values are replaced; `$${` writes a literal `${`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "config.example.com",
    version = "v1",
    kind = "AppConfig",
    namespaced,
    status = "AppConfigStatus",
    shortname = "ac",
    printcolumn = r#"{"name":"Application","type":"string","jsonPath":".spec.application"}"#,
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"ConfigMap","type":"string","jsonPath":".status.configMap"}"#,
    printcolumn = r#"{"name":"Hash","type":"string","jsonPath":".status.configHash"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[operator(
    owns(ConfigMap),
    watches(Deployment = super::reconcile::appconfigs_used_by),
    index(config_map = super::reconcile::config_map_key),
    rbac(group = "apps", resources = "deployments", verbs = "patch"),
    requeue = "10m"
)]
pub struct AppConfigSpec {
    /// The application; the ConfigMap is `<application>-config`.
    #[schemars(length(min = 1, max = 56), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub application: String,
    /// The environment the configuration is rendered for.
    pub environment: Environment,
    /// Configuration values; `<environment>.<KEY>` overrides `KEY` in that environment.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// The environments a configuration is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development.
    Dev,
    /// Staging.
    Staging,
    /// Production.
    Prod,
}

impl Environment {
    /// Every environment, for recognising override prefixes.
    pub const ALL: [Environment; 3] = [Environment::Dev, Environment::Staging, Environment::Prod];

    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        }
    }
}

/// What the operator observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppConfigStatus {
    /// The ConfigMap holding the rendered configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Hash of the rendered data every Deployment using the ConfigMap was rolled to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Deployments in the namespace that use the ConfigMap.
    #[serde(default)]
    pub deployments: Vec<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
