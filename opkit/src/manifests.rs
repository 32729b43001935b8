//! Manifests an operator ships: its CRDs and least-privilege RBAC.
//!
//! RBAC is derived from what the operator does, never from wildcards: on the primary
//! `get,list,watch,patch` (watching, finalizers through JSON patch), on `<primary>/status`
//! `get,patch,update`, on `<primary>/finalizers` `update` (needed to set `blockOwnerDeletion` on
//! dependents), on owned kinds `get,list,watch,create,patch,delete` (server-side apply creates
//! through `patch`, which the API server authorizes as `create` too), on watched kinds
//! `get,list,watch`, events `create,patch`, plus the operator's own `rbac(...)` rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ObjectMeta;
use kube::{CustomResourceExt, Resource};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::operator::{Operator, Triggers};

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
        }
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
            ..Default::default()
        }
    }
}

/// The rules operator `K` needs, merged so each (group, resource) appears once with sorted verbs.
///
/// ```
/// use opkit::prelude::*;
/// #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, status = "SiteStatus")]
/// #[operator(owns(Service), finalizer = "example.com/site")]
/// pub struct SiteSpec { pub port: i32 }
/// #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
/// pub struct SiteStatus {}
///
/// let rules = opkit::manifests::rules::<Site>();
/// let services = rules.iter().find(|r| r.resources == ["services"]).unwrap();
/// assert_eq!(services.verbs, ["create", "delete", "get", "list", "patch", "watch"]);
/// assert!(rules.iter().all(|r| !r.verbs.contains(&"*".to_string())));
/// ```
pub fn rules<K: Operator>() -> Vec<Rule> {
    let descriptor = K::descriptor();
    let group = K::group(&()).into_owned();
    let plural = K::plural(&()).into_owned();
    let mut rules = vec![
        Rule::new(&group, &[&plural], &["get", "list", "watch", "patch"]),
        Rule::new(
            &group,
            &[&format!("{plural}/status")],
            &["get", "patch", "update"],
        ),
        Rule::new("events.k8s.io", &["events"], &["create", "patch"]),
    ];
    if descriptor.finalizer.is_some() || !Triggers::<K>::of().kinds().is_empty() {
        rules.push(Rule::new(
            &group,
            &[&format!("{plural}/finalizers")],
            &["update"],
        ));
    }
    rules.extend(Triggers::<K>::of().rules());
    rules.extend(descriptor.rbac);
    merge(rules)
}

/// Merges rules so each (group, resource) appears once, with the union of verbs, sorted.
///
/// ```
/// let merged = opkit::manifests::merge(vec![
///     opkit::Rule::new("", &["secrets"], &["get"]),
///     opkit::Rule::new("", &["secrets"], &["list", "get"]),
/// ]);
/// assert_eq!(merged, vec![opkit::Rule::new("", &["secrets"], &["get", "list"])]);
/// ```
pub fn merge(rules: Vec<Rule>) -> Vec<Rule> {
    let mut by_resource: BTreeMap<(String, String), std::collections::BTreeSet<String>> =
        BTreeMap::new();
    for rule in rules {
        for resource in &rule.resources {
            by_resource
                .entry((rule.group.clone(), resource.clone()))
                .or_default()
                .extend(rule.verbs.iter().cloned());
        }
    }
    by_resource
        .into_iter()
        .map(|((group, resource), verbs)| Rule {
            group,
            resources: vec![resource],
            verbs: verbs.into_iter().collect(),
        })
        .collect()
}

/// The CRD of `K`.
///
/// ```
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
/// # pub struct SiteSpec { pub port: i32 }
/// assert_eq!(opkit::manifests::crd::<Site>().metadata.name.as_deref(), Some("sites.example.com"));
/// ```
pub fn crd<K: CustomResourceExt>() -> CustomResourceDefinition {
    K::crd()
}

/// The RBAC objects for an operator named `name` running as service account `name` in
/// `namespace`: a ServiceAccount, a ClusterRole with `rules` and the binding between them.
///
/// ```
/// let objects = opkit::manifests::rbac_objects("webapp-operator", "operators", &[
///     opkit::Rule::new("apps", &["deployments"], &["get"]),
/// ]);
/// assert_eq!(objects.len(), 3);
/// ```
pub fn rbac_objects(name: &str, namespace: &str, rules: &[Rule]) -> Vec<serde_json::Value> {
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

fn to_value(obj: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(obj).ok()
}

/// Renders objects as a multi-document YAML stream.
///
/// ```
/// let yaml = opkit::manifests::to_yaml(&[serde_json::json!({"kind": "A"}), serde_json::json!({"kind": "B"})]).unwrap();
/// assert_eq!(yaml, "kind: A\n---\nkind: B\n");
/// ```
pub fn to_yaml<T: Serialize>(objects: &[T]) -> Result<String> {
    let mut docs = Vec::new();
    for obj in objects {
        docs.push(
            serde_yaml_ng::to_string(obj)
                .map_err(|e| Error::Config(format!("rendering YAML: {e}")))?,
        );
    }
    Ok(docs.join("---\n"))
}

/// Applies every document of a YAML stream with server-side apply under `field_manager`;
/// namespaced objects without a namespace go to `default`. Returns `Kind namespace/name` of each.
///
/// ```no_run
/// # async fn f(client: kube::Client) -> opkit::Result<()> {
/// let applied = opkit::manifests::apply_yaml(&client, "demo", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").await?;
/// assert_eq!(applied, vec!["ConfigMap default/x".to_string()]);
/// # Ok(()) }
/// ```
pub async fn apply_yaml(
    client: &kube::Client,
    field_manager: &str,
    yaml: &str,
) -> Result<Vec<String>> {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::discovery::{Scope, pinned_kind};
    use serde::Deserialize;

    // Parse everything first: the YAML parser must not be held across an await.
    let mut values = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| Error::Config(format!("reading YAML: {e}")))?;
        if !value.is_null() {
            values.push(value);
        }
    }
    let mut applied = Vec::new();
    for value in values {
        let object: DynamicObject = serde_json::from_value(value.clone())
            .map_err(|e| Error::serialization("reading a manifest", e))?;
        let types = object
            .types
            .clone()
            .ok_or(Error::MissingField("apiVersion and kind"))?;
        let gvk = kube::core::GroupVersionKind::try_from(&types)
            .map_err(|e| Error::Config(format!("apiVersion {:?}: {e}", types.api_version)))?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or(Error::MissingField("metadata.name"))?;
        let (resource, capabilities) = pinned_kind(client, &gvk)
            .await
            .map_err(|e| Error::kube(format!("finding the API of {}", gvk.kind), e))?;
        let (api, display) = match capabilities.scope {
            Scope::Namespaced => {
                let ns = object
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned());
                let display = format!("{} {ns}/{name}", gvk.kind);
                (
                    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource),
                    display,
                )
            }
            Scope::Cluster => (
                Api::<DynamicObject>::all_with(client.clone(), &resource),
                format!("{} {name}", gvk.kind),
            ),
        };
        api.patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(|e| Error::kube(format!("applying {display}"), e))?;
        applied.push(display);
    }
    Ok(applied)
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
    fn rbac_objects_bind_the_role_to_the_account() {
        let objects = rbac_objects("op", "ns", &[Rule::new("", &["pods"], &["get"])]);
        assert_eq!(objects[0]["kind"], "ServiceAccount");
        assert_eq!(objects[1]["kind"], "ClusterRole");
        assert_eq!(objects[1]["rules"][0]["verbs"], serde_json::json!(["get"]));
        assert_eq!(objects[2]["roleRef"]["name"], "op");
        assert_eq!(objects[2]["subjects"][0]["namespace"], "ns");
    }
}
