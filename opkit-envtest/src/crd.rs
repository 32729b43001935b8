//! CustomResourceDefinitions: checking them, serving their versions,
//! their status conditions, and deleting their objects when they go.

use crate::deletion::{self, Preconditions, Propagation};
use crate::meta::{self, strings};
use crate::resources::{self, PrinterColumn, ResourceInfo, ScaleSubresource};
use crate::schema::{self, FieldError};
use crate::store::{Definitions, State, Txn, meta_str};
use serde_json::{Value, json};
use std::sync::Arc;

/// The storage key of CRDs.
pub(crate) const CRD_STORAGE: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// The finalizer that keeps a CRD until its objects are deleted.
const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn required(field: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueRequired",
        message: "Required value".to_string(),
    }
}

/// Checks a CRD on create and update and sets its status (names accepted,
/// established, stored versions) and cleanup finalizer. Returns every problem found.
///
/// `status_write` is a write through `/status`: its `storedVersions` are taken as given, as a
/// storage migration removes the versions it migrated away from.
pub(crate) fn admit(
    crd: &mut Value,
    old: Option<&Value>,
    status_write: bool,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let group = str_at(crd, "/spec/group").to_string();
    let plural = str_at(crd, "/spec/names/plural").to_string();
    let kind = str_at(crd, "/spec/names/kind").to_string();
    let name = meta_str(crd, "name").to_string();
    if group.is_empty() {
        errors.push(required("spec.group"));
    }
    if plural.is_empty() {
        errors.push(required("spec.names.plural"));
    }
    if kind.is_empty() {
        errors.push(required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push(FieldError {
            field: "metadata.name".to_string(),
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
            ),
        });
    }
    let scope = str_at(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        errors.push(FieldError {
            field: "spec.scope".to_string(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        });
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push(required("spec.versions"));
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name").to_string())
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        errors.push(FieldError {
            field: "spec.versions".to_string(),
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: []apiextensions.CustomResourceDefinitionVersion{{...}}: must have exactly one version marked as storage version, status.storedVersions[{}]",
                storage.len()
            ),
        });
    }
    // The API server validates its internal form, where a schema every
    // version shares is the CRD's `spec.validation`, and is checked once.
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    let shared = schemas.windows(2).all(|w| w[0] == w[1]);
    for (i, schema) in schemas.iter().enumerate() {
        let Some(schema) = schema else { continue };
        let root = if shared {
            if i > 0 {
                break;
            }
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        for mut e in schema::check_schema(schema, &root) {
            e.field = format!("{root}{}", dotted(&e.field));
            errors.push(e);
        }
    }
    errors.extend(crate::conversion::check(crd));
    // The status of an update is the stored one (the main endpoint) or the writer's (`/status`).
    let mut stored = strings(crd.pointer("/status/storedVersions"));
    if !status_write {
        for version in &storage {
            if !stored.contains(version) {
                stored.push(version.clone());
            }
        }
        let names: Vec<&str> = versions.iter().map(|v| str_at(v, "/name")).collect();
        for (i, version) in stored.iter().enumerate() {
            if !names.contains(&version.as_str()) {
                errors.push(FieldError {
                    field: format!("status.storedVersions[{i}]"),
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: \"{version}\": missing from spec.versions; {version} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {version} and removes {version} from status.storedVersions"
                    ),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Ok(meta) = meta::metadata_mut(crd) {
        let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f.as_str() == Some(CLEANUP_FINALIZER))
            && old.is_none()
        {
            list.push(json!(CLEANUP_FINALIZER));
        }
    }
    let mut accepted = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if let Some(names) = accepted.as_object_mut() {
        names
            .entry("singular")
            .or_insert_with(|| json!(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert_with(|| json!(format!("{kind}List")));
    }
    let since = |ty: &str| {
        old.and_then(|o| o.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, "/type") == ty))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(meta::now()))
    };
    if let Some(map) = crd.as_object_mut() {
        map.insert(
            "status".into(),
            json!({
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted")},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted", "lastTransitionTime": since("Established")},
                ],
                "acceptedNames": accepted,
                "storedVersions": stored,
            }),
        );
    }
    Ok(())
}

fn dotted(field: &str) -> String {
    if field.is_empty() || field.starts_with('.') || field.starts_with('[') {
        field.to_string()
    } else {
        format!(".{field}")
    }
}

/// The resources a CRD serves: one per served version.
pub(crate) fn resources(crd: &Value) -> Vec<ResourceInfo> {
    let group = str_at(crd, "/spec/group").to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let kind = str_at(&names, "/kind").to_string();
    let plural = str_at(&names, "/plural").to_string();
    let singular = match str_at(&names, "/singular") {
        "" => kind.to_lowercase(),
        s => s.to_string(),
    };
    let namespaced = str_at(crd, "/spec/scope") == "Namespaced";
    let conversion = Arc::new(crate::conversion::Versions::of(crd));
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .map(|v| {
            let scale = v.pointer("/subresources/scale").map(|s| ScaleSubresource {
                spec_replicas_path: str_at(s, "/specReplicasPath").to_string(),
                status_replicas_path: str_at(s, "/statusReplicasPath").to_string(),
                label_selector_path: s
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
            let printer_columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: str_at(c, "/name").to_string(),
                            type_: str_at(c, "/type").to_string(),
                            format: c.get("format").and_then(Value::as_str).map(str::to_string),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            priority: c
                                .get("priority")
                                .and_then(Value::as_i64)
                                .and_then(|p| i32::try_from(p).ok())
                                .unwrap_or(0),
                            json_path: str_at(c, "/jsonPath").to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let schema = v
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(
                    || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                );
            ResourceInfo {
                group: group.clone(),
                version: str_at(v, "/name").to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                status_subresource: v.pointer("/subresources/status").is_some(),
                scale,
                printer_columns,
                rules: schema::compile_rules(&schema).map(Arc::new),
                schema: Some(schema),
                storage: v.get("storage").and_then(Value::as_bool) == Some(true),
                verbs: resources::ALL_VERBS,
                selectable_fields: v
                    .get("selectableFields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|path| path.trim_start_matches('.').to_string())
                    .collect(),
                subresources: &[],
                versions: Some(conversion.clone()),
            }
        })
        .collect()
}

/// How CRDs define the served resources, for the store.
pub(crate) const DEFINITIONS: Definitions = Definitions {
    storage: CRD_STORAGE,
    registry,
};

/// The full registry: built-ins plus every stored CRD's versions.
fn registry(state: &State) -> Vec<ResourceInfo> {
    let mut all = resources::builtins();
    for (_, crd) in state.list(CRD_STORAGE, None, None) {
        all.extend(resources(&crd.value()));
    }
    all
}

/// Deletes the objects of a CRD being deleted; once none is left, lets the CRD go.
pub(crate) fn cleanup(txn: &mut Txn<'_>, crd_name: &str) {
    let Some(crd) = txn.state().get(CRD_STORAGE, "", crd_name) else {
        return;
    };
    if !meta::is_deleting(&crd) {
        return;
    }
    let storage = format!(
        "{}/{}",
        str_at(&crd, "/spec/group"),
        str_at(&crd, "/spec/names/plural")
    );
    txn.set_terminating(&storage, Some(crd_name));
    let keys: Vec<(String, String)> = txn
        .state()
        .list(&storage, None, None)
        .map(|(key, _)| key.clone())
        .collect();
    for (namespace, name) in &keys {
        deletion::delete(
            txn,
            &storage,
            namespace,
            name,
            Propagation::Background,
            &Preconditions::default(),
            false,
        );
    }
    if txn.state().list(&storage, None, None).next().is_none() {
        txn.set_terminating(&storage, None);
        deletion::remove_finalizer(txn, CRD_STORAGE, "", crd_name, CLEANUP_FINALIZER);
        crate::apiservices::sync(txn);
    }
}
