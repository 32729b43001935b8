//! RBAC: the rules an operator needs, and the ServiceAccount, ClusterRole and binding that grant them.
//!
//! Rules are derived from what the operator's controllers do, never from wildcards (see
//! [`Controller::rules`](crate::Controller::rules)): on each primary kind
//! `get,list,watch,patch` (watching, finalizers through merge patches), on `<primary>/status`
//! `get,patch,update`, on `<primary>/finalizers` `update` (needed to set `blockOwnerDeletion` on
//! dependents), on owned kinds `get,list,watch,create,patch,delete` (server-side apply creates
//! through `patch`, which the API server authorizes as `create` too), on watched kinds
//! `get,list,watch`, events `create,patch`, plus the operator's own extra rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Resource;
use kube::api::ObjectMeta;
use serde::Serialize;

/// One RBAC rule: verbs on resources of an API group.
///
/// ```
/// let rule = opkit::Rule::new("", &["secrets"], &["get", "list"]);
/// assert_eq!(rule.verbs, vec!["get", "list"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// API group (`""` for the core group).
    pub group: String,
    /// Resources (plural names, `name/subresource` for subresources).
    pub resources: Vec<String>,
    /// Exact verbs.
    pub verbs: Vec<String>,
    /// The names of the objects the rule is limited to; empty for every object.
    pub resource_names: Vec<String>,
}

impl Rule {
    /// A rule from its parts.
    ///
    /// ```
    /// let rule = opkit::Rule::new("apps", &["deployments"], &["get", "list", "watch"]);
    /// assert_eq!(rule.resources, vec!["deployments"]);
    /// ```
    pub fn new(group: &str, resources: &[&str], verbs: &[&str]) -> Self {
        Self {
            group: group.to_owned(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            resource_names: Vec::new(),
        }
    }

    /// The rule limited to the objects named `names`.
    ///
    /// ```
    /// let rule = opkit::Rule::new("apiextensions.k8s.io", &["customresourcedefinitions"], &["patch"])
    ///     .named(&["webapps.example.com"]);
    /// assert_eq!(rule.resource_names, vec!["webapps.example.com"]);
    /// ```
    #[must_use]
    pub fn named(mut self, names: &[&str]) -> Self {
        self.resource_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// A rule on the plural resource of `K`.
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::Deployment;
    /// let rule = opkit::Rule::for_kind::<Deployment>(&["get"]);
    /// assert_eq!((rule.group.as_str(), rule.resources[0].as_str()), ("apps", "deployments"));
    /// ```
    pub fn for_kind<K: Resource<DynamicType = ()>>(verbs: &[&str]) -> Self {
        Self::new(&K::group(&()), &[&K::plural(&())], verbs)
    }

    fn to_policy_rule(&self) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![self.group.clone()]),
            resources: Some(self.resources.clone()),
            verbs: self.verbs.clone(),
            resource_names: (!self.resource_names.is_empty()).then(|| self.resource_names.clone()),
            ..Default::default()
        }
    }
}

/// Merges rules so each (group, resource, names) appears once, with the union of verbs, sorted.
///
/// ```
/// let merged = opkit::rbac::merge(vec![
///     opkit::Rule::new("", &["secrets"], &["get"]),
///     opkit::Rule::new("", &["secrets"], &["list", "get"]),
/// ]);
/// assert_eq!(merged, vec![opkit::Rule::new("", &["secrets"], &["get", "list"])]);
/// ```
pub fn merge(rules: Vec<Rule>) -> Vec<Rule> {
    type Key = (String, String, Vec<String>);
    let mut by_resource: BTreeMap<Key, std::collections::BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        let mut names = rule.resource_names.clone();
        names.sort();
        names.dedup();
        for resource in &rule.resources {
            by_resource
                .entry((rule.group.clone(), resource.clone(), names.clone()))
                .or_default()
                .extend(rule.verbs.iter().cloned());
        }
    }
    by_resource
        .into_iter()
        .map(|((group, resource, resource_names), verbs)| Rule {
            group,
            resources: vec![resource],
            verbs: verbs.into_iter().collect(),
            resource_names,
        })
        .collect()
}

/// The RBAC objects for an operator named `name` running as service account `name` in
/// `namespace`: a ServiceAccount, a ClusterRole with `rules` and the binding between them.
///
/// ```
/// let objects = opkit::rbac::objects("webapp-operator", "operators", &[
///     opkit::Rule::new("apps", &["deployments"], &["get"]),
/// ]);
/// assert_eq!(objects.len(), 3);
/// ```
pub fn objects(name: &str, namespace: &str, rules: &[Rule]) -> Vec<serde_json::Value> {
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        rules: Some(rules.iter().map(Rule::to_policy_rule).collect()),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        }]),
    };
    [to_value(&account), to_value(&role), to_value(&binding)]
        .into_iter()
        .flatten()
        .collect()
}

/// What serving `/metrics` to authorized callers only needs
/// ([`Manager::secure_metrics_endpoint`](crate::Manager::secure_metrics_endpoint)): `create` on
/// `tokenreviews` and `subjectaccessreviews`, as kubebuilder's `metrics_auth_role.yaml` grants.
///
/// ```
/// let rules = opkit::rbac::metrics_auth();
/// assert_eq!(rules[0].resources, vec!["tokenreviews"]);
/// assert_eq!(rules[1].group, "authorization.k8s.io");
/// ```
pub fn metrics_auth() -> Vec<Rule> {
    vec![
        Rule::new("authentication.k8s.io", &["tokenreviews"], &["create"]),
        Rule::new(
            "authorization.k8s.io",
            &["subjectaccessreviews"],
            &["create"],
        ),
    ]
}

/// The ClusterRole `NAME-metrics-reader`: `get` on the non-resource URL `/metrics`, what a
/// scraper (Prometheus's ServiceAccount) must be bound to before the secured endpoint answers it.
///
/// ```
/// let role = opkit::rbac::metrics_reader("webapp-operator");
/// assert_eq!(role["metadata"]["name"], "webapp-operator-metrics-reader");
/// assert_eq!(role["rules"][0]["nonResourceURLs"][0], "/metrics");
/// ```
pub fn metrics_reader(name: &str) -> serde_json::Value {
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(format!("{name}-metrics-reader")),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            non_resource_urls: Some(vec!["/metrics".to_owned()]),
            verbs: vec!["get".to_owned()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    to_value(&role).unwrap_or_default()
}

/// The Role and RoleBinding `NAME-leader-election` that let the ServiceAccount `name` hold its
/// leader election Lease in `namespace`: a namespaced grant, as kubebuilder's
/// `leader_election_role.yaml`, not a cluster-wide one.
///
/// ```
/// let objects = opkit::rbac::leader_election("webapp-operator", "operators");
/// assert_eq!(objects[0]["kind"], "Role");
/// assert_eq!(objects[1]["subjects"][0]["name"], "webapp-operator");
/// ```
pub fn leader_election(name: &str, namespace: &str) -> Vec<serde_json::Value> {
    let role_name = format!("{name}-leader-election");
    let metadata = ObjectMeta {
        name: Some(role_name.clone()),
        namespace: Some(namespace.to_owned()),
        ..Default::default()
    };
    let role = Role {
        metadata: metadata.clone(),
        rules: Some(vec![
            Rule::new(
                "coordination.k8s.io",
                &["leases"],
                &["get", "create", "update"],
            )
            .to_policy_rule(),
        ]),
    };
    let binding = RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: role_name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        }]),
    };
    [to_value(&role), to_value(&binding)]
        .into_iter()
        .flatten()
        .collect()
}

fn to_value(obj: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(obj).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_dedups_and_sorts() {
        let merged = merge(vec![
            Rule::new("apps", &["deployments"], &["watch", "get"]),
            Rule::new("", &["services", "secrets"], &["get"]),
            Rule::new("apps", &["deployments"], &["get", "create"]),
        ]);
        assert_eq!(
            merged,
            vec![
                Rule::new("", &["secrets"], &["get"]),
                Rule::new("", &["services"], &["get"]),
                Rule::new("apps", &["deployments"], &["create", "get", "watch"]),
            ]
        );
    }

    #[test]
    fn named_rules_stay_apart_from_unnamed_ones() {
        let crds = "customresourcedefinitions";
        let merged = merge(vec![
            Rule::new("apiextensions.k8s.io", &[crds], &["get"]).named(&["b", "a"]),
            Rule::new("apiextensions.k8s.io", &[crds], &["patch"]).named(&["a", "b"]),
            Rule::new("apiextensions.k8s.io", &[crds], &["list"]),
        ]);
        assert_eq!(
            merged,
            vec![
                Rule::new("apiextensions.k8s.io", &[crds], &["list"]),
                Rule::new("apiextensions.k8s.io", &[crds], &["get", "patch"]).named(&["a", "b"]),
            ]
        );
        let role = &objects("op", "ns", &merged)[1];
        assert_eq!(
            role["rules"][1]["resourceNames"],
            serde_json::json!(["a", "b"])
        );
        assert!(role["rules"][0].get("resourceNames").is_none());
    }

    #[test]
    fn rbac_objects_bind_the_role_to_the_account() {
        let objects = objects("op", "ns", &[Rule::new("", &["pods"], &["get"])]);
        assert_eq!(objects[0]["kind"], "ServiceAccount");
        assert_eq!(objects[1]["kind"], "ClusterRole");
        assert_eq!(objects[1]["rules"][0]["verbs"], serde_json::json!(["get"]));
        assert_eq!(objects[2]["roleRef"]["name"], "op");
        assert_eq!(objects[2]["subjects"][0]["namespace"], "ns");
    }
}
