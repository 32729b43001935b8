//! Validation of an object against a structural schema, with kube-openapi's wording.

use super::correlation::Correlation;
use super::field_error::{Bad, FieldError};
use super::formats::check_format;
use super::go_format::{go_float, go_quote};
use super::{compiled, flag};
use serde_json::{Map, Value};

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The format kube-openapi infers from a Go value (`schemaInfoForType`).
fn data_format(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "int64",
        _ => "",
    }
}

fn is_integral(v: &Value) -> bool {
    v.as_f64()
        .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

/// Validates `object` against an `openAPIV3Schema`; empty when valid.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    validate_at(schema, object, "", Correlation::none())
}

/// Validates an update from `old`: errors in parts the update left as they
/// were are ratcheted (dropped), as since Kubernetes 1.30.
pub fn validate_update(schema: &Value, object: &Value, old: &Value) -> Vec<FieldError> {
    validate_at(schema, object, "", Correlation::root(Some(old), object))
}

fn validate_node(
    schema: &Value,
    data: &Value,
    path: &str,
    correlation: Correlation<'_>,
    errors: &mut Vec<FieldError>,
) {
    let before = errors.len();
    check_node(schema, data, path, correlation, errors);
    if correlation.ratchets() {
        errors.truncate(before);
    }
}

fn check_node(
    schema: &Value,
    data: &Value,
    path: &str,
    correlation: Correlation<'_>,
    errors: &mut Vec<FieldError>,
) {
    let Some(s) = schema.as_object() else {
        return;
    };
    let nullable = flag(s, "nullable");
    if data.is_null() && nullable {
        return;
    }
    let name = if path.is_empty() { "." } else { path };
    let types: Vec<&str> = if flag(s, "x-kubernetes-int-or-string") {
        vec!["integer", "string"]
    } else {
        s.get("type").and_then(Value::as_str).into_iter().collect()
    };
    let format = s.get("format").and_then(Value::as_str).unwrap_or("");
    check_type(&types, format, data, path, name, errors);
    if data.is_null() {
        return;
    }
    match data {
        Value::String(text) => {
            check_string(s, text, path, name, errors);
            if let Some(err) = check_format(format, text) {
                errors.push(FieldError::type_invalid(
                    path,
                    Bad::Str(text),
                    &format!(
                        "{name} in body must be of type {format}: {}",
                        go_quote(&err)
                    ),
                ));
            }
        }
        Value::Number(_) => check_number(s, data, path, name, errors),
        Value::Array(items) => check_array(s, items, path, name, correlation, errors),
        _ => {}
    }
    check_combinators(s, data, path, name, errors);
    check_enum(s, data, path, errors);
    if let Value::Object(map) = data {
        check_object(s, map, path, name, correlation, errors);
    }
}

fn check_type(
    types: &[&str],
    format: &str,
    data: &Value,
    path: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) {
    if types.is_empty() {
        return;
    }
    let joined = types.join(",");
    let actual = json_type(data);
    if data.is_null() {
        errors.push(FieldError::type_invalid(
            path,
            Bad::Str("null"),
            &format!("{name} in body must be of type {joined}: \"null\""),
        ));
        return;
    }
    let float_int = actual == "number" && is_integral(data) && types.contains(&"integer");
    let int_float = actual == "integer" && types.contains(&"number");
    let matches = types.contains(&actual) || float_int || int_float;
    let is_text_or_list = matches!(data, Value::String(_) | Value::Array(_));
    if !(is_text_or_list || format.is_empty() || matches || data_format(data) == format) {
        let found = data_format(data);
        errors.push(FieldError::type_invalid(
            path,
            Bad::Str(found),
            &format!(
                "{name} in body must be of type {format}: {}",
                go_quote(found)
            ),
        ));
        return;
    }
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if !numeric && !format.is_empty() && is_text_or_list {
        return;
    }
    if !matches {
        errors.push(FieldError::type_invalid(
            path,
            Bad::Str(actual),
            &format!(
                "{name} in body must be of type {joined}: {}",
                go_quote(actual)
            ),
        ));
    }
}

fn check_combinators(
    s: &Map<String, Value>,
    data: &Value,
    path: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) {
    let branches = |key: &str| -> Vec<&Value> {
        s.get(key)
            .and_then(Value::as_array)
            .map(|b| b.iter().collect())
            .unwrap_or_default()
    };
    let passes = |branch: &Value| validate_at(branch, data, path, Correlation::none()).is_empty();
    for branch in branches("allOf") {
        errors.extend(validate_at(branch, data, path, Correlation::none()));
    }
    let any_of = branches("anyOf");
    if !any_of.is_empty() && !any_of.iter().any(|b| passes(b)) {
        errors.push(FieldError::invalid(
            path,
            Bad::Str(""),
            &format!("{name} in body must validate at least one schema (anyOf)"),
        ));
    }
    let one_of = branches("oneOf");
    if !one_of.is_empty() && one_of.iter().filter(|b| passes(b)).count() != 1 {
        errors.push(FieldError::invalid(
            path,
            Bad::Str(""),
            &format!("{name} in body must validate one and only one schema (oneOf)"),
        ));
    }
    if let Some(not) = s.get("not")
        && passes(not)
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Str(""),
            &format!("{name} in body should not validate the schema (not)"),
        ));
    }
}

fn validate_at(
    schema: &Value,
    data: &Value,
    path: &str,
    correlation: Correlation<'_>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_node(schema, data, path, correlation, &mut errors);
    errors
}

fn check_string(
    s: &Map<String, Value>,
    text: &str,
    path: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) {
    let chars = text.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        errors.push(FieldError::too_long(path, max as usize));
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Str(text),
            &format!("{name} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && let Some(re) = compiled(pattern)
        && !re.is_match(text)
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Str(text),
            &format!("{name} in body should match '{pattern}'"),
        ));
    }
}

fn check_number(
    s: &Map<String, Value>,
    data: &Value,
    path: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) {
    let Some(x) = data.as_f64() else {
        return;
    };
    if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (x / m).fract() != 0.0
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Json(data),
            &format!("{name} in body should be a multiple of {}", go_float(m)),
        ));
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMaximum");
        if (exclusive && x >= max) || x > max {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                Bad::Json(data),
                &format!("{name} in body should be {rel} {}", go_float(max)),
            ));
        }
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMinimum");
        if (exclusive && x <= min) || x < min {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                Bad::Json(data),
                &format!("{name} in body should be {rel} {}", go_float(min)),
            ));
        }
    }
}

fn check_array(
    s: &Map<String, Value>,
    items: &[Value],
    path: &str,
    name: &str,
    correlation: Correlation<'_>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            let item_correlation = correlation.index(s, items, i);
            validate_node(
                item_schema,
                item,
                &format!("{path}[{i}]"),
                item_correlation,
                errors,
            );
        }
    }
    let len = items.len() as u64;
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && len < min
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Int(len as i64),
            &format!("{name} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && len > max
    {
        errors.push(FieldError::too_many(path, items.len(), max));
    }
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].iter().any(|seen| json_equal(seen, item)) {
                    errors.push(FieldError::duplicate(&format!("{path}[{i}]"), item));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Value {
                let mut key = Map::new();
                for k in &keys {
                    if let Some(v) = item.get(*k) {
                        key.insert((*k).to_string(), v.clone());
                    }
                }
                Value::Object(key)
            };
            for (i, item) in items.iter().enumerate() {
                let key = key_of(item);
                if items[..i]
                    .iter()
                    .any(|seen| json_equal(&key_of(seen), &key))
                {
                    errors.push(FieldError::duplicate(&format!("{path}[{i}]"), &key));
                }
            }
        }
        _ => {}
    }
}

/// JSON equality where `1` and `1.0` are the same number.
pub(super) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn check_enum(s: &Map<String, Value>, data: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(allowed) = s.get("enum").and_then(Value::as_array) else {
        return;
    };
    if allowed.is_empty() || allowed.iter().any(|v| json_equal(v, data)) {
        return;
    }
    let supported: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    errors.push(FieldError::not_supported(path, data, &supported));
}

fn check_object(
    s: &Map<String, Value>,
    map: &Map<String, Value>,
    path: &str,
    name: &str,
    correlation: Correlation<'_>,
    errors: &mut Vec<FieldError>,
) {
    let count = map.len() as u64;
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && count > max
    {
        errors.push(FieldError::too_many(path, map.len(), max));
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && count < min
    {
        errors.push(FieldError::invalid(
            path,
            Bad::Int(count as i64),
            &format!("{name} in body should have at least {min} properties"),
        ));
    }
    if let Some(required) = s.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                errors.push(FieldError::required(&child(path, key), ""));
            }
        }
    }
    let properties = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    for (key, value) in map {
        let sub = properties.and_then(|p| p.get(key)).or(additional);
        if let Some(sub) = sub {
            let field_correlation = correlation.key(key, value);
            validate_node(sub, value, &child(path, key), field_correlation, errors);
        }
    }
    if flag(s, "x-kubernetes-embedded-resource") {
        check_embedded(map, path, errors);
    }
}

fn check_embedded(map: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        let field = child(path, key);
        match map.get(key) {
            None => errors.push(FieldError::required(&field, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                errors.push(FieldError::invalid(
                    &field,
                    Bad::Str(s),
                    "must not be empty",
                ));
            }
            Some(Value::String(_)) => {}
            Some(other) => {
                errors.push(FieldError::invalid(
                    &field,
                    Bad::Json(other),
                    "must be a string",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::spec;
    use serde_json::json;

    fn messages(schema: &Value, obj: &Value) -> Vec<String> {
        validate(schema, obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn minimum_and_required_match_the_apiserver() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["image"],
            "properties": {"replicas": {"type": "integer", "minimum": 1}, "image": {"type": "string"}}}}});
        let errors = validate(&schema, &json!({"spec": {"replicas": 0}}));
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "spec.image");
        assert_eq!(errors[0].reason, "FieldValueRequired");
        assert_eq!(errors[0].message, "Required value");
        assert_eq!(errors[1].field, "spec.replicas");
        assert_eq!(errors[1].reason, "FieldValueInvalid");
        assert_eq!(
            errors[1].message,
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
        );
    }

    #[test]
    fn type_errors_name_the_found_type() {
        let schema = spec(json!({"replicas": {"type": "integer"}}));
        let errors = validate(&schema, &json!({"spec": {"replicas": "three"}}));
        assert_eq!(errors[0].reason, "FieldValueTypeInvalid");
        assert_eq!(
            errors[0].to_string(),
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"replicas": 1.5}})),
            [
                "spec.replicas: Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\""
            ]
        );
        let object = spec(json!({"opts": {"type": "object"}}));
        assert_eq!(
            messages(&object, &json!({"spec": {"opts": [1]}})),
            [
                "spec.opts: Invalid value: \"array\": spec.opts in body must be of type object: \"array\""
            ]
        );
    }

    #[test]
    fn integral_floats_are_integers_and_integers_are_numbers() {
        let schema = spec(json!({"a": {"type": "integer"}, "b": {"type": "number"}}));
        assert!(validate(&schema, &json!({"spec": {"a": 1.0, "b": 2}})).is_empty());
    }

    #[test]
    fn enum_lists_supported_values() {
        let schema = spec(
            json!({"version": {"type": "string", "enum": ["12", "13", "14", "15"]},
            "level": {"type": "integer", "enum": [1, 2]}}),
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"version": "11", "level": 3}})),
            [
                "spec.level: Unsupported value: 3: supported values: \"1\", \"2\"",
                "spec.version: Unsupported value: \"11\": supported values: \"12\", \"13\", \"14\", \"15\"",
            ]
        );
        assert_eq!(
            validate(&schema, &json!({"spec": {"level": 3}}))[0].reason,
            "FieldValueNotSupported"
        );
    }

    #[test]
    fn pattern_and_lengths() {
        let schema = spec(
            json!({"storage": {"type": "string", "pattern": "^[0-9]+Gi$"},
            "name": {"type": "string", "maxLength": 5, "minLength": 2}}),
        );
        assert_eq!(
            messages(
                &schema,
                &json!({"spec": {"storage": "10G", "name": "abcdef"}})
            ),
            [
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.storage: Invalid value: \"10G\": spec.storage in body should match '^[0-9]+Gi$'",
            ]
        );
        assert_eq!(
            validate(&schema, &json!({"spec": {"name": "abcdef"}}))[0].reason,
            "FieldValueTooLong"
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"name": "a"}})),
            ["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
        );
        // maxLength counts characters, not bytes.
        assert!(validate(&schema, &json!({"spec": {"name": "ééééé"}})).is_empty());
    }

    #[test]
    fn item_counts() {
        let schema = spec(
            json!({"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}}),
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"tags": []}})),
            ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
        );
        let errors = validate(&schema, &json!({"spec": {"tags": ["a", "b", "c"]}}));
        assert_eq!(errors[0].reason, "FieldValueTooMany");
        assert_eq!(
            errors[0].to_string(),
            "spec.tags: Too many: 3: must have at most 2 items"
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"tags": ["a", 1]}})),
            [
                "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\""
            ]
        );
    }

    #[test]
    fn exclusive_bounds_and_multiples() {
        let schema = spec(json!({
            "a": {"type": "number", "minimum": 1, "exclusiveMinimum": true},
            "b": {"type": "number", "maximum": 1000000, "exclusiveMaximum": true},
            "c": {"type": "integer", "multipleOf": 5},
            "d": {"type": "number", "maximum": 2.5}}));
        assert_eq!(
            messages(
                &schema,
                &json!({"spec": {"a": 1, "b": 1000000, "c": 7, "d": 3}})
            ),
            [
                "spec.a: Invalid value: 1: spec.a in body should be greater than 1",
                "spec.b: Invalid value: 1000000: spec.b in body should be less than 1e+06",
                "spec.c: Invalid value: 7: spec.c in body should be a multiple of 5",
                "spec.d: Invalid value: 3: spec.d in body should be less than or equal to 2.5",
            ]
        );
    }

    #[test]
    fn nullable_and_null_items() {
        let schema = spec(json!({"a": {"type": "string", "nullable": true},
            "list": {"type": "array", "items": {"type": "string"}}}));
        assert!(validate(&schema, &json!({"spec": {"a": null}})).is_empty());
        assert_eq!(
            messages(&schema, &json!({"spec": {"list": [null]}})),
            [
                "spec.list[0]: Invalid value: \"null\": spec.list[0] in body must be of type string: \"null\""
            ]
        );
    }

    #[test]
    fn additional_properties_schema_validates_every_value() {
        let schema = spec(
            json!({"limits": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}}),
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"limits": {"cpu": 1, "mem": -1}}})),
            [
                "spec.limits.mem: Invalid value: -1: spec.limits.mem in body should be greater than or equal to 0"
            ]
        );
    }

    #[test]
    fn int_or_string() {
        let schema = spec(json!({"port": {"x-kubernetes-int-or-string": true}}));
        assert!(validate(&schema, &json!({"spec": {"port": 80}})).is_empty());
        assert!(validate(&schema, &json!({"spec": {"port": "http"}})).is_empty());
        assert_eq!(
            messages(&schema, &json!({"spec": {"port": true}})),
            [
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
            ]
        );
    }

    #[test]
    fn formats_the_server_checks() {
        let schema = spec(json!({"at": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"}, "n": {"type": "integer", "format": "int32"}}));
        assert!(
            validate(
                &schema,
                &json!({"spec": {"at": "2024-01-02T03:04:05Z",
            "id": "123e4567-e89b-12d3-a456-426614174000", "n": 5}})
            )
            .is_empty()
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"at": "yesterday"}})),
            [
                "spec.at: Invalid value: \"yesterday\": spec.at in body must be of type date-time: \"yesterday\""
            ]
        );
    }

    #[test]
    fn list_sets_and_maps_refuse_duplicates() {
        let schema = spec(json!({
            "set": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "map": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}));
        assert_eq!(
            messages(
                &schema,
                &json!({"spec": {"set": ["a", "a"], "map": [{"name": "x"}, {"name": "x"}]}})
            ),
            [
                "spec.map[1]: Duplicate value: map[string]interface {}{\"name\":\"x\"}",
                "spec.set[1]: Duplicate value: \"a\"",
            ]
        );
    }

    #[test]
    fn embedded_resources_need_api_version_and_kind() {
        let schema = spec(
            json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true}}),
        );
        assert_eq!(
            messages(&schema, &json!({"spec": {"template": {"kind": "Pod"}}})),
            ["spec.template.apiVersion: Required value: must not be empty"]
        );
    }
}
