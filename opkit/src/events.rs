//! Kubernetes Events (events.k8s.io/v1) through kube-runtime's `Recorder`.
//!
//! opkit publishes Normal events when it puts back a dependent someone else changed
//! (`DriftCorrected`) or deletes one, and Warning events when a reconcile or cleanup fails;
//! creating dependents and following the primary's spec are logged and counted in metrics, not
//! published (at scale those Events would double an operator's writes). Operators add their own through
//! [`Context::event`](crate::Context::event). Repeated events are folded into a series by the
//! recorder. A failure to publish is logged and never fails the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
pub use kube::runtime::events::EventType;
use kube::runtime::events::{Event, Recorder, Reporter};

/// Publishes events on behalf of one controller.
///
/// ```no_run
/// # async fn f(client: kube::Client, reference: k8s_openapi::api::core::v1::ObjectReference) {
/// let events = opkit::events::Events::new(client, "webapp-operator");
/// events.publish(&reference, None, opkit::events::EventType::Normal, "Created", "Created Deployment web").await;
/// # }
/// ```
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// A publisher reporting as `controller` (the field manager name).
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let events = opkit::events::Events::new(client, "webapp-operator");
    /// # let _ = events; }
    /// ```
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes one event about `regarding` (and `related`, the dependent it concerns);
    /// `reason` is CamelCase, `note` human-readable.
    ///
    /// ```
    /// # async fn f(events: opkit::events::Events, app: k8s_openapi::api::core::v1::ObjectReference, deployment: k8s_openapi::api::core::v1::ObjectReference) {
    /// use opkit::events::EventType;
    /// events.publish(&app, Some(deployment), EventType::Normal, "Updated", "Updated Deployment default/web").await;
    /// # }
    /// ```
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(truncate(note, 1024)),
            action: reason.to_owned(),
            secondary: related,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}

/// Events notes are limited to 1 KiB by the API server.
fn truncate(note: &str, max: usize) -> String {
    if note.len() <= max {
        return note.to_owned();
    }
    let mut end = max;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note[..end].to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("hello", 10), "hello");
    }
}
