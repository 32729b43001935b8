//! The EcommercePlatform custom resource: a shop of database, cache, backend, frontend, monitoring
//! and Ingress, with defaults by environment.

use k8s_openapi::api::networking::v1::Ingress;
use opkit::k8s::*;
use opkit::prelude::*;

use crate::postgresql::types::{PostgreSQL, PostgresVersion};

/// A whole shop: a PostgreSQL database, a Redis cache, a backend, a frontend, monitoring and an
/// Ingress, deployed in dependency order with defaults for the target environment.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "platform.example.com",
    version = "v1",
    kind = "EcommercePlatform",
    plural = "ecommerceplatforms",
    namespaced,
    status = "EcommercePlatformStatus",
    shortname = "shop",
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[operator(
    owns(PostgreSQL, Deployment, Service, Ingress),
    rbac(
        group = "monitoring.coreos.com",
        resources = "servicemonitors,prometheusrules",
        verbs = "get,create,patch,delete"
    ),
    requeue = "10m"
)]
#[serde(rename_all = "camelCase")]
pub struct EcommercePlatformSpec {
    /// Target environment; it decides the defaults of everything the spec leaves out.
    pub environment: Environment,
    /// The web frontend.
    pub frontend: Component,
    /// The API backend.
    pub backend: Component,
    /// The database.
    #[serde(default)]
    pub database: Database,
    /// The Redis cache.
    #[serde(default)]
    pub cache: Toggle,
    /// ServiceMonitor and PrometheusRule for the Prometheus Operator.
    #[serde(default)]
    pub monitoring: Toggle,
    /// How the shop is exposed.
    #[serde(default)]
    pub ingress: IngressSpec,
}

/// The environments a platform runs in; each implies its own defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// One of everything, small volumes, no backups.
    Development,
    /// Two of everything, backups.
    Staging,
    /// Three of everything, large volumes, backups.
    Production,
}

impl Environment {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

/// A stateless tier.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Pods; the environment's default when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,
    /// Container image.
    #[schemars(length(min = 1))]
    pub image: String,
}

/// The kinds of database the CRD accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseType {
    /// A PostgreSQL resource, reconciled by the PostgreSQL operator.
    #[default]
    Postgresql,
    /// Accepted by the schema for compatibility; refused, since no MySQL operator runs beside this one.
    Mysql,
}

/// The database; every field left out takes the environment's default.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    /// The engine.
    #[serde(default, rename = "type")]
    pub type_: DatabaseType,
    /// Major version (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<PostgresVersion>,
    /// Volume size of each server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+Gi$"))]
    pub storage: Option<String>,
    /// Servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: Option<i32>,
    /// Nightly backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<bool>,
}

/// A component that can be turned off.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Toggle {
    /// Whether the component exists.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// The Ingress in front of the shop.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name; without one the Ingress answers for any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// IngressClass to use (the cluster's default when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
}

/// What the operator observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EcommercePlatformStatus {
    /// Pending, Deploying or Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Where each component answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, and one per component: Database, Cache, Backend, Frontend,
    /// Monitoring, Ingress.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// In-cluster addresses of the components (absent until the component exists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The frontend's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<String>,
    /// The backend's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `host:port` of the database primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The cache's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The public URL through the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
}
