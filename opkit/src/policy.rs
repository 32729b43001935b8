//! ValidatingAdmissionPolicies an operator ships, declared in Rust.
//!
//! A policy is CEL the API server evaluates itself on every matching write: no webhook server,
//! no certificate, nothing to be unavailable. [`Policy`] builds one and its bindings (kinds from
//! the Rust types, expressions as strings, everything else typed); [`App::policy`](crate::App)
//! adds it to an operator, whose `policies` subcommand prints it with its default parameters,
//! and whose embedded mode installs it.
//!
//! ```
//! use opkit::policy::{Binding, Policy, Validation};
//! use opkit::prelude::*;
//! use opkit::k8s::ConfigMap;
//!
//! #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
//! pub struct SiteSpec { pub replicas: i32 }
//!
//! let limits = ConfigMap {
//!     metadata: opkit::k8s::ObjectMeta { name: Some("site-limits".into()), ..Default::default() },
//!     data: Some([("maxReplicas".to_string(), "5".to_string())].into()),
//!     ..Default::default()
//! };
//! let policy = Policy::new("site-replicas")
//!     .on::<Site>()
//!     .params(limits)
//!     .validation(
//!         Validation::new("object.spec.replicas <= int(params.data.maxReplicas)")
//!             .message_expression("'at most ' + params.data.maxReplicas + ' replicas'"),
//!     )
//!     .binding(Binding::new("site-replicas").param("site-limits"));
//! let yaml = opkit::manifests::to_yaml(&policy.objects("ops")).unwrap();
//! assert!(yaml.contains("kind: ValidatingAdmissionPolicyBinding"));
//! assert!(yaml.contains("namespace: ops"));
//! ```

use k8s_openapi::api::admissionregistration::v1 as admission;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use serde::Serialize;

use crate::object::{Object, is_namespaced};

/// A `ValidatingAdmissionPolicy` with its bindings and default parameters.
///
/// ```
/// use opkit::policy::{Policy, Validation};
/// use opkit::k8s::Deployment;
/// let policy = Policy::new("replicas")
///     .on::<Deployment>()
///     .validation(Validation::new("object.spec.replicas <= 5").message("at most 5 replicas"));
/// assert_eq!(policy.name(), "replicas");
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    name: String,
    spec: admission::ValidatingAdmissionPolicySpec,
    bindings: Vec<Binding>,
    /// Parameter objects shipped with the policy, and whether their kind is namespaced.
    params: Vec<(serde_json::Value, bool)>,
}

/// What a binding does with a failed validation.
///
/// ```
/// use opkit::policy::{Binding, Enforcement};
/// let binding = Binding::new("warn-only").enforce(&[Enforcement::Warn]);
/// # let _ = binding;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Refuse the request.
    Deny,
    /// Accept it with a warning (kubectl prints `Warning: ...`).
    Warn,
    /// Record it in the audit log.
    Audit,
}

impl Enforcement {
    fn as_str(self) -> &'static str {
        match self {
            Enforcement::Deny => "Deny",
            Enforcement::Warn => "Warn",
            Enforcement::Audit => "Audit",
        }
    }
}

/// Where a binding finds its parameter object.
#[derive(Clone, Debug)]
enum ParamAt {
    /// In the namespace the operator is deployed to.
    Operator,
    /// In a given namespace (or cluster-scoped, with an empty one).
    Namespace(String),
    /// In the namespace of the request.
    Request,
}

/// A `ValidatingAdmissionPolicyBinding`: which requests its policy applies to, with which
/// parameters, and what a failure does (deny by default).
///
/// ```
/// use opkit::policy::Binding;
/// use opkit::k8s::LabelSelector;
/// let production = LabelSelector {
///     match_labels: Some([("env".to_string(), "production".to_string())].into()),
///     ..Default::default()
/// };
/// let binding = Binding::new("sites-in-production").namespaces(production);
/// assert_eq!(binding.name(), "sites-in-production");
/// ```
#[derive(Clone, Debug)]
pub struct Binding {
    name: String,
    param: Option<(String, ParamAt)>,
    deny_without_param: bool,
    actions: Vec<Enforcement>,
    namespaces: Option<LabelSelector>,
}

/// One CEL validation of a policy.
///
/// ```
/// use opkit::policy::Validation;
/// let v = Validation::new("object.spec.replicas <= 5")
///     .message("at most 5 replicas")
///     .reason("Forbidden");
/// # let _ = v;
/// ```
#[derive(Clone, Debug)]
pub struct Validation(admission::Validation);

impl Validation {
    /// A validation passing when `expression` (over `object`, `oldObject`, `request`, `params`,
    /// `namespaceObject` and `variables`) is true.
    ///
    /// ```
    /// let v = opkit::policy::Validation::new("object.spec.replicas <= 5");
    /// # let _ = v;
    /// ```
    pub fn new(expression: impl Into<String>) -> Self {
        Self(admission::Validation {
            expression: expression.into(),
            ..Default::default()
        })
    }

    /// The message of a failure (default: `failed expression: <expression>`).
    ///
    /// ```
    /// let v = opkit::policy::Validation::new("object.spec.replicas <= 5").message("at most 5 replicas");
    /// # let _ = v;
    /// ```
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.0.message = Some(message.into());
        self
    }

    /// A CEL expression computing the message; the static message is the fallback.
    ///
    /// ```
    /// let v = opkit::policy::Validation::new("object.spec.replicas <= 5")
    ///     .message_expression("'replicas ' + string(object.spec.replicas) + ' > 5'");
    /// # let _ = v;
    /// ```
    pub fn message_expression(mut self, expression: impl Into<String>) -> Self {
        self.0.message_expression = Some(expression.into());
        self
    }

    /// The status reason of a denial: `Invalid` (422, the default), `Forbidden` (403),
    /// `Unauthorized` (401) or `RequestEntityTooLarge` (413).
    ///
    /// ```
    /// let v = opkit::policy::Validation::new("false").reason("Forbidden");
    /// # let _ = v;
    /// ```
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.0.reason = Some(reason.into());
        self
    }
}

impl Policy {
    /// A policy named `name` (cluster-scoped, like its bindings) that fails closed.
    ///
    /// ```
    /// let policy = opkit::policy::Policy::new("replicas");
    /// assert_eq!(policy.name(), "replicas");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            spec: admission::ValidatingAdmissionPolicySpec {
                failure_policy: Some("Fail".into()),
                ..Default::default()
            },
            bindings: Vec::new(),
            params: Vec::new(),
        }
    }

    /// The policy's name.
    ///
    /// ```
    /// assert_eq!(opkit::policy::Policy::new("replicas").name(), "replicas");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies the policy to creates and updates of kind `K` (callable once per kind).
    ///
    /// ```
    /// use opkit::k8s::{Deployment, StatefulSet};
    /// let policy = opkit::policy::Policy::new("replicas").on::<Deployment>().on::<StatefulSet>();
    /// # let _ = policy;
    /// ```
    pub fn on<K: Resource<DynamicType = ()>>(mut self) -> Self {
        let rule = admission::NamedRuleWithOperations {
            api_groups: Some(vec![K::group(&()).into_owned()]),
            api_versions: Some(vec![K::version(&()).into_owned()]),
            resources: Some(vec![K::plural(&()).into_owned()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            ..Default::default()
        };
        self.spec
            .match_constraints
            .get_or_insert_with(Default::default)
            .resource_rules
            .get_or_insert_with(Vec::new)
            .push(rule);
        self
    }

    /// The kind of the policy's parameters: `params` in its expressions.
    ///
    /// ```
    /// let policy = opkit::policy::Policy::new("registries").param_kind::<opkit::k8s::ConfigMap>();
    /// # let _ = policy;
    /// ```
    pub fn param_kind<P: Resource<DynamicType = ()>>(mut self) -> Self {
        self.spec.param_kind = Some(admission::ParamKind {
            api_version: Some(P::api_version(&()).into_owned()),
            kind: Some(P::kind(&()).into_owned()),
        });
        self
    }

    /// A parameter object shipped with the policy (printed by `policies`, installed by the
    /// embedded mode, in the operator's namespace when namespaced and without one); sets the
    /// parameter kind to `P`.
    ///
    /// ```
    /// use opkit::k8s::{ConfigMap, ObjectMeta};
    /// let defaults = ConfigMap {
    ///     metadata: ObjectMeta { name: Some("registries".into()), ..Default::default() },
    ///     ..Default::default()
    /// };
    /// let policy = opkit::policy::Policy::new("registries").params(defaults);
    /// assert!(opkit::manifests::to_yaml(&policy.objects("ops")).unwrap().contains("kind: ConfigMap"));
    /// ```
    pub fn params<P: Object>(mut self, params: P) -> Self {
        self.params.push((typed(&params), is_namespaced::<P>()));
        self.param_kind::<P>()
    }

    /// A condition a request must meet for the policy to apply (a false one skips it).
    ///
    /// ```
    /// let policy = opkit::policy::Policy::new("p").match_condition("not-system", "request.namespace != 'kube-system'");
    /// # let _ = policy;
    /// ```
    pub fn match_condition(
        mut self,
        name: impl Into<String>,
        expression: impl Into<String>,
    ) -> Self {
        self.spec
            .match_conditions
            .get_or_insert_with(Vec::new)
            .push(admission::MatchCondition {
                name: name.into(),
                expression: expression.into(),
            });
        self
    }

    /// A variable the validations read as `variables.<name>`, computed in declaration order.
    ///
    /// ```
    /// let policy = opkit::policy::Policy::new("p").variable("image", "object.spec.image");
    /// # let _ = policy;
    /// ```
    pub fn variable(mut self, name: impl Into<String>, expression: impl Into<String>) -> Self {
        self.spec
            .variables
            .get_or_insert_with(Vec::new)
            .push(admission::Variable {
                name: name.into(),
                expression: expression.into(),
            });
        self
    }

    /// Adds a validation.
    ///
    /// ```
    /// use opkit::policy::{Policy, Validation};
    /// let policy = Policy::new("p").validation(Validation::new("object.spec.replicas <= 5"));
    /// # let _ = policy;
    /// ```
    pub fn validation(mut self, validation: Validation) -> Self {
        self.spec
            .validations
            .get_or_insert_with(Vec::new)
            .push(validation.0);
        self
    }

    /// Accepts requests when an expression fails to evaluate or a binding is misconfigured
    /// (`failurePolicy: Ignore`); the default fails closed.
    ///
    /// ```
    /// let policy = opkit::policy::Policy::new("p").fail_open();
    /// # let _ = policy;
    /// ```
    pub fn fail_open(mut self) -> Self {
        self.spec.failure_policy = Some("Ignore".into());
        self
    }

    /// Adds a binding of this policy.
    ///
    /// ```
    /// use opkit::policy::{Binding, Policy};
    /// let policy = Policy::new("p").binding(Binding::new("p"));
    /// # let _ = policy;
    /// ```
    pub fn binding(mut self, binding: Binding) -> Self {
        self.bindings.push(binding);
        self
    }

    /// The policy, its bindings and its parameters as objects, for an operator deployed to
    /// `namespace` (bindings' parameters "in the operator's namespace" and namespaced
    /// parameter objects go there).
    ///
    /// ```
    /// use opkit::policy::{Binding, Policy};
    /// let objects = Policy::new("p").binding(Binding::new("p")).objects("ops");
    /// assert_eq!(objects[0]["kind"], "ValidatingAdmissionPolicy");
    /// assert_eq!(objects[1]["spec"]["policyName"], "p");
    /// assert_eq!(objects[1]["spec"]["validationActions"][0], "Deny");
    /// ```
    pub fn objects(&self, namespace: &str) -> Vec<serde_json::Value> {
        let policy = admission::ValidatingAdmissionPolicy {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(self.spec.clone()),
            status: None,
        };
        let mut objects = vec![typed(&policy)];
        for binding in &self.bindings {
            objects.push(typed(&binding.object(&self.name, namespace)));
        }
        for (params, namespaced) in &self.params {
            let mut params = params.clone();
            if let Some(metadata) = params.get_mut("metadata").and_then(|m| m.as_object_mut())
                && *namespaced
                && !metadata.contains_key("namespace")
            {
                metadata.insert("namespace".into(), namespace.into());
            }
            objects.push(params);
        }
        objects
    }
}

fn typed<T: Resource<DynamicType = ()> + Serialize>(object: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), T::api_version(&()).into());
        map.insert("kind".into(), T::kind(&()).into());
    }
    value
}

impl Binding {
    /// A binding named `name` that denies requests failing the policy, with no parameters.
    ///
    /// ```
    /// assert_eq!(opkit::policy::Binding::new("b").name(), "b");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            param: None,
            deny_without_param: true,
            actions: vec![Enforcement::Deny],
            namespaces: None,
        }
    }

    /// The binding's name.
    ///
    /// ```
    /// assert_eq!(opkit::policy::Binding::new("b").name(), "b");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameter object `name` in the operator's namespace.
    ///
    /// ```
    /// let b = opkit::policy::Binding::new("b").param("registries");
    /// # let _ = b;
    /// ```
    pub fn param(mut self, name: impl Into<String>) -> Self {
        self.param = Some((name.into(), ParamAt::Operator));
        self
    }

    /// The parameter object `name` in `namespace` (empty for a cluster-scoped kind).
    ///
    /// ```
    /// let b = opkit::policy::Binding::new("b").param_in("platform", "registries");
    /// # let _ = b;
    /// ```
    pub fn param_in(mut self, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        self.param = Some((name.into(), ParamAt::Namespace(namespace.into())));
        self
    }

    /// The parameter object `name` in the namespace of each request: a setting per namespace.
    ///
    /// ```
    /// let b = opkit::policy::Binding::new("b").param_per_namespace("limits");
    /// # let _ = b;
    /// ```
    pub fn param_per_namespace(mut self, name: impl Into<String>) -> Self {
        self.param = Some((name.into(), ParamAt::Request));
        self
    }

    /// Admits requests whose parameter object is missing (`parameterNotFoundAction: Allow`);
    /// by default they are denied.
    ///
    /// ```
    /// let b = opkit::policy::Binding::new("b").param_per_namespace("limits").allow_without_param();
    /// # let _ = b;
    /// ```
    pub fn allow_without_param(mut self) -> Self {
        self.deny_without_param = false;
        self
    }

    /// What a failed validation does (default: deny).
    ///
    /// ```
    /// use opkit::policy::{Binding, Enforcement};
    /// let b = Binding::new("b").enforce(&[Enforcement::Warn, Enforcement::Audit]);
    /// # let _ = b;
    /// ```
    pub fn enforce(mut self, actions: &[Enforcement]) -> Self {
        self.actions = actions.to_vec();
        self
    }

    /// Only requests in namespaces whose labels match `selector`.
    ///
    /// ```
    /// let b = opkit::policy::Binding::new("b").namespaces(opkit::k8s::LabelSelector::default());
    /// # let _ = b;
    /// ```
    pub fn namespaces(mut self, selector: LabelSelector) -> Self {
        self.namespaces = Some(selector);
        self
    }

    fn object(&self, policy: &str, namespace: &str) -> admission::ValidatingAdmissionPolicyBinding {
        let param_ref = self.param.as_ref().map(|(name, at)| admission::ParamRef {
            name: Some(name.clone()),
            namespace: match at {
                ParamAt::Operator => Some(namespace.to_owned()),
                ParamAt::Namespace(ns) if !ns.is_empty() => Some(ns.clone()),
                ParamAt::Namespace(_) | ParamAt::Request => None,
            },
            parameter_not_found_action: Some(
                if self.deny_without_param {
                    "Deny"
                } else {
                    "Allow"
                }
                .into(),
            ),
            selector: None,
        });
        admission::ValidatingAdmissionPolicyBinding {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(admission::ValidatingAdmissionPolicyBindingSpec {
                policy_name: Some(policy.to_owned()),
                param_ref,
                validation_actions: Some(
                    self.actions.iter().map(|a| a.as_str().to_owned()).collect(),
                ),
                match_resources: self.namespaces.clone().map(|selector| {
                    admission::MatchResources {
                        namespace_selector: Some(selector),
                        ..Default::default()
                    }
                }),
            }),
        }
    }
}
