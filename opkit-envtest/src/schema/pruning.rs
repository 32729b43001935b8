//! Pruning: fields the schema does not declare are dropped on every write.

use super::flag;
use serde_json::Value;

/// Removes fields the schema does not declare (root `apiVersion`, `kind`, `metadata` stay).
///
/// `x-kubernetes-preserve-unknown-fields` keeps unknown fields below its
/// node (declared ones are still pruned inside); embedded resources keep
/// their `apiVersion`, `kind` and `metadata`.
pub fn prune(schema: &Value, object: &mut Value) {
    prune_node(Some(schema), object, true);
}

pub(super) fn prune_node(schema: Option<&Value>, data: &mut Value, resource_root: bool) {
    let s = schema.and_then(Value::as_object);
    let preserve = s.is_some_and(|s| flag(s, "x-kubernetes-preserve-unknown-fields"));
    let int_or_string = s.is_some_and(|s| flag(s, "x-kubernetes-int-or-string"));
    if int_or_string && !data.is_object() && !data.is_array() {
        return;
    }
    match data {
        Value::Object(map) => {
            let embedded =
                resource_root || s.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource"));
            let properties = s
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object);
            let additional = s.and_then(|s| s.get("additionalProperties"));
            map.retain(|key, value| {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    return true;
                }
                if let Some(prop) = properties.and_then(|p| p.get(key)) {
                    prune_node(Some(prop), value, false);
                    return true;
                }
                match additional {
                    Some(Value::Object(_)) => {
                        prune_node(additional, value, false);
                        true
                    }
                    Some(Value::Bool(true)) => true,
                    _ => preserve,
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items"));
            if preserve && item_schema.is_none() {
                return;
            }
            for item in items {
                prune_node(item_schema, item, false);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_drops_unknown_fields_but_keeps_the_envelope() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "known": {"type": "string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"inner": {"type": "object", "properties": {"x": {"type": "integer"}}}}},
                "port": {"x-kubernetes-int-or-string": true},
                "pod": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}}}});
        let mut obj = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"known": "k", "unknown": 1, "port": 80,
                "free": {"anything": {"deep": true}, "inner": {"x": 1, "y": 2}},
                "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1},
                "items": [{"n": "a", "m": "b"}]},
            "extra": true});
        prune(&schema, &mut obj);
        assert_eq!(
            obj,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
                "spec": {"known": "k", "port": 80,
                    "free": {"anything": {"deep": true}, "inner": {"x": 1}},
                    "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                    "items": [{"n": "a"}]}})
        );
    }
}
