//! core/v1 and events.k8s.io/v1 Events are two views of the same stored
//! objects, as on a real server. Objects are stored in the core/v1 shape.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field) pairs that only differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, to_core: bool) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let renamed = RENAMED.iter().find_map(|(new, core)| {
            let (from, to) = if to_core { (new, core) } else { (core, new) };
            (key == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(key).to_string(), value.clone());
    }
    Value::Object(out)
}

/// Converts an events.k8s.io/v1 Event to the stored core/v1 shape.
pub(crate) fn to_core(obj: &Value) -> Value {
    let mut core = rename(obj, true);
    if let Some(map) = core.as_object_mut() {
        map.insert("apiVersion".into(), Value::String("v1".into()));
        map.insert("kind".into(), Value::String("Event".into()));
        // kubectl shows the source component; Recorder only sets reportingController.
        let component = map.get("reportingComponent").cloned();
        if let Some(component) = component {
            let source = map
                .entry("source")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(source) = source.as_object_mut() {
                source.entry("component").or_insert(component);
            }
        }
    }
    core
}

/// Presents a stored core/v1 Event as events.k8s.io/v1.
pub(crate) fn to_events_v1(obj: &Value) -> Value {
    let mut event = rename(obj, false);
    if let Some(map) = event.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            Value::String("events.k8s.io/v1".into()),
        );
        map.insert("kind".into(), Value::String("Event".into()));
    }
    event
}
