//! What RBAC's own storage enforces: nobody grants permissions they do not
//! hold (writing a role needs its rules or the `escalate` verb; writing a
//! binding needs the referenced role's rules or the `bind` verb), and
//! ClusterRoles with an `aggregationRule` carry the rules of the roles their
//! selectors pick, kept current as those change (the aggregation controller).

use super::{CLUSTER_ROLES, GROUP, Rule, referenced_rules, rules_for, rules_of};
use crate::authn::{MASTERS, UserInfo};
use crate::authz::{self, Attributes, Decision};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::LabelSelector;
use crate::store::{State, Txn, meta_str};
use serde_json::{Value, json};

/// Refuses a write of a role or binding by `user` that would grant more than `user` holds.
pub(crate) fn admit(
    state: &State,
    user: &UserInfo,
    info: &ResourceInfo,
    obj: &Value,
) -> Result<(), ApiError> {
    if info.group != GROUP || user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    let name = meta_str(obj, "name");
    let namespace = meta_str(obj, "namespace");
    let forbidden = |why: &str| ApiError::forbidden_for(GROUP, &info.plural, name, why);
    let may = |verb: &str, resource: &str, namespace: &str, name: &str| {
        let attributes = Attributes::resource(verb, GROUP, "", resource, "", namespace, name);
        matches!(
            authz::authorize(state, user, &attributes),
            Decision::Allow(_)
        )
    };
    match info.kind.as_str() {
        "Role" | "ClusterRole" => {
            if info.kind == "ClusterRole"
                && obj.get("aggregationRule").is_some_and(|a| !a.is_null())
                && !may("escalate", &info.plural, "", name)
            {
                return Err(forbidden(
                    "must have cluster-admin privileges to write an aggregated cluster role",
                ));
            }
            if may("escalate", &info.plural, namespace, name) {
                return Ok(());
            }
            confirm_no_escalation(state, user, namespace, &rules_of(obj)).map_err(|e| forbidden(&e))
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_name = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_resource = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if may("bind", role_resource, namespace, role_name) {
                return Ok(());
            }
            let role_ref = super::RoleRef {
                kind: role_kind.to_string(),
                name: role_name.to_string(),
            };
            let rules = referenced_rules(state, &role_ref, namespace).map_err(|e| forbidden(&e))?;
            confirm_no_escalation(state, user, namespace, &rules).map_err(|e| forbidden(&e))
        }
        _ => Ok(()),
    }
}

/// `Err(why)` unless `user`'s rules in `namespace` cover every one of `rules`.
fn confirm_no_escalation(
    state: &State,
    user: &UserInfo,
    namespace: &str,
    rules: &[Rule],
) -> Result<(), String> {
    let (owned, errors) = rules_for(state, user, namespace);
    let mut missing: Vec<String> = rules
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owned.iter().any(|o| covers(o, sub)))
        .map(|sub| compact(&sub))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut message = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        missing.join("\n")
    );
    if !errors.is_empty() {
        message.push_str(&format!("; resolution errors: [{}]", errors.join(", ")));
    }
    Err(message)
}

/// One rule per group, resource, verb and name (or URL and verb).
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let one = |names: Vec<String>| Rule {
                    verbs: vec![verb.clone()],
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    resource_names: names,
                    non_resource_urls: Vec::new(),
                };
                if rule.resource_names.is_empty() {
                    out.push(one(Vec::new()));
                } else {
                    out.extend(rule.resource_names.iter().map(|n| one(vec![n.clone()])));
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(Rule {
                verbs: vec![verb.clone()],
                non_resource_urls: vec![url.clone()],
                ..Rule::default()
            });
        }
    }
    out
}

/// Whether `owner` grants everything `sub` does.
fn covers(owner: &Rule, sub: &Rule) -> bool {
    let has_all = |set: &[String], wanted: &[String]| {
        set.iter().any(|s| s == "*") || wanted.iter().all(|w| set.contains(w))
    };
    let resources = owner.resources.iter().any(|r| r == "*")
        || sub.resources.iter().all(|path| {
            owner.resources.contains(path)
                || path.split_once('/').is_some_and(|(_, subresource)| {
                    owner.resources.contains(&format!("*/{subresource}"))
                })
        });
    let urls = sub.non_resource_urls.iter().all(|path| {
        owner.non_resource_urls.iter().any(|o| {
            o == path
                || o.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        })
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty()
            || sub
                .resource_names
                .iter()
                .all(|n| owner.resource_names.contains(n))
    };
    has_all(&owner.verbs, &sub.verbs)
        && has_all(&owner.api_groups, &sub.api_groups)
        && resources
        && names
        && urls
}

/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`, as rbac's `CompactString`.
fn compact(rule: &Rule) -> String {
    let quoted = |values: &[String]| {
        let parts: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("[{}]", parts.join(" "))
    };
    let mut parts = Vec::new();
    for (label, values) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ] {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", quoted(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// Recomputes the rules of every ClusterRole with an `aggregationRule` from
/// the ClusterRoles its selectors pick, storing those that changed, until
/// nothing changes (`admin` aggregates `edit`, which aggregates `view`).
pub(crate) fn reaggregate(txn: &mut Txn<'_>) {
    let limit = txn.state().list(CLUSTER_ROLES, None, None).count();
    for _ in 0..=limit {
        if !aggregate_once(txn) {
            return;
        }
    }
}

/// One pass of [`reaggregate`]; whether any role changed.
fn aggregate_once(txn: &mut Txn<'_>) -> bool {
    let mut changed = false;
    let roles: Vec<Value> = txn
        .state()
        .list(CLUSTER_ROLES, None, None)
        .map(|(_, stored)| stored.value())
        .collect();
    for role in roles
        .iter()
        .filter(|r| r.get("aggregationRule").is_some_and(|a| !a.is_null()))
    {
        let name = meta_str(role, "name");
        let selectors: Vec<LabelSelector> = role
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| LabelSelector::from_object(s).ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut rules: Vec<Value> = Vec::new();
        for selector in &selectors {
            for other in &roles {
                if meta_str(other, "name") == name
                    || !selector
                        .matches(other.pointer("/metadata/labels").and_then(Value::as_object))
                {
                    continue;
                }
                for rule in other
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
        }
        if role.get("rules").cloned().unwrap_or(json!([])) != json!(rules) {
            let mut updated = role.clone();
            updated["rules"] = json!(rules);
            txn.put(CLUSTER_ROLES, updated);
            changed = true;
        }
    }
    changed
}

/// Whether a write to `storage` may change what aggregated ClusterRoles hold.
pub(crate) fn affects_aggregation(storage: &str) -> bool {
    storage == CLUSTER_ROLES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn owners_cover_subresources_names_and_url_prefixes() {
        let owner = rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/log"]}),
        );
        let wanted = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "pods/log"], "resourceNames": ["a"]}),
        );
        assert!(breakdown(&wanted).iter().all(|sub| covers(&owner, sub)));
        let more = rule(json!({"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]}));
        let missing: Vec<String> = breakdown(&more)
            .iter()
            .filter(|s| !covers(&owner, s))
            .map(compact)
            .collect();
        assert_eq!(
            missing,
            [r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#]
        );
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}));
        let wanted = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]}));
        assert!(covers(&urls, &wanted));
        let named_owner = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
        );
        let all_pods = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(!covers(&named_owner, &all_pods));
    }
}
