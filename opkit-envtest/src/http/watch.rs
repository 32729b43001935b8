//! Watch streams: newline-delimited JSON events over a chunked response,
//! synthetic ADDED events for the current state, bookmarks, 410 Gone for
//! compacted resourceVersions, `timeoutSeconds`, and client disconnects.

use super::is_true;
use super::negotiate::Format;
use super::rest::{RestRequest, Selectors, needs_conversion, present, present_all};
use crate::conversion;
use crate::error::ApiError;
use crate::go_order::GoOrder;
use crate::resources::ResourceInfo;
use crate::store::{EventType, Stored, storage_key};
use crate::table;
use axum::body::Body;
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use http::{HeaderValue, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};

/// Without `timeoutSeconds`, a watch ends after this long (the real server picks 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How often an idle watch checks that its client is still there.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);

struct WatchSpec {
    info: ResourceInfo,
    storage: String,
    namespace: Option<String>,
    selectors: Selectors,
    bookmarks: bool,
    table: Option<String>,
    metadata_only: bool,
}

impl WatchSpec {
    fn matches(&self, obj: &Stored) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| obj.namespace() == ns);
        ns_ok && self.selectors.matches_stored(obj)
    }

    fn line(&self, event: &str, stored: &Stored) -> Bytes {
        if self.metadata_only {
            let partial = super::negotiate::partial_metadata(&stored.value());
            return self.line_value(event, &partial);
        }
        if self.table.is_none() && !needs_conversion(&self.info, stored) {
            let mut out = Vec::with_capacity(stored.json().len() + 32);
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(event.as_bytes());
            out.extend_from_slice(b"\",\"object\":");
            out.extend_from_slice(stored.json());
            out.extend_from_slice(b"}\n");
            return Bytes::from(out);
        }
        self.line_value(event, &present(&self.info, &stored.value()))
    }

    /// The lines of `events`, converting their objects through the CRD's webhook in one
    /// review where the requested version needs it.
    async fn lines(
        &self,
        server: &super::Server,
        events: Vec<(&'static str, Arc<Stored>)>,
    ) -> Result<Vec<Bytes>, ApiError> {
        let webhook = conversion::of(&self.info).is_some_and(conversion::Versions::has_webhook);
        if self.metadata_only
            || !webhook
            || !events.iter().any(|(_, o)| needs_conversion(&self.info, o))
        {
            return Ok(events
                .iter()
                .map(|(event, o)| self.line(event, o))
                .collect());
        }
        let stored = events.iter().map(|(_, o)| o.value()).collect();
        let objects = present_all(server, &self.info, stored).await?;
        Ok(events
            .iter()
            .zip(objects)
            .map(|((event, _), object)| self.line_value(event, &object))
            .collect())
    }

    fn line_value(&self, event: &str, obj: &Value) -> Bytes {
        let mut out = Vec::with_capacity(256);
        let written = match &self.table {
            Some(include) => {
                let event = table::watch_event(&self.info, event, obj, include);
                serde_json::to_writer(&mut out, &event)
            }
            None => {
                out.extend_from_slice(b"{\"type\":\"");
                out.extend_from_slice(event.as_bytes());
                out.extend_from_slice(b"\",\"object\":");
                let written = serde_json::to_writer(&mut out, &GoOrder(obj));
                out.push(b'}');
                written
            }
        };
        if written.is_err() {
            out.truncate(0);
            out.extend_from_slice(b"{\"type\":\"ERROR\",\"object\":");
            let _ =
                serde_json::to_writer(&mut out, &ApiError::internal("encoding failed").to_status());
            out.push(b'}');
        }
        out.push(b'\n');
        Bytes::from(out)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({
            "kind": self.info.kind,
            "apiVersion": self.info.api_version(),
            "metadata": metadata,
        });
        self.line_value("BOOKMARK", &obj)
    }
}

fn error_line(error: &ApiError) -> Bytes {
    let mut out = b"{\"type\":\"ERROR\",\"object\":".to_vec();
    let _ = serde_json::to_writer(&mut out, &error.to_status());
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Starts a watch and returns its streaming response.
pub(crate) fn serve(request: &RestRequest) -> Result<http::Response<Body>, ApiError> {
    let format = super::negotiate::response_format(&super::negotiate::accept(&request.headers))?;
    if format == Format::Yaml {
        return Err(ApiError::not_acceptable());
    }
    let query = &request.query;
    let accept = super::negotiate::accept(&request.headers);
    let spec = WatchSpec {
        info: request.target.info.clone(),
        storage: storage_key(&request.target.info),
        namespace: request.target.namespace.clone(),
        selectors: Selectors::from_query(query, &request.target.info)?,
        bookmarks: is_true(query, "allowWatchBookmarks"),
        metadata_only: super::negotiate::wants_metadata(&accept),
        table: table::wants_table(&accept).then(|| {
            query
                .get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".to_string())
        }),
    };
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = match query.get("sendInitialEvents").map(String::as_str) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let initial = send_initial.unwrap_or(rv_param.is_empty() || rv_param == "0");
    let start_rv = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        Some(rv_param.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{rv_param}\": must be a valid resource version"
            ))
        })?)
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let server = request.server.clone();
    // Subscribed before the response goes out, so a cut right after cannot be missed.
    let mut stop = Stop {
        deadline: Instant::now() + timeout,
        cuts: server.faults.watch_cuts(),
        shutdown: server.shutdown.clone(),
    };
    stop.cuts.mark_unchanged();
    tokio::spawn(run(
        server,
        spec,
        start_rv,
        initial,
        send_initial == Some(true),
        stop,
        tx,
    ));
    let mut response = http::Response::new(Body::from_stream(rx));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

/// What ends a watch besides its client: the timeout, cut faults, shutdown.
struct Stop {
    deadline: Instant,
    cuts: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Stop {
    async fn stopped(&mut self) {
        tokio::select! {
            _ = sleep_until(self.deadline) => {}
            _ = self.cuts.changed() => {}
            _ = self.shutdown.changed() => {}
        }
    }
}

type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Sends one line; false when the client is gone or the watch must stop,
/// even while a client that stopped reading keeps the channel full.
async fn send(tx: &mut Sender, stop: &mut Stop, line: Bytes) -> bool {
    tokio::select! {
        sent = tx.send(Ok(line)) => sent.is_ok(),
        _ = stop.stopped() => false,
    }
}

async fn run(
    server: Arc<super::Server>,
    spec: WatchSpec,
    start_rv: Option<u64>,
    initial: bool,
    initial_end_bookmark: bool,
    mut stop: Stop,
    mut tx: Sender,
) {
    let mut changed = server.store.subscribe();
    let mut last_rv;
    let mut events: Vec<(&'static str, Arc<Stored>)> = Vec::new();
    let mut initial_end = None;
    {
        let state = server.store.read();
        if initial {
            for (_, obj) in state.list(&spec.storage, spec.namespace.as_deref(), None) {
                if spec.matches(obj) {
                    events.push(("ADDED", obj.clone()));
                }
            }
            last_rv = state.rv();
            if initial_end_bookmark {
                initial_end = Some(spec.bookmark(last_rv, true));
            }
        } else {
            last_rv = start_rv.unwrap_or(state.rv());
        }
    }
    changed.mark_unchanged();
    let lines = match spec.lines(&server, std::mem::take(&mut events)).await {
        Ok(lines) => lines,
        Err(error) => {
            send(&mut tx, &mut stop, error_line(&error)).await;
            return;
        }
    };
    for line in lines.into_iter().chain(initial_end) {
        if !send(&mut tx, &mut stop, line).await {
            return;
        }
    }
    let mut next_bookmark = Instant::now() + server.bookmark_interval;
    loop {
        let batch = {
            let state = server.store.read();
            match state.changes_since(last_rv) {
                Ok(changes) => {
                    let current = state.rv();
                    Ok((changes, current))
                }
                Err(oldest) => Err(ApiError::expired(last_rv, oldest)),
            }
        };
        match batch {
            Err(error) => {
                send(&mut tx, &mut stop, error_line(&error)).await;
                return;
            }
            Ok((changes, current)) => {
                for change in changes {
                    if change.storage.as_ref() != spec.storage {
                        continue;
                    }
                    let now = spec.matches(&change.object);
                    let before = change.previous.as_deref().is_some_and(|p| spec.matches(p));
                    let event = match (change.event, before, now) {
                        (EventType::Deleted, _, true) => Some("DELETED"),
                        (EventType::Added, _, true) => Some("ADDED"),
                        (EventType::Modified, true, true) => Some("MODIFIED"),
                        (EventType::Modified, false, true) => Some("ADDED"),
                        (EventType::Modified, true, false) => Some("DELETED"),
                        _ => None,
                    };
                    if let Some(event) = event {
                        events.push((event, change.object));
                    }
                }
                last_rv = last_rv.max(current);
            }
        }
        // A conversion that fails ends the watch with its error, as the object cannot be sent.
        let lines = match spec.lines(&server, std::mem::take(&mut events)).await {
            Ok(lines) => lines,
            Err(error) => {
                send(&mut tx, &mut stop, error_line(&error)).await;
                return;
            }
        };
        for line in lines {
            if !send(&mut tx, &mut stop, line).await {
                return;
            }
        }
        loop {
            let check = (Instant::now() + LIVENESS_CHECK).min(next_bookmark);
            tokio::select! {
                result = changed.changed() => {
                    if result.is_err() {
                        return;
                    }
                    break;
                }
                _ = stop.stopped() => return,
                _ = sleep_until(check) => {
                    if tx.is_closed() {
                        return;
                    }
                    if Instant::now() >= next_bookmark {
                        next_bookmark = Instant::now() + server.bookmark_interval;
                        if spec.bookmarks
                            && !send(&mut tx, &mut stop, spec.bookmark(last_rv, false)).await
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}
