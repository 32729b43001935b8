//! Custom resources in several versions: objects are stored in the CRD's storage version and
//! served in the version a request names, converted by the CRD's `spec.conversion`: strategy
//! `None` rewrites `apiVersion` only, `Webhook` sends a ConversionReview to the CRD's webhook,
//! as kube-apiserver does. A converted object is pruned to the target version's schema, and
//! its metadata is the original's but for the labels and annotations the webhook returned.
//!
//! Reads convert after taking their snapshot of the store. Writes compute under the store's
//! lock, where no webhook can be called: they take conversions from a [`Memo`], and a write
//! that needed one the memo lacked is run again once the webhook has answered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::admission::{self, Services};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::schema::{self, FieldError};

/// How long a conversion webhook has to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The versions of one CRD and how objects move between them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Versions {
    group: String,
    kind: String,
    /// The version objects are stored in.
    pub storage: String,
    /// The `openAPIV3Schema` of every version, served or not.
    schemas: HashMap<String, Value>,
    /// `spec.conversion.webhook` when the strategy is `Webhook`.
    webhook: Option<Value>,
    /// The deprecation warning of each deprecated version.
    warnings: HashMap<String, String>,
    /// The served versions, in Kubernetes' order of preference.
    served: Vec<String>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn has(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer).is_some_and(|v| !v.is_null())
}

impl Versions {
    /// The versions a stored CRD defines.
    pub fn of(crd: &Value) -> Self {
        let versions: Vec<&Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let storage = versions
            .iter()
            .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .map(|v| text(v, "/name").to_string())
            .unwrap_or_default();
        let schemas = versions
            .iter()
            .filter_map(|v| {
                let schema = v.pointer("/schema/openAPIV3Schema")?;
                Some((text(v, "/name").to_string(), schema.clone()))
            })
            .collect();
        let webhook = (text(crd, "/spec/conversion/strategy") == "Webhook")
            .then(|| crd.pointer("/spec/conversion/webhook").cloned())
            .flatten();
        let group = text(crd, "/spec/group").to_string();
        let kind = text(crd, "/spec/names/kind").to_string();
        let warnings = versions
            .iter()
            .filter(|v| v.get("deprecated").and_then(Value::as_bool) == Some(true))
            .map(|v| {
                let name = text(v, "/name");
                let warning = match v.get("deprecationWarning").and_then(Value::as_str) {
                    Some(warning) => warning.to_string(),
                    None => default_warning(&group, &kind, name, &versions),
                };
                (name.to_string(), warning)
            })
            .collect();
        let mut served: Vec<String> = versions
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
            .map(|v| text(v, "/name").to_string())
            .collect();
        served.sort_by(|a, b| compare_versions(b, a));
        Versions {
            group,
            kind,
            storage,
            schemas,
            webhook,
            warnings,
            served,
        }
    }

    /// The served versions, the preferred first.
    pub fn served(&self) -> &[String] {
        &self.served
    }

    /// The warning every request to `version` gets, if it is deprecated.
    pub fn warning(&self, version: &str) -> Option<&str> {
        self.warnings.get(version).map(String::as_str)
    }

    fn api_version(&self, version: &str) -> String {
        format!("{}/{version}", self.group)
    }

    /// Whether `object` is one of this CRD's objects in another version than `version`.
    fn differs(&self, object: &Value, version: &str) -> bool {
        text(object, "/kind") == self.kind
            && text(object, "/apiVersion") != self.api_version(version)
    }

    /// Whether objects in other versions go through a webhook.
    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    /// Whether a stored object is in another version than the storage version.
    pub fn is_outdated(&self, stored: &Value) -> bool {
        self.differs(stored, &self.storage)
    }

    /// `object` in `version` when no webhook is needed (it is in `version` already, or the
    /// strategy is `None`); else the object back, for the webhook.
    pub fn convert_here(&self, mut object: Value, version: &str) -> Result<Value, Value> {
        if !self.differs(&object, version) {
            return Ok(object);
        }
        if self.webhook.is_some() {
            return Err(object);
        }
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(self.api_version(version)));
        }
        Ok(self.coerce(object, version))
    }

    /// Prunes a converted object to what `version`'s schema declares.
    fn coerce(&self, mut object: Value, version: &str) -> Value {
        if let Some(schema) = self.schemas.get(version) {
            schema::prune(schema, &mut object);
        }
        object
    }

    /// `objects` in `version`, converted by the CRD's strategy; those already in `version`
    /// are returned as they are, and one ConversionReview carries all the others.
    pub async fn convert(
        &self,
        services: &Services,
        objects: Vec<Value>,
        version: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::with_capacity(objects.len());
        let mut pending = Vec::new();
        for object in objects {
            match self.convert_here(object, version) {
                Ok(done) => out.push(Some(done)),
                Err(object) => {
                    out.push(None);
                    pending.push(object);
                }
            }
        }
        if !pending.is_empty() {
            let mut converted = self.call(services, pending, version).await?.into_iter();
            for slot in out.iter_mut().filter(|slot| slot.is_none()) {
                *slot = converted.next();
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// One ConversionReview with `objects` (all in other versions than `version`).
    async fn call(
        &self,
        services: &Services,
        objects: Vec<Value>,
        version: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let webhook = self.webhook.as_ref().ok_or_else(|| {
            ApiError::internal("conversion: no webhook for a conversion that needs one")
        })?;
        // The kind in messages is the first object's, as the API server names the input.
        let source = objects
            .first()
            .map(|o| format!("{}, Kind={}", text(o, "/apiVersion"), text(o, "/kind")))
            .unwrap_or_default();
        let failed =
            |detail: String| ApiError::unknown(format!("conversion webhook for {source} {detail}"));
        let review_version = review_version(webhook)
            .ok_or_else(|| failed("failed: no supported conversion review versions".into()))?;
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({
            "apiVersion": format!("apiextensions.k8s.io/{review_version}"),
            "kind": "ConversionReview",
            "request": {
                "uid": uid,
                "desiredAPIVersion": self.api_version(version),
                "objects": objects,
            },
        });
        // The client reads `clientConfig` beside the timeout, as for admission webhooks.
        let client =
            json!({"clientConfig": webhook.get("clientConfig").cloned().unwrap_or(Value::Null)});
        let answer = admission::post(
            services,
            &client,
            admission::Caller::Conversion,
            TIMEOUT,
            &review,
        )
        .await
        .map_err(|e| failed(format!("failed: {e}")))?;
        let converted =
            decode(&answer, &uid, review_version).map_err(|e| failed(format!("failed: {e}")))?;
        if converted.len() != objects.len() {
            return Err(failed(format!(
                "returned {} objects, expected {}",
                converted.len(),
                objects.len()
            )));
        }
        let single = objects.len() == 1;
        let expected = self.api_version(version);
        let mut out = Vec::with_capacity(objects.len());
        for (i, (original, converted)) in objects.iter().zip(converted).enumerate() {
            // The API server words one object's failures apart from a list's.
            let (object_at, metadata_at, identity_at) = if single {
                (
                    "returned invalid object at index 0".to_string(),
                    "returned invalid metadata".to_string(),
                    "returned invalid object".to_string(),
                )
            } else {
                let at = format!("returned invalid converted object at index {i}");
                (
                    at.clone(),
                    format!("returned invalid metadata in object at index {i}"),
                    at,
                )
            };
            let got = text(&converted, "/apiVersion");
            if got != expected {
                return Err(failed(format!(
                    "{object_at}: invalid groupVersion (expected {expected}, received {got})"
                )));
            }
            let (want, got) = (text(original, "/kind"), text(&converted, "/kind"));
            if want != got {
                return Err(failed(format!(
                    "{object_at}: invalid kind (expected {want}, received {got})"
                )));
            }
            same_identity(original, &converted)
                .map_err(|e| failed(format!("{identity_at}: {e}")))?;
            let restored = restore_metadata(original, converted)
                .map_err(|e| failed(format!("{metadata_at}: {e}")))?;
            out.push(self.coerce(restored, version));
        }
        Ok(out)
    }

    /// `object` in `version` from `memo`; a conversion the memo lacks is recorded there and
    /// the caller's attempt fails, to be run again once [`Memo::fetch`] has it.
    pub fn convert_memo(
        &self,
        memo: &Memo,
        object: Value,
        version: &str,
    ) -> Result<Value, ApiError> {
        let object = match self.convert_here(object, version) {
            Ok(done) => return Ok(done),
            Err(object) => object,
        };
        let key = (version.to_string(), content_key(&object));
        let found = lock(&memo.done).get(&key).cloned();
        match found {
            Some(converted) => {
                let restored = restore_metadata(&object, converted).map_err(|e| {
                    ApiError::unknown(format!("conversion webhook returned invalid metadata: {e}"))
                })?;
                Ok(self.coerce(restored, version))
            }
            None => {
                lock(&memo.missing).push((object, version.to_string()));
                Err(ApiError::internal(PENDING))
            }
        }
    }
}

/// The message of an attempt that lacked a conversion; it never reaches a client.
const PENDING: &str = "a conversion webhook answer is pending";

/// The deprecation warning of a version without its own: kube-apiserver's, pointing at the
/// newest served version that is not deprecated.
fn default_warning(group: &str, kind: &str, deprecated: &str, versions: &[&Value]) -> String {
    let mut message = format!("{group}/{deprecated} {kind} is deprecated");
    let newer = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter(|v| v.get("deprecated").and_then(Value::as_bool) != Some(true))
        .map(|v| text(v, "/name"))
        .filter(|name| compare_versions(deprecated, name).is_lt())
        .max_by(|a, b| compare_versions(a, b));
    if let Some(newer) = newer {
        message.push_str(&format!("; use {group}/{newer} {kind}"));
    }
    message
}

/// Kubernetes' version order: GA above beta above alpha, then by major and minor number;
/// names not of the form `v1`, `v1beta2` sort below all of them, alphabetically.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        let (level, minor) = if tail.is_empty() {
            (2, 0)
        } else if let Some(n) = tail.strip_prefix("beta") {
            (1, n.parse().ok()?)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n.parse().ok()?)
        } else {
            return None;
        };
        Some((major, level, minor))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => (la, ma, na).cmp(&(lb, mb, nb)),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => b.cmp(a),
    }
}

/// The ConversionReview version to send: the first of the webhook's the server speaks.
fn review_version(webhook: &Value) -> Option<&'static str> {
    webhook
        .get("conversionReviewVersions")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|v| match v {
            "v1" => Some("v1"),
            "v1beta1" => Some("v1beta1"),
            _ => None,
        })
}

/// The converted objects of a ConversionReview answer, or why it is not one.
fn decode(body: &[u8], uid: &str, version: &str) -> Result<Vec<Value>, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the server responded with a body that is not a ConversionReview: {e}")
    })?;
    if version == "v1" {
        let got = format!(
            "{}, Kind={}",
            text(&review, "/apiVersion"),
            text(&review, "/kind")
        );
        let expected = "apiextensions.k8s.io/v1, Kind=ConversionReview";
        if got != expected {
            return Err(format!(
                "expected webhook response of {expected}, got {got}"
            ));
        }
    }
    let response = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("no response provided")?;
    if version == "v1" && text(response, "/uid") != uid {
        return Err(format!(
            "expected response.uid={uid:?}, got {:?}",
            text(response, "/uid")
        ));
    }
    let status = text(response, "/result/status");
    if status != "Success" {
        let message = text(response, "/result/message");
        return Err(if message.is_empty() {
            format!("response.result.status was '{status}', not 'Success'")
        } else {
            message.to_string()
        });
    }
    match response.get("convertedObjects") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(objects)) => Ok(objects.clone()),
        Some(_) => Err("response.convertedObjects is not a list".to_string()),
    }
}

/// A converted object keeps its kind, name, namespace and uid.
fn same_identity(original: &Value, converted: &Value) -> Result<(), String> {
    for (field, what) in [
        ("/metadata/name", "name"),
        ("/metadata/namespace", "namespace"),
        ("/metadata/uid", "UID"),
    ] {
        let (a, b) = (text(original, field), text(converted, field));
        if a != b {
            return Err(format!("must have the same {what}: {a} != {b}"));
        }
    }
    Ok(())
}

/// `converted` with the metadata of `original`, but for the labels and annotations the
/// webhook returned, which must be maps of strings.
fn restore_metadata(original: &Value, mut converted: Value) -> Result<Value, String> {
    let returned = match converted.get("metadata") {
        Some(Value::Object(meta)) => meta.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
        None => return Err("missing metadata in converted object".to_string()),
    };
    let mut metadata = original
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for field in ["labels", "annotations"] {
        match returned.get(field) {
            None | Some(Value::Null) => {
                metadata.remove(field);
            }
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    if !value.is_string() {
                        return Err(format!(
                            "metadata.{field}[{key}] must be a string, but is {} in converted object",
                            go_type(value)
                        ));
                    }
                }
                metadata.insert(field.into(), Value::Object(map.clone()));
            }
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        }
    }
    let Some(map) = converted.as_object_mut() else {
        return Err("the converted object is not an object".to_string());
    };
    map.insert("metadata".into(), Value::Object(metadata));
    Ok(converted)
}

/// The Go type a JSON value decodes to, as the API server's messages name it.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// What a conversion depends on: everything but the metadata a write stamps (uid, times,
/// resourceVersion, generated names), which the result takes from its original anyway.
fn content_key(object: &Value) -> String {
    let mut content = object.as_object().cloned().unwrap_or_default();
    let metadata = content
        .remove("metadata")
        .and_then(|m| match m {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let kept: Map<String, Value> = metadata
        .into_iter()
        .filter(|(k, _)| k == "labels" || k == "annotations")
        .collect();
    content.insert("metadata".into(), Value::Object(kept));
    Value::Object(content).to_string()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single insert or take: a panic leaves consistent data.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The webhook conversions one request has fetched, for the attempts that run under the
/// store's lock, and those an attempt found missing.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    done: Mutex<HashMap<(String, String), Value>>,
    missing: Mutex<Vec<(Value, String)>>,
}

impl Memo {
    /// Whether an attempt failed only for lack of a conversion, which is now fetched; an
    /// error when the webhook refused it.
    pub async fn fetch(&self, versions: &Versions, services: &Services) -> Result<bool, ApiError> {
        let missing = std::mem::take(&mut *lock(&self.missing));
        if missing.is_empty() {
            return Ok(false);
        }
        for (object, version) in missing {
            let key = (version.clone(), content_key(&object));
            let mut converted = versions.call(services, vec![object], &version).await?;
            if let Some(converted) = converted.pop() {
                lock(&self.done).insert(key, converted);
            }
        }
        Ok(true)
    }
}

/// The CRD's conversion settings checked as the API server checks them, with its internal
/// field names (`webhookClientConfig`, `conversionReviewVersions`).
pub(crate) fn check(crd: &Value) -> Vec<FieldError> {
    let Some(conversion) = crd.pointer("/spec/conversion").filter(|c| !c.is_null()) else {
        return Vec::new();
    };
    let field = |name: &str| format!("spec.conversion.{name}");
    let mut errors = Vec::new();
    let strategy = text(conversion, "/strategy");
    match strategy {
        "" => errors.push(FieldError {
            field: field("strategy"),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }),
        "None" | "Webhook" => {}
        other => errors.push(FieldError {
            field: field("strategy"),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{other}\": supported values: \"None\", \"Webhook\""
            ),
        }),
    }
    let preserve = crd
        .pointer("/spec/preserveUnknownFields")
        .and_then(Value::as_bool)
        == Some(true);
    if strategy == "Webhook" && preserve {
        errors.push(FieldError {
            field: field("strategy"),
            reason: "FieldValueInvalid",
            message:
                "Invalid value: \"Webhook\": must be None if spec.preserveUnknownFields is true"
                    .into(),
        });
    }
    let config = conversion
        .pointer("/webhook/clientConfig")
        .filter(|c| !c.is_null());
    let review_versions: Vec<&str> = conversion
        .pointer("/webhook/conversionReviewVersions")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if strategy != "Webhook" {
        if config.is_some() {
            errors.push(FieldError {
                field: field("webhookClientConfig"),
                reason: "FieldValueForbidden",
                message: "Forbidden: should not be set when strategy is not set to Webhook".into(),
            });
        }
        if !review_versions.is_empty() {
            errors.push(FieldError {
                field: field("conversionReviewVersions"),
                reason: "FieldValueForbidden",
                message: "Forbidden: should not be set when strategy is not set to Webhook".into(),
            });
        }
        return errors;
    }
    match config {
        None => errors.push(FieldError {
            field: field("webhookClientConfig"),
            reason: "FieldValueRequired",
            message: "Required value: required when strategy is set to Webhook".into(),
        }),
        Some(config) if has(config, "/url") == has(config, "/service") => errors.push(FieldError {
            field: field("webhookClientConfig"),
            reason: "FieldValueRequired",
            message: "Required value: exactly one of url or service is required".into(),
        }),
        Some(config) if has(config, "/url") => {
            let url = text(config, "/url");
            if !url.starts_with("https://") {
                errors.push(FieldError {
                    field: field("webhookClientConfig.url"),
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: \"{url}\": 'https' is the only allowed URL scheme"
                    ),
                });
            }
        }
        Some(config) => {
            for (name, pointer) in [
                ("name", "/service/name"),
                ("namespace", "/service/namespace"),
            ] {
                if text(config, pointer).is_empty() {
                    errors.push(FieldError {
                        field: field(&format!("webhookClientConfig.service.{name}")),
                        reason: "FieldValueRequired",
                        message: format!("Required value: service {name} is required"),
                    });
                }
            }
        }
    }
    if review_versions.is_empty() {
        errors.push(FieldError {
            field: field("conversionReviewVersions"),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        });
    } else if !review_versions
        .iter()
        .any(|v| matches!(*v, "v1" | "v1beta1"))
    {
        let quoted: Vec<String> = review_versions.iter().map(|v| format!("{v:?}")).collect();
        errors.push(FieldError {
            field: field("conversionReviewVersions"),
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: []string{{{}}}: must include at least one of v1, v1beta1",
                quoted.join(", ")
            ),
        });
    }
    errors
}

/// The versions `info` belongs to, for custom resources.
pub(crate) fn of(info: &ResourceInfo) -> Option<&Versions> {
    info.versions.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn webapp_versions(strategy: Value) -> Versions {
        Versions::of(&json!({
            "spec": {
                "group": "example.com",
                "names": {"kind": "WebApp"},
                "conversion": strategy,
                "versions": [
                    {"name": "v1", "served": true, "storage": false, "deprecated": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": {"image": {"type": "string"}}}}}}},
                    {"name": "v2", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": {"repository": {"type": "string"}}}}}}},
                ],
            },
        }))
    }

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut names = vec![
            "v1alpha1",
            "foo",
            "v2",
            "v1beta2",
            "v1",
            "v1beta1",
            "v11alpha2",
            "bar",
        ];
        names.sort_by(|a, b| compare_versions(b, a));
        assert_eq!(
            names,
            [
                "v2",
                "v1",
                "v1beta2",
                "v1beta1",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }

    #[test]
    fn the_default_warning_points_at_the_newest_version() {
        let versions = webapp_versions(json!({"strategy": "None"}));
        assert_eq!(
            versions.warning("v1"),
            Some("example.com/v1 WebApp is deprecated; use example.com/v2 WebApp")
        );
        assert_eq!(versions.warning("v2"), None);
    }

    #[test]
    fn none_rewrites_the_api_version_and_prunes() {
        let versions = webapp_versions(json!({"strategy": "None"}));
        let object = json!({"apiVersion": "example.com/v1", "kind": "WebApp",
            "metadata": {"name": "a"}, "spec": {"image": "nginx", "repository": "x"}});
        let converted = versions.convert_here(object, "v2").ok();
        assert_eq!(
            converted,
            Some(json!({"apiVersion": "example.com/v2", "kind": "WebApp",
                "metadata": {"name": "a"}, "spec": {"repository": "x"}}))
        );
    }

    #[test]
    fn the_memo_ignores_what_a_write_stamps() {
        let a = json!({"kind": "WebApp", "metadata": {"name": "a-x1", "uid": "1", "labels": {"k": "v"}}, "spec": {}});
        let b = json!({"kind": "WebApp", "metadata": {"name": "a-y2", "uid": "2", "labels": {"k": "v"}}, "spec": {}});
        assert_eq!(content_key(&a), content_key(&b));
        let c =
            json!({"kind": "WebApp", "metadata": {"name": "a", "labels": {"k": "w"}}, "spec": {}});
        assert_ne!(content_key(&a), content_key(&c));
    }

    #[test]
    fn metadata_is_the_originals_but_labels_and_annotations() {
        let original = json!({"metadata": {"name": "a", "uid": "1", "labels": {"a": "1"}, "annotations": {"x": "y"}}});
        let converted = json!({"apiVersion": "example.com/v2",
            "metadata": {"name": "a", "uid": "1", "generation": 9, "labels": {"b": "2"}}});
        assert_eq!(
            restore_metadata(&original, converted),
            Ok(json!({"apiVersion": "example.com/v2",
                "metadata": {"name": "a", "uid": "1", "labels": {"b": "2"}}}))
        );
        let bad = json!({"metadata": {"labels": {"b": 2}}});
        assert_eq!(
            restore_metadata(&original, bad),
            Err(
                "metadata.labels[b] must be a string, but is int64 in converted object".to_string()
            )
        );
        assert_eq!(
            restore_metadata(&original, json!({})),
            Err("missing metadata in converted object".to_string())
        );
    }

    #[test]
    fn answers_are_checked_as_the_api_server_checks_them() {
        let ok = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Success"}, "convertedObjects": [{"a": 1}]}});
        assert_eq!(
            decode(ok.to_string().as_bytes(), "u", "v1"),
            Ok(vec![json!({"a": 1})])
        );
        assert_eq!(
            decode(ok.to_string().as_bytes(), "other", "v1"),
            Err("expected response.uid=\"other\", got \"u\"".to_string())
        );
        let failed = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Failure", "message": "no tag"}}});
        assert_eq!(
            decode(failed.to_string().as_bytes(), "u", "v1"),
            Err("no tag".to_string())
        );
        let wrong = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
        assert_eq!(
            decode(wrong.to_string().as_bytes(), "u", "v1"),
            Err("expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got admission.k8s.io/v1, Kind=AdmissionReview".to_string())
        );
        let empty = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"});
        assert_eq!(
            decode(empty.to_string().as_bytes(), "u", "v1"),
            Err("no response provided".to_string())
        );
    }

    #[test]
    fn webhook_settings_are_checked() {
        let crd = |conversion: Value| json!({"spec": {"conversion": conversion}});
        let fields = |conversion: Value| -> Vec<String> {
            check(&crd(conversion))
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect()
        };
        assert!(fields(json!({"strategy": "None"})).is_empty());
        assert_eq!(
            fields(json!({"strategy": "Webhook"})),
            [
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Required value",
            ]
        );
        assert_eq!(
            fields(
                json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"],
                "clientConfig": {"url": "http://x"}}})
            ),
            [
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http://x\": 'https' is the only allowed URL scheme",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ]
        );
        assert_eq!(
            fields(json!({"strategy": "Other"})),
            [
                "spec.conversion.strategy: Unsupported value: \"Other\": supported values: \"None\", \"Webhook\""
            ]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body, "u", "v1");
        }

        #[test]
        fn arbitrary_metadata_never_panics(labels in any::<Option<bool>>(), text in ".{0,8}") {
            let converted = json!({"metadata": {"labels": match labels {
                Some(true) => json!({"k": text}),
                Some(false) => json!(text),
                None => Value::Null,
            }}});
            let _ = restore_metadata(&json!({"metadata": {"name": "a"}}), converted);
        }
    }
}
