//! The Validating/MutatingWebhookConfigurations: one webhook per registered handler, rules for
//! its kind, failurePolicy Fail, sideEffects None, admissionReviewVersions v1.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};

use super::review::{self, Handler};
use super::{Admitted, Mutator, Validator, WebhookError, Webhooks};
use crate::webhook::Operation;

/// Where the API server reaches the webhook server.
///
/// ```
/// use opkit::webhook::Endpoint;
/// let local = Endpoint::Url("https://127.0.0.1:9443".into());
/// let cluster = Endpoint::Service { namespace: "ops".into(), name: "app-operator-webhook".into(), port: 443 };
/// # let _ = (local, cluster);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A base URL (`https://host:port`); each webhook's path is appended.
    Url(String),
    /// A Service in the cluster.
    Service {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The Service's port.
        port: i32,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Validating,
    Mutating,
}

#[derive(Clone)]
pub(crate) struct Hook {
    pub r#type: Type,
    pub name: String,
    pub path: String,
    pub rule: RuleWithOperations,
    pub handler: Handler,
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn hook<K: Admitted>(r#type: Type, operations: &[Operation], handler: Handler) -> Hook {
    let group = K::group(&()).to_string();
    let version = K::version(&()).to_string();
    let kind = K::kind(&()).to_lowercase();
    let plural = K::plural(&()).to_string();
    let prefix = match r#type {
        Type::Validating => "validate",
        Type::Mutating => "mutate",
    };
    let dashed_group = if group.is_empty() {
        "core".to_owned()
    } else {
        group.replace('.', "-")
    };
    let qualified = if group.is_empty() {
        format!("{plural}.core.k8s.io")
    } else {
        format!("{plural}.{group}")
    };
    // kube's scopes are marker types without a runtime query; their names are stable API.
    let namespaced = std::any::type_name::<K::Scope>().ends_with("::NamespaceResourceScope");
    let scope = if namespaced { "Namespaced" } else { "Cluster" };
    Hook {
        r#type,
        name: format!("{prefix}.{qualified}"),
        path: format!("/{prefix}-{dashed_group}-{version}-{kind}"),
        rule: RuleWithOperations {
            api_groups: Some(vec![group]),
            api_versions: Some(vec![version]),
            resources: Some(vec![plural]),
            operations: Some(
                operations
                    .iter()
                    .map(|op| operation_name(op).to_owned())
                    .collect(),
            ),
            scope: Some(scope.to_owned()),
        },
        handler,
    }
}

pub(crate) fn validating<K: Admitted, V: Validator<K>>(validator: V) -> Hook {
    hook::<K>(
        Type::Validating,
        V::OPERATIONS,
        review::validating(validator),
    )
}

pub(crate) fn mutating<K: Admitted, M: Mutator<K>>(mutator: M) -> Hook {
    hook::<K>(Type::Mutating, M::OPERATIONS, review::mutating(mutator))
}

/// The two configurations of one set of webhooks; `None` where no webhook of that type exists.
#[derive(Clone, Debug, Default)]
pub struct Configurations {
    /// The mutating webhooks.
    pub mutating: Option<MutatingWebhookConfiguration>,
    /// The validating webhooks.
    pub validating: Option<ValidatingWebhookConfiguration>,
}

impl Webhooks {
    /// The configurations pointing at `endpoint`, trusting `ca_bundle` (PEM) when given.
    ///
    /// ```
    /// use opkit::webhook::{Endpoint, Webhooks};
    /// let configs = Webhooks::new("app-operator").configurations(&Endpoint::Url("https://127.0.0.1:9443".into()), None);
    /// assert!(configs.validating.is_none() && configs.mutating.is_none());
    /// ```
    pub fn configurations(&self, endpoint: &Endpoint, ca_bundle: Option<&str>) -> Configurations {
        let metadata = || ObjectMeta {
            name: Some(self.name.clone()),
            annotations: self.annotations(endpoint),
            ..Default::default()
        };
        let client_config = |path: &str| WebhookClientConfig {
            ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
            url: match endpoint {
                Endpoint::Url(base) => Some(format!("{}{path}", base.trim_end_matches('/'))),
                Endpoint::Service { .. } => None,
            },
            service: match endpoint {
                Endpoint::Url(_) => None,
                Endpoint::Service {
                    namespace,
                    name,
                    port,
                } => Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path.to_owned()),
                    port: Some(*port),
                }),
            },
        };
        let admission_review_versions = vec!["v1".to_owned()];
        let mutating: Vec<MutatingWebhook> = self
            .hooks
            .iter()
            .filter(|h| h.r#type == Type::Mutating)
            .map(|h| MutatingWebhook {
                name: h.name.clone(),
                client_config: client_config(&h.path),
                rules: Some(vec![h.rule.clone()]),
                failure_policy: Some("Fail".to_owned()),
                side_effects: "None".to_owned(),
                admission_review_versions: admission_review_versions.clone(),
                timeout_seconds: Some(self.timeout_seconds),
                reinvocation_policy: Some("Never".to_owned()),
                ..Default::default()
            })
            .collect();
        let validating: Vec<ValidatingWebhook> = self
            .hooks
            .iter()
            .filter(|h| h.r#type == Type::Validating)
            .map(|h| ValidatingWebhook {
                name: h.name.clone(),
                client_config: client_config(&h.path),
                rules: Some(vec![h.rule.clone()]),
                failure_policy: Some("Fail".to_owned()),
                side_effects: "None".to_owned(),
                admission_review_versions: admission_review_versions.clone(),
                timeout_seconds: Some(self.timeout_seconds),
                ..Default::default()
            })
            .collect();
        Configurations {
            mutating: (!mutating.is_empty()).then(|| MutatingWebhookConfiguration {
                metadata: metadata(),
                webhooks: Some(mutating),
            }),
            validating: (!validating.is_empty()).then(|| ValidatingWebhookConfiguration {
                metadata: metadata(),
                webhooks: Some(validating),
            }),
        }
    }

    fn annotations(&self, endpoint: &Endpoint) -> Option<BTreeMap<String, String>> {
        match endpoint {
            Endpoint::Service { namespace, .. } if self.cert_manager => Some(BTreeMap::from([(
                "cert-manager.io/inject-ca-from".to_owned(),
                format!("{namespace}/{}", self.service_name()),
            )])),
            _ => None,
        }
    }

    /// The configurations for a cluster, as YAML: webhooks behind the Service
    /// `<name>-webhook` in `namespace` on port 443, with the cert-manager annotation when
    /// [`Webhooks::cert_manager`] is on.
    ///
    /// ```
    /// let yaml = opkit::webhook::Webhooks::new("app-operator").yaml("ops").unwrap_or_default();
    /// assert!(yaml.is_empty());
    /// ```
    pub fn yaml(&self, namespace: &str) -> Result<String, WebhookError> {
        let endpoint = Endpoint::Service {
            namespace: namespace.to_owned(),
            name: self.service_name(),
            port: 443,
        };
        let configs = self.configurations(&endpoint, None);
        let mut out = String::new();
        if !self.conversions.is_empty() {
            // Conversion webhooks are configured in their CRDs (`crd`), not by an object here.
            out.push_str(
                "# Conversion webhooks, configured in the spec.conversion of their CRDs:\n",
            );
            for conversion in &self.conversions {
                out.push_str(&format!(
                    "# {} at {}\n",
                    conversion.catalog.crd_name(),
                    conversion.catalog.path()
                ));
            }
        }
        let mut push = |value: Result<serde_json::Value, serde_json::Error>| {
            let value = value.map_err(|e| WebhookError::Serialize(e.to_string()))?;
            let yaml = serde_yaml_ng::to_string(&value)
                .map_err(|e| WebhookError::Serialize(e.to_string()))?;
            out.push_str("---\n");
            out.push_str(&yaml);
            Ok::<_, WebhookError>(())
        };
        if let Some(m) = &configs.mutating {
            push(typed_value(m))?;
        }
        if let Some(v) = &configs.validating {
            push(typed_value(v))?;
        }
        Ok(out)
    }

    /// Creates or replaces the configurations on the API server (server-side apply), pointing
    /// at `endpoint` and trusting `ca_bundle` (PEM), and points the CRDs of the conversion
    /// webhooks there too.
    ///
    /// ```no_run
    /// # async fn f(client: kube::Client, webhooks: opkit::webhook::Webhooks, certs: opkit::webhook::Certificates) -> Result<(), opkit::webhook::WebhookError> {
    /// use opkit::webhook::Endpoint;
    /// webhooks.install(&client, &Endpoint::Url("https://127.0.0.1:9443".into()), Some(certs.ca_pem())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn install(
        &self,
        client: &kube::Client,
        endpoint: &Endpoint,
        ca_bundle: Option<&str>,
    ) -> Result<(), WebhookError> {
        let configs = self.configurations(endpoint, ca_bundle);
        let params = PatchParams::apply(&self.name).force();
        let fail = |source| WebhookError::Install {
            name: self.name.clone(),
            source,
        };
        if let Some(m) = configs.mutating {
            let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
            let value = typed_value(&m).map_err(|e| WebhookError::Serialize(e.to_string()))?;
            api.patch(&self.name, &params, &Patch::Apply(value))
                .await
                .map_err(fail)?;
        }
        if let Some(v) = configs.validating {
            let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
            let value = typed_value(&v).map_err(|e| WebhookError::Serialize(e.to_string()))?;
            api.patch(&self.name, &params, &Patch::Apply(value))
                .await
                .map_err(fail)?;
        }
        for conversion in &self.conversions {
            conversion.install(client, endpoint, ca_bundle).await?;
        }
        Ok(())
    }
}

/// An object with its apiVersion and kind, as manifests and apply patches need them.
fn typed_value<K: kube::Resource<DynamicType = ()> + serde::Serialize>(
    object: &K,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(object)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
    }
    Ok(value)
}
