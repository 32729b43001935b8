//! Authentication as kube-apiserver does it: ServiceAccount bearer tokens,
//! then client certificates, else the anonymous user; then impersonation
//! (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
//! `Impersonate-Extra-*`, what `kubectl --as` sends), allowed only to users
//! the authorizer lets `impersonate`.

use crate::authz::{Attributes, Decision};
use crate::error::ApiError;
use crate::store::State;
use crate::tokens::TokenIssuer;
use http::HeaderMap;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Every authenticated user is in this group.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The anonymous user's group.
pub(crate) const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group whose members may do anything.
pub(crate) const MASTERS: &str = "system:masters";
/// The user of requests without credentials.
pub(crate) const ANONYMOUS: &str = "system:anonymous";
/// The prefix of ServiceAccount user names: `system:serviceaccount:<namespace>:<name>`.
pub(crate) const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who a request comes from, as `user.Info` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// An authenticated user: `groups` plus `system:authenticated`.
    pub fn new(username: impl Into<String>, groups: Vec<String>) -> UserInfo {
        let mut user = UserInfo {
            username: username.into(),
            groups,
            ..UserInfo::default()
        };
        user.add_authenticated();
        user
    }

    /// The user of requests carrying no credentials.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS.to_string(),
            groups: vec![UNAUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    /// The ServiceAccount user `system:serviceaccount:<namespace>:<name>` in its groups.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        let mut user = UserInfo::new(
            service_account_username(namespace, name),
            service_account_groups(namespace),
        );
        user.uid = uid.to_string();
        user
    }

    fn add_authenticated(&mut self) {
        let marked = self
            .groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED);
        if !marked {
            self.groups.push(AUTHENTICATED.to_string());
        }
    }

    /// The `userInfo` of reviews (`authentication.k8s.io/v1` `UserInfo`).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("username".into(), json!(self.username));
        if !self.uid.is_empty() {
            out.insert("uid".into(), json!(self.uid));
        }
        out.insert("groups".into(), json!(self.groups));
        if !self.extra.is_empty() {
            out.insert("extra".into(), json!(self.extra));
        }
        Value::Object(out)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub(crate) fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// The groups of every ServiceAccount of `namespace`.
pub(crate) fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}

/// What the connection itself says about the client.
#[derive(Clone, Debug)]
pub(crate) enum Peer {
    /// Plain HTTP, which the server serves only when asked to: like the
    /// insecure port of old, requests without credentials act as [`TestEnvBuilder`]'s
    /// admin.
    ///
    /// [`TestEnvBuilder`]: crate::TestEnvBuilder
    Plain,
    /// TLS, with the user of the client certificate the CA signed, if any.
    Tls(Option<UserInfo>),
}

/// The user of plain-HTTP requests without credentials, and of the default client's certificate.
pub(crate) const ADMIN: &str = "admin";

fn admin() -> UserInfo {
    UserInfo::new(ADMIN, vec![MASTERS.to_string()])
}

/// The user behind a request, before impersonation, as kube-apiserver's
/// authenticators decide in turn: a client certificate, then a bearer token
/// (401 when it does not authenticate), else anonymous.
pub(crate) fn authenticate(
    peer: &Peer,
    headers: &HeaderMap,
    tokens: &TokenIssuer,
    state: &State,
) -> Result<UserInfo, ApiError> {
    if let Peer::Tls(Some(user)) = peer {
        return Ok(user.clone());
    }
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty());
    if let Some(token) = bearer {
        return match tokens.authenticate(state, token, &[]) {
            Ok((user, _)) => Ok(user),
            Err(error) => {
                tracing::debug!(%error, "bearer token refused");
                Err(ApiError::unauthorized())
            }
        };
    }
    Ok(match peer {
        Peer::Plain => admin(),
        Peer::Tls(_) => UserInfo::anonymous(),
    })
}

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// The user a request acts as: `user` itself, or the one its impersonation
/// headers name once the authorizer lets `user` impersonate each part of it
/// (403 otherwise, worded as kube-apiserver words it).
pub(crate) fn impersonate(
    user: UserInfo,
    headers: &HeaderMap,
    authorize: impl Fn(&UserInfo, &Attributes) -> Decision,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let username = values(IMPERSONATE_USER).into_iter().next();
    let groups = values(IMPERSONATE_GROUP);
    let uid = values(IMPERSONATE_UID).into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(IMPERSONATE_EXTRA)
            && let Ok(value) = value.to_str()
        {
            extra
                // `Impersonate-Extra-` keys are percent-encoded (RFC 3986) so they fit a header name.
                .entry(crate::http::percent_decode(key))
                .or_default()
                .push(value.to_string());
        }
    }
    let Some(username) = username else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::internal(format!(
            "requested {} without impersonating a user",
            describe_requests(&groups, uid.as_deref(), &extra)
        )));
    };
    let mut checks = Vec::new();
    let service_account = username
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((namespace, name)) => checks.push(Attributes::impersonate(
            "",
            "serviceaccounts",
            "",
            namespace,
            name,
        )),
        None => checks.push(Attributes::impersonate("", "users", "", "", &username)),
    }
    for group in &groups {
        checks.push(Attributes::impersonate("", "groups", "", "", group));
    }
    if let Some(uid) = &uid {
        checks.push(Attributes::impersonate(
            "authentication.k8s.io",
            "uids",
            "",
            "",
            uid,
        ));
    }
    for (key, values) in &extra {
        for value in values {
            checks.push(Attributes::impersonate(
                "authentication.k8s.io",
                "userextras",
                key,
                "",
                value,
            ));
        }
    }
    for check in &checks {
        if let Decision::Deny(reason) = authorize(&user, check) {
            return Err(crate::authz::forbidden(&user, check, &reason));
        }
    }
    let mut acting = UserInfo {
        username: username.clone(),
        uid: uid.unwrap_or_default(),
        groups: groups.clone(),
        extra,
    };
    if let Some((namespace, _)) = service_account
        && groups.is_empty()
    {
        acting.groups = service_account_groups(namespace);
    }
    if acting.username == ANONYMOUS {
        if !acting.groups.iter().any(|g| g == UNAUTHENTICATED) {
            acting.groups.push(UNAUTHENTICATED.to_string());
        }
    } else {
        acting.add_authenticated();
    }
    Ok(acting)
}

fn describe_requests(
    groups: &[String],
    uid: Option<&str>,
    extra: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut parts: Vec<String> = groups.iter().map(|g| format!("{{Group {g}}}")).collect();
    if let Some(uid) = uid {
        parts.push(format!("{{UID {uid}}}"));
    }
    for (key, values) in extra {
        for value in values {
            parts.push(format!("{{UserExtra {key}={value}}}"));
        }
    }
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_join_the_authenticated_group_once() {
        let user = UserInfo::new("jane", vec![AUTHENTICATED.into(), "dev".into()]);
        assert_eq!(user.groups, [AUTHENTICATED, "dev"]);
        let sa = UserInfo::service_account("ops", "robot", "u1");
        assert_eq!(sa.username, "system:serviceaccount:ops:robot");
        assert_eq!(
            sa.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ops",
                AUTHENTICATED
            ]
        );
        assert_eq!(UserInfo::anonymous().groups, [UNAUTHENTICATED]);
    }
}
