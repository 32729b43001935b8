//! Object metadata semantics: names, uid, timestamps, generation, the
//! status split and finalizer rules, as the real server's generic registry applies them.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::schema::FieldError;
use rand::Rng;
use regex::Regex;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The current time as Kubernetes serializes `metav1.Time` (RFC 3339, seconds).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

static SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// Kinds whose names must be DNS-1123 labels rather than subdomains.
fn needs_label_name(info: &ResourceInfo) -> bool {
    info.group.is_empty() && matches!(info.plural.as_str(), "namespaces" | "services")
}

/// Kinds whose names are free-form path segments (RBAC allows `system:foo`).
fn free_form_name(info: &ResourceInfo) -> bool {
    info.group == "rbac.authorization.k8s.io"
}

/// Validates `metadata.name`; `None` when valid.
pub(crate) fn validate_name(info: &ResourceInfo, name: &str) -> Option<FieldError> {
    let invalid = |detail: String| FieldError {
        field: "metadata.name".to_string(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: \"{name}\": {detail}"),
    };
    if free_form_name(info) {
        if name == "." || name == ".." || name.contains('/') || name.contains('%') {
            return Some(invalid(
                "may not be '.' or '..' and may not contain '/' or '%'".to_string(),
            ));
        }
        return None;
    }
    if needs_label_name(info) {
        if name.len() > 63 {
            return Some(invalid("must be no more than 63 characters".to_string()));
        }
        if !LABEL.is_match(name) {
            return Some(invalid("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()));
        }
        return None;
    }
    if name.len() > 253 {
        return Some(invalid("must be no more than 253 characters".to_string()));
    }
    if !SUBDOMAIN.is_match(name) {
        return Some(invalid("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()));
    }
    None
}

/// Whether the kind tracks `metadata.generation`.
pub(crate) fn has_generation(info: &ResourceInfo) -> bool {
    info.schema.is_some()
        || matches!(
            info.kind.as_str(),
            "Deployment"
                | "StatefulSet"
                | "ReplicaSet"
                | "DaemonSet"
                | "Job"
                | "CronJob"
                | "Ingress"
                | "NetworkPolicy"
                | "PodDisruptionBudget"
                | "HorizontalPodAutoscaler"
                | "Pod"
                | "CustomResourceDefinition"
        )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The `metadata` map of an object, created if absent.
pub(crate) fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// Fills server-set metadata on create: name from generateName, namespace,
/// uid, creationTimestamp, generation; clears what clients may not set.
pub(crate) fn prepare_create(
    info: &ResourceInfo,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let meta = metadata_mut(obj)?;
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                info,
                "",
                &[FieldError {
                    field: "metadata.name".to_string(),
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".to_string(),
                }],
            ));
        }
        let generated = format!("{prefix}{}", random_suffix());
        meta.insert("name".into(), Value::String(generated));
    }
    if info.namespaced {
        if let Some(ns) = namespace {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
    } else {
        meta.remove("namespace");
    }
    meta.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    meta.insert("creationTimestamp".into(), Value::String(now()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if has_generation(info) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if info.status_subresource
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    Ok(())
}

fn without_meta_and(obj: &Value, status_too: bool) -> Map<String, Value> {
    let mut map = obj.as_object().cloned().unwrap_or_default();
    map.remove("metadata");
    map.remove("apiVersion");
    map.remove("kind");
    if status_too {
        map.remove("status");
    }
    map
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Carries server-owned metadata from `old` into `new` on update, splits
/// status from the rest according to the endpoint and enforces finalizer
/// rules ([`bump_generation`] follows admission). `subresource` is `Some("status")` for `/status`.
pub(crate) fn prepare_update(
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    subresource: Option<&str>,
) -> Result<(), ApiError> {
    let name = crate::store::meta_str(old, "name").to_string();
    let requested_rv = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let old_rv = crate::store::meta_str(old, "resourceVersion");
    if !requested_rv.is_empty() && requested_rv != old_rv {
        return Err(ApiError::conflict(info, &name));
    }
    if subresource == Some("status") {
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        *new = old.clone();
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(status) => {
                    map.insert("status".into(), status);
                }
                None => {
                    map.remove("status");
                }
            }
        }
        if let Some(managed) = managed {
            metadata_mut(new)?.insert("managedFields".into(), managed);
        }
        return Ok(());
    }
    if info.status_subresource
        && let Some(map) = new.as_object_mut()
    {
        match old.get("status") {
            Some(status) => {
                map.insert("status".into(), status.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let meta = metadata_mut(new)?;
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.and_then(|m| m.get(field)) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("selfLink");
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            let list = added
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::invalid(
                info,
                &name,
                &[FieldError {
                    field: "metadata.finalizers".to_string(),
                    reason: "FieldValueForbidden",
                    message: format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                    ),
                }],
            ));
        }
    }
    Ok(())
}

/// Bumps `generation` when something other than metadata and status changed. Called once the
/// new object is defaulted and mutated, as the real server's update strategy runs after
/// defaulting and mutating admission: an update that only omits defaulted fields changes nothing.
pub(crate) fn bump_generation(
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    if has_generation(info)
        && without_meta_and(old, info.status_subresource)
            != without_meta_and(new, info.status_subresource)
    {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(new)?.insert("generation".into(), json!(generation + 1));
    }
    Ok(())
}

/// Whether the object has a deletionTimestamp.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Whether the object has no finalizers left.
pub(crate) fn has_no_finalizers(obj: &Value) -> bool {
    finalizers(obj).is_empty()
}

/// Sets apiVersion and kind to what the served version calls them
/// (conversion strategy None: only the apiVersion changes).
pub(crate) fn set_type(info: &ResourceInfo, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(info.api_version()));
        map.insert("kind".into(), Value::String(info.kind.clone()));
    }
}

/// The strings of a JSON array (an absent or malformed one is empty).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
