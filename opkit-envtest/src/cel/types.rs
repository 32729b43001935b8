//! The types and size bounds the checker and the cost estimator reason with.
//!
//! A [`Decl`] is a CEL type with the largest size a value of it can have
//! (characters of a string, items of a list, entries of a map). Declared
//! from a structural schema, the bounds are `maxLength`, `maxItems` and
//! `maxProperties`, or what fits in the largest request the server accepts;
//! taken from a value, they are its actual sizes.

use super::values::escape;
use kube::core::cel::cel::Value as CelValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest request body the server accepts, which bounds every size.
pub(crate) const MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024;

/// A type and the largest size of its values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decl {
    pub(crate) kind: Kind,
    /// Characters, bytes, items or entries; 0 for scalars.
    pub(crate) max: u64,
}

/// The CEL types the checker tells apart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// Unknown until run time (`dyn`, int-or-string, preserved unknown fields).
    Dyn,
    /// The element type of an empty list literal: joins with anything.
    Never,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    List(Arc<Decl>),
    /// A map with string keys.
    Map(Arc<Decl>),
    /// An object with declared fields, by their CEL (escaped) names.
    Object(Arc<BTreeMap<String, Decl>>),
    Optional(Arc<Decl>),
    /// A library value: quantity, semver, IP address, CIDR, URL.
    Opaque(&'static str),
}

impl Decl {
    pub(crate) fn new(kind: Kind) -> Self {
        Self { kind, max: 0 }
    }

    pub(crate) fn sized(kind: Kind, max: u64) -> Self {
        Self { kind, max }
    }

    /// A value nothing is known about, as large as a request.
    pub(crate) fn dyn_() -> Self {
        Self::sized(Kind::Dyn, MAX_REQUEST_BYTES)
    }

    /// A string of at most `max` characters.
    pub(crate) fn string(max: u64) -> Self {
        Self::sized(Kind::String, max)
    }

    pub(crate) fn list(elem: Decl, max: u64) -> Self {
        Self::sized(Kind::List(Arc::new(elem)), max)
    }

    /// The type CEL names in its messages, e.g. `int` or `list(string)`.
    pub(crate) fn name(&self) -> String {
        match &self.kind {
            Kind::Dyn | Kind::Never => "dyn".into(),
            Kind::Bool => "bool".into(),
            Kind::Int => "int".into(),
            Kind::Uint => "uint".into(),
            Kind::Double => "double".into(),
            Kind::String => "string".into(),
            Kind::Bytes => "bytes".into(),
            Kind::Null => "null_type".into(),
            Kind::Duration => "google.protobuf.Duration".into(),
            Kind::Timestamp => "google.protobuf.Timestamp".into(),
            Kind::List(elem) => format!("list({})", elem.name()),
            Kind::Map(value) => format!("map(string, {})", value.name()),
            Kind::Object(_) => "object".into(),
            Kind::Optional(inner) => format!("optional_type({})", inner.name()),
            Kind::Opaque(name) => (*name).into(),
        }
    }

    /// The least type both values fit: same kinds merge, others become `dyn`.
    pub(crate) fn union(&self, other: &Decl) -> Decl {
        let max = self.max.max(other.max);
        let kind = match (&self.kind, &other.kind) {
            (Kind::Never, k) | (k, Kind::Never) => k.clone(),
            (Kind::List(a), Kind::List(b)) => Kind::List(Arc::new(a.union(b))),
            (Kind::Map(a), Kind::Map(b)) => Kind::Map(Arc::new(a.union(b))),
            (Kind::Optional(a), Kind::Optional(b)) => Kind::Optional(Arc::new(a.union(b))),
            (Kind::Object(a), Kind::Object(b)) => {
                let mut fields = (**a).clone();
                for (name, decl) in b.iter() {
                    let merged = match fields.get(name) {
                        Some(existing) => existing.union(decl),
                        None => decl.clone(),
                    };
                    fields.insert(name.clone(), merged);
                }
                Kind::Object(Arc::new(fields))
            }
            (a, b) if a == b => a.clone(),
            _ => Kind::Dyn,
        };
        Decl { kind, max }
    }

    /// The element type met when iterating: list items, map and object keys.
    pub(crate) fn iteration(&self) -> Decl {
        match &self.kind {
            Kind::List(elem) => (**elem).clone(),
            Kind::Map(_) => Decl::string(MAX_REQUEST_BYTES),
            Kind::Object(fields) => {
                let longest = fields.keys().map(|k| k.chars().count() as u64).max();
                Decl::string(longest.unwrap_or(0))
            }
            _ => Decl::dyn_(),
        }
    }

    /// The type of the values of a field or map entry reached by `.field`.
    pub(crate) fn field(&self, name: &str) -> Option<Decl> {
        match &self.kind {
            Kind::Object(fields) => fields.get(name).cloned(),
            Kind::Map(value) => Some((**value).clone()),
            Kind::Dyn => Some(Decl::dyn_()),
            _ => None,
        }
    }

    /// The type a CRD schema gives a value, with the sizes it allows.
    ///
    /// `resource_root` adds what every object has: `apiVersion`, `kind`
    /// and `metadata.name`/`generateName`.
    pub(crate) fn from_schema(schema: &Value, resource_root: bool) -> Decl {
        let flag = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
        let max = |key: &str| schema.get(key).and_then(Value::as_u64);
        if flag("x-kubernetes-int-or-string") {
            return Decl::sized(Kind::Dyn, MAX_REQUEST_BYTES - 2);
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("boolean") => Decl::new(Kind::Bool),
            Some("integer") => Decl::new(Kind::Int),
            Some("number") => Decl::new(Kind::Double),
            Some("string") => {
                let kind = match schema.get("format").and_then(Value::as_str) {
                    Some("byte") => Kind::Bytes,
                    Some("date-time" | "datetime" | "date") => Kind::Timestamp,
                    Some("duration") => Kind::Duration,
                    _ => Kind::String,
                };
                Decl::sized(kind, max("maxLength").unwrap_or(MAX_REQUEST_BYTES - 2))
            }
            Some("array") => {
                let items = schema.get("items").unwrap_or(&Value::Null);
                let elem =
                    Decl::from_schema(items, flag_of(items, "x-kubernetes-embedded-resource"));
                let bound = (MAX_REQUEST_BYTES - 2) / (min_serialized_size(items) + 1);
                Decl::list(elem, max("maxItems").unwrap_or(bound))
            }
            Some("object") | None => {
                if let Some(additional) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    let value = Decl::from_schema(
                        additional,
                        flag_of(additional, "x-kubernetes-embedded-resource"),
                    );
                    let bound = (MAX_REQUEST_BYTES - 2) / (min_serialized_size(additional) + 6);
                    return Decl::sized(
                        Kind::Map(Arc::new(value)),
                        max("maxProperties").unwrap_or(bound),
                    );
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                if properties.is_none() && !resource_root {
                    return Decl::dyn_();
                }
                let mut fields = BTreeMap::new();
                for (name, property) in properties.into_iter().flatten() {
                    if let Some(escaped) = escape(name) {
                        let embedded = flag_of(property, "x-kubernetes-embedded-resource");
                        fields.insert(escaped, Decl::from_schema(property, embedded));
                    }
                }
                if resource_root {
                    let text = || Decl::string(MAX_REQUEST_BYTES - 2);
                    fields.insert("apiVersion".into(), text());
                    fields.insert("kind".into(), text());
                    let meta = BTreeMap::from([
                        ("name".to_string(), text()),
                        ("generateName".to_string(), text()),
                    ]);
                    fields.insert("metadata".into(), Decl::new(Kind::Object(Arc::new(meta))));
                }
                let count = fields.len() as u64;
                Decl::sized(Kind::Object(Arc::new(fields)), count)
            }
            Some(_) => Decl::dyn_(),
        }
    }

    /// The type of an actual value, with its actual sizes.
    pub(crate) fn of(value: &CelValue) -> Decl {
        match value {
            CelValue::List(items) => {
                let elem = items
                    .iter()
                    .map(Decl::of)
                    .reduce(|a, b| a.union(&b))
                    .unwrap_or(Decl::new(Kind::Never));
                Decl::list(elem, items.len() as u64)
            }
            CelValue::Map(map) => {
                let fields: BTreeMap<String, Decl> = map
                    .map
                    .iter()
                    .map(|(k, v)| (key_text(k), Decl::of(v)))
                    .collect();
                Decl::sized(Kind::Object(Arc::new(fields)), map.map.len() as u64)
            }
            CelValue::String(s) => Decl::string(s.chars().count() as u64),
            CelValue::Bytes(b) => Decl::sized(Kind::Bytes, b.len() as u64),
            CelValue::Int(_) => Decl::new(Kind::Int),
            CelValue::UInt(_) => Decl::new(Kind::Uint),
            CelValue::Float(_) => Decl::new(Kind::Double),
            CelValue::Bool(_) => Decl::new(Kind::Bool),
            CelValue::Null => Decl::new(Kind::Null),
            CelValue::Duration(_) => Decl::new(Kind::Duration),
            CelValue::Timestamp(_) => Decl::new(Kind::Timestamp),
            CelValue::Opaque(opaque) => {
                match opaque.downcast_ref::<kube::core::cel::cel::objects::OptionalValue>() {
                    Some(optional) => {
                        let inner = optional.value().map(Decl::of).unwrap_or(Decl::dyn_());
                        Decl::new(Kind::Optional(Arc::new(inner)))
                    }
                    None => Decl::new(Kind::Opaque("opaque")),
                }
            }
            CelValue::Function(..) => Decl::dyn_(),
        }
    }
}

fn flag_of(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn key_text(key: &kube::core::cel::cel::objects::Key) -> String {
    use kube::core::cel::cel::objects::Key;
    match key {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

/// The fewest bytes a value of this schema takes in JSON, which bounds how
/// many of them fit in a request.
fn min_serialized_size(schema: &Value) -> u64 {
    if flag_of(schema, "nullable") {
        return 4;
    }
    if flag_of(schema, "x-kubernetes-int-or-string") {
        return 1;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => 4,
        Some("integer" | "number") => 1,
        Some("string") => 2 + schema.get("minLength").and_then(Value::as_u64).unwrap_or(0),
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_bounds_or_what_fits_in_a_request() {
        let schema = json!({"type": "object", "properties": {
            "tags": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 10}},
            "free": {"type": "array", "items": {"type": "integer"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "my-field": {"type": "boolean"}}});
        let decl = Decl::from_schema(&schema, true);
        let tags = decl.field("tags").expect("declared");
        assert_eq!((tags.name(), tags.max), ("list(string)".to_string(), 5));
        assert_eq!(tags.iteration().max, 10);
        assert_eq!(
            decl.field("free").expect("declared").max,
            (MAX_REQUEST_BYTES - 2) / 2
        );
        assert_eq!(
            decl.field("labels").expect("declared").name(),
            "map(string, string)"
        );
        assert!(decl.field("my__dash__field").is_some());
        assert!(decl.field("my-field").is_none());
        assert!(
            decl.field("metadata")
                .expect("root")
                .field("name")
                .is_some()
        );
    }

    #[test]
    fn values_give_their_actual_sizes() {
        let value = CelValue::List(Arc::new(vec![
            CelValue::String(Arc::new("abc".into())),
            CelValue::String(Arc::new("abcdef".into())),
        ]));
        let decl = Decl::of(&value);
        assert_eq!(
            (decl.name(), decl.max, decl.iteration().max),
            ("list(string)".into(), 2, 6)
        );
    }
}
