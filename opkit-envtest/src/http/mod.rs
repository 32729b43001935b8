//! The HTTP server: routing of discovery, OpenAPI and resource paths,
//! request statistics, fault injection and panic containment.

mod negotiate;
pub(crate) mod rest;
mod tls;
mod watch;

pub(crate) use tls::TlsListener;

use crate::authn::{self, Peer, UserInfo};
use crate::authz::{self, Attributes, Decision};
use crate::discovery;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::openapi;
use crate::resources::ResourceInfo;
use crate::stats::Recorder;
use crate::store::Store;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use futures::FutureExt;
use http::{HeaderValue, Method, header};
use negotiate::{error_response, respond, respond_typed};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// Requests carrying this header come from the server's own controllers:
/// they are not counted in statistics and never get injected faults.
pub(crate) const INTERNAL_HEADER: &str = "x-opkit-envtest-internal";

/// Everything a request handler needs.
pub(crate) struct Server {
    pub store: Arc<Store>,
    pub stats: Arc<Recorder>,
    pub faults: Faults,
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub webhook_services: crate::admission::Services,
    pub tokens: crate::tokens::TokenIssuer,
}

pub(crate) fn router(server: Arc<Server>) -> Router {
    Router::new().fallback(handle).with_state(server)
}

async fn handle(State(server): State<Arc<Server>>, request: Request) -> http::Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = AssertUnwindSafe(dispatch(server, request))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "handler panicked".to_string());
            tracing::error!(%method, %path, %message, "request handler panicked");
            error_response(&ApiError::internal(message))
        });
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// A request on a resource, parsed from its path.
pub(crate) struct Target {
    pub info: ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    /// The resource as statistics name it: `deployments` or `deployments/status`.
    fn stats_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{}", self.info.plural, sub),
            None => self.info.plural.clone(),
        }
    }
}

fn find<'a>(
    registry: &'a [ResourceInfo],
    group: &str,
    version: &str,
    plural: &str,
) -> Option<&'a ResourceInfo> {
    registry
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

fn parse_target(
    registry: &[ResourceInfo],
    group: &str,
    version: &str,
    rest: &[&str],
) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if find(registry, group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    let info = find(registry, group, version, plural)?.clone();
    if let Some(sub) = &subresource {
        let served = match sub.as_str() {
            "status" => info.status_subresource,
            "scale" => info.scale.is_some(),
            other => info.subresource(other).is_some(),
        };
        if !served {
            return None;
        }
    }
    if namespace.is_none() && info.namespaced && name.is_some() {
        return None;
    }
    Some(Target {
        info,
        namespace,
        name,
        subresource,
    })
}

/// Decodes `%XX` escapes of one path segment (clients may escape `:` in RBAC names).
pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

fn query_map(uri: &http::Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn is_true(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
}

/// The audit verb of a resource request.
fn verb(method: &Method, target: &Target, query: &HashMap<String, String>) -> Option<&'static str> {
    let item = target.name.is_some();
    Some(match *method {
        Method::GET if item => "get",
        Method::GET if is_true(query, "watch") => "watch",
        Method::GET => "list",
        Method::POST if !item => "create",
        Method::POST if target.subresource.as_deref() == Some("finalize") => "update",
        Method::POST if target.subresource.is_some() => "create",
        Method::PUT if item => "update",
        Method::PATCH if item => "patch",
        Method::DELETE if item => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    })
}

/// The attributes authorization judges a request by, as kube-apiserver's
/// `RequestInfoFactory` reads them from the method, path and query.
fn request_attributes(
    method: &Method,
    path: &str,
    segments: &[&str],
    query: &HashMap<String, String>,
) -> Attributes {
    let (group, rest) = match segments {
        ["api", version, rest @ ..] if !rest.is_empty() => (("", *version), rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => ((*group, *version), rest),
        _ => return Attributes::non_resource(&method.as_str().to_lowercase(), path),
    };
    let mut namespace = "";
    let mut parts = rest;
    if let ["namespaces", ns, tail @ ..] = rest {
        namespace = ns;
        if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
            parts = tail;
        }
    }
    let resource = parts.first().copied().unwrap_or_default();
    let mut name = parts.get(1).copied().unwrap_or_default().to_string();
    let subresource = parts.get(2).copied().unwrap_or_default();
    let mut verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    if name.is_empty() && verb == "get" {
        verb = if is_true(query, "watch") {
            "watch"
        } else {
            "list"
        };
        let exact = query.get("fieldSelector").and_then(|selector| {
            let mut names = selector.split(',').filter_map(|term| {
                let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
                (key.trim() == "metadata.name").then(|| value.trim())
            });
            names.next()
        });
        if let Some(exact) = exact.filter(|n| !n.is_empty() && !n.contains('/') && !n.contains('%'))
        {
            name = exact.to_string();
        }
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection";
    }
    Attributes::resource(
        verb,
        group.0,
        group.1,
        resource,
        subresource,
        namespace,
        &name,
    )
}

/// The user a request acts as, once authenticated, impersonation allowed, and authorized.
fn authorize(
    server: &Server,
    parts: &http::request::Parts,
    segments: &[&str],
    query: &HashMap<String, String>,
) -> Result<UserInfo, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone())
        .unwrap_or(Peer::Plain);
    let state = server.store.read();
    let user = authn::authenticate(&peer, &parts.headers, &server.tokens, &state)?;
    let user = authn::impersonate(user, &parts.headers, |user, attributes| {
        authz::authorize(&state, user, attributes)
    })?;
    let attributes = request_attributes(&parts.method, parts.uri.path(), segments, query);
    match authz::authorize(&state, &user, &attributes) {
        Decision::Allow(_) => Ok(user),
        Decision::Deny(reason) => Err(authz::forbidden(&user, &attributes, &reason)),
    }
}

async fn dispatch(server: Arc<Server>, request: Request) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().trim_matches('/').to_string();
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let query = query_map(&parts.uri);
    let user = match authorize(&server, &parts, &segments, &query) {
        Ok(user) => user,
        Err(error) => return error_response(&error),
    };
    let accept = negotiate::accept(&parts.headers);
    let registry = server.store.registry();
    let ok = |v: &Value| respond(200, negotiate::Format::Json, v, &[]);
    match segments.as_slice() {
        ["version"] => return ok(&discovery::version()),
        ["healthz" | "livez" | "readyz", ..] => {
            let mut response = http::Response::new(Body::from("ok"));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return response;
        }
        ["metrics"] => {
            let mut response = http::Response::new(Body::from(server.stats.prometheus()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return response;
        }
        ["api"] => {
            return match discovery::wants_aggregated(&accept) {
                Some(ctype) => respond_typed(ctype, &discovery::aggregated(&registry, true)),
                None => ok(&discovery::core_versions()),
            };
        }
        ["apis"] => {
            return match discovery::wants_aggregated(&accept) {
                Some(ctype) => respond_typed(ctype, &discovery::aggregated(&registry, false)),
                None => ok(&discovery::group_list(&registry)),
            };
        }
        ["api", "v1"] => {
            return match discovery::resource_list(&registry, "", "v1") {
                Some(list) => ok(&list),
                None => error_response(&ApiError::unknown_resource()),
            };
        }
        ["apis", group] => {
            let list = discovery::group_list(&registry);
            let found = list
                .get("groups")
                .and_then(Value::as_array)
                .and_then(|groups| {
                    groups
                        .iter()
                        .find(|g| g.get("name").and_then(Value::as_str) == Some(group))
                })
                .cloned();
            return match found {
                Some(mut group) => {
                    if let Some(map) = group.as_object_mut() {
                        map.insert("kind".into(), json!("APIGroup"));
                        map.insert("apiVersion".into(), json!("v1"));
                    }
                    ok(&group)
                }
                None => error_response(&ApiError::unknown_resource()),
            };
        }
        ["apis", group, version] => {
            return match discovery::resource_list(&registry, group, version) {
                Some(list) => ok(&list),
                None => error_response(&ApiError::unknown_resource()),
            };
        }
        ["openapi", "v2"] => {
            if crate::openapi_protobuf::wanted(&accept) {
                let body = crate::openapi_protobuf::encode(&openapi::v2(&registry));
                let mut response = http::Response::new(Body::from(body));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(crate::openapi_protobuf::MEDIA_TYPES[0]),
                );
                return response;
            }
            if !openapi::v2_serves(&accept) {
                return error_response(&ApiError::not_acceptable());
            }
            return ok(&openapi::v2(&registry));
        }
        ["openapi", "v3"] => return ok(&openapi::v3_index(&registry)),
        ["openapi", "v3", rest @ ..] => {
            return match openapi::v3_group_version(&registry, &rest.join("/")) {
                Some(doc) => ok(&doc),
                None => error_response(&ApiError::unknown_resource()),
            };
        }
        _ => {}
    }
    let target = match segments.as_slice() {
        ["api", "v1", rest @ ..] => parse_target(&registry, "", "v1", rest),
        ["apis", group, version, rest @ ..] => parse_target(&registry, group, version, rest),
        _ => None,
    };
    let Some(target) = target else {
        return error_response(&ApiError::unknown_resource());
    };
    let Some(verb) = verb(&parts.method, &target, &query) else {
        return error_response(&ApiError::method_not_allowed());
    };
    let served = match &target.subresource {
        None => target.info.verbs.contains(&verb),
        Some(sub) => target
            .info
            .subresource(sub)
            .is_none_or(|s| s.verbs.contains(&verb)),
    };
    if !served {
        return error_response(&ApiError::method_not_allowed());
    }
    let internal = parts.headers.contains_key(INTERNAL_HEADER);
    let resource = target.stats_resource();
    if !internal {
        let (delay, fault) = server.faults.draw(verb, &resource);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(fault) = fault {
            let error = fault.error(&target.info, target.name.as_deref());
            server.stats.record(verb, &resource, error.code);
            return error_response(&error);
        }
    }
    let deprecation = crate::conversion::of(&target.info)
        .and_then(|versions| versions.warning(&target.info.version))
        .map(str::to_string);
    let request = rest::RestRequest {
        server: server.clone(),
        target,
        query,
        headers: parts.headers,
        verb,
        user,
        admitted: crate::admission::Admitted::default(),
        conversions: Arc::default(),
    };
    let mut response = request.run(body).await;
    if let Some(warning) = deprecation {
        negotiate::warn_first(&mut response, &warning);
    }
    if !internal {
        server
            .stats
            .record(verb, &resource, response.status().as_u16());
    }
    response
}
