//! Objects written with their keys in kube-apiserver's order: a typed
//! object's `kind`, `apiVersion`, `metadata`, `spec` and `status` first, as
//! Go writes the fields of its structs (`TypeMeta`, `ObjectMeta`, spec,
//! status), then its other fields. Clients that read bodies as text or
//! compare them see what a cluster sends.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// The fields Go writes first, in its order.
const LEADING: [&str; 5] = ["kind", "apiVersion", "metadata", "spec", "status"];

/// A JSON value serialised in Go field order at every typed object it holds:
/// `{"apiVersion": "v1", "kind": "Pod"}` is written `{"kind":"Pod","apiVersion":"v1"}`.
pub(crate) struct GoOrder<'a>(pub &'a Value);

impl Serialize for GoOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                let typed = map.contains_key("kind") || map.contains_key("apiVersion");
                if typed {
                    for key in LEADING {
                        if let Some(value) = map.get(key) {
                            out.serialize_entry(key, &GoOrder(value))?;
                        }
                    }
                }
                for (key, value) in map {
                    if !(typed && LEADING.contains(&key.as_str())) {
                        out.serialize_entry(key, &GoOrder(value))?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&GoOrder(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_objects_lead_with_type_metadata_spec_and_status() {
        let list = json!({"apiVersion": "v1", "items": [
            {"status": {"phase": "Running"}, "spec": {"b": 1, "a": 2}, "metadata": {"name": "p"},
             "kind": "Pod", "apiVersion": "v1"}], "kind": "PodList", "metadata": {}});
        let text = serde_json::to_string(&GoOrder(&list)).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"a":2,"b":1},"status":{"phase":"Running"}}]}"#
        );
        let untyped = json!({"status": 1, "kind2": 2});
        assert_eq!(
            serde_json::to_string(&GoOrder(&untyped)).unwrap_or_default(),
            r#"{"kind2":2,"status":1}"#
        );
    }
}
