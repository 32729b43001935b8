//! `/openapi/v2` in protobuf, the encoding kubectl asks for when it validates
//! on the client (a `kind: List`, kinds it finds no OpenAPI v3 for): the
//! Swagger 2.0 document as gnostic's `openapi.v2.Document` message, with the
//! field numbers of its `OpenAPIv2.proto`. Extension and default values are
//! carried as YAML text, which JSON is.
//!
//! Definitions are complete; path items carry their operations' ids, media
//! types and extensions but not their parameters or responses, which no
//! client reads from this encoding.

use serde_json::Value;

/// The media types of the encoding. Responses carry the first: Go's `mime` package,
/// which clients parse them with, refuses the `@` of the spelling kubectl asks with.
pub(crate) const MEDIA_TYPES: &[&str] = &[
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
];

/// Whether `accept` asks for the protobuf encoding before any JSON.
pub(crate) fn wanted(accept: &str) -> bool {
    for media in accept.split(',') {
        let essence = media.split(';').next().unwrap_or_default().trim();
        if MEDIA_TYPES.contains(&essence) {
            return true;
        }
        if matches!(essence, "application/json" | "application/*" | "*/*") {
            return false;
        }
    }
    false
}

/// Encodes a Swagger 2.0 document as an `openapi.v2.Document`.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        let mut buf = Vec::new();
        string(&mut buf, 1, info.get("title"));
        string(&mut buf, 2, info.get("version"));
        string(&mut buf, 3, info.get("description"));
        message(&mut out, 2, &buf);
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut buf = Vec::new();
        for (path, item) in paths {
            message(&mut buf, 2, &named(path, &path_item(item)));
        }
        message(&mut out, 8, &buf);
    }
    if let Some(definitions) = doc.get("definitions").and_then(Value::as_object) {
        let mut buf = Vec::new();
        for (name, definition) in definitions {
            message(&mut buf, 1, &named(name, &schema(definition)));
        }
        message(&mut out, 9, &buf);
    }
    extensions(&mut out, 16, doc);
    out
}

fn path_item(item: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, item.get("$ref"));
    let methods = ["get", "put", "post", "delete", "options", "head", "patch"];
    for (number, method) in (2..).zip(methods) {
        if let Some(op) = item.get(method) {
            message(&mut out, number, &operation(op));
        }
    }
    extensions(&mut out, 10, item);
    out
}

fn operation(op: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    strings(&mut out, 1, op.get("tags"));
    string(&mut out, 2, op.get("summary"));
    string(&mut out, 3, op.get("description"));
    string(&mut out, 5, op.get("operationId"));
    strings(&mut out, 6, op.get("produces"));
    strings(&mut out, 7, op.get("consumes"));
    strings(&mut out, 10, op.get("schemes"));
    boolean(&mut out, 11, op.get("deprecated"));
    extensions(&mut out, 13, op);
    out
}

fn schema(s: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, s.get("$ref"));
    string(&mut out, 2, s.get("format"));
    string(&mut out, 3, s.get("title"));
    string(&mut out, 4, s.get("description"));
    if let Some(default) = s.get("default") {
        message(&mut out, 5, &any(default));
    }
    double(&mut out, 6, s.get("multipleOf"));
    double(&mut out, 7, s.get("maximum"));
    boolean(&mut out, 8, s.get("exclusiveMaximum"));
    double(&mut out, 9, s.get("minimum"));
    boolean(&mut out, 10, s.get("exclusiveMinimum"));
    for (number, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        int(&mut out, number, s.get(key));
    }
    string(&mut out, 13, s.get("pattern"));
    boolean(&mut out, 16, s.get("uniqueItems"));
    strings(&mut out, 19, s.get("required"));
    for value in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(&mut out, 20, &any(value));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut buf = Vec::new();
            key(&mut buf, 2, 0);
            varint(&mut buf, u64::from(*allowed));
            message(&mut out, 21, &buf);
        }
        Some(nested @ Value::Object(_)) => {
            let mut buf = Vec::new();
            message(&mut buf, 1, &schema(nested));
            message(&mut out, 21, &buf);
        }
        _ => {}
    }
    match s.get("type") {
        Some(kind @ Value::String(_)) => message(&mut out, 22, &field_string(1, kind)),
        Some(kinds @ Value::Array(_)) => {
            let mut buf = Vec::new();
            strings(&mut buf, 1, Some(kinds));
            message(&mut out, 22, &buf);
        }
        _ => {}
    }
    let items: Vec<&Value> = match s.get("items") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    if !items.is_empty() {
        let mut buf = Vec::new();
        for item in items {
            message(&mut buf, 1, &schema(item));
        }
        message(&mut out, 23, &buf);
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(&mut out, 24, &schema(part));
    }
    if let Some(properties) = s.get("properties").and_then(Value::as_object) {
        let mut buf = Vec::new();
        for (name, property) in properties {
            message(&mut buf, 1, &named(name, &schema(property)));
        }
        message(&mut out, 25, &buf);
    }
    string(&mut out, 26, s.get("discriminator"));
    boolean(&mut out, 27, s.get("readOnly"));
    if let Some(example) = s.get("example") {
        message(&mut out, 30, &any(example));
    }
    extensions(&mut out, 31, s);
    out
}

/// The `x-` keys of an object as `NamedAny`s.
fn extensions(out: &mut Vec<u8>, number: u32, obj: &Value) {
    let Some(map) = obj.as_object() else {
        return;
    };
    for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        message(out, number, &named(name, &any(value)));
    }
}

/// An `openapi.v2.Any` holding `value` as YAML text.
fn any(value: &Value) -> Vec<u8> {
    field_string(2, &Value::String(value.to_string()))
}

/// A `Named*` message: the name, then the encoded value.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = field_string(1, &Value::String(name.to_string()));
    message(&mut out, 2, value);
    out
}

fn field_string(number: u32, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, number, Some(value));
    out
}

fn key(out: &mut Vec<u8>, number: u32, wire: u8) {
    varint(out, (u64::from(number) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    key(out, number, 2);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn message(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    bytes(out, number, payload);
}

fn string(out: &mut Vec<u8>, number: u32, value: Option<&Value>) {
    if let Some(text) = value.and_then(Value::as_str).filter(|t| !t.is_empty()) {
        bytes(out, number, text.as_bytes());
    }
}

fn strings(out: &mut Vec<u8>, number: u32, value: Option<&Value>) {
    for text in value.and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = text.as_str() {
            bytes(out, number, text.as_bytes());
        }
    }
}

fn boolean(out: &mut Vec<u8>, number: u32, value: Option<&Value>) {
    if value.and_then(Value::as_bool) == Some(true) {
        key(out, number, 0);
        varint(out, 1);
    }
}

fn int(out: &mut Vec<u8>, number: u32, value: Option<&Value>) {
    if let Some(n) = value.and_then(Value::as_i64).filter(|n| *n != 0) {
        key(out, number, 0);
        varint(out, n as u64);
    }
}

fn double(out: &mut Vec<u8>, number: u32, value: Option<&Value>) {
    if let Some(f) = value.and_then(Value::as_f64).filter(|f| *f != 0.0) {
        key(out, number, 1);
        out.extend_from_slice(&f.to_le_bytes());
    }
}

/// Reads the encoding back, for the tests: field number to raw values.
#[cfg(test)]
fn fields(mut buf: &[u8]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    let read = |buf: &mut &[u8]| -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        while let Some((&byte, rest)) = buf.split_first() {
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                break;
            }
        }
        value
    };
    while !buf.is_empty() {
        let tag = read(&mut buf);
        let value = match tag & 7 {
            0 => Value::from(read(&mut buf)),
            1 => {
                let (raw, rest) = buf.split_at(8);
                buf = rest;
                Value::from(f64::from_le_bytes(raw.try_into().unwrap_or_default()))
            }
            _ => {
                let len = usize::try_from(read(&mut buf)).unwrap_or_default();
                let (raw, rest) = buf.split_at(len);
                buf = rest;
                Value::from(raw.to_vec())
            }
        };
        let entry = map
            .entry((tag >> 3).to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(value);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        let bytes: Vec<u8> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .map(|b| b as u8)
            .collect();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn definitions_keep_types_refs_and_extensions() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
            "definitions": {"a.B": {"type": "object", "required": ["x"],
                "properties": {"x": {"$ref": "#/definitions/c.D"}, "n": {"type": "integer", "minimum": 1}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "B", "version": "v1"}]}}});
        let top = fields(&encode(&doc));
        assert_eq!(text(&top["1"][0]), "2.0");
        let definitions = fields(&bytes_of(&top["9"][0]));
        let named = fields(&bytes_of(&definitions["1"][0]));
        assert_eq!(text(&named["1"][0]), "a.B");
        let schema = fields(&bytes_of(&named["2"][0]));
        assert_eq!(text(&fields(&bytes_of(&schema["22"][0]))["1"][0]), "object");
        assert_eq!(text(&schema["19"][0]), "x");
        let extension = fields(&bytes_of(&schema["31"][0]));
        assert_eq!(text(&extension["1"][0]), "x-kubernetes-group-version-kind");
        let yaml = text(&fields(&bytes_of(&extension["2"][0]))["2"][0]);
        assert_eq!(yaml, r#"[{"group":"","kind":"B","version":"v1"}]"#);
        let properties = fields(&bytes_of(&schema["25"][0]));
        let first = fields(&bytes_of(&properties["1"][0]));
        assert_eq!(text(&first["1"][0]), "n");
        let minimum = fields(&bytes_of(&first["2"][0]))["9"][0].as_f64();
        assert_eq!(minimum, Some(1.0));
    }

    fn bytes_of(v: &Value) -> Vec<u8> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .map(|b| b as u8)
            .collect()
    }

    #[test]
    fn protobuf_is_chosen_only_when_asked_before_json() {
        assert!(wanted(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        ));
        assert!(!wanted(
            "application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        ));
        assert!(!wanted(""));
    }
}
