//! CRD structural schemas: validation, defaulting and pruning, with the
//! real API server's error wording.
//!
//! A write to a custom resource goes through [`prune`], then
//! [`apply_defaults`], then [`validate`], in that order, as in
//! kube-apiserver. [`check_schema`] runs when a CRD is created or updated.

use regex::Regex;
use serde_json::{Map, Value};
use std::fmt;

/// One invalid field, as a `StatusCause` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field path, e.g. `spec.replicas`.
    pub field: String,
    /// The cause reason, e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The detail without the path, e.g. `Invalid value: 0: spec.replicas in body should be greater than or equal to 1`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The bad value of a field error, printed as apimachinery's `ErrorBody` does.
enum Bad<'a> {
    Json(&'a Value),
    Str(&'a str),
    Int(i64),
}

impl FieldError {
    fn required(field: &str, detail: &str) -> Self {
        Self::new(field, "FieldValueRequired", "Required value".into(), detail)
    }

    fn invalid(field: &str, value: Bad<'_>, detail: &str) -> Self {
        Self::new(
            field,
            "FieldValueInvalid",
            with_value("Invalid value", value),
            detail,
        )
    }

    fn type_invalid(field: &str, value: Bad<'_>, detail: &str) -> Self {
        let body = with_value("Invalid value", value);
        Self::new(field, "FieldValueTypeInvalid", body, detail)
    }

    fn not_supported(field: &str, value: &Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        let body = with_value("Unsupported value", Bad::Json(value));
        Self::new(field, "FieldValueNotSupported", body, &detail)
    }

    fn too_long(field: &str, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        Self::new(field, "FieldValueTooLong", "Too long".into(), &detail)
    }

    fn too_many(field: &str, actual: usize, max: u64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {unit}");
        let body = with_value("Too many", Bad::Int(actual as i64));
        Self::new(field, "FieldValueTooMany", body, &detail)
    }

    fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(field, "FieldValueForbidden", "Forbidden".into(), detail)
    }

    fn duplicate(field: &str, value: &Value) -> Self {
        let body = with_value("Duplicate value", Bad::Json(value));
        Self::new(field, "FieldValueDuplicate", body, "")
    }

    fn new(field: &str, reason: &'static str, body: String, detail: &str) -> Self {
        let message = if detail.is_empty() {
            body
        } else {
            format!("{body}: {detail}")
        };
        Self {
            field: field.to_string(),
            reason,
            message,
        }
    }
}

fn with_value(kind: &str, value: Bad<'_>) -> String {
    match value {
        Bad::Str(s) => format!("{kind}: {}", go_quote(s)),
        Bad::Int(i) => format!("{kind}: {i}"),
        Bad::Json(v) => format!("{kind}: {}", go_value(v)),
    }
}

/// Go's `%v` for scalars, `%q` for strings and `%#v` for maps and slices.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Number(n) => go_number(n),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => go_sharp_v(v),
    }
}

fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => go_number(n),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_sharp_v).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_sharp_v(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        go_float(u as f64)
    } else {
        go_float(n.as_f64().unwrap_or(0.0))
    }
}

/// Go's `%v` for a float64: the shortest representation, with an exponent
/// when it is below -4 or at least 6 (e.g. `1e+06`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let s = format!("{f}");
        return s;
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Go's `%q` (strconv.Quote).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
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
    let mut errors = Vec::new();
    validate_node(schema, object, "", &mut errors);
    errors
}

fn validate_node(schema: &Value, data: &Value, path: &str, errors: &mut Vec<FieldError>) {
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
        Value::Array(items) => check_array(s, items, path, name, errors),
        _ => {}
    }
    check_combinators(s, data, path, name, errors);
    check_enum(s, data, path, errors);
    if let Value::Object(map) = data {
        check_object(s, map, path, name, errors);
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
    let passes = |branch: &Value| validate_at(branch, data, path).is_empty();
    for branch in branches("allOf") {
        errors.extend(validate_at(branch, data, path));
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

fn validate_at(schema: &Value, data: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_node(schema, data, path, &mut errors);
    errors
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

/// Checks a string format the server knows; returns the offending text.
fn check_format(format: &str, text: &str) -> Option<String> {
    let ok = match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => jiff::civil::Date::strptime("%Y-%m-%d", text).is_ok(),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => is_uuid(text, format),
        "byte" => is_base64(text),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        "mac" => is_mac(text),
        "hostname" => is_hostname(text),
        "duration" => is_go_duration(text),
        _ => true,
    };
    (!ok).then(|| text.to_string())
}

fn is_uuid(text: &str, format: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let version = match format {
        "uuid3" => Some(b'3'),
        "uuid4" => Some(b'4'),
        "uuid5" => Some(b'5'),
        _ => None,
    };
    shape && version.is_none_or(|v| bytes[14] == v)
}

fn is_base64(text: &str) -> bool {
    let t = text.trim_end_matches('=');
    text.len().is_multiple_of(4)
        && text.len() - t.len() <= 2
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_go_duration(text: &str) -> bool {
    compiled(r"^[-+]?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$|^0$")
        .is_some_and(|re| re.is_match(text))
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
    errors: &mut Vec<FieldError>,
) {
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate_node(item_schema, item, &format!("{path}[{i}]"), errors);
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
fn json_equal(a: &Value, b: &Value) -> bool {
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
            validate_node(sub, value, &child(path, key), errors);
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

/// Removes fields the schema does not declare (root `apiVersion`, `kind`, `metadata` stay).
///
/// `x-kubernetes-preserve-unknown-fields` keeps unknown fields below its
/// node (declared ones are still pruned inside); embedded resources keep
/// their `apiVersion`, `kind` and `metadata`.
pub fn prune(schema: &Value, object: &mut Value) {
    prune_node(Some(schema), object, true);
}

fn prune_node(schema: Option<&Value>, data: &mut Value, resource_root: bool) {
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

/// Checks a CRD version schema before the CRD is accepted (structural rules, unsupported features).
///
/// Field paths are relative to the schema, e.g. `properties[spec].type`;
/// the caller prefixes them with `spec.versions[i].schema.openAPIV3Schema`.
pub fn check_schema(schema: &Value) -> Vec<FieldError> {
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
    if s.contains_key("x-kubernetes-validations") {
        errors.push(FieldError::forbidden(
            &at("x-kubernetes-validations"),
            "CEL validation rules are not supported by opkit-envtest",
        ));
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
    use proptest::prelude::*;
    use serde_json::json;

    fn messages(schema: &Value, obj: &Value) -> Vec<String> {
        validate(schema, obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn spec(properties: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}})
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

    #[test]
    fn check_schema_accepts_a_structural_schema() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 1},
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}}}}}});
        assert_eq!(check_schema(&schema), []);
    }

    #[test]
    fn check_schema_refuses_non_structural_and_cel() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "untyped": {"description": "no type"},
            "list": {"type": "array"},
            "bad": {"type": "string", "pattern": "("},
            "wrong": {"type": "integer", "default": "x"},
            "rules": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}]}}}}});
        let fields: Vec<String> = check_schema(&schema)
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
        assert!(fields.contains(&"properties[spec].properties[rules].x-kubernetes-validations: Forbidden: CEL validation rules are not supported by opkit-envtest".to_string()));
        assert_eq!(
            check_schema(&json!({"type": "string"}))[0].to_string(),
            "type: Invalid value: \"string\": must be object at the root"
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(2.5), "2.5");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_quote("a\"b\n\u{1}"), "\"a\\\"b\\n\\x01\"");
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
            let _ = check_schema(&schema);
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
