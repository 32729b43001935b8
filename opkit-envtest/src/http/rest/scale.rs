//! The scale subresource.

use super::write::{get_path, set_path};
use super::{RestRequest, Written};
use crate::error::ApiError;
use crate::meta;
use crate::patch;
use crate::resources::ResourceInfo;
use crate::store::meta_str;
use serde_json::{Map, Value, json};

impl RestRequest {
    pub(super) fn write_scale(
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
            let old = self.present_old(&stored)?;
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
            // The Scale of the request's version, with the resourceVersion the write stamped.
            let mut scaled = scale_of(info, &new);
            let stored = self.to_storage(new)?;
            let stored = if dry_run {
                stored
            } else {
                txn.put(&storage, stored)
            };
            if let Some(meta) = scaled.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert(
                    "resourceVersion".into(),
                    json!(meta_str(&stored, "resourceVersion")),
                );
            }
            Ok(Written {
                code: 200,
                object: scaled,
                warnings: Vec::new(),
            })
        })
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
pub(super) fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
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
