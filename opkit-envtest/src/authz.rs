//! Authorization as kube-apiserver does it: every request becomes
//! attributes (user, verb, group, resource, subresource, namespace, name, or
//! a non-resource path); `system:masters` may do anything, everyone else what
//! RBAC allows. Refusals are 403s worded as the real server words them; the
//! access reviews (`SelfSubjectAccessReview`, `SubjectAccessReview`,
//! `LocalSubjectAccessReview`, `SelfSubjectRulesReview`) answer the same
//! question for `kubectl auth can-i`.

use crate::authn::{MASTERS, UserInfo};
use crate::error::ApiError;
use crate::meta::strings;
use crate::rbac;
use crate::store::State;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a request asks to do, as `authorizer.Attributes` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: String,
    pub resource_request: bool,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The path of a non-resource request.
    pub path: String,
}

impl Attributes {
    /// A request on a resource.
    pub fn resource(
        verb: &str,
        group: &str,
        version: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            verb: verb.to_string(),
            resource_request: true,
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    /// A request on a path that is not a resource (`/version`, `/api`, `/metrics`).
    pub fn non_resource(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.to_string(),
            path: path.to_string(),
            ..Attributes::default()
        }
    }

    /// The check behind one impersonation header.
    pub fn impersonate(
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        Attributes::resource(
            "impersonate",
            group,
            "",
            resource,
            subresource,
            namespace,
            name,
        )
    }

    /// The attributes of a review's `resourceAttributes` or `nonResourceAttributes`.
    fn from_review(spec: &Value) -> Attributes {
        let text = |v: &Value, field: &str| {
            v.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match spec.get("resourceAttributes").filter(|v| v.is_object()) {
            Some(r) => Attributes {
                verb: text(r, "verb"),
                resource_request: true,
                group: text(r, "group"),
                version: text(r, "version"),
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
                path: String::new(),
            },
            None => {
                let n = spec
                    .get("nonResourceAttributes")
                    .cloned()
                    .unwrap_or_default();
                Attributes::non_resource(&text(&n, "verb"), &text(&n, "path"))
            }
        }
    }
}

/// What an authorizer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed, with the reason (`RBAC: allowed by ...`).
    Allow(String),
    /// Not allowed; the reason (`RBAC: ...` errors met on the way) may be empty.
    Deny(String),
}

/// Whether `user` may do what `attributes` describe.
pub(crate) fn authorize(state: &State, user: &UserInfo, attributes: &Attributes) -> Decision {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Decision::Allow(String::new());
    }
    rbac::authorize(state, user, attributes)
}

/// The 403 for a refused request: `pods "x" is forbidden: User "jane" cannot get resource "pods"
/// in API group "" in the namespace "default"`, with the authorizer's reason appended.
pub(crate) fn forbidden(user: &UserInfo, attributes: &Attributes, reason: &str) -> ApiError {
    let mut message = if attributes.resource_request {
        let mut resource = attributes.resource.clone();
        if !attributes.subresource.is_empty() {
            resource = format!("{resource}/{}", attributes.subresource);
        }
        let scope = if attributes.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", attributes.namespace)
        };
        format!(
            "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            user.username, attributes.verb, attributes.group
        )
    } else {
        format!(
            "User \"{}\" cannot {} path \"{}\"",
            user.username, attributes.verb, attributes.path
        )
    };
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let resource = if attributes.resource_request {
        attributes.resource.as_str()
    } else {
        ""
    };
    ApiError::forbidden_for(&attributes.group, resource, &attributes.name, &message)
}

/// `status` of an access review for `user` asking about `attributes`.
fn review_status(state: &State, user: &UserInfo, attributes: &Attributes) -> Value {
    match authorize(state, user, attributes) {
        Decision::Allow(reason) if reason.is_empty() => json!({"allowed": true}),
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    }
}

/// The access reviews of `authorization.k8s.io/v1`, answered for `requester`
/// (the user the request acts as) in `namespace` (for `LocalSubjectAccessReview`).
pub(crate) fn review(
    state: &State,
    requester: &UserInfo,
    kind: &str,
    namespace: &str,
    mut body: Value,
) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let has_resource = spec.get("resourceAttributes").is_some_and(Value::is_object);
    let has_non_resource = spec
        .get("nonResourceAttributes")
        .is_some_and(Value::is_object);
    let invalid = |message: &str| {
        ApiError::invalid_kind(
            &format!("{kind}.authorization.k8s.io"),
            "",
            "spec.resourceAttributes",
            &json!(""),
            message,
        )
    };
    if kind == "SelfSubjectRulesReview" {
        let ns = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
        body["status"] = rbac::rules_review(state, requester, ns);
        return Ok(body);
    }
    if has_resource == has_non_resource {
        return Err(invalid(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let mut attributes = Attributes::from_review(&spec);
    let subject = match kind {
        "SelfSubjectAccessReview" => requester.clone(),
        _ => {
            let text = |field: &str| {
                spec.get(field)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let groups: Vec<String> = strings(spec.get("groups"));
            let extra: BTreeMap<String, Vec<String>> = spec
                .get("extra")
                .and_then(|e| serde_json::from_value(e.clone()).ok())
                .unwrap_or_default();
            if text("user").is_empty() && groups.is_empty() {
                return Err(ApiError::invalid_kind(
                    &format!("{kind}.authorization.k8s.io"),
                    "",
                    "spec.user",
                    &json!(""),
                    "at least one of user or group must be specified",
                ));
            }
            UserInfo {
                username: text("user"),
                uid: text("uid"),
                groups,
                extra,
            }
        }
    };
    if kind == "LocalSubjectAccessReview" {
        if attributes.resource_request && attributes.namespace != namespace {
            return Err(ApiError::invalid_kind(
                "LocalSubjectAccessReview.authorization.k8s.io",
                "",
                "spec.resourceAttributes.namespace",
                &json!(attributes.namespace),
                "must match metadata.namespace",
            ));
        }
        attributes.namespace = namespace.to_string();
    }
    body["status"] = review_status(state, &subject, &attributes);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_match_the_apiserver() {
        let user = UserInfo::new("jane", vec![]);
        let pods = Attributes::resource("list", "", "v1", "pods", "", "default", "");
        assert_eq!(
            forbidden(&user, &pods, "").message,
            r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let scale = Attributes::resource("patch", "apps", "v1", "deployments", "scale", "", "web");
        assert_eq!(
            forbidden(
                &user,
                &scale,
                "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
            )
            .message,
            r#"deployments.apps "web" is forbidden: User "jane" cannot patch resource "deployments/scale" in API group "apps" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#
        );
        let path = Attributes::non_resource("get", "/api");
        let denied = forbidden(&UserInfo::anonymous(), &path, "");
        assert_eq!(
            denied.message,
            r#"forbidden: User "system:anonymous" cannot get path "/api""#
        );
        assert_eq!(denied.code, 403);
    }
}
