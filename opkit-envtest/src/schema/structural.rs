//! The checks a CRD version's schema passes before the CRD is accepted.

use super::field_error::{Bad, FieldError};
use super::flag;
use super::pruning::prune_node;
use super::rules;
use super::validation::validate;
use regex::Regex;
use serde_json::Value;

/// Checks a CRD version schema before the CRD is accepted: structural
/// rules, then its CEL validation rules (compiled and costed).
///
/// Field paths are relative to the schema, e.g. `properties[spec].type`;
/// the caller prefixes them with `root`, the schema's path in the CRD
/// (`spec.validation.openAPIV3Schema`), which some messages quote.
pub fn check_schema(schema: &Value, root: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(s) = schema.as_object() else {
        errors.push(FieldError::required(
            "type",
            "must not be empty at the root",
        ));
        return errors;
    };
    match s.get("type").and_then(Value::as_str) {
        None if !flag(s, "x-kubernetes-preserve-unknown-fields") => {
            errors.push(FieldError::required(
                "type",
                "must not be empty at the root",
            ));
        }
        Some(t) if t != "object" => {
            errors.push(FieldError::invalid(
                "type",
                Bad::Str(t),
                "must be object at the root",
            ));
        }
        _ => {}
    }
    if flag(s, "nullable") {
        errors.push(FieldError::forbidden(
            "nullable",
            "must be false at the root",
        ));
    }
    if let Some(meta) = s
        .get("properties")
        .and_then(|p| p.get("metadata"))
        .and_then(Value::as_object)
    {
        let extra = meta.keys().any(|k| k != "type" && k != "properties")
            || meta
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.keys().any(|k| k != "name" && k != "generateName"));
        if extra {
            errors.push(FieldError::forbidden(
                "properties[metadata]",
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    check_schema_node(schema, "", Context::Root, &mut errors);
    // Rules are compiled against a schema known to be structural.
    if errors.is_empty() {
        errors = rules::compile(schema, root).errors;
    }
    errors
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    Property,
    Items,
    AdditionalProperties,
}

fn check_schema_node(schema: &Value, path: &str, ctx: Context, errors: &mut Vec<FieldError>) {
    let at = |field: &str| {
        if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    let Some(s) = schema.as_object() else {
        errors.push(FieldError::invalid(
            &at("type"),
            Bad::Json(schema),
            "must be an object",
        ));
        return;
    };
    let ty = s.get("type").and_then(Value::as_str);
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    if let Some(t) = ty
        && !matches!(
            t,
            "object" | "array" | "string" | "integer" | "number" | "boolean"
        )
    {
        let supported: Vec<String> = ["array", "boolean", "integer", "number", "object", "string"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        errors.push(FieldError::not_supported(
            &at("type"),
            &Value::String(t.into()),
            &supported,
        ));
    }
    if int_or_string {
        if let Some(t) = ty {
            errors.push(FieldError::invalid(
                &at("type"),
                Bad::Str(t),
                "must be empty if x-kubernetes-int-or-string is true",
            ));
        }
    } else if ty.is_none() && !preserve && ctx != Context::Root {
        let detail = match ctx {
            Context::Items => "must not be empty for specified array items",
            _ => "must not be empty for specified object fields",
        };
        errors.push(FieldError::required(&at("type"), detail));
    }
    if s.contains_key("$ref") {
        errors.push(FieldError::forbidden(&at("$ref"), "$ref is not supported"));
    }
    if flag(s, "uniqueItems") {
        errors.push(FieldError::forbidden(
            &at("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && let Err(e) = Regex::new(pattern)
    {
        errors.push(FieldError::invalid(
            &at("pattern"),
            Bad::Str(pattern),
            &format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    if flag(s, "x-kubernetes-embedded-resource") {
        if ty != Some("object") {
            errors.push(FieldError::invalid(
                &at("type"),
                Bad::Str(ty.unwrap_or("")),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
        if !s.contains_key("properties") && !preserve {
            errors.push(FieldError::required(
                &at("x-kubernetes-preserve-unknown-fields"),
                "must be true if x-kubernetes-embedded-resource is true and properties are not specified",
            ));
        }
    }
    if ty == Some("array") && !s.contains_key("items") {
        errors.push(FieldError::required(&at("items"), "must be specified"));
    }
    if let Some(list_type) = s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        let keys = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array);
        match list_type {
            "map" if keys.is_none_or(|k| k.is_empty()) => errors.push(FieldError::required(
                &at("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            )),
            "atomic" | "set" | "map" => {}
            other => errors.push(FieldError::not_supported(
                &at("x-kubernetes-list-type"),
                &Value::String(other.into()),
                &["atomic".into(), "set".into(), "map".into()],
            )),
        }
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(false)) => errors.push(FieldError::forbidden(
            &at("additionalProperties"),
            "additionalProperties cannot be set to false",
        )),
        Some(additional @ Value::Object(_)) => {
            if s.contains_key("properties") {
                errors.push(FieldError::forbidden(
                    &at("additionalProperties"),
                    "additionalProperties and properties are mutual exclusive",
                ));
            }
            check_schema_node(
                additional,
                &at("additionalProperties"),
                Context::AdditionalProperties,
                errors,
            );
        }
        _ => {}
    }
    if let Some(default) = s.get("default") {
        if ctx == Context::Root {
            errors.push(FieldError::forbidden(
                &at("default"),
                "must not be set at the root",
            ));
        }
        let mut pruned = default.clone();
        prune_node(Some(schema), &mut pruned, false);
        if &pruned != default {
            errors.push(FieldError::invalid(
                &at("default"),
                Bad::Json(default),
                "must not have unknown fields",
            ));
        }
        for e in validate(schema, default) {
            let field = if e.field.is_empty() {
                at("default")
            } else {
                format!("{}.{}", at("default"), e.field)
            };
            errors.push(FieldError { field, ..e });
        }
    }
    if let Some(properties) = s.get("properties").and_then(Value::as_object) {
        for (name, prop) in properties {
            if ctx == Context::Root && name == "metadata" {
                continue;
            }
            check_schema_node(
                prop,
                &at(&format!("properties[{name}]")),
                Context::Property,
                errors,
            );
        }
    }
    if let Some(items) = s.get("items") {
        check_schema_node(items, &at("items"), Context::Items, errors);
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for (i, branch) in s
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_schema_branch(branch, &at(&format!("{combinator}[{i}]")), errors);
        }
    }
    if let Some(not) = s.get("not") {
        check_schema_branch(not, &at("not"), errors);
    }
}

/// Branches of `allOf`/`anyOf`/`oneOf`/`not` may only add value validations.
fn check_schema_branch(branch: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(b) = branch.as_object() else {
        return;
    };
    for key in ["default", "nullable", "x-kubernetes-validations"] {
        if b.contains_key(key) {
            errors.push(FieldError::forbidden(
                &format!("{path}.{key}"),
                "must not be used inside allOf, anyOf, oneOf or not",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "spec.validation.openAPIV3Schema";

    #[test]
    fn check_schema_accepts_a_structural_schema() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 1},
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}}}}}});
        assert_eq!(check_schema(&schema, ROOT), []);
    }

    #[test]
    fn check_schema_refuses_non_structural() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "untyped": {"description": "no type"},
            "list": {"type": "array"},
            "bad": {"type": "string", "pattern": "("},
            "wrong": {"type": "integer", "default": "x"}}}}});
        let fields: Vec<String> = check_schema(&schema, ROOT)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert!(fields.contains(&"properties[spec].properties[untyped].type: Required value: must not be empty for specified object fields".to_string()), "{fields:?}");
        assert!(
            fields.contains(
                &"properties[spec].properties[list].items: Required value: must be specified"
                    .to_string()
            )
        );
        assert!(fields.iter().any(|f| {
            f.starts_with("properties[spec].properties[bad].pattern: Invalid value: \"(\"")
        }));
        assert!(fields.iter().any(|f| {
            f.starts_with("properties[spec].properties[wrong].default: Invalid value: \"string\"")
        }));
        assert_eq!(
            check_schema(&json!({"type": "string"}), ROOT)[0].to_string(),
            "type: Invalid value: \"string\": must be object at the root"
        );
    }

    #[test]
    fn rules_compile_once_the_schema_is_structural() {
        let rules = |rule: &str| {
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "integer"}}, "x-kubernetes-validations": [{"rule": rule}]}}})
        };
        assert_eq!(check_schema(&rules("self.a > 0"), ROOT), []);
        let refused = check_schema(&rules("self.b > 0"), ROOT);
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].field,
            "properties[spec].x-kubernetes-validations[0].rule"
        );
        assert!(
            refused[0].message.contains("undefined field 'b'"),
            "{}",
            refused[0]
        );
        let untyped = json!({"type": "object", "properties": {"spec": {"description": "no type",
            "x-kubernetes-validations": [{"rule": "self.b > 0"}]}}});
        let only_structural = check_schema(&untyped, ROOT);
        assert_eq!(only_structural.len(), 1, "{only_structural:?}");
        assert_eq!(only_structural[0].field, "properties[spec].type");
    }
}
