//! `/metrics` secured as controller-runtime secures it (`filters.WithAuthenticationAndAuthorization`,
//! what kubebuilder scaffolds): served over HTTPS, and answered only to callers the API server
//! vouches for. The caller's bearer token goes to a TokenReview (`authentication.k8s.io/v1`); the
//! user it names to a SubjectAccessReview (`authorization.k8s.io/v1`) of the request's verb (the
//! lowercase method, `get`) on its path as a non-resource URL (`/metrics`). So the operator needs
//! `create` on `tokenreviews` and `subjectaccessreviews` (its `rbac` output grants both), and a
//! scraper a role with `nonResourceURLs: ["/metrics"]`, `verbs: ["get"]` (the
//! `NAME-metrics-reader` ClusterRole of [`crate::rbac::metrics_reader`]).
//!
//! Answers are reused as controller-runtime's delegating authenticator and authorizer reuse them:
//! a token's review for a minute, an allowed request for five, a denied one for 30 seconds; so a
//! scraper costs the API server two reviews every few minutes, not two per scrape.
//!
//! Answers, worded as controller-runtime's: no token or one the review rejects, 401
//! `Unauthorized`; a user RBAC does not allow, 403 `Authorization denied for user <name>`; a review
//! that fails (the API server unreachable, the operator lacking its rules), 500
//! `Authentication failed` or `Authorization for user <name> failed`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

/// How long a token's review is reused, whatever it said.
const AUTHENTICATION_TTL: Duration = Duration::from_secs(60);
/// How long an allowed request's review is reused.
const ALLOWED_TTL: Duration = Duration::from_secs(300);
/// How long a denied request's review is reused.
const DENIED_TTL: Duration = Duration::from_secs(30);
/// Past this many entries a cache drops what expired, then everything if that was not enough,
/// so callers with ever new tokens cannot grow it without bound.
const MAX_ENTRIES: usize = 1024;

/// Review answers until they expire.
struct Answers<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Answers<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, value));
    }
}

/// Who asks for what: the key of an authorization answer.
#[derive(PartialEq, Eq, Hash)]
struct Access {
    user: String,
    verb: String,
    path: String,
}

/// The API server that authenticates and authorizes the endpoint's callers.
pub(crate) struct Delegated {
    client: Client,
    authenticated: Answers<String, Option<UserInfo>>,
    authorized: Answers<Access, bool>,
}

impl Delegated {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            authenticated: Answers::new(),
            authorized: Answers::new(),
        }
    }

    async fn authenticate(&self, token: &str) -> kube::Result<Option<UserInfo>> {
        if let Some(user) = self.authenticated.get(&token.to_owned()) {
            return Ok(user);
        }
        let user = self.review_token(token).await?;
        self.authenticated
            .put(token.to_owned(), user.clone(), AUTHENTICATION_TTL);
        Ok(user)
    }

    async fn authorize(&self, user: UserInfo, verb: String, path: String) -> kube::Result<bool> {
        // The whole user (groups, uid, extra) decides, so it is all in the key.
        let key = Access {
            user: serde_json::to_string(&user).unwrap_or_default(),
            verb: verb.clone(),
            path: path.clone(),
        };
        if let Some(allowed) = self.authorized.get(&key) {
            return Ok(allowed);
        }
        let allowed = self.review_access(user, verb, path).await?;
        let ttl = if allowed { ALLOWED_TTL } else { DENIED_TTL };
        self.authorized.put(key, allowed, ttl);
        Ok(allowed)
    }

    async fn review_token(&self, token: &str) -> kube::Result<Option<UserInfo>> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(reviewed
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user))
    }

    async fn review_access(
        &self,
        user: UserInfo,
        verb: String,
        path: String,
    ) -> kube::Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path),
                    verb: Some(verb),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(reviewed.status.is_some_and(|s| s.allowed))
    }
}

/// Go's `http.Error`: the message and a newline as plain text.
fn refuse(status: StatusCode, message: String) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn bearer_token(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The middleware: lets a request through only when its caller is authenticated and authorized.
pub(crate) async fn authenticate_and_authorize(
    State(delegated): State<Arc<Delegated>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(&request) else {
        return refuse(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned());
    };
    let user = match delegated.authenticate(&token).await {
        Ok(Some(user)) => user,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned()),
        Err(error) => {
            tracing::error!(%error, "metrics endpoint: authentication failed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Authentication failed".to_owned(),
            );
        }
    };
    let name = user.username.clone().unwrap_or_default();
    let verb = request.method().as_str().to_lowercase();
    let path = request.uri().path().to_owned();
    match delegated.authorize(user, verb, path).await {
        Ok(true) => next.run(request).await,
        Ok(false) => refuse(
            StatusCode::FORBIDDEN,
            format!("Authorization denied for user {name}"),
        ),
        Err(error) => {
            let message = format!("Authorization for user {name} failed");
            tracing::error!(%error, "metrics endpoint: {message}");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> Request {
        Request::builder()
            .header(header::AUTHORIZATION, value)
            .body(axum::body::Body::empty())
            .unwrap_or_default()
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(
            bearer_token(&with_authorization("Bearer abc")),
            Some("abc".to_owned())
        );
        assert_eq!(
            bearer_token(&with_authorization("bearer  abc ")),
            Some("abc".to_owned())
        );
        assert_eq!(bearer_token(&with_authorization("Basic abc")), None);
        assert_eq!(bearer_token(&with_authorization("Bearer ")), None);
    }

    #[test]
    fn answers_expire_and_stay_bounded() {
        let answers = Answers::new();
        answers.put("old", 1, Duration::ZERO);
        answers.put("new", 2, Duration::from_secs(60));
        assert_eq!((answers.get(&"old"), answers.get(&"new")), (None, Some(2)));
        let keys: Vec<String> = (0..MAX_ENTRIES + 1).map(|i| i.to_string()).collect();
        let answers = Answers::new();
        for key in &keys {
            answers.put(key.as_str(), 0, Duration::from_secs(60));
        }
        let held = answers.entries.lock().map(|e| e.len()).unwrap_or_default();
        assert!(held <= MAX_ENTRIES, "{held}");
    }
}
