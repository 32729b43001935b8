//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`), which kubectl's typed clients
//! send (`kubectl create configmap|deployment|token`, `kubectl auth can-i`,
//! `kubectl drain`) and helm's deletes (`DeleteOptions`).
//!
//! The body is the `k8s\0` magic followed by a `runtime.Unknown` envelope
//! whose `raw` field holds the object. Objects are decoded with the table in
//! [`messages`], generated from the Go types of the built-in kinds (their
//! protobuf field numbers and JSON names); unknown fields are skipped. As Go's
//! JSON encoding does, zero values of `omitempty` fields are dropped while
//! pointers (`replicas: 0`) and fields without `omitempty` keep them.

mod messages;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use messages::{Fields, KINDS, MESSAGES};
use serde_json::{Map, Value, json};

/// The protobuf media type.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A body that is not a protobuf object this server can read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DecodeError(String);

/// How a field's value is encoded and shown in JSON.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
    /// Bytes, base64 in JSON.
    Bytes,
    /// `metav1.Time`: RFC 3339 seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `resource.Quantity`: its string.
    Quantity,
    IntOrString,
    /// `runtime.RawExtension` and `metav1.FieldsV1`: JSON bytes.
    Raw,
    /// A list of strings wrapped in a message (`authentication.v1.ExtraValue`).
    Strings,
    Msg(&'static str),
    /// An embedded message whose fields JSON inlines in the parent.
    Inline(&'static str),
    Rep(&'static Kind),
    /// `map<string, V>`.
    Map(&'static Kind),
}

use Kind::*;

/// One wire-format field.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| DecodeError("truncated varint".into()))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint too long".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| DecodeError("truncated field".into()))?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Bytes(self.take(8)?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| DecodeError("field too long".into()))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Bytes(self.take(4)?),
            other => return Err(DecodeError(format!("unsupported wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, DecodeError> {
    let mut reader = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while let Some(field) = reader.next()? {
        out.push(field);
    }
    Ok(out)
}

fn string(wire: &Wire<'_>) -> Result<String, DecodeError> {
    match wire {
        Wire::Bytes(b) => String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError("invalid UTF-8 in a string field".into())),
        Wire::Varint(_) => Err(DecodeError("expected a string".into())),
    }
}

fn bytes<'a>(wire: &Wire<'a>) -> Result<&'a [u8], DecodeError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        Wire::Varint(_) => Err(DecodeError("expected a message".into())),
    }
}

fn varint(wire: &Wire<'_>) -> Result<i64, DecodeError> {
    match wire {
        // Negative int32/int64 values are sign-extended to 64 bits on the wire.
        Wire::Varint(v) => Ok(*v as i64),
        Wire::Bytes(_) => Err(DecodeError("expected an integer".into())),
    }
}

/// A `map<string, V>` entry: key 1, value 2.
fn entry<'a>(wire: &Wire<'a>) -> Result<(String, Option<Wire<'a>>), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    for (n, w) in fields(bytes(wire)?)? {
        match n {
            1 => key = string(&w)?,
            2 => value = Some(w),
            _ => {}
        }
    }
    Ok((key, value))
}

fn lookup(name: &str) -> Result<Fields, DecodeError> {
    MESSAGES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map(|i| MESSAGES[i].1)
        .map_err(|_| DecodeError(format!("no decoder for {name}")))
}

/// Whether Go's `omitempty` drops the value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

fn message(name: &str, buf: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let schema = lookup(name)?;
    let mut out = Map::new();
    for (number, wire) in fields(buf)? {
        let Some(&(_, json_name, kind, keep_zero)) =
            schema.iter().find(|(n, ..)| u64::from(*n) == number)
        else {
            continue;
        };
        let key = json_name.to_string();
        match kind {
            Inline(inner) => out.extend(message(inner, bytes(&wire)?)?),
            Rep(inner) => {
                let values = match (inner, &wire) {
                    // Packed scalars.
                    (Int | Bool, Wire::Bytes(b)) => packed(b)?,
                    _ => vec![value(inner, &wire)?],
                };
                if let Value::Array(items) = out.entry(key).or_insert_with(|| json!([])) {
                    items.extend(values);
                }
            }
            Map(inner) => {
                let (k, v) = entry(&wire)?;
                let v = match v {
                    Some(w) => value(inner, &w)?,
                    None => empty(inner),
                };
                if let Value::Object(map) = out.entry(key).or_insert_with(|| json!({})) {
                    map.insert(k, v);
                }
            }
            _ => {
                let v = value(&kind, &wire)?;
                let kept = matches!(kind, Msg(_)) || (keep_zero && !v.is_null()) || !is_zero(&v);
                if kept {
                    out.insert(key, v);
                }
            }
        }
    }
    Ok(out)
}

/// The value of an absent map entry value: the type's zero.
fn empty(kind: &Kind) -> Value {
    match kind {
        Int => json!(0),
        Bool => json!(false),
        Msg(_) => json!({}),
        Strings => json!([]),
        _ => json!(""),
    }
}

fn packed(buf: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut reader = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while reader.pos < buf.len() {
        out.push(json!(reader.varint()? as i64));
    }
    Ok(out)
}

fn value(kind: &Kind, wire: &Wire<'_>) -> Result<Value, DecodeError> {
    Ok(match kind {
        Str => json!(string(wire)?),
        Int => json!(varint(wire)?),
        Bool => json!(varint(wire)? != 0),
        Bytes => json!(BASE64.encode(bytes(wire)?)),
        Time | MicroTime => timestamp(bytes(wire)?, matches!(kind, MicroTime))?,
        Quantity => quantity(bytes(wire)?)?,
        IntOrString => int_or_string(bytes(wire)?)?,
        Raw => {
            let mut raw: &[u8] = &[];
            for (n, w) in fields(bytes(wire)?)? {
                if n == 1 {
                    raw = bytes(&w)?;
                }
            }
            if raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(raw)
                    .map_err(|e| DecodeError(format!("embedded object is not JSON: {e}")))?
            }
        }
        Strings => {
            let mut items = Vec::new();
            for (n, w) in fields(bytes(wire)?)? {
                if n == 1 {
                    items.push(json!(string(&w)?));
                }
            }
            Value::Array(items)
        }
        Msg(inner) | Inline(inner) => Value::Object(message(inner, bytes(wire)?)?),
        Rep(_) | Map(_) => return Err(DecodeError("nested repeated fields".into())),
    })
}

/// `google.protobuf.Timestamp`-like: seconds 1, nanos 2; `null` for the zero time.
fn timestamp(buf: &[u8], micros: bool) -> Result<Value, DecodeError> {
    let (mut seconds, mut nanos) = (0, 0);
    for (n, w) in fields(buf)? {
        match n {
            1 => seconds = varint(&w)?,
            2 => nanos = varint(&w)?,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let t = jiff::Timestamp::new(seconds, i32::try_from(nanos).unwrap_or(0))
        .map_err(|e| DecodeError(format!("invalid time: {e}")))?;
    let format = if micros {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(json!(t.strftime(format).to_string()))
}

fn quantity(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut text = String::new();
    for (n, w) in fields(buf)? {
        if n == 1 {
            text = string(&w)?;
        }
    }
    Ok(json!(text))
}

/// `intstr.IntOrString`: type 1 (0 int, 1 string), intVal 2, strVal 3.
fn int_or_string(buf: &[u8]) -> Result<Value, DecodeError> {
    let (mut ty, mut int, mut text) = (0, 0, String::new());
    for (n, w) in fields(buf)? {
        match n {
            1 => ty = varint(&w)?,
            2 => int = varint(&w)?,
            3 => text = string(&w)?,
            _ => {}
        }
    }
    Ok(if ty == 1 { json!(text) } else { json!(int) })
}

/// Decodes a `k8s\0`-prefixed protobuf object into its JSON form.
pub(crate) fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| DecodeError("provided object is not protobuf (missing k8s magic)".into()))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, w) in fields(envelope)? {
        match n {
            1 => {
                for (m, tw) in fields(bytes(&w)?)? {
                    match m {
                        1 => api_version = string(&tw)?,
                        2 => kind = string(&tw)?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(&w)?,
            _ => {}
        }
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let name = if kind == "DeleteOptions" {
        // Registered in every group version.
        Some("meta/v1.DeleteOptions")
    } else {
        KINDS
            .iter()
            .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
            .map(|(.., m)| *m)
    };
    let name = name.ok_or_else(|| {
        DecodeError(format!(
            "protobuf bodies of {kind} in {api_version} are not supported; send JSON or YAML"
        ))
    })?;
    let mut object = message(name, raw)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::decode;
    use serde_json::json;

    fn len_field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    fn varint_field(number: u64, value: u8) -> Vec<u8> {
        vec![(number << 3) as u8, value]
    }

    fn envelope(api_version: &[u8], kind: &[u8], raw: &[u8]) -> Vec<u8> {
        let type_meta = [len_field(1, api_version), len_field(2, kind)].concat();
        [
            b"k8s\0".to_vec(),
            len_field(1, &type_meta),
            len_field(2, raw),
        ]
        .concat()
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let meta = [len_field(1, b"cm"), len_field(3, b"")].concat();
        let entry = [len_field(1, b"a"), len_field(2, b"b")].concat();
        let raw = [len_field(1, &meta), len_field(2, &entry)].concat();
        assert_eq!(
            decode(&envelope(b"v1", b"ConfigMap", &raw)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn pointers_keep_zero_values_and_omitempty_fields_drop_them() {
        // DeploymentSpec: replicas (pointer) 0, paused (omitempty) false, minReadySeconds 0.
        let spec = [varint_field(1, 0), varint_field(7, 0), varint_field(5, 0)].concat();
        let raw = [len_field(1, &len_field(1, b"web")), len_field(2, &spec)].concat();
        let deployment = decode(&envelope(b"apps/v1", b"Deployment", &raw)).unwrap();
        assert_eq!(deployment["spec"], json!({"replicas": 0}));
    }

    #[test]
    fn delete_options_decode_in_any_group_version() {
        // propagationPolicy 4, dryRun 5 (repeated), preconditions 2 { uid 1 }.
        let raw = [
            len_field(4, b"Foreground"),
            len_field(5, b"All"),
            len_field(2, &len_field(1, b"u-1")),
        ]
        .concat();
        for api_version in [&b"v1"[..], b"meta.k8s.io/v1", b"apps/v1"] {
            let options = decode(&envelope(api_version, b"DeleteOptions", &raw)).unwrap();
            assert_eq!(options["propagationPolicy"], "Foreground");
            assert_eq!(options["dryRun"], json!(["All"]));
            assert_eq!(options["preconditions"], json!({"uid": "u-1"}));
        }
    }

    #[test]
    fn reviews_decode_with_their_nested_attributes() {
        // SelfSubjectAccessReview.spec(2).resourceAttributes(1): namespace 1, verb 2, resource 5.
        let attributes = [
            len_field(1, b"default"),
            len_field(2, b"create"),
            len_field(5, b"pods"),
        ]
        .concat();
        let raw = [len_field(1, &[]), len_field(2, &len_field(1, &attributes))].concat();
        let review = decode(&envelope(
            b"authorization.k8s.io/v1",
            b"SelfSubjectAccessReview",
            &raw,
        ))
        .unwrap();
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "create", "resource": "pods"})
        );
    }

    #[test]
    fn refuses_truncated_and_unknown_bodies() {
        assert!(decode(b"k8s\0\x0a\x05ab").is_err());
        assert!(decode(b"{}").is_err());
        let unknown = decode(&envelope(b"example.com/v1", b"Widget", &[])).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "protobuf bodies of Widget in example.com/v1 are not supported; send JSON or YAML"
        );
    }
}
