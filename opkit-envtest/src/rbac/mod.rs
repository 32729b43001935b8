//! The RBAC authorizer, as kube-apiserver's: ClusterRoleBindings, then the
//! RoleBindings of the request's namespace, whose subjects (users, groups,
//! ServiceAccounts) include the user, grant the rules of the (Cluster)Role
//! they reference; a rule allows a request when its verbs, API groups,
//! resources (`*`, `resource/subresource`, `*/subresource`), resource names or
//! non-resource URLs (`/path`, `/prefix*`) match. A binding to a role that
//! does not exist contributes the `RBAC: ... not found` reason of the 403.

mod escalation;
mod policy;

pub(crate) use escalation::{admit, affects_aggregation, reaggregate};
pub(crate) use policy::bootstrap;

use crate::authn::{SERVICE_ACCOUNT_PREFIX, UserInfo};
use crate::authz::{Attributes, Decision};
use crate::store::State;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";
pub(crate) const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
pub(crate) const ROLES: &str = "rbac.authorization.k8s.io/roles";
const CLUSTER_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/clusterrolebindings";
const ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/rolebindings";

/// One `PolicyRule`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    fn to_json(&self) -> Value {
        let mut out = json!({"verbs": self.verbs});
        for (field, values) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !values.is_empty() {
                out[field] = json!(values);
            }
        }
        out
    }

    /// Whether this rule allows the request.
    fn allows(&self, a: &Attributes) -> bool {
        let has = |set: &[String], value: &str| set.iter().any(|s| s == "*" || s == value);
        if !has(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || *url == a.path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| a.path.starts_with(prefix))
            });
        }
        if !has(&self.api_groups, &a.group) {
            return false;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(a.subresource.as_str()))
        });
        resource
            && (self.resource_names.is_empty()
                || (!a.name.is_empty() && self.resource_names.contains(&a.name)))
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RoleRef {
    kind: String,
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Binding {
    metadata: Metadata,
    subjects: Vec<Subject>,
    role_ref: RoleRef,
}

/// Whether `subject` of a binding in `namespace` ("" for ClusterRoleBindings) names `user`.
fn applies(subject: &Subject, user: &UserInfo, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.username == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            !ns.is_empty()
                && user.username == format!("{SERVICE_ACCOUNT_PREFIX}{ns}:{}", subject.name)
        }
        _ => false,
    }
}

fn describe_subject(subject: &Subject, namespace: &str) -> String {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            format!("ServiceAccount \"{}/{ns}\"", subject.name)
        }
        kind => format!("{kind} \"{}\"", subject.name),
    }
}

fn parse<T: serde::de::DeserializeOwned + Default>(stored: &crate::store::Stored) -> T {
    serde_json::from_slice(stored.json()).unwrap_or_default()
}

/// The rules of a role, parsed.
pub(crate) fn rules_of(role: &Value) -> Vec<Rule> {
    role.get("rules")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

/// The rules of the role a binding in `namespace` references, or the error a real server reports.
fn referenced_rules(
    state: &State,
    role_ref: &RoleRef,
    namespace: &str,
) -> Result<Vec<Rule>, String> {
    let (storage, ns, kind) = match role_ref.kind.as_str() {
        "Role" => (ROLES, namespace, "role"),
        _ => (CLUSTER_ROLES, "", "clusterrole"),
    };
    state
        .get(storage, ns, &role_ref.name)
        .map(|role| rules_of(&role))
        .ok_or_else(|| format!("{kind}.{GROUP} \"{}\" not found", role_ref.name))
}

/// The grants that apply to `user` in `namespace` (cluster-wide ones and, for
/// a namespace, its RoleBindings), each with its description; `visit` stops
/// the walk by returning `true`. Returns the resolution errors met.
fn visit(
    state: &State,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&str, &Rule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let cluster = state.list(CLUSTER_ROLE_BINDINGS, None, None);
    let local: Box<dyn Iterator<Item = _>> = if namespace.is_empty() {
        Box::new(std::iter::empty())
    } else {
        state.list(ROLE_BINDINGS, Some(namespace), None)
    };
    for (_, stored) in cluster.chain(local) {
        let binding: Binding = parse(stored);
        let binding_ns = binding.metadata.namespace.as_str();
        let Some(subject) = binding
            .subjects
            .iter()
            .find(|s| applies(s, user, binding_ns))
        else {
            continue;
        };
        let rules = match referenced_rules(state, &binding.role_ref, binding_ns) {
            Ok(rules) => rules,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let source = if binding_ns.is_empty() {
            format!(
                "ClusterRoleBinding \"{}\" of {} \"{}\" to {}",
                binding.metadata.name,
                binding.role_ref.kind,
                binding.role_ref.name,
                describe_subject(subject, "")
            )
        } else {
            format!(
                "RoleBinding \"{}/{binding_ns}\" of {} \"{}\" to {}",
                binding.metadata.name,
                binding.role_ref.kind,
                binding.role_ref.name,
                describe_subject(subject, binding_ns)
            )
        };
        for rule in &rules {
            if visit(&source, rule) {
                return errors;
            }
        }
    }
    errors
}

/// RBAC's decision on a request.
pub(crate) fn authorize(state: &State, user: &UserInfo, attributes: &Attributes) -> Decision {
    let mut allowed = None;
    let errors = visit(state, user, &attributes.namespace, |source, rule| {
        if rule.allows(attributes) {
            allowed = Some(format!("RBAC: allowed by {source}"));
            true
        } else {
            false
        }
    });
    match allowed {
        Some(reason) => Decision::Allow(reason),
        None if errors.is_empty() => Decision::Deny(String::new()),
        None => Decision::Deny(format!("RBAC: {}", aggregate(&errors))),
    }
}

/// Errors joined as apimachinery's aggregate prints them.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Every rule that applies to `user` in `namespace`, and the resolution errors.
pub(crate) fn rules_for(
    state: &State,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let errors = visit(state, user, namespace, |_, rule| {
        rules.push(rule.clone());
        false
    });
    (rules, errors)
}

/// The `status` of a SelfSubjectRulesReview: what `user` may do in `namespace`.
pub(crate) fn rules_review(state: &State, user: &UserInfo, namespace: &str) -> Value {
    let (rules, errors) = rules_for(state, user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if !rule.resources.is_empty() {
            let resource_rule = Rule {
                non_resource_urls: Vec::new(),
                ..rule.clone()
            };
            resource_rules.push(resource_rule.to_json());
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(aggregate(&errors));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn rules_match_resources_subresources_and_names() {
        let get_pods = Attributes::resource("get", "", "v1", "pods", "", "ns", "a");
        let logs = Attributes::resource("get", "", "v1", "pods", "log", "ns", "a");
        let r = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(r.allows(&get_pods));
        assert!(!r.allows(&logs));
        let any_log = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/log"]}));
        assert!(any_log.allows(&logs) && !any_log.allows(&get_pods));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["b"]}),
        );
        assert!(!named.allows(&get_pods));
        let list = Attributes::resource("list", "", "v1", "pods", "", "ns", "");
        let named_list = rule(
            json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["b"]}),
        );
        assert!(!named_list.allows(&list));
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(urls.allows(&Attributes::non_resource("get", "/apis/apps/v1")));
        assert!(urls.allows(&Attributes::non_resource("get", "/healthz")));
        assert!(!urls.allows(&Attributes::non_resource("get", "/healthz/etcd")));
        assert!(!urls.allows(&Attributes::non_resource("post", "/healthz")));
    }

    #[test]
    fn subjects_name_users_groups_and_service_accounts() {
        let sa = UserInfo::service_account("ops", "robot", "u");
        let subject = |kind: &str, name: &str, ns: &str| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.into(),
        };
        assert!(applies(&subject("ServiceAccount", "robot", ""), &sa, "ops"));
        assert!(!applies(&subject("ServiceAccount", "robot", ""), &sa, ""));
        assert!(applies(
            &subject("ServiceAccount", "robot", "ops"),
            &sa,
            "x"
        ));
        assert!(applies(
            &subject("Group", "system:serviceaccounts:ops", ""),
            &sa,
            ""
        ));
        assert!(!applies(&subject("User", "robot", ""), &sa, ""));
    }
}
