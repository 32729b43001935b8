//! The verbs on resources: get, list, create, update, patch, delete,
//! deletecollection, and the status and scale subresources.

use super::negotiate::{self, BODY_LIMIT, Format, error_response, respond};
use super::{Server, Target, is_true};
use crate::crd;
use crate::defaults;
use crate::deletion::{self, Outcome, Preconditions, Propagation};
use crate::error::ApiError;
use crate::events;
use crate::meta;
use crate::patch;
use crate::resources::ResourceInfo;
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Stored, Txn, meta_str, storage_key};
use crate::table;
use axum::body::Body;
use http::HeaderMap;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct RestRequest {
    pub server: Arc<Server>,
    pub target: Target,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub verb: &'static str,
    /// The admission webhooks' patches and warnings for this write.
    pub admitted: crate::admission::Admitted,
}

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

/// Presents a stored object as the requested version serves it.
pub(crate) fn present(info: &ResourceInfo, stored: &Value) -> Value {
    if info.group == "events.k8s.io" {
        return events::to_events_v1(stored);
    }
    let mut obj = stored.clone();
    meta::set_type(info, &mut obj);
    obj
}

/// Whether a stored object needs rewriting to be presented (another version or Event API).
pub(crate) fn needs_conversion(info: &ResourceInfo, stored: &Stored) -> bool {
    info.group == "events.k8s.io"
        || stored.api_version() != info.api_version()
        || stored.kind() != info.kind
}

fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    if info.group == "events.k8s.io" {
        events::to_core(&obj)
    } else {
        obj
    }
}

/// A list response. In JSON, stored items are copied as bytes, never re-serialized.
fn list_response(
    info: &ResourceInfo,
    format: Format,
    metadata: Value,
    items: &[Arc<Stored>],
) -> http::Response<Body> {
    if format == Format::Yaml {
        let items: Vec<Value> = items.iter().map(|i| present(info, &i.value())).collect();
        let list = json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": metadata,
            "items": items,
        });
        return respond(200, format, &list, &[]);
    }
    let total: usize = items.iter().map(|i| i.json().len() + 1).sum();
    let mut out = Vec::with_capacity(total + 256);
    let head =
        json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": metadata});
    // The head object without its closing brace, then the items array.
    let head = serde_json::to_vec(&head).unwrap_or_else(|_| b"{}".to_vec());
    out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        if needs_conversion(info, item) {
            let converted = present(info, &item.value());
            if serde_json::to_writer(&mut out, &converted).is_err() {
                out.extend_from_slice(b"null");
            }
        } else {
            out.extend_from_slice(item.json());
        }
    }
    out.extend_from_slice(b"]}");
    negotiate::respond_json_bytes(200, out)
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn continue_token(key: &(String, String)) -> String {
    hex_encode(&format!("{}\n{}", key.0, key.1))
}

fn parse_continue(token: &str) -> Result<(String, String), ApiError> {
    hex_decode(token)
        .and_then(|s| {
            let (ns, name) = s.split_once('\n')?;
            Some((ns.to_string(), name.to_string()))
        })
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))
}

/// Label and field selectors of a list, watch or deletecollection.
pub(crate) struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Selectors {
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let labels = match query.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match query.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        Ok(Selectors { labels, fields })
    }

    /// Whether a stored object matches, parsing it only when a selector needs it.
    pub fn matches_stored(&self, stored: &Stored) -> bool {
        if self.labels.is_none() && self.fields.is_none() {
            return true;
        }
        self.matches(&stored.value())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels_ok = self
            .labels
            .as_ref()
            .is_none_or(|s| s.matches(obj.pointer("/metadata/labels").and_then(Value::as_object)));
        labels_ok && self.fields.as_ref().is_none_or(|s| s.matches(obj))
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
            "get" => return self.get(format),
            "list" => return self.list(format),
            "watch" => return super::watch::serve(&self),
            _ => {}
        }
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| ApiError::too_large(BODY_LIMIT))?;
        self.admitted = crate::admission::review(&self, &bytes).await?;
        let written = match self.verb {
            "create" => self.create(&bytes)?,
            "update" => self.update(&bytes)?,
            "patch" => self.patch(&bytes)?,
            "delete" => self.delete(&bytes)?,
            "deletecollection" => return self.delete_collection(&bytes, format),
            _ => return Err(ApiError::method_not_allowed()),
        };
        Ok(respond(
            written.code,
            format,
            &written.object,
            &[self.admitted.warnings.as_slice(), &written.warnings].concat(),
        ))
    }

    /// The stored object a write replaces and the one it would store, computed as a dry run:
    /// what admission webhooks are shown.
    pub(crate) fn preview(&self, bytes: &[u8]) -> Result<(Option<Value>, Option<Value>), ApiError> {
        let old = self
            .server
            .store
            .read()
            .get(&self.storage(), self.namespace(), self.name())
            .map(|stored| present(&self.target.info, &stored));
        let mut query = self.query.clone();
        query.insert("dryRun".into(), "All".into());
        let dry = RestRequest {
            server: self.server.clone(),
            target: super::Target {
                info: self.target.info.clone(),
                namespace: self.target.namespace.clone(),
                name: self.target.name.clone(),
                subresource: self.target.subresource.clone(),
            },
            query,
            headers: self.headers.clone(),
            verb: self.verb,
            admitted: crate::admission::Admitted::default(),
        };
        let written = match self.verb {
            "create" => dry.create(bytes)?,
            "update" => dry.update(bytes)?,
            "patch" => dry.patch(bytes)?,
            _ => return Ok((old, None)),
        };
        Ok((old, Some(written.object)))
    }

    /// A pod's log after the real server's container checks; simulated containers write nothing,
    /// so it is empty (and a follow ends at once instead of waiting forever).
    fn pod_log(&self) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let pod = {
            let state = self.server.store.read();
            state
                .get_stored(&self.storage(), self.namespace(), self.name())
                .map(|stored| stored.value())
        }
        .ok_or_else(|| ApiError::not_found(info, self.name()))?;
        let containers: Vec<&str> = ["/spec/containers", "/spec/initContainers"]
            .iter()
            .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect();
        let main = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let pod_name = self.name();
        let chosen = self.query.get("container").filter(|c| !c.is_empty());
        if let Some(c) = chosen
            && !containers.contains(&c.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod_name}"
            )));
        }
        if chosen.is_none() && main != 1 {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
        let mut response = http::Response::new(Body::empty());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        Ok(response)
    }

    fn get(&self, format: Format) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let stored = {
            let state = self.server.store.read();
            if info.namespaced && !self.namespace_exists(&state) {
                return Err(ApiError::not_found(info, self.name()));
            }
            state
                .get_stored(&self.storage(), self.namespace(), self.name())
                .cloned()
        };
        let stored = stored.ok_or_else(|| ApiError::not_found(info, self.name()))?;
        let accept = negotiate::accept(&self.headers);
        let plain = self.target.subresource.is_none() && !table::wants_table(&accept);
        if plain && negotiate::wants_metadata(&accept) {
            let partial = negotiate::partial_metadata(&stored.value());
            return Ok(respond(200, format, &partial, &[]));
        }
        if plain && format == Format::Json && !needs_conversion(info, &stored) {
            return Ok(negotiate::respond_json_bytes(200, stored.json().to_vec()));
        }
        let object = present(info, &stored.value());
        let body = match self.target.subresource.as_deref() {
            Some("scale") => scale_of(info, &object),
            _ => object,
        };
        if self.target.subresource.is_none() && table::wants_table(&accept) {
            let include = self
                .query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or("Metadata");
            let rv = meta_str(&body, "resourceVersion").to_string();
            let t = table::table(info, &[body], json!({"resourceVersion": rv}), include);
            return Ok(respond(200, format, &t, &[]));
        }
        Ok(respond(200, format, &body, &[]))
    }

    fn namespace_exists(&self, state: &crate::store::State) -> bool {
        state.contains("/namespaces", "", self.namespace())
    }

    fn list(&self, format: Format) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let selectors = Selectors::from_query(&self.query)?;
        let limit = self
            .query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let after = match self.query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(parse_continue(token)?),
            None => None,
        };
        let (items, rv, next, remaining) = {
            let state = self.server.store.read();
            if self.query.get("resourceVersionMatch").map(String::as_str) == Some("Exact") {
                let requested = self
                    .query
                    .get("resourceVersion")
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0);
                if requested != state.rv() {
                    return Err(ApiError::expired(requested, state.rv()));
                }
            }
            let storage = self.storage();
            let mut iter = state
                .list(&storage, self.target.namespace.as_deref(), after.as_ref())
                .filter(|(_, obj)| selectors.matches_stored(obj));
            let mut items = Vec::new();
            let mut last_key = None;
            for (key, obj) in iter.by_ref() {
                items.push(obj.clone());
                last_key = Some(key.clone());
                if limit.is_some_and(|l| items.len() >= l) {
                    break;
                }
            }
            let remaining = if limit.is_some() { iter.count() } else { 0 };
            let next = if remaining > 0 {
                last_key.as_ref().map(continue_token)
            } else {
                None
            };
            (items, state.rv(), next, remaining)
        };
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(next) = next {
            metadata["continue"] = json!(next);
            metadata["remainingItemCount"] = json!(remaining);
        }
        let accept = negotiate::accept(&self.headers);
        if table::wants_table(&accept) {
            let objects: Vec<Value> = items.iter().map(|o| present(info, &o.value())).collect();
            let include = self
                .query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or("Metadata");
            let t = table::table(info, &objects, metadata, include);
            return Ok(respond(200, format, &t, &[]));
        }
        if negotiate::wants_metadata(&accept) {
            let items: Vec<Value> = items
                .iter()
                .map(|o| negotiate::partial_metadata(&o.value()))
                .collect();
            let list = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items,
            });
            return Ok(respond(200, format, &list, &[]));
        }
        Ok(list_response(info, format, metadata, &items))
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

    /// Defaults, pruning and schema validation on every write.
    fn admit(
        &self,
        info: &ResourceInfo,
        old: Option<&Value>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let name = meta_str(obj, "name").to_string();
        let mut warnings = Vec::new();
        let unknown = match &info.schema {
            Some(schema) => {
                let before = obj.clone();
                schema::prune(schema, obj);
                let mut removed = Vec::new();
                removed_paths(&before, obj, "", &mut removed);
                removed
                    .iter()
                    .map(|p| p.trim_start_matches('.').to_string())
                    .filter(|p| !p.starts_with("metadata") && p != "apiVersion" && p != "kind")
                    .collect()
            }
            None => {
                let unknown = crate::openapi::unknown_fields(&info.group, &info.kind, obj)
                    .unwrap_or_default();
                // Typed decoding drops what the kind does not declare.
                for path in &unknown {
                    remove_path(obj, path);
                }
                unknown
            }
        };
        if !unknown.is_empty() {
            match self.validation() {
                Validation::Strict => {
                    let list = unknown
                        .iter()
                        .map(|p| format!("unknown field \"{p}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
                        info.kind, info.version, info.kind
                    )));
                }
                Validation::Warn => {
                    warnings.extend(unknown.iter().map(|p| format!("unknown field \"{p}\"")))
                }
                Validation::Ignore => {}
            }
        }
        if let Some(schema) = &info.schema {
            schema::apply_defaults(schema, obj);
            let mut errors = schema::validate(schema, obj);
            if let Some(e) = meta::validate_name(info, &name) {
                errors.insert(0, e);
            }
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, &name, &errors));
            }
        } else {
            defaults::apply(info, old, obj);
            if let Some(e) = meta::validate_name(info, &name) {
                return Err(ApiError::invalid(info, &name, &[e]));
            }
            // A subresource write changes what it is for and nothing else.
            if let Some(old) = old.filter(|_| self.target.subresource.is_none()) {
                let errors = crate::immutable::check(info, old, obj);
                if !errors.is_empty() {
                    return Err(ApiError::invalid(info, &name, &errors));
                }
            }
        }
        if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" {
            crd::admit(obj, old).map_err(|errors| ApiError::invalid(info, &name, &errors))?;
        }
        // Mutating webhooks' patches, then validation of what they produced.
        if self.admitted.mutates() && self.target.subresource.as_deref() != Some("scale") {
            self.admitted.apply(obj)?;
            if let Some(schema) = &info.schema {
                let errors = schema::validate(schema, obj);
                if !errors.is_empty() {
                    return Err(ApiError::invalid(info, &name, &errors));
                }
            }
        }
        Ok(warnings)
    }

    fn check_namespace(&self, txn: &Txn<'_>, name: &str) -> Result<(), ApiError> {
        let info = &self.target.info;
        if !info.namespaced {
            return Ok(());
        }
        let ns = self.namespace();
        match txn.state().get("/namespaces", "", ns) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if meta::is_deleting(&n) => {
                Err(ApiError::namespace_terminating(info, name, ns))
            }
            Some(_) => Ok(()),
        }
    }

    fn create(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        if info.namespaced && self.target.namespace.is_none() {
            return Err(ApiError::method_not_allowed());
        }
        let mut obj = self.parse(bytes)?;
        self.check_type(info, &mut obj)?;
        self.check_identity(&obj)?;
        meta::prepare_create(info, self.target.namespace.as_deref(), &mut obj)?;
        let manager = self.manager();
        let dry_run = self.dry_run();
        let storage = self.storage();
        self.server.store.write(|txn| {
            let name = meta_str(&obj, "name").to_string();
            self.check_namespace(txn, &name)?;
            let warnings = self.admit(info, None, &mut obj)?;
            if txn.state().contains(&storage, self.namespace(), &name) {
                return Err(ApiError::already_exists(info, &name));
            }
            patch::track_update(
                None,
                &mut obj,
                &manager,
                None,
                &info.group,
                &info.kind,
                info.schema.as_ref(),
            );
            let stored = to_storage(info, obj);
            let stored = if dry_run {
                stored
            } else {
                txn.put(&storage, stored)
            };
            Ok(Written {
                code: 201,
                object: present(info, &stored),
                warnings,
            })
        })
    }

    fn update(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let mut body = self.parse(bytes)?;
        if self.target.subresource.as_deref() == Some("scale") {
            return self.write_scale(move |_: Option<&Value>| Ok(body));
        }
        self.check_type(info, &mut body)?;
        self.check_identity(&body)?;
        self.write_existing(move |_| Ok(body), None)
    }

    fn patch(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let ctype = negotiate::content_type(&self.headers);
        const CR_TYPES: &[&str] = &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ];
        let kind = match ctype.as_str() {
            "application/json-patch+json" => PatchKind::Json,
            "application/merge-patch+json" => PatchKind::Merge,
            "application/strategic-merge-patch+json" if info.schema.is_none() => {
                PatchKind::Strategic
            }
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
            _ => {
                let mut accepted = CR_TYPES.to_vec();
                if info.schema.is_none() {
                    accepted.insert(2, "application/strategic-merge-patch+json");
                }
                return Err(ApiError::unsupported_media_type(&ctype, &accepted));
            }
        };
        let body: Value = if kind == PatchKind::Apply {
            negotiate::parse_body("application/yaml", bytes)?
        } else {
            negotiate::parse_body("application/json", bytes)?
        };
        if kind == PatchKind::Apply {
            if self.query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_string(),
                    details: Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})),
                    retry_after: None,
                });
            }
            if self.target.subresource.is_none() {
                let mut config = body.clone();
                self.check_type(info, &mut config)?;
                self.check_identity(&config)?;
            }
        }
        let mut body = body;
        if kind == PatchKind::Apply
            && self.target.subresource.is_none()
            && info.status_subresource
            && let Some(map) = body.as_object_mut()
        {
            map.remove("status");
        }
        let apply_create = (kind == PatchKind::Apply).then(|| body.clone());
        let schema = info.schema.clone();
        let group = info.group.clone();
        let kind_name = info.kind.clone();
        let manager = self.manager();
        let force = is_true(&self.query, "force");
        let patcher = move |old: Option<&Value>| -> Result<Value, ApiError> {
            let Some(old) = old else {
                return Err(ApiError::internal("no object to patch"));
            };
            let mut target = old.clone();
            match kind {
                PatchKind::Json => {
                    patch::json_patch(&mut target, &body).map_err(|e| patch_error(&e))?
                }
                PatchKind::Merge => patch::merge_patch(&mut target, &body),
                PatchKind::Strategic => {
                    patch::strategic_merge(&mut target, &body, &group, &kind_name)
                        .map_err(|e| patch_error(&e))?
                }
                PatchKind::Apply => {
                    return match patch::apply(
                        Some(old),
                        &body,
                        &manager,
                        force,
                        &group,
                        &kind_name,
                        schema.as_ref(),
                    )
                    .map_err(|e| patch_error(&e))?
                    {
                        Ok(applied) => Ok(applied),
                        Err(conflicts) => Err(apply_conflict(&conflicts)),
                    };
                }
            }
            Ok(target)
        };
        if self.target.subresource.as_deref() == Some("scale") {
            return self.write_scale(patcher);
        }
        self.write_existing(patcher, apply_create)
    }

    /// Read-modify-write of an existing object; with `apply_create`, an absent
    /// object is created by server-side apply.
    fn write_existing(
        &self,
        compute: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
        apply_create: Option<Value>,
    ) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let storage = self.storage();
        let manager = self.manager();
        let dry_run = self.dry_run();
        let sub = self.target.subresource.clone();
        let name = self.name().to_string();
        self.server.store.write(|txn| {
            if info.namespaced
                && txn
                    .state()
                    .get("/namespaces", "", self.namespace())
                    .is_none()
            {
                return Err(ApiError::namespace_not_found(self.namespace()));
            }
            let Some(stored) = txn.state().get(&storage, self.namespace(), &name) else {
                if let Some(config) = apply_create
                    && sub.is_none()
                {
                    return self.apply_create(txn, &storage, &manager, dry_run, &config);
                }
                return Err(ApiError::not_found(info, &name));
            };
            let old = present(info, &stored);
            let mut new = compute(Some(&old))?;
            self.check_type(info, &mut new)?;
            self.check_identity(&new)?;
            if sub.as_deref() == Some("finalize") {
                let finalizers = new.pointer("/spec/finalizers").cloned();
                new = old.clone();
                if let Some(f) = finalizers {
                    new["spec"]["finalizers"] = f;
                }
            }
            let status_sub = sub.as_deref().filter(|s| *s == "status");
            meta::prepare_update(info, &old, &mut new, status_sub)?;
            let warnings = self.admit(info, Some(&old), &mut new)?;
            meta::bump_generation(info, &old, &mut new)?;
            // An apply computed managedFields itself.
            if !self.content_is_apply() {
                patch::track_update(
                    Some(&old),
                    &mut new,
                    &manager,
                    status_sub,
                    &info.group,
                    &info.kind,
                    info.schema.as_ref(),
                );
            }
            let mut unchanged = new.clone();
            if let Some(meta) = unchanged.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert(
                    "resourceVersion".into(),
                    json!(meta_str(&old, "resourceVersion")),
                );
            }
            if unchanged == old {
                return Ok(Written {
                    code: 200,
                    object: old,
                    warnings,
                });
            }
            let stored = to_storage(info, new);
            let result = if dry_run {
                stored
            } else {
                deletion::finish_or_put(txn, &storage, stored)
            };
            Ok(Written {
                code: 200,
                object: present(info, &result),
                warnings,
            })
        })
    }

    fn content_is_apply(&self) -> bool {
        negotiate::content_type(&self.headers).starts_with("application/apply-patch")
    }

    fn apply_create(
        &self,
        txn: &mut Txn<'_>,
        storage: &str,
        manager: &str,
        dry_run: bool,
        config: &Value,
    ) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let name = self.name().to_string();
        self.check_namespace(txn, &name)?;
        let force = is_true(&self.query, "force");
        let mut obj = match patch::apply(
            None,
            config,
            manager,
            force,
            &info.group,
            &info.kind,
            info.schema.as_ref(),
        )
        .map_err(|e| patch_error(&e))?
        {
            Ok(obj) => obj,
            Err(conflicts) => return Err(apply_conflict(&conflicts)),
        };
        self.check_type(info, &mut obj)?;
        meta::metadata_mut(&mut obj)?.insert("name".into(), json!(name));
        meta::prepare_create(info, self.target.namespace.as_deref(), &mut obj)?;
        let warnings = self.admit(info, None, &mut obj)?;
        let stored = to_storage(info, obj);
        let stored = if dry_run {
            stored
        } else {
            txn.put(storage, stored)
        };
        Ok(Written {
            code: 201,
            object: present(info, &stored),
            warnings,
        })
    }

    fn write_scale(
        &self,
        compute: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let Some(scale_paths) = info.scale.clone() else {
            return Err(ApiError::unknown_resource());
        };
        let storage = self.storage();
        let manager = self.manager();
        let dry_run = self.dry_run();
        let name = self.name().to_string();
        self.server.store.write(|txn| {
            let stored = txn
                .state()
                .get(&storage, self.namespace(), &name)
                .ok_or_else(|| ApiError::not_found(info, &name))?;
            let old = present(info, &stored);
            let scale = scale_of(info, &old);
            let new_scale = compute(Some(&scale))?;
            let requested_rv = meta_str(&new_scale, "resourceVersion");
            if !requested_rv.is_empty() && requested_rv != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(info, &name));
            }
            let replicas = new_scale
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(0));
            let mut new = old.clone();
            set_path(&mut new, &scale_paths.spec_replicas_path, replicas);
            meta::prepare_update(info, &old, &mut new, None)?;
            self.admit(info, Some(&old), &mut new)?;
            meta::bump_generation(info, &old, &mut new)?;
            patch::track_update(
                Some(&old),
                &mut new,
                &manager,
                Some("scale"),
                &info.group,
                &info.kind,
                info.schema.as_ref(),
            );
            let stored = if dry_run { new } else { txn.put(&storage, new) };
            Ok(Written {
                code: 200,
                object: scale_of(info, &present(info, &stored)),
                warnings: Vec::new(),
            })
        })
    }

    fn delete_options(&self, bytes: &[u8]) -> Result<(Propagation, Preconditions, bool), ApiError> {
        let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            negotiate::parse_body(&negotiate::content_type(&self.headers), bytes)?
        };
        let policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.query.get("propagationPolicy").cloned());
        let orphan = body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            || self
                .query
                .get("orphanDependents")
                .is_some_and(|v| v == "true");
        let propagation = match policy.as_deref() {
            Some(p) => Propagation::parse(p).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ))
            })?,
            None if orphan => Propagation::Orphan,
            None => Propagation::Background,
        };
        let preconditions = Preconditions {
            uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let dry_run = self.dry_run()
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        Ok((propagation, preconditions, dry_run))
    }

    fn delete(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let (propagation, preconditions, dry_run) = self.delete_options(bytes)?;
        let name = self.name().to_string();
        if info.group.is_empty()
            && info.plural == "namespaces"
            && crate::namespaces::PROTECTED.contains(&name.as_str())
        {
            return Err(ApiError::forbidden(
                info,
                &name,
                "this namespace may not be deleted",
            ));
        }
        let storage = self.storage();
        self.server.store.write(|txn| {
            let outcome = deletion::delete(
                txn,
                &storage,
                self.namespace(),
                &name,
                propagation,
                &preconditions,
                dry_run,
            );
            match outcome {
                Outcome::NotFound => Err(ApiError::not_found(info, &name)),
                Outcome::Conflict(why) => Err(ApiError::conflict_because(info, &name, &why)),
                Outcome::Deferred(obj) => {
                    if !dry_run && storage == crd::CRD_STORAGE {
                        crd::cleanup(txn, &name);
                    }
                    Ok(Written {
                        code: 202,
                        object: present(info, &obj),
                        warnings: Vec::new(),
                    })
                }
                // Pods answer with the object; other kinds with a Success
                // Status, which tells clients the object is already gone.
                Outcome::Removed(obj) if info.group.is_empty() && info.kind == "Pod" => {
                    Ok(Written {
                        code: 200,
                        object: present(info, &obj),
                        warnings: Vec::new(),
                    })
                }
                Outcome::Removed(obj) => Ok(Written {
                    code: 200,
                    object: json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": info.group,
                            "kind": info.plural,
                            "uid": meta_str(&obj, "uid"),
                        },
                    }),
                    warnings: Vec::new(),
                }),
            }
        })
    }

    fn delete_collection(
        &self,
        bytes: &[u8],
        format: Format,
    ) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let (propagation, _, dry_run) = self.delete_options(bytes)?;
        let selectors = Selectors::from_query(&self.query)?;
        let storage = self.storage();
        let (items, rv) = self.server.store.write(|txn| {
            let keys: Vec<(String, String)> = txn
                .state()
                .list(&storage, self.target.namespace.as_deref(), None)
                .filter(|(_, obj)| selectors.matches_stored(obj))
                .map(|(key, _)| key.clone())
                .collect();
            let mut items = Vec::new();
            for (namespace, name) in keys {
                if storage == "/namespaces" && crate::namespaces::PROTECTED.contains(&name.as_str())
                {
                    continue;
                }
                match deletion::delete(
                    txn,
                    &storage,
                    &namespace,
                    &name,
                    propagation,
                    &Preconditions::default(),
                    dry_run,
                ) {
                    Outcome::Deferred(obj) => {
                        if !dry_run && storage == crd::CRD_STORAGE {
                            crd::cleanup(txn, &name);
                        }
                        items.push(obj);
                    }
                    Outcome::Removed(obj) => items.push(obj),
                    Outcome::NotFound | Outcome::Conflict(_) => {}
                }
            }
            (items, txn.state().rv())
        });
        let items: Vec<Value> = items.iter().map(|item| present(info, item)).collect();
        let body = json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        });
        Ok(respond(200, format, &body, &[]))
    }
}

fn patch_error(error: &patch::PatchError) -> ApiError {
    match error.status_code() {
        422 => ApiError {
            code: 422,
            reason: "Invalid",
            message: error.to_string(),
            details: None,
            retry_after: None,
        },
        _ => ApiError::bad_request(error.to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn apply_conflict(conflicts: &[patch::ApplyConflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": c.cause_message(),
                "field": c.field,
            })
        })
        .collect();
    ApiError {
        code: 409,
        reason: "Conflict",
        message: patch::conflict_message(conflicts),
        details: Some(json!({"causes": causes})),
        retry_after: None,
    }
}

/// Paths (`.spec.foo`) present in `before` but not in `after`.
fn removed_paths(before: &Value, after: &Value, prefix: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let path = format!("{prefix}.{key}");
                match a.get(key) {
                    Some(next) => removed_paths(value, next, &path, out),
                    None => out.push(path),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (value, next)) in b.iter().zip(a).enumerate() {
                removed_paths(value, next, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Removes a field named like `spec.containers[0].foo`.
fn remove_path(obj: &mut Value, path: &str) {
    let mut segments: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        segments.push((key.to_string(), None));
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse::<usize>() {
                segments.push((String::new(), Some(i)));
            }
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut current = obj;
    for (key, index) in parents {
        let next = match index {
            Some(i) => current.get_mut(*i),
            None => current.get_mut(key.as_str()),
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    if let (None, Some(map)) = (last.1, current.as_object_mut()) {
        map.remove(&last.0);
    }
}

fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, key| v.get(key))
}

fn set_path(obj: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut current = obj;
    for key in &keys[..keys.len().saturating_sub(1)] {
        let Some(map) = current.as_object_mut() else {
            return;
        };
        current = map.entry(key.to_string()).or_insert_with(|| json!({}));
    }
    if let (Some(map), Some(last)) = (current.as_object_mut(), keys.last()) {
        map.insert(last.to_string(), value);
    }
}

fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        parts.extend(
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// The `autoscaling/v1` Scale view of an object.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let Some(paths) = &info.scale else {
        return obj.clone();
    };
    let spec_replicas = get_path(obj, &paths.spec_replicas_path)
        .cloned()
        .unwrap_or(json!(0));
    let status_replicas = get_path(obj, &paths.status_replicas_path)
        .cloned()
        .unwrap_or(json!(0));
    let selector = if info.schema.is_some() {
        paths
            .label_selector_path
            .as_deref()
            .and_then(|p| get_path(obj, p))
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        obj.pointer("/spec/selector").map(selector_string)
    };
    let mut meta = Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{field}")) {
            meta.insert(field.into(), v.clone());
        }
    }
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = selector {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

/// Whether `target` is a pod's exec, attach or port-forward stream, which needs processes.
pub(super) fn is_stream(target: &super::Target) -> bool {
    matches!(
        target.subresource.as_deref(),
        Some("exec" | "attach" | "portforward")
    )
}
