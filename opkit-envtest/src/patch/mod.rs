//! Patch types: JSON merge, JSON patch, strategic merge and server-side apply.

mod apply;
mod strategic;

pub use apply::{ApplyConflict, apply, conflict_message, track_update};
pub use strategic::strategic_merge;

use json_patch::PatchOperation;
use serde_json::Value;

/// A patch the server could not apply to the object.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed: 400 BadRequest.
    #[error("{0}")]
    Malformed(String),
    /// The patch does not apply to the object: 422 Invalid.
    #[error("{0}")]
    Failed(String),
}

impl PatchError {
    /// The HTTP status the API server answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Malformed(_) => 400,
            PatchError::Failed(_) => 422,
        }
    }
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch; the target is untouched when an operation fails.
///
/// Errors carry the wording of the JSON patch library kube-apiserver uses.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Some(ops) = patch.as_array() else {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_json_kind(patch)
        )));
    };
    let mut doc = target.clone();
    for raw in ops {
        let op = decode_op(raw)?;
        if tests_null_on_missing_member(&doc, &op) {
            continue;
        }
        if let Err(e) = json_patch::patch(&mut doc, std::slice::from_ref(&op)) {
            return Err(PatchError::Failed(describe(&doc, &op, &e)));
        }
    }
    *target = doc;
    Ok(())
}

/// The real server's json-patch library treats a missing member of an existing
/// object as `null` in `test`; kube-runtime's finalizer helper relies on it
/// (`test /metadata/finalizers null` before adding the first finalizer).
fn tests_null_on_missing_member(doc: &Value, op: &PatchOperation) -> bool {
    let PatchOperation::Test(test) = op else {
        return false;
    };
    let path = test.path.to_string();
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    test.value.is_null()
        && doc.pointer(&path).is_none()
        && doc.pointer(parent).is_some_and(Value::is_object)
}

fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn decode_op(raw: &Value) -> Result<PatchOperation, PatchError> {
    let kind = raw.get("op").and_then(Value::as_str).unwrap_or("");
    if !matches!(
        kind,
        "add" | "remove" | "replace" | "move" | "copy" | "test"
    ) {
        return Err(PatchError::Failed(format!("Unexpected kind: {kind}")));
    }
    for field in ["path"]
        .into_iter()
        .chain(matches!(kind, "move" | "copy").then_some("from"))
    {
        if !raw.get(field).is_some_and(Value::is_string) {
            return Err(PatchError::Failed(format!(
                "{kind} operation failed to decode {field}"
            )));
        }
    }
    if matches!(kind, "add" | "replace" | "test") && raw.get("value").is_none() {
        return Err(PatchError::Failed(format!(
            "{kind} operation does not apply: value is missing"
        )));
    }
    serde_json::from_value(raw.clone())
        .map_err(|e| PatchError::Failed(format!("{kind} operation failed to decode path: {e}")))
}

fn parent_exists(doc: &Value, path: &str) -> bool {
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    doc.pointer(parent)
        .is_some_and(|v| v.is_object() || v.is_array())
}

fn last_token(path: &str) -> String {
    path.rsplit('/')
        .next()
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~")
}

/// evanphx/json-patch's messages for the failures of one operation.
fn describe(doc: &Value, op: &PatchOperation, e: &json_patch::PatchError) -> String {
    let path = op.path().as_str();
    match op {
        PatchOperation::Test(_) => format!("testing value {path} failed: test failed"),
        PatchOperation::Remove(_) if parent_exists(doc, path) => format!(
            "error in remove for path: '{path}': Unable to remove nonexistent key: {}: missing value",
            last_token(path)
        ),
        PatchOperation::Remove(_) => {
            format!(
                "remove operation does not apply: doc is missing path: \"{path}\": missing value"
            )
        }
        PatchOperation::Replace(_) if parent_exists(doc, path) => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        PatchOperation::Replace(_) => {
            format!("replace operation does not apply: doc is missing path: {path}: missing value")
        }
        PatchOperation::Add(_) if parent_exists(doc, path) => format!(
            "error in add for path: '{path}': Unable to access invalid index: {}: invalid index referenced",
            last_token(path)
        ),
        PatchOperation::Add(_) => {
            format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
        }
        PatchOperation::Move(m) => match e.kind {
            json_patch::PatchErrorKind::CannotMoveInsideItself => {
                format!(
                    "move operation does not apply: cannot move {} into its own child {path}",
                    m.from
                )
            }
            _ => format!(
                "move operation does not apply: doc is missing from path: {}: missing value",
                m.from
            ),
        },
        PatchOperation::Copy(c) => format!(
            "copy operation does not apply: doc is missing from path: {}: missing value",
            c.from
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn merge_patch_nulls_delete_and_a_failed_test_is_422() {
        let mut obj = json!({"spec": {"replicas": 1, "paused": true}});
        merge_patch(&mut obj, &json!({"spec": {"replicas": 3, "paused": null}}));
        assert_eq!(obj, json!({"spec": {"replicas": 3}}));
        let err = json_patch(
            &mut obj,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "testing value /spec/replicas failed: test failed"
        );
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut obj = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(
            &mut obj,
            &json!({"a": "z", "c": {"f": null}, "list": [3], "new": {"x": 1}}),
        );
        assert_eq!(
            obj,
            json!({"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}})
        );
    }

    #[test]
    fn json_patch_applies_every_operation() {
        let mut obj = json!({"spec": {"replicas": 1, "list": ["a", "c"], "old": 1}});
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/1", "value": "b"},
            {"op": "add", "path": "/spec/list/-", "value": "d"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
            {"op": "move", "from": "/spec/old", "path": "/spec/new"},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "add", "path": "/metadata", "value": {"labels": {"a/b": "c"}}},
            {"op": "replace", "path": "/metadata/labels/a~1b", "value": "d"}
        ]);
        assert!(json_patch(&mut obj, &patch).is_ok());
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 3, "list": ["b", "c", "d"], "copied": 3, "new": 1},
                "metadata": {"labels": {"a/b": "d"}}})
        );
    }

    #[test]
    fn json_patch_tests_null_on_a_missing_member_as_the_real_server_does() {
        let mut obj = json!({"metadata": {"name": "x"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        assert!(json_patch(&mut obj, &patch).is_ok());
        assert_eq!(obj, json!({"metadata": {"name": "x", "finalizers": ["f"]}}));
        let missing_parent = json!([{"op": "test", "path": "/spec/finalizers", "value": null}]);
        assert!(json_patch(&mut obj, &missing_parent).is_err());
    }

    fn failure(patch: Value) -> (u16, String) {
        let mut obj = json!({"spec": {"replicas": 1, "list": ["a"]}});
        let before = obj.clone();
        match json_patch(&mut obj, &patch) {
            Ok(()) => panic!("patch applied: {patch}"),
            Err(e) => {
                assert_eq!(obj, before, "a failed patch changes nothing");
                (e.status_code(), e.to_string())
            }
        }
    }

    #[test]
    fn json_patch_errors_use_the_servers_wording() {
        assert_eq!(
            failure(json!({"op": "add"})),
            (
                400,
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into()
            )
        );
        assert_eq!(
            failure(json!([{"op": "frob", "path": "/a"}])),
            (422, "Unexpected kind: frob".into())
        );
        assert_eq!(
            failure(
                json!([{"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "test", "path": "/spec/replicas", "value": 5}])
            ),
            (
                422,
                "testing value /spec/replicas failed: test failed".into()
            )
        );
        assert_eq!(
            failure(json!([{"op": "remove", "path": "/spec/missing"}])).1,
            "error in remove for path: '/spec/missing': Unable to remove nonexistent key: missing: missing value"
        );
        assert_eq!(
            failure(json!([{"op": "replace", "path": "/spec/missing", "value": 1}])).1,
            "replace operation does not apply: doc is missing key: /spec/missing: missing value"
        );
        assert_eq!(
            failure(json!([{"op": "add", "path": "/status/phase", "value": "x"}])).1,
            "add operation does not apply: doc is missing path: \"/status/phase\": missing value"
        );
        assert_eq!(
            failure(json!([{"op": "add", "path": "/spec/list/5", "value": "x"}])).1,
            "error in add for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced"
        );
        assert_eq!(
            failure(json!([{"op": "move", "from": "/nope", "path": "/x"}])).1,
            "move operation does not apply: doc is missing from path: /nope: missing value"
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            "[a-z/~0-9-]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("op|path|from|value|[a-z]{1,3}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_patches_never_panic(mut doc in arb_json(), patch in arb_json()) {
            let mut other = doc.clone();
            let _ = json_patch(&mut doc, &patch);
            merge_patch(&mut other, &patch);
        }

        #[test]
        fn merge_patch_is_idempotent(mut doc in arb_json(), patch in arb_json()) {
            merge_patch(&mut doc, &patch);
            let once = doc.clone();
            merge_patch(&mut doc, &patch);
            prop_assert_eq!(once, doc);
        }
    }
}
