//! `/metrics` secured as controller-runtime secures it (`filters.WithAuthenticationAndAuthorization`,
//! what kubebuilder scaffolds): served over HTTPS, and answered only to callers the API server
//! vouches for. The caller's bearer token goes to a TokenReview (`authentication.k8s.io/v1`); the
//! user it names to a SubjectAccessReview (`authorization.k8s.io/v1`) of the request's verb (the
//! lowercase method, `get`) on its path as a non-resource URL (`/metrics`). So the operator needs
//! `create` on `tokenreviews` and `subjectaccessreviews` (its `rbac` output grants both), and a
//! scraper a role with `nonResourceURLs: ["/metrics"]`, `verbs: ["get"]` (the
//! `NAME-metrics-reader` ClusterRole of [`crate::rbac::metrics_reader`]).
//!
//! Answers, worded as controller-runtime's: no token or one the review rejects, 401
//! `Unauthorized`; a user RBAC does not allow, 403 `Authorization denied for user <name>`; a review
//! that fails (the API server unreachable, the operator lacking its rules), 500
//! `Authentication failed` or `Authorization for user <name> failed`.

use std::sync::Arc;

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

/// The API server that authenticates and authorizes the endpoint's callers.
#[derive(Clone)]
pub(crate) struct Delegated {
    client: Client,
}

impl Delegated {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    async fn authenticate(&self, token: &str) -> kube::Result<Option<UserInfo>> {
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

    async fn authorize(&self, user: UserInfo, verb: String, path: String) -> kube::Result<bool> {
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
}
