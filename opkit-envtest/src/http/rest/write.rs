//! Writes: create, update, patch and server-side apply, after admission.

use super::{RestRequest, Validation, Written, present};
use crate::crd;
use crate::defaults;
use crate::deletion;
use crate::error::ApiError;
use crate::http::is_true;
use crate::http::negotiate;
use crate::meta;
use crate::patch;
use crate::rbac;
use crate::resources::ResourceInfo;
use crate::schema;
use crate::store::{Txn, meta_str};
use serde_json::{Value, json};

impl RestRequest {
    /// The stored object a write replaces and the one it would store, computed as a dry run:
    /// what admission webhooks are shown.
    pub(crate) fn preview(&self, bytes: &[u8]) -> Result<(Option<Value>, Option<Value>), ApiError> {
        let stored = self
            .server
            .store
            .read()
            .get(&self.storage(), self.namespace(), self.name());
        let old = stored.map(|stored| self.present_old(&stored)).transpose()?;
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
            user: self.user.clone(),
            admitted: crate::admission::Admitted::default(),
            conversions: self.conversions.clone(),
        };
        let written = match self.verb {
            "create" => dry.create(bytes)?,
            "update" => dry.update(bytes)?,
            "patch" => dry.patch(bytes)?,
            _ => return Ok((old, None)),
        };
        Ok((old, Some(written.object)))
    }

    /// Defaults, pruning and schema validation on every write.
    pub(super) fn admit(
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
            let checked = schema::check_write(schema, info.rules.as_deref(), obj, old);
            warnings.extend(checked.warnings);
            let mut errors = checked.errors;
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
            let status_write = self.target.subresource.as_deref() == Some("status");
            crd::admit(obj, old, status_write)
                .map_err(|errors| ApiError::invalid(info, &name, &errors))?;
        }
        if info.group == "admissionregistration.k8s.io" {
            let errors = if info.kind.ends_with("WebhookConfiguration") {
                crate::admission_cel::check_webhooks(obj)
            } else {
                crate::admission_policy::check(&info.kind, obj)
            };
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, &name, &errors));
            }
        }
        // Mutating webhooks' patches, then validation of what they produced.
        if self.admitted.mutates() && self.target.subresource.as_deref() != Some("scale") {
            self.admitted.apply(obj)?;
            if let Some(schema) = &info.schema {
                let errors = schema::check_write(schema, info.rules.as_deref(), obj, old).errors;
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

    pub(super) fn create(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        if info.namespaced && self.target.namespace.is_none() {
            return Err(ApiError::method_not_allowed());
        }
        let mut obj = self.parse(bytes)?;
        self.check_type(info, &mut obj)?;
        self.check_identity(&obj)?;
        meta::prepare_create(info, self.target.namespace.as_deref(), &mut obj)?;
        if info.group == "certificates.k8s.io" {
            let errors = crate::certificates::prepare_create(&self.user, &mut obj)?;
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, meta_str(&obj, "name"), &errors));
            }
        }
        let manager = self.manager();
        let dry_run = self.dry_run();
        let storage = self.storage();
        self.server.store.write(|txn| {
            let name = meta_str(&obj, "name").to_string();
            self.check_namespace(txn, &name)?;
            let warnings = self.admit(info, None, &mut obj)?;
            rbac::admit(txn.state(), &self.user, info, &obj)?;
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
            let stored = self.to_storage(obj)?;
            let stored = if dry_run {
                stored
            } else {
                let stored = txn.put(&storage, stored);
                self.after_write(txn, &storage, &name, true);
                stored
            };
            Ok(Written {
                code: 201,
                object: present(info, &stored),
                warnings,
            })
        })
    }

    pub(super) fn update(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let mut body = self.parse(bytes)?;
        if self.target.subresource.as_deref() == Some("scale") {
            return self.write_scale(move |_: Option<&Value>| Ok(body));
        }
        self.check_type(info, &mut body)?;
        self.check_identity(&body)?;
        self.write_existing(move |_| Ok(body), None)
    }

    pub(super) fn patch(&self, bytes: &[u8]) -> Result<Written, ApiError> {
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
                    reason: "Invalid".into(),
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
            let old = self.present_old(&stored)?;
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
            if sub.as_deref() == Some("ephemeralcontainers") {
                new = only(&old, &new, "ephemeralContainers");
                let errors = super::pods::check_ephemeral(&old, &new);
                if !errors.is_empty() {
                    return Err(ApiError::invalid(info, &name, &errors));
                }
            }
            if sub.as_deref() == Some("approval") {
                new = crate::certificates::approval(&old, &new);
                let errors = crate::certificates::check_approval(&old, &new);
                if !errors.is_empty() {
                    return Err(ApiError::invalid(info, &name, &errors));
                }
            }
            // An approval writes status conditions, as a status write would.
            let status_sub = match sub.as_deref() {
                Some("status" | "approval") => Some("status"),
                _ => None,
            };
            meta::prepare_update(info, &old, &mut new, status_sub)?;
            let warnings = self.admit(info, Some(&old), &mut new)?;
            rbac::admit(txn.state(), &self.user, info, &new)?;
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
            if unchanged == old && !self.outdated(&stored) {
                return Ok(Written {
                    code: 200,
                    object: old,
                    warnings,
                });
            }
            let stored = self.to_storage(new)?;
            let result = if dry_run {
                stored
            } else {
                let result = deletion::finish_or_put(txn, &storage, stored);
                self.after_write(txn, &storage, &name, false);
                result
            };
            Ok(Written {
                code: 200,
                object: present(info, &result),
                warnings,
            })
        })
    }

    /// What controllers do at once after a write: a new namespace gets its
    /// `default` ServiceAccount, ClusterRole changes reach the aggregated roles.
    pub(super) fn after_write(&self, txn: &mut Txn<'_>, storage: &str, name: &str, created: bool) {
        if created && storage == "/namespaces" {
            crate::namespaces::populate(txn, name);
        }
        if rbac::affects_aggregation(storage) {
            rbac::reaggregate(txn);
        }
        if storage == crd::CRD_STORAGE {
            crate::apiservices::sync(txn);
        }
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
        rbac::admit(txn.state(), &self.user, info, &obj)?;
        let stored = self.to_storage(obj)?;
        let stored = if dry_run {
            stored
        } else {
            let stored = txn.put(storage, stored);
            self.after_write(txn, storage, &name, true);
            stored
        };
        Ok(Written {
            code: 201,
            object: present(info, &stored),
            warnings,
        })
    }
}

fn patch_error(error: &patch::PatchError) -> ApiError {
    match error.status_code() {
        422 => ApiError {
            code: 422,
            reason: "Invalid".into(),
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
        reason: "Conflict".into(),
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

pub(super) fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, key| v.get(key))
}

pub(super) fn set_path(obj: &mut Value, path: &str, value: Value) {
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

/// `old` with `new`'s `spec.<field>` and `new`'s resourceVersion precondition: what a
/// subresource that changes one field writes.
fn only(old: &Value, new: &Value, field: &str) -> Value {
    let mut written = old.clone();
    match new.pointer(&format!("/spec/{field}")) {
        Some(value) => written["spec"][field] = value.clone(),
        None => {
            if let Some(spec) = written.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove(field);
            }
        }
    }
    match new.pointer("/metadata/resourceVersion") {
        Some(rv) => written["metadata"]["resourceVersion"] = rv.clone(),
        None => {
            if let Some(meta) = written.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
        }
    }
    written
}
