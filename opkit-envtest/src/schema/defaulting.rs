//! Structural defaulting: `default` values applied on every write.

use super::flag;
use serde_json::Value;

/// Applies `default` values from the schema, as the server does on every write.
///
/// Defaults apply only where the parent object exists; a `null` in a
/// field that is not `nullable` is replaced by its default, or dropped
/// when there is none.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    drop_non_nullable_nulls(schema, object);
    default_node(schema, object);
}

fn drop_non_nullable_nulls(schema: &Value, data: &mut Value) {
    let Some(s) = schema.as_object() else {
        return;
    };
    match data {
        Value::Object(map) => {
            let properties = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            map.retain(|key, value| {
                let sub = properties.and_then(|p| p.get(key)).or(additional);
                match sub.and_then(Value::as_object) {
                    Some(sub) if value.is_null() => {
                        flag(sub, "nullable") || sub.contains_key("default")
                    }
                    _ => true,
                }
            });
            for (key, value) in map.iter_mut() {
                if let Some(sub) = properties.and_then(|p| p.get(key)).or(additional) {
                    drop_non_nullable_nulls(sub, value);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for item in items {
                    drop_non_nullable_nulls(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn non_nullable_null(value: &Value, schema: &Value) -> bool {
    value.is_null() && !schema.as_object().is_some_and(|s| flag(s, "nullable"))
}

fn default_node(schema: &Value, data: &mut Value) {
    let Some(s) = schema.as_object() else {
        return;
    };
    match data {
        Value::Object(map) => {
            let properties = s.get("properties").and_then(Value::as_object);
            if let Some(properties) = properties {
                for (key, prop) in properties {
                    let Some(default) = prop.get("default") else {
                        continue;
                    };
                    if map.get(key).is_none_or(|v| non_nullable_null(v, prop)) {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (key, value) in map.iter_mut() {
                if let Some(prop) = properties.and_then(|p| p.get(key)) {
                    default_node(prop, value);
                } else if let Some(additional) = additional {
                    if let Some(default) = additional.get("default")
                        && non_nullable_null(value, additional)
                    {
                        *value = default.clone();
                    }
                    default_node(additional, value);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for item in items {
                    if let Some(default) = item_schema.get("default")
                        && non_nullable_null(item, item_schema)
                    {
                        *item = default.clone();
                    }
                    default_node(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::spec;
    use serde_json::json;

    #[test]
    fn defaults_apply_at_depth_only_under_existing_parents() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "tls": {"type": "object", "properties": {"enabled": {"type": "boolean", "default": false}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object",
                    "properties": {"weight": {"type": "integer", "default": 10}}}}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string", "default": "Pending"}}}}});
        let mut obj =
            json!({"spec": {"ports": [{"port": 80}, {"protocol": "UDP"}], "labels": {"a": {}}}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 1, "ports": [{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}],
                "labels": {"a": {"weight": 10}}}})
        );
    }

    #[test]
    fn defaults_recurse_into_defaulted_objects() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {},
            "properties": {"size": {"type": "string", "default": "small"}}}}});
        let mut obj = json!({"metadata": {"name": "a"}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"], json!({"size": "small"}));
    }

    #[test]
    fn non_nullable_nulls_take_the_default_or_go() {
        let schema = spec(
            json!({"a": {"type": "string", "default": "x"}, "b": {"type": "string"},
            "c": {"type": "string", "nullable": true, "default": "y"}}),
        );
        let mut obj = json!({"spec": {"a": null, "b": null, "c": null}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj, json!({"spec": {"a": "x", "c": null}}));
    }
}
