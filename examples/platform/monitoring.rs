//! The two Prometheus Operator kinds the platform creates, with only the fields it sets.

use std::collections::BTreeMap;

use opkit::k8s::*;
use opkit::prelude::*;

/// Which Services Prometheus scrapes (`monitoring.coreos.com/v1`).
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "monitoring.coreos.com", version = "v1", kind = "ServiceMonitor", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// The Services to scrape.
    pub selector: LabelSelector,
    /// Their ports to scrape.
    pub endpoints: Vec<ScrapeEndpoint>,
}

/// One scraped port.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeEndpoint {
    /// Name of the Service port.
    pub port: String,
    /// HTTP path of the metrics.
    pub path: String,
    /// Scrape interval.
    pub interval: String,
}

/// Alerting rules (`monitoring.coreos.com/v1`).
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "monitoring.coreos.com", version = "v1", kind = "PrometheusRule", namespaced)]
pub struct PrometheusRuleSpec {
    /// Rule groups.
    pub groups: Vec<RuleGroup>,
}

/// A named group of rules.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Alerts.
    pub rules: Vec<AlertRule>,
}

/// An alert.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AlertRule {
    /// Alert name.
    pub alert: String,
    /// PromQL condition.
    pub expr: String,
    /// How long the condition must hold.
    #[serde(rename = "for")]
    pub for_: String,
    /// Labels such as severity.
    pub labels: BTreeMap<String, String>,
    /// Summary for humans.
    pub annotations: BTreeMap<String, String>,
}
