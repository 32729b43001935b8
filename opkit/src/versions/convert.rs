//! Converting objects between versions through the hub, without losing data: what a spoke
//! cannot hold goes into [`CONVERSION_ANNOTATION`] and comes back from it; what the hub cannot
//! hold is refused.

use serde_json::{Map, Value};

use super::{CONVERSION_ANNOTATION, Catalog, SpokeSteps};

/// Why objects could not be converted: the conversion webhook answers the API server with it,
/// and the API server refuses the request with this message.
///
/// ```
/// let error = opkit::versions::ConversionError::Lossy {
///     object: "default/blog".into(),
///     from: "example.com/v1".into(),
///     to: "example.com/v2".into(),
///     field: "spec.legacy".into(),
/// };
/// assert_eq!(error.to_string(), "converting default/blog from example.com/v1 to example.com/v2 would lose spec.legacy, which example.com/v2 cannot hold");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The desired version, or an object's, is not a version of the kind.
    #[error("{api_version} is not a version of {kind} ({known})")]
    UnknownVersion {
        /// The apiVersion asked for or found.
        api_version: String,
        /// The kind.
        kind: String,
        /// The kind's versions, newest first.
        known: String,
    },
    /// An object is of another kind.
    #[error("{object} is a {found}, not a {kind}")]
    WrongKind {
        /// `namespace/name` of the object.
        object: String,
        /// Its kind.
        found: String,
        /// The kind converted.
        kind: String,
    },
    /// An object does not read as its version's type, or a conversion returned an error.
    #[error("converting {object} from {from} to {to}: {message}")]
    Failed {
        /// `namespace/name` of the object.
        object: String,
        /// Its apiVersion.
        from: String,
        /// The apiVersion asked for.
        to: String,
        /// What went wrong.
        message: String,
    },
    /// The object holds data the hub has no place for; storing it would lose it.
    #[error("converting {object} from {from} to {to} would lose {field}, which {to} cannot hold")]
    Lossy {
        /// `namespace/name` of the object.
        object: String,
        /// Its apiVersion.
        from: String,
        /// The apiVersion asked for.
        to: String,
        /// The first field lost, e.g. `spec.legacy`.
        field: String,
    },
}

/// Top-level fields that are not the object's content: conversions may rewrite them freely.
const ENVELOPE: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn label(object: &Value) -> String {
    match text(object, "/metadata/namespace") {
        "" => text(object, "/metadata/name").to_owned(),
        namespace => format!("{namespace}/{}", text(object, "/metadata/name")),
    }
}

/// One object's conversion, for the errors' wording.
struct Job<'a> {
    object: String,
    from: &'a str,
    to: &'a str,
}

impl Job<'_> {
    fn failed(&self, message: impl Into<String>) -> ConversionError {
        ConversionError::Failed {
            object: self.object.clone(),
            from: self.from.to_owned(),
            to: self.to.to_owned(),
            message: message.into(),
        }
    }

    fn lossy(&self, field: String) -> ConversionError {
        ConversionError::Lossy {
            object: self.object.clone(),
            from: self.from.to_owned(),
            to: self.to.to_owned(),
            field,
        }
    }
}

impl Catalog {
    fn unknown(&self, api_version: &str) -> ConversionError {
        let known: Vec<String> = self
            .versions()
            .iter()
            .map(|v| self.api_version(v))
            .collect();
        ConversionError::UnknownVersion {
            api_version: api_version.to_owned(),
            kind: self.kind.clone(),
            known: known.join(", "),
        }
    }

    /// The version of `api_version`, when it is one of the kind's.
    fn version_of<'a>(&self, api_version: &'a str) -> Option<&'a str> {
        let (group, version) = api_version.split_once('/')?;
        (group == self.group && (version == self.hub || self.spokes.contains_key(version)))
            .then_some(version)
    }

    pub fn convert(
        &self,
        objects: Vec<Value>,
        desired_api_version: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        let to = self
            .version_of(desired_api_version)
            .ok_or_else(|| self.unknown(desired_api_version))?;
        objects
            .into_iter()
            .map(|object| {
                let kind = text(&object, "/kind");
                if kind != self.kind {
                    return Err(ConversionError::WrongKind {
                        object: label(&object),
                        found: kind.to_owned(),
                        kind: self.kind.clone(),
                    });
                }
                let from_api_version = text(&object, "/apiVersion").to_owned();
                let from = self
                    .version_of(&from_api_version)
                    .ok_or_else(|| self.unknown(&from_api_version))?;
                if from == to {
                    return Ok(object);
                }
                let job = Job {
                    object: label(&object),
                    from: &from_api_version,
                    to: desired_api_version,
                };
                let hub = self.up(object, from, &job)?;
                self.down(hub, to, &job)
            })
            .collect()
    }

    fn spoke(&self, version: &str, job: &Job<'_>) -> Result<&SpokeSteps, ConversionError> {
        self.spokes
            .get(version)
            .ok_or_else(|| job.failed(format!("no conversion for {version}")))
    }

    /// A spoke's object as the hub, with what an earlier conversion kept restored.
    fn up(&self, object: Value, from: &str, job: &Job<'_>) -> Result<Value, ConversionError> {
        if from == self.hub {
            return Ok(object);
        }
        let spoke = self.spoke(from, job)?;
        let (object, kept) = take_annotation(object);
        let normalized = (spoke.normalize)(object.clone()).map_err(|e| job.failed(e))?;
        let hub = (spoke.to_hub)(object).map_err(|e| job.failed(e))?;
        let back = (spoke.from_hub)(hub.clone()).map_err(|e| job.failed(e))?;
        if let Some(field) = first_difference(&normalized, &back, "", true) {
            return Err(job.lossy(field));
        }
        let (mut hub, _) = take_annotation(hub);
        if let Some(kept) = kept {
            let patch: Value = serde_json::from_str(&kept).map_err(|e| {
                job.failed(format!(
                    "the annotation {CONVERSION_ANNOTATION} is not a JSON merge patch: {e}"
                ))
            })?;
            merge(&mut hub, &patch, true);
            hub = (self.hub_normalize)(hub).map_err(|e| {
                job.failed(format!(
                    "the fields kept in the annotation {CONVERSION_ANNOTATION} no longer fit: {e}"
                ))
            })?;
        }
        Ok(hub)
    }

    /// The hub's object as a spoke, keeping what the spoke cannot hold in the annotation.
    fn down(&self, hub: Value, to: &str, job: &Job<'_>) -> Result<Value, ConversionError> {
        if to == self.hub {
            return Ok(hub);
        }
        let spoke = self.spoke(to, job)?;
        let (hub, _) = take_annotation(hub);
        let hub = (self.hub_normalize)(hub).map_err(|e| job.failed(e))?;
        let (mut converted, _) =
            take_annotation((spoke.from_hub)(hub.clone()).map_err(|e| job.failed(e))?);
        let back = (spoke.to_hub)(converted.clone()).map_err(|e| job.failed(e))?;
        let Some(patch) = merge_diff(&back, &hub, true) else {
            return Ok(converted);
        };
        let mut restored = back;
        merge(&mut restored, &patch, true);
        if let Some(field) = first_difference(&restored, &hub, "", true) {
            return Err(job.failed(format!(
                "{field} cannot be kept in the annotation {CONVERSION_ANNOTATION}: a JSON merge patch cannot restore it"
            )));
        }
        set_annotation(&mut converted, patch.to_string());
        Ok(converted)
    }
}

/// The object without the annotation, and the annotation's value.
fn take_annotation(mut object: Value) -> (Value, Option<String>) {
    let annotations = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut);
    let Some(annotations) = annotations else {
        return (object, None);
    };
    let kept = annotations
        .remove(CONVERSION_ANNOTATION)
        .and_then(|v| v.as_str().map(str::to_owned));
    if annotations.is_empty()
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
    (object, kept)
}

fn set_annotation(object: &mut Value, value: String) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(CONVERSION_ANNOTATION.to_owned(), Value::String(value));
    }
}

/// The JSON merge patch (RFC 7386) from `from` to `to`; `None` when they are equal. At the
/// `root`, the envelope is left out.
fn merge_diff(from: &Value, to: &Value, root: bool) -> Option<Value> {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = Map::new();
            for (key, value) in to {
                if root && ENVELOPE.contains(&key.as_str()) {
                    continue;
                }
                match from.get(key) {
                    Some(old) => {
                        if let Some(change) = merge_diff(old, value, false) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in from.keys() {
                let envelope = root && ENVELOPE.contains(&key.as_str());
                if !envelope && !to.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

/// Applies a JSON merge patch (RFC 7386); at the `root`, the envelope is left alone.
fn merge(target: &mut Value, patch: &Value, root: bool) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if root && ENVELOPE.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            target.remove(key);
        } else {
            merge(
                target.entry(key.clone()).or_insert(Value::Null),
                value,
                false,
            );
        }
    }
}

/// The first field where `a` and `b` differ (`spec.ports[1].name`); at the `root`, the
/// envelope is left out.
fn first_difference(a: &Value, b: &Value, path: &str, root: bool) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .filter(|key| !(root && ENVELOPE.contains(&key.as_str())))
                .find_map(|key| match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(x, y, &join(key), false),
                    _ => Some(join(key)),
                })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]"), false)),
        _ if a == b => None,
        _ => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_takes_one_object_to_the_other() {
        let from = json!({"kind": "A", "spec": {"a": 1, "b": {"c": 2}, "gone": true}});
        let to = json!({"kind": "B", "spec": {"a": 1, "b": {"c": 3, "d": [1]}}, "status": {}});
        let patch = merge_diff(&from, &to, true);
        assert_eq!(
            patch,
            Some(json!({"spec": {"b": {"c": 3, "d": [1]}, "gone": null}, "status": {}}))
        );
        let mut patched = from.clone();
        merge(&mut patched, &patch.unwrap_or_default(), true);
        assert_eq!(first_difference(&patched, &to, "", true), None);
        assert_eq!(patched["kind"], "A");
    }

    #[test]
    fn differences_are_named_by_path() {
        let a = json!({"metadata": {"name": "x"}, "spec": {"ports": [{"n": 1}, {"n": 2}]}});
        let b = json!({"metadata": {"name": "y"}, "spec": {"ports": [{"n": 1}, {"n": 3}]}});
        assert_eq!(
            first_difference(&a, &b, "", true).as_deref(),
            Some("spec.ports[1].n")
        );
        assert_eq!(
            first_difference(&a, &json!({"spec": {}}), "", true).as_deref(),
            Some("spec.ports")
        );
    }

    #[test]
    fn the_annotation_is_taken_and_its_map_dropped_when_empty() {
        let object = json!({"metadata": {"annotations": {CONVERSION_ANNOTATION: "{}"}}});
        assert_eq!(
            take_annotation(object),
            (json!({"metadata": {}}), Some("{}".to_owned()))
        );
        let mut bare = json!({});
        set_annotation(&mut bare, "x".into());
        assert_eq!(
            bare,
            json!({"metadata": {"annotations": {CONVERSION_ANNOTATION: "x"}}})
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Where the target holds no nulls in objects (what merge patches cannot express), the
        /// patch restores it exactly.
        #[test]
        fn patches_restore_what_they_diff(from in arb_json(), to in arb_json()) {
            let has_null_member = |v: &Value| v.to_string().contains(":null");
            prop_assume!(!has_null_member(&to));
            let patch = merge_diff(&from, &to, false);
            let mut patched = from.clone();
            if let Some(patch) = &patch {
                merge(&mut patched, patch, false);
            }
            prop_assert_eq!(first_difference(&patched, &to, "", false), None);
        }
    }
}
