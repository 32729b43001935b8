//! CRD structural schemas: validation, defaulting and pruning, with the
//! real API server's error wording.
//!
//! A write to a custom resource goes through [`prune`], then
//! [`apply_defaults`], then [`validate`], in that order, as in
//! kube-apiserver. [`check_schema`] runs when a CRD is created or updated.

mod correlation;
mod defaulting;
mod field_error;
mod formats;
mod go_format;
mod pruning;
mod rules;
mod structural;
mod validation;

pub use defaulting::apply_defaults;
pub(crate) use field_error::Bad;
pub use field_error::FieldError;
pub(crate) use go_format::go_quote;
pub use pruning::prune;
pub(crate) use rules::Rules;
pub use structural::check_schema;
pub use validation::validate;

use regex::Regex;
use serde_json::{Map, Value};

/// What validating a write found: errors refuse it, warnings go back to the client.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    pub(crate) errors: Vec<FieldError>,
    pub(crate) warnings: Vec<String>,
}

/// The CEL rules of a schema, if it has any and they all compile.
pub(crate) fn compile_rules(schema: &Value) -> Option<Rules> {
    rules::compile(schema, "").rules
}

/// Validates a write of the (defaulted) `object`, an update from `old` when
/// given, as kube-apiserver's custom resource strategy does: the schema,
/// ratcheted on updates, then the CEL `rules` unless schema errors that
/// make them unsafe (wrong types, missing or oversized fields) were found.
pub(crate) fn check_write(
    schema: &Value,
    rules: Option<&Rules>,
    object: &Value,
    old: Option<&Value>,
) -> Checked {
    let mut errors = match old {
        Some(old) => validation::validate_update(schema, object, old),
        None => validate(schema, object),
    };
    let mut warnings = Vec::new();
    if let Some(rules) = rules {
        let blocking = errors.iter().any(|e| {
            matches!(
                e.reason,
                "FieldValueNotSupported"
                    | "FieldValueRequired"
                    | "FieldValueTooLong"
                    | "FieldValueTooMany"
                    | "FieldValueTypeInvalid"
            )
        });
        if blocking {
            errors.push(rules::skipped());
        } else {
            let verdict = rules.validate(object, old);
            errors.extend(verdict.errors);
            warnings = verdict.warnings;
        }
    }
    Checked { errors, warnings }
}

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Compiled schema patterns, shared by every validation (CRDs have few).
fn compiled(pattern: &str) -> Option<Regex> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = cache.get(pattern) {
        return re.clone();
    }
    // Bounded: arbitrary patterns from many CRDs must not grow it forever.
    if cache.len() >= 1024 {
        cache.clear();
    }
    let re = Regex::new(pattern).ok();
    cache.insert(pattern.to_string(), re.clone());
    re
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A schema whose `spec` has these properties.
    pub(crate) fn spec(properties: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}})
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}|type|items|properties|default|required|enum|minimum|pattern|nullable|additionalProperties|x-kubernetes-preserve-unknown-fields",
                    inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_schemas_and_objects_never_panic(schema in arb_json(), mut obj in arb_json()) {
            let _ = check_schema(&schema, "");
            let _ = validate(&schema, &obj);
            apply_defaults(&schema, &mut obj);
            prune(&schema, &mut obj);
            let _ = validate(&schema, &obj);
        }

        #[test]
        fn pruning_is_idempotent(schema in arb_json(), mut obj in arb_json()) {
            prune(&schema, &mut obj);
            let once = obj.clone();
            prune(&schema, &mut obj);
            prop_assert_eq!(once, obj);
        }
    }
}
