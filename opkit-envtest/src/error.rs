//! Errors: the crate's [`Error`] type and the Kubernetes `Status` responses
//! the server answers with ([`ApiError`]).

use crate::resources::ResourceInfo;
use crate::schema::FieldError;
use serde_json::{Value, json};
use std::borrow::Cow;

/// What can go wrong when starting or using a [`TestEnv`](crate::TestEnv).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A `kube::Client` could not be built for the server.
    #[error("cannot build a client for {url}: {source}")]
    Client {
        /// The server URL.
        url: String,
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A kubeconfig file could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    WriteKubeconfig {
        /// The file path.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A kubeconfig could not be serialized.
    #[error("cannot serialize the kubeconfig: {0}")]
    SerializeKubeconfig(#[from] serde_yaml_ng::Error),
    /// A CRD given as YAML could not be parsed.
    #[error("invalid CRD document: {0}")]
    CrdDocument(String),
    /// The server's certificates or token signing key could not be made.
    #[error("cannot create the server's credentials: {0}")]
    Certificate(String),
    /// The server refused a request made on behalf of the caller (for example a CRD install).
    #[error("the API server refused the request: {0}")]
    Api(#[from] ApiError),
}

/// A Kubernetes `Status` failure: the HTTP code, the reason and the exact
/// message wording of a real kube-apiserver.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message} ({reason}, {code})")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The `StatusReason`, e.g. `NotFound`; admission webhooks may give reasons of their own.
    pub reason: Cow<'static, str>,
    /// The human-readable message.
    pub message: String,
    /// The `details` object, if any.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429, 503).
    pub retry_after: Option<u32>,
}

/// `plural.group`, or `plural` for the core group, as messages name resources.
pub fn qualified_resource(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.plural.clone()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}

/// `Kind.group`, or `Kind` for the core group, as validation messages name kinds.
pub fn qualified_kind(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.kind.clone()
    } else {
        format!("{}.{}", info.kind, info.group)
    }
}

/// `resource.group`, or `resource` for the core group.
fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn resource_details(info: &ResourceInfo, name: &str) -> Value {
    json!({"name": name, "group": info.group, "kind": info.plural})
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: Cow::Borrowed(reason),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for a named object: `deployments.apps "web" not found`.
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", qualified_resource(info), name),
        )
        .with_details(resource_details(info, name))
    }

    /// 404 for an object named by its resource: `serviceaccounts "x" not found`.
    pub fn not_found_resource(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", group_resource(group, resource)),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// 404 for a namespace that does not exist: `namespaces "x" not found`.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    /// 404 for a path the server does not serve.
    pub fn unknown_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 when the name is taken.
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", qualified_resource(info), name),
        )
        .with_details(resource_details(info, name))
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict_because(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a specific explanation (failed preconditions, apply conflicts).
    pub fn conflict_because(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                qualified_resource(info),
                name,
                why
            ),
        )
        .with_details(resource_details(info, name))
    }

    /// 409 Conflict for a binding of a pod that already runs on a node.
    pub fn conflict_binding(pod: &str, node: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on pods/binding \"{pod}\": pod {pod} is already assigned to node \"{node}\""
            ),
        )
        .with_details(json!({"name": pod, "kind": "pods/binding"}))
    }

    /// 429 for an eviction a PodDisruptionBudget forbids, with the budget's arithmetic as
    /// its cause.
    pub fn disruption_budget(budget: &str, desired: i64, healthy: i64) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_details(json!({"causes": [{
            "reason": "DisruptionBudget",
            "message": format!("The disruption budget {budget} needs {desired} healthy pods and has {healthy} currently"),
        }]}))
    }

    /// 422 Invalid with every cause: `Kind.group "name" is invalid: field: detail`.
    pub fn invalid(info: &ResourceInfo, name: &str, causes: &[FieldError]) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| {
                json!({
                    "reason": c.reason,
                    "message": c.message,
                    "field": c.field,
                })
            })
            .collect();
        Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                qualified_kind(info),
                name,
                summary
            ),
        )
        .with_details(json!({
            "name": name,
            "group": info.group,
            "kind": info.kind,
            "causes": causes,
        }))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden as apimachinery's `NewForbidden` words it: `pods "x" is forbidden: why`,
    /// `pods is forbidden: why` without a name, `forbidden: why` without a resource.
    pub fn forbidden_for(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = match (resource.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{} is forbidden: {why}", group_resource(group, resource)),
            (false, false) => format!(
                "{} \"{name}\" is forbidden: {why}",
                group_resource(group, resource)
            ),
        };
        Self::new(403, "Forbidden", message)
            .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// 401 for credentials that do not authenticate.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 409 Conflict on `resource.group "name"` with an explanation.
    pub fn conflict_message(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                group_resource(group, resource)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// 422 Invalid with one `FieldValueInvalid` cause, for kinds outside the
    /// registry: `TokenRequest.authentication.k8s.io "x" is invalid: spec.f: Invalid value: 5: why`.
    pub fn invalid_kind(kind: &str, name: &str, field: &str, value: &Value, why: &str) -> Self {
        let value = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        let message = format!("Invalid value: {value}: {why}");
        let (bare_kind, group) = kind.split_once('.').unwrap_or((kind, ""));
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {field}: {message}"),
        )
        .with_details(json!({
            "name": name,
            "group": group,
            "kind": bare_kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        }))
    }

    /// 403 Forbidden.
    pub fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: {}",
                qualified_resource(info),
                name,
                why
            ),
        )
        .with_details(resource_details(info, name))
    }

    /// 403 when creating in a namespace that is being deleted.
    pub fn namespace_terminating(info: &ResourceInfo, name: &str, namespace: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                qualified_resource(info),
                name,
                namespace
            ),
        )
        .with_details(json!({
            "name": name,
            "group": info.group,
            "kind": info.plural,
            "causes": [{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {namespace} is being terminated"),
                "field": "metadata.namespace",
            }],
        }))
    }

    /// 405 for a verb the resource does not serve.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// 406 when no acceptable response content type can be produced.
    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "the server was unable to respond with a content type that the client supports",
        )
    }

    /// 415 for a request body or patch type the server does not accept.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(json!({"causes": [{"reason": "UnsupportedMediaType", "message": content_type}]}))
    }

    /// 413 for bodies over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 410 Gone (reason `Expired`) for a resourceVersion older than the retained history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 410 Gone for a `continue` token that can no longer be served.
    pub fn continue_expired() -> Self {
        Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        )
    }

    /// 429 TooManyRequests with a `Retry-After`.
    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({"retryAfterSeconds": retry_after}));
        e.retry_after = Some(retry_after);
        e
    }

    /// 500 InternalError.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message.to_string()}]}))
    }

    /// 500 without a reason: an error the API server does not classify, its message as is
    /// (a failed conversion webhook).
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// 503 ServiceUnavailable.
    pub fn service_unavailable() -> Self {
        let mut e = Self::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        )
        .with_details(json!({"retryAfterSeconds": 1}));
        e.retry_after = Some(1);
        e
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}
