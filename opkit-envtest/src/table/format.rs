//! How cells render values: texts, counts, labels, selectors and ages, as the real printers do.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub(super) trait OrIfEmpty {
    fn or_if_empty(self, fallback: impl Into<String>) -> String;
}

impl OrIfEmpty for String {
    fn or_if_empty(self, fallback: impl Into<String>) -> String {
        if self.is_empty() {
            fallback.into()
        } else {
            self
        }
    }
}

pub(super) fn text(o: &Value, pointer: &str) -> String {
    o.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn first_value<'a>(o: &'a Value, pointers: &[&str]) -> Option<&'a Value> {
    pointers
        .iter()
        .filter_map(|p| o.pointer(p))
        .find(|v| !v.is_null())
}

pub(super) fn first_text(o: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .map(|p| text(o, p))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

pub(super) fn int(o: &Value, pointer: &str) -> i64 {
    o.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `spec.replicas`, which the real server defaults to 1.
pub(super) fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(super) fn array<'a>(o: &'a Value, pointer: &str) -> &'a [Value] {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(super) fn len(o: &Value, pointer: &str) -> usize {
    match o.pointer(pointer) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    }
}

pub(super) fn or_none(s: impl Into<String>) -> Value {
    let s = s.into();
    json!(if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    })
}

pub(super) fn or_na(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

pub(super) fn quantity(o: &Value, pointer: &str) -> String {
    match o.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Abbreviated access modes, in Kubernetes' order whatever the object's.
pub(super) fn access_modes(o: &Value, pointer: &str) -> String {
    let modes = array(o, pointer);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

pub(super) fn containers(o: &Value, field: &str) -> Value {
    let values: Vec<&str> = array(o, "/spec/template/spec/containers")
        .iter()
        .filter_map(|c| c[field].as_str())
        .collect();
    json!(values.join(","))
}

/// `k=v,k2=v2`, sorted by key, or `<none>`.
pub(super) fn labels(map: Option<&Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = map
        .and_then(Value::as_object)
        .map(Map::iter)
        .into_iter()
        .flatten()
        .collect();
    let text: Vec<String> = sorted
        .into_iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if text.is_empty() {
        "<none>".into()
    } else {
        text.join(",")
    }
}

/// A label selector as `kubectl` prints it: `app=web,tier in (a,b),!legacy`.
pub(super) fn selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort_unstable();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.sort();
    parts.join(",")
}

/// The age of a timestamp, as the real server prints it; `<unknown>` when absent.
pub(super) fn age_of(timestamp: Option<&Value>) -> String {
    match timestamp
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => human_since(t),
        None => "<unknown>".into(),
    }
}

pub(super) fn human_since(t: jiff::Timestamp) -> String {
    human_duration(jiff::Timestamp::now().as_second() - t.as_second())
}

/// Kubernetes' `duration.HumanDuration`: `45s`, `3m20s`, `15m`, `5h10m`, `3d4h`, `2y5d`.
pub(super) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        for (seconds, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 600, "5h10m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
            (2 * 365 * 86400 + 5 * 86400, "2y5d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }
}
