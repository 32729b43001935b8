//! Reads: get, list (with pages and selectors) and pod logs.

use super::scale::scale_of;
use super::{RestRequest, Selectors, needs_conversion, present, present_all};
use crate::conversion;
use crate::error::ApiError;
use crate::go_order::GoOrder;
use crate::http::negotiate::{self, Format, respond};
use crate::resources::ResourceInfo;
use crate::store::{Stored, meta_str};
use crate::table;
use axum::body::Body;
use serde_json::{Value, json};
use std::sync::Arc;

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
    let head = serde_json::to_vec(&GoOrder(&head)).unwrap_or_else(|_| b"{}".to_vec());
    out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        if needs_conversion(info, item) {
            let converted = present(info, &item.value());
            if serde_json::to_writer(&mut out, &GoOrder(&converted)).is_err() {
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

impl RestRequest {
    /// A pod's log after the real server's container checks; simulated containers write nothing,
    /// so it is empty (and a follow ends at once instead of waiting forever).
    pub(super) fn pod_log(&self) -> Result<http::Response<Body>, ApiError> {
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

    pub(super) async fn get(&self, format: Format) -> Result<http::Response<Body>, ApiError> {
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
        let object = present_all(&self.server, info, vec![stored.value()])
            .await?
            .pop()
            .unwrap_or_default();
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

    pub(super) async fn list(&self, format: Format) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let selectors = Selectors::from_query(&self.query, &self.target.info)?;
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
            let stored = items.iter().map(|o| o.value()).collect();
            let objects = present_all(&self.server, info, stored).await?;
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
        let webhook = conversion::of(info).is_some_and(conversion::Versions::has_webhook);
        if webhook && items.iter().any(|i| needs_conversion(info, i)) {
            let stored = items.iter().map(|o| o.value()).collect();
            let list = json!({
                "kind": info.list_kind(),
                "apiVersion": info.api_version(),
                "metadata": metadata,
                "items": present_all(&self.server, info, stored).await?,
            });
            return Ok(respond(200, format, &list, &[]));
        }
        Ok(list_response(info, format, metadata, &items))
    }
}
