//! Readable progress for interactive runs: events as they are published and the status of each
//! primary whenever its phase or conditions change.

use std::collections::HashMap;

use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::object::Object;

/// Prints one line per new event (`Normal DriftCorrected: Put back Deployment default/web: ...`).
pub(crate) async fn events(client: Client) {
    let stream = watcher(Api::<Event>::all(client), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let mut stream = std::pin::pin!(stream);
    let mut seen: HashMap<String, i32> = HashMap::new();
    while let Some(item) = stream.next().await {
        let Ok(event) = item else { continue };
        let count = event.series.as_ref().map_or(1, |s| s.count);
        if seen.insert(event.name_any(), count) == Some(count) {
            continue;
        }
        let regarding = event
            .regarding
            .as_ref()
            .map(|r| {
                format!(
                    "{} {}/{}",
                    r.kind.clone().unwrap_or_default(),
                    r.namespace.clone().unwrap_or_default(),
                    r.name.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        println!(
            "  event  {regarding}: {} {}: {}",
            event.type_.unwrap_or_default(),
            event.reason.unwrap_or_default(),
            event.note.unwrap_or_default()
        );
    }
}

/// Prints the phase and conditions of each `K` whenever they change.
pub(crate) async fn follow<K: Object>(client: Client) {
    let stream = watcher(Api::<K>::all(client), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let mut stream = std::pin::pin!(stream);
    let mut last: HashMap<String, String> = HashMap::new();
    while let Some(item) = stream.next().await {
        let Ok(obj) = item else { continue };
        let Some(line) = summary(&obj) else { continue };
        let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        if last.get(&key) != Some(&line) {
            println!("  status {} {key}: {line}", K::kind(&()));
            last.insert(key, line);
        }
    }
}

fn summary<K: Object>(obj: &K) -> Option<String> {
    let value = serde_json::to_value(obj).ok()?;
    let status = value.get("status")?;
    let mut parts = Vec::new();
    if let Some(phase) = status.get("phase").and_then(|p| p.as_str()) {
        parts.push(format!("phase={phase}"));
    }
    for c in status
        .get("conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let field = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        parts.push(format!(
            "{}={} ({})",
            field("type"),
            field("status"),
            field("reason")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}
