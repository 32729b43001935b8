//! The verbs on resources: get, list, create, update, patch, delete,
//! deletecollection, and the status, scale and Pod subresources.

mod delete;
mod pods;
mod read;
mod review;
mod scale;
mod write;

use super::negotiate::{self, BODY_LIMIT, Format, error_response, respond};
use super::{Server, Target};
use crate::conversion;
use crate::error::ApiError;
use crate::events;
use crate::meta;
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Stored, meta_str, storage_key};
use axum::body::Body;
use http::HeaderMap;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct RestRequest {
    pub server: Arc<Server>,
    pub target: Target,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub verb: &'static str,
    /// The user the request acts as.
    pub user: crate::authn::UserInfo,
    /// The admission webhooks' patches and warnings for this write.
    pub admitted: crate::admission::Admitted,
    /// The conversion webhook's answers this request's attempts draw on.
    pub conversions: Arc<conversion::Memo>,
}

/// How many times a write is run again for conversions it lacked: twice (the stored object to
/// the request's version, the result to the storage version) unless someone writes meanwhile.
const CONVERSION_ROUNDS: usize = 8;

/// How unknown fields are reported (`fieldValidation`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validation {
    Ignore,
    Warn,
    Strict,
}

/// The result of a write: the HTTP code, the object to return, warnings.
struct Written {
    code: u16,
    object: Value,
    warnings: Vec<String>,
}

/// Presents a stored object as the requested version serves it; a conversion webhook's part
/// is left to [`present_all`] or [`RestRequest::present_old`].
pub(crate) fn present(info: &ResourceInfo, stored: &Value) -> Value {
    if info.group == "events.k8s.io" {
        return events::to_events_v1(stored);
    }
    if let Some(versions) = conversion::of(info) {
        return versions
            .convert_here(stored.clone(), &info.version)
            .unwrap_or_else(|for_webhook| for_webhook);
    }
    let mut obj = stored.clone();
    meta::set_type(info, &mut obj);
    obj
}

/// Presents stored (or already presented) objects in the requested version, through the
/// CRD's conversion webhook where it takes one, in one ConversionReview.
pub(crate) async fn present_all(
    server: &Server,
    info: &ResourceInfo,
    stored: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    let presented: Vec<Value> = stored.iter().map(|s| present(info, s)).collect();
    match conversion::of(info) {
        Some(versions) => {
            versions
                .convert(&server.webhook_services, presented, &info.version)
                .await
        }
        None => Ok(presented),
    }
}

/// Whether a stored object needs rewriting to be presented (another version or Event API).
pub(crate) fn needs_conversion(info: &ResourceInfo, stored: &Stored) -> bool {
    info.group == "events.k8s.io"
        || stored.api_version() != info.api_version()
        || stored.kind() != info.kind
}

/// Label and field selectors of a list, watch or deletecollection.
pub(crate) struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    /// The kind whose field labels the field selector names.
    group: String,
    kind: String,
}

impl Selectors {
    /// The `labelSelector` and `fieldSelector` of a request on `info`: 400 when they do not
    /// parse or name a field label the kind does not support.
    pub fn from_query(
        query: &HashMap<String, String>,
        info: &ResourceInfo,
    ) -> Result<Self, ApiError> {
        let labels = match query.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match query.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                let selector =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                crate::fields::check(info, &selector)?;
                Some(selector)
            }
            None => None,
        };
        Ok(Selectors {
            labels,
            fields,
            group: info.group.clone(),
            kind: info.kind.clone(),
        })
    }

    /// Whether a stored object matches, parsing it only when a selector needs it.
    pub fn matches_stored(&self, stored: &Stored) -> bool {
        if self.labels.is_none() && self.fields.is_none() {
            return true;
        }
        self.matches(&stored.value())
    }

    /// Whether an object in its stored form matches.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels_ok = self
            .labels
            .as_ref()
            .is_none_or(|s| s.matches(obj.pointer("/metadata/labels").and_then(Value::as_object)));
        labels_ok
            && self.fields.as_ref().is_none_or(|s| {
                s.matches_with(|label| crate::fields::value(&self.group, &self.kind, obj, label))
            })
    }
}

impl RestRequest {
    pub async fn run(self, body: Body) -> http::Response<Body> {
        match self.execute(body).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        }
    }

    fn format(&self) -> Result<Format, ApiError> {
        negotiate::response_format(&negotiate::accept(&self.headers))
    }

    fn storage(&self) -> String {
        storage_key(&self.target.info)
    }

    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.clone();
        }
        self.headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string()
    }

    fn validation(&self) -> Validation {
        match self.query.get("fieldValidation").map(String::as_str) {
            Some("Strict") => Validation::Strict,
            Some("Ignore") => Validation::Ignore,
            _ => Validation::Warn,
        }
    }

    async fn execute(mut self, body: Body) -> Result<http::Response<Body>, ApiError> {
        if self.target.subresource.as_deref() == Some("log") {
            return self.pod_log();
        }
        if is_stream(&self.target) {
            return Err(ApiError::bad_request(format!(
                "{} is not served by opkit-envtest: its simulated pods run no processes",
                self.target.subresource.as_deref().unwrap_or_default()
            )));
        }
        let format = self.format()?;
        match self.verb {
            "get" => return self.get(format).await,
            "list" => return self.list(format).await,
            "watch" => return super::watch::serve(&self),
            _ => {}
        }
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| ApiError::too_large(BODY_LIMIT))?;
        if matches!(
            self.target.subresource.as_deref(),
            Some("eviction" | "binding")
        ) {
            let written = self.pod_action(&bytes)?;
            return Ok(respond(written.code, format, &written.object, &[]));
        }
        if self.target.info.is_review() || self.target.subresource.as_deref() == Some("token") {
            let written = self.answer(&bytes)?;
            return Ok(respond(written.code, format, &written.object, &[]));
        }
        let mut rounds = 0;
        self.admitted = loop {
            let result = crate::admission::review(&self, &bytes).await;
            if result.is_ok() || !self.fetched(&mut rounds).await? {
                break result?;
            }
        };
        let written = match self.verb {
            "create" => self.converting(|| self.create(&bytes)).await?,
            "update" => self.converting(|| self.update(&bytes)).await?,
            "patch" => self.converting(|| self.patch(&bytes)).await?,
            "delete" => self.delete(&bytes)?,
            "deletecollection" => return self.delete_collection(&bytes, format).await,
            _ => return Err(ApiError::method_not_allowed()),
        };
        // Written objects are presented but for a conversion webhook's part.
        let object = match conversion::of(&self.target.info) {
            Some(versions) => versions
                .convert(
                    &self.server.webhook_services,
                    vec![written.object],
                    &self.target.info.version,
                )
                .await?
                .pop()
                .unwrap_or_default(),
            None => written.object,
        };
        // Metadata-only clients get the written object as PartialObjectMetadata, as from a get.
        let accept = negotiate::accept(&self.headers);
        let object =
            if negotiate::wants_metadata(&accept) && object.get("kind") != Some(&json!("Status")) {
                negotiate::partial_metadata(&object)
            } else {
                object
            };
        Ok(respond(
            written.code,
            format,
            &object,
            &[self.admitted.warnings.as_slice(), &written.warnings].concat(),
        ))
    }

    /// Runs `attempt` until it lacks no conversion, fetching those it lacked in between.
    async fn converting<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut rounds = 0;
        loop {
            let result = attempt();
            if result.is_ok() || !self.fetched(&mut rounds).await? {
                return result;
            }
        }
    }

    /// Whether the last attempt lacked conversions, now fetched from the CRD's webhook; a
    /// conflict once the object kept changing under too many attempts.
    async fn fetched(&self, rounds: &mut usize) -> Result<bool, ApiError> {
        let Some(versions) = conversion::of(&self.target.info) else {
            return Ok(false);
        };
        if !self
            .conversions
            .fetch(versions, &self.server.webhook_services)
            .await?
        {
            return Ok(false);
        }
        *rounds += 1;
        if *rounds > CONVERSION_ROUNDS {
            return Err(ApiError::conflict_because(
                &self.target.info,
                self.name(),
                "the object kept changing while it was converted",
            ));
        }
        Ok(true)
    }

    /// A stored object in the request's version, for the writes that compute on it.
    fn present_old(&self, stored: &Value) -> Result<Value, ApiError> {
        let info = &self.target.info;
        let object = present(info, stored);
        match conversion::of(info) {
            Some(versions) => versions.convert_memo(&self.conversions, object, &info.version),
            None => Ok(object),
        }
    }

    /// An object in its stored form: the storage version, the core Event API. A dry run
    /// keeps custom resources in the request's version, as nothing is stored.
    fn to_storage(&self, obj: Value) -> Result<Value, ApiError> {
        let info = &self.target.info;
        if info.group == "events.k8s.io" {
            return Ok(events::to_core(&obj));
        }
        match conversion::of(info) {
            Some(_) if self.dry_run() => Ok(obj),
            Some(versions) => versions.convert_memo(&self.conversions, obj, &versions.storage),
            None => Ok(obj),
        }
    }

    /// Whether a stored object is in an older version than the storage version: a write
    /// rewrites it even when nothing else changes (storage migration).
    fn outdated(&self, stored: &Value) -> bool {
        conversion::of(&self.target.info).is_some_and(|v| v.is_outdated(stored))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Value, ApiError> {
        let ctype = negotiate::content_type(&self.headers);
        let value = negotiate::parse_body(&ctype, bytes)?;
        if !value.is_object() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: the request body must be an object",
                self.target.info.kind, self.target.info.version, self.target.info.kind
            )));
        }
        Ok(value)
    }

    /// Refuses a body whose apiVersion or kind is not the URL's; fills them when absent.
    fn check_type(&self, info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        let expected = info.api_version();
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if !api_version.is_empty() && api_version != expected {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({expected})"
            )));
        }
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if !kind.is_empty() && kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: no kind \"{kind}\" is registered for version \"{expected}\" in scheme",
                info.kind, info.version, info.kind
            )));
        }
        meta::set_type(info, obj);
        Ok(())
    }

    fn check_identity(&self, obj: &Value) -> Result<(), ApiError> {
        let name = meta_str(obj, "name");
        if let Some(url_name) = &self.target.name
            && !name.is_empty()
            && name != url_name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
        let namespace = meta_str(obj, "namespace");
        if self.target.info.namespaced
            && let Some(url_ns) = &self.target.namespace
            && !namespace.is_empty()
            && namespace != url_ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }
}

/// Whether `target` is a pod's exec, attach or port-forward stream, which needs processes.
pub(super) fn is_stream(target: &super::Target) -> bool {
    matches!(
        target.subresource.as_deref(),
        Some("exec" | "attach" | "portforward")
    )
}
