//! JSON values as CEL sees them, and the escaping of property names.

use kube::core::cel::cel::Value as CelValue;
use kube::core::cel::cel::objects::{Key, Map};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Words CEL reserves: properties with these names are `__name__` in rules.
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as rules spell it (`my-field` is `my__dash__field`), or
/// `None` when rules cannot reach it, as kube-apiserver's `cel.Escape`.
pub(crate) fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

fn text(s: &str) -> CelValue {
    CelValue::String(Arc::new(s.to_string()))
}

fn number(n: &serde_json::Number) -> CelValue {
    match n.as_i64() {
        Some(i) => CelValue::Int(i),
        None => match n.as_u64() {
            Some(u) => CelValue::UInt(u),
            None => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
    }
}

fn map(entries: HashMap<Key, CelValue>) -> CelValue {
    CelValue::Map(Map {
        map: Arc::new(entries),
    })
}

/// A value without a schema (admission objects): fields keep their names.
pub(crate) fn from_json(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => text(s),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(from_json).collect())),
        Value::Object(fields) => map(fields
            .iter()
            .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v)))
            .collect()),
    }
}

/// A value as a CRD schema types it: only declared properties, under their
/// escaped names; `number` fields as doubles; `byte`, `date-time` and
/// `duration` strings as bytes, timestamps and durations. A `resource_root`
/// (the object itself, or an embedded resource) also has its `apiVersion`,
/// `kind` and `metadata.name`/`generateName`.
pub(crate) fn from_schema(value: &Value, schema: &Value, resource_root: bool) -> CelValue {
    let flag = |s: &Value, key: &str| s.get(key).and_then(Value::as_bool) == Some(true);
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match schema.get("type").and_then(Value::as_str) {
            Some("number") => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            _ => number(n),
        },
        Value::String(s) => typed_string(s, schema.get("format").and_then(Value::as_str)),
        Value::Array(items) => {
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
            CelValue::List(Arc::new(
                items
                    .iter()
                    .map(|item| from_schema(item, item_schema, embedded))
                    .collect(),
            ))
        }
        Value::Object(fields) => {
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let embedded = flag(additional, "x-kubernetes-embedded-resource");
                return map(fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            Key::String(Arc::new(k.clone())),
                            from_schema(v, additional, embedded),
                        )
                    })
                    .collect());
            }
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return if resource_root {
                    map(envelope(fields))
                } else {
                    from_json(value)
                };
            };
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let mut entries = if resource_root {
                envelope(fields)
            } else {
                HashMap::new()
            };
            for (name, v) in fields {
                let child = match properties.get(name) {
                    Some(property) if !(resource_root && name == "metadata") => {
                        let embedded = flag(property, "x-kubernetes-embedded-resource");
                        from_schema(v, property, embedded)
                    }
                    Some(_) => continue,
                    None if preserve
                        && !entries.contains_key(&Key::String(Arc::new(name.clone()))) =>
                    {
                        from_json(v)
                    }
                    None => continue,
                };
                if let Some(escaped) = escape(name) {
                    entries.insert(Key::String(Arc::new(escaped)), child);
                }
            }
            map(entries)
        }
    }
}

/// What rules see of an object's envelope: `apiVersion`, `kind` and the
/// `name` and `generateName` of its metadata.
fn envelope(fields: &serde_json::Map<String, Value>) -> HashMap<Key, CelValue> {
    let mut entries = HashMap::new();
    for key in ["apiVersion", "kind"] {
        if let Some(Value::String(s)) = fields.get(key) {
            entries.insert(Key::String(Arc::new(key.into())), text(s));
        }
    }
    if let Some(Value::Object(meta)) = fields.get("metadata") {
        let names = ["name", "generateName"]
            .into_iter()
            .filter_map(|key| match meta.get(key) {
                Some(Value::String(s)) => Some((Key::String(Arc::new(key.into())), text(s))),
                _ => None,
            })
            .collect();
        entries.insert(Key::String(Arc::new("metadata".into())), map(names));
    }
    entries
}

fn typed_string(s: &str, format: Option<&str>) -> CelValue {
    match format {
        Some("byte") => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) => CelValue::Bytes(Arc::new(bytes)),
                Err(_) => text(s),
            }
        }
        Some("date-time" | "datetime") => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(at) => CelValue::Timestamp(at),
            Err(_) => text(s),
        },
        Some("date") => match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(day) => {
                let midnight = day
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    .fixed_offset();
                CelValue::Timestamp(midnight)
            }
            Err(_) => text(s),
        },
        Some("duration") => match go_duration(s) {
            Some(d) => CelValue::Duration(d),
            None => text(s),
        },
        _ => text(s),
    }
}

/// A Go duration (`1h30m`, `-1.5s`, `300ms`), as `format: duration` holds.
fn go_duration(s: &str) -> Option<chrono::Duration> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let amount: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += amount * scale;
        rest = &rest[unit_len..];
    }
    let nanos = if negative { -nanos } else { nanos };
    (nanos.abs() < i64::MAX as f64).then(|| chrono::Duration::nanoseconds(nanos as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_follows_the_api_server() {
        assert_eq!(escape("replicas").as_deref(), Some("replicas"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("my-field").as_deref(), Some("my__dash__field"));
        assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("snake_case").as_deref(), Some("snake_case"));
        assert_eq!(escape("1st"), None);
        assert_eq!(escape("with space"), None);
    }

    #[test]
    fn schema_types_the_value() {
        let schema = json!({"type": "object", "properties": {
            "ratio": {"type": "number"},
            "at": {"type": "string", "format": "date-time"},
            "wait": {"type": "string", "format": "duration"},
            "my-name": {"type": "string"}}});
        let value = from_schema(
            &json!({"ratio": 2, "at": "2024-01-02T03:04:05Z", "wait": "1m30s",
                "my-name": "x", "undeclared": 1, "kind": "K", "metadata": {"name": "n", "uid": "u"}}),
            &schema,
            true,
        );
        let CelValue::Map(map) = value else {
            panic!("an object is a map")
        };
        let get = |k: &str| map.map.get(&Key::String(Arc::new(k.to_string()))).cloned();
        assert_eq!(get("ratio"), Some(CelValue::Float(2.0)));
        assert!(matches!(get("at"), Some(CelValue::Timestamp(_))));
        assert_eq!(
            get("wait"),
            Some(CelValue::Duration(chrono::Duration::seconds(90)))
        );
        assert_eq!(get("my__dash__name"), Some(text("x")));
        assert_eq!(get("undeclared"), None);
        assert_eq!(get("kind"), Some(text("K")));
        let meta = CelValue::Map(Map {
            map: Arc::new(HashMap::from([(
                Key::String(Arc::new("name".into())),
                text("n"),
            )])),
        });
        assert_eq!(get("metadata"), Some(meta));
    }
}
