//! Status: metav1 Conditions, observedGeneration and other fields, written once per reconcile
//! and only when changed.
//!
//! A reconcile describes the status it wants through [`Context::status`](crate::Context::status)
//! ([`StatusWriter`]); nothing is written while it runs. Once the reconcile returns (successfully
//! or not), opkit merges the draft into the live status and patches the status subresource with
//! a merge patch, only if something differs, so a converged operator writes nothing.
//!
//! The guarantees and caveats of this deferred write:
//!
//! - A condition's `lastTransitionTime` moves only when its `status` changes; `observedGeneration`
//!   is set on every condition written (and on `status.observedGeneration` when the schema
//!   declares it) to the generation the reconcile saw.
//! - Fields the status schema does not declare are left out, so the API server's pruning cannot
//!   make opkit write the same status forever.
//! - On custom resources, after a failed reconcile opkit itself sets `Degraded=True` (and
//!   `Ready=False` for a permanent error) with the error's reason and message; conflicts (409) are
//!   retried quietly, and the first two in a row write nothing at all, the reconcile's draft
//!   included. After a successful reconcile opkit sets `Degraded=False` when the reconcile set any
//!   condition or the live status has a `Degraded` condition, unless the reconcile set `Degraded`
//!   itself. Built-in kinds' status is never written automatically.
//! - The write is a JSON merge patch holding the top-level status fields whose computed value
//!   differs from the status the reconcile started from (as the cache showed it, or as this
//!   process last wrote it), and `null` for fields the draft removed; there is no resourceVersion
//!   precondition. Fields the draft leaves as they were are not sent, so another writer's change
//!   to them in between is kept; a list such as `conditions` is sent whole whenever one of its
//!   entries changes. If the write fails, the reconcile is retried soon (the reconcile runs again;
//!   the draft is not kept).
//! - While the object is being deleted, a draft made by `cleanup` is written only when the
//!   cleanup fails (after a successful cleanup the finalizer goes and the object with it).
//! - A draft with neither fields nor conditions writes nothing at all, not even
//!   `observedGeneration` (which would claim an observation that reported nothing).
//! - [`StatusWriter::apply`] writes immediately (a long reconcile reporting progress); the final
//!   write then happens only if the draft changed since, and sends only the fields that did.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::object::HasStatus;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::cache::OwnWrites;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::object::{self, Object};
use crate::readiness::Readiness;

/// Condition type: the object does what its spec asks.
///
/// ```
/// assert_eq!(opkit::status::READY, "Ready");
/// ```
pub const READY: &str = "Ready";
/// Condition type: the operator is working towards the spec.
///
/// ```
/// assert_eq!(opkit::status::PROGRESSING, "Progressing");
/// ```
pub const PROGRESSING: &str = "Progressing";
/// Condition type: the operator failed to act on the spec.
///
/// ```
/// assert_eq!(opkit::status::DEGRADED, "Degraded");
/// ```
pub const DEGRADED: &str = "Degraded";

/// A condition as a reconcile asks for it (times and generations are filled in by opkit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// What the current reconcile wants the status to be.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    /// The status as last written by this reconcile; `None` before its first write.
    pub base: Option<Value>,
    pub fields: Map<String, Value>,
    pub conditions: Vec<Wanted>,
}

/// Which status fields the schema declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub fields: BTreeSet<String>,
    pub open: bool,
}

impl Shape {
    /// Any field may be written (a kind whose schema opkit does not know).
    pub fn open() -> Self {
        Self {
            fields: BTreeSet::new(),
            open: true,
        }
    }

    /// The status properties of a CRD's storage version.
    pub fn of_crd(crd: &CustomResourceDefinition) -> Self {
        let status = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.properties.as_ref())
            .and_then(|p| p.get("status"));
        match status {
            Some(schema) => Self {
                fields: schema
                    .properties
                    .iter()
                    .flatten()
                    .map(|(k, _)| k.clone())
                    .collect(),
                open: schema.x_kubernetes_preserve_unknown_fields == Some(true),
            },
            None => Self::default(),
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.open || self.fields.contains(field)
    }
}

/// Where one controller's statuses go: what it remembers of its writes, the schema, the clock.
pub(crate) struct Sink {
    pub client: Client,
    pub controller: String,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub shape: Shape,
    /// Whether opkit writes its own conditions (Degraded after failures): custom resources only.
    pub automatic: bool,
    /// Statuses this process wrote that the primary's cache may not show yet, by uid.
    pub written: OwnWrites<String, Value>,
    /// Uids of primaries seen Ready in this process (for the time-to-first-Ready metric);
    /// entries leave when the primary is deleted.
    pub ready_seen: Mutex<HashSet<String>>,
}

impl Sink {
    /// Forgets what it knew of a deleted primary.
    pub fn forget(&self, uid: &str) {
        self.written.forget(&uid.to_owned());
        self.ready_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// The status a reconcile of `object` starts from: this process's own last write when the
    /// cached object predates it, else the object's.
    fn base<K: Object>(&self, object: &K, draft: &Draft) -> Result<Value> {
        if let Some(base) = &draft.base {
            return Ok(base.clone());
        }
        if let Some(uid) = object.uid()
            && let Some(written) = self.written.newer_than(&uid, Some(object.meta()))
        {
            return Ok(written);
        }
        live_status(object)
    }

    /// Writes `draft` if it changes the status of `object`; returns whether it wrote.
    pub async fn flush<K: Object>(&self, object: &K, draft: &Mutex<Draft>) -> Result<bool> {
        let now = Time(self.clock.now());
        let generation = object.meta().generation;
        let (base, new) = {
            let draft = draft.lock().unwrap_or_else(|p| p.into_inner());
            if draft.fields.is_empty() && draft.conditions.is_empty() {
                return Ok(false);
            }
            let base = self.base(object, &draft)?;
            let new = compute(&base, &draft, &self.shape, generation, &now)?;
            (base, new)
        };
        let unchanged = match &base {
            Value::Null => new.as_object().is_some_and(|m| m.is_empty()),
            base => *base == new,
        };
        if unchanged {
            return Ok(false);
        }
        let name = object
            .meta()
            .name
            .clone()
            .ok_or(Error::MissingField("metadata.name"))?;
        let api = object::api::<K>(self.client.clone(), object.namespace().as_deref());
        let patch = serde_json::json!({ "status": merge_patch(&base, &new) });
        let written = api
            .patch_status(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map_err(|e| {
                Error::kube(
                    format!("writing the status of {}", ObjectRef::from_obj(object)),
                    e,
                )
            })?;
        if let Some(uid) = written.uid() {
            self.written.record(uid, written.meta(), new.clone());
        }
        self.observe_first_ready(object, &base, &new);
        draft.lock().unwrap_or_else(|p| p.into_inner()).base = Some(new);
        Ok(true)
    }

    fn observe_first_ready<K: Object>(&self, object: &K, old: &Value, new: &Value) {
        if condition_is_true(old, READY) || !condition_is_true(new, READY) {
            return;
        }
        let Some(uid) = object.uid() else { return };
        let first = self
            .ready_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid);
        if let (true, Some(created)) = (first, object.meta().creation_timestamp.as_ref()) {
            let took = self.clock.now().duration_since(created.0);
            if let Ok(took) = std::time::Duration::try_from(took) {
                self.metrics.record_time_to_ready(&self.controller, took);
            }
        }
    }
}

/// The `status` of an object as JSON (`Null` when it has none).
pub(crate) fn live_status<K: Object>(object: &K) -> Result<Value> {
    let value = serde_json::to_value(object)
        .map_err(|e| Error::serialization(format!("encoding the {}", K::kind(&())), e))?;
    Ok(value.get("status").cloned().unwrap_or(Value::Null))
}

/// Builds the status of the object being reconciled; see the [module docs](self) for when and
/// how it is written. Every method takes `&self`: helpers call `ctx.status()` again rather
/// than passing a writer around.
///
/// ```
/// use opkit::prelude::*;
/// use opkit::k8s::Condition;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced, status = "AppStatus")]
/// # pub struct AppSpec { pub replicas: i32 }
/// # #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
/// # #[serde(rename_all = "camelCase")]
/// # pub struct AppStatus { pub ready_replicas: i32, pub phase: Option<String>, pub conditions: Vec<Condition> }
/// fn report(ctx: &Context<App>, ready: i32) -> opkit::Result<()> {
///     ctx.status()
///         .update(|s| s.ready_replicas = ready)?
///         .phase(if ready > 0 { "Running" } else { "Deploying" })
///         .ready(ready > 0, "ReplicasReady", format!("{ready} replicas ready"));
///     Ok(())
/// }
/// ```
pub struct StatusWriter<'a, K: Object> {
    object: &'a K,
    draft: &'a Mutex<Draft>,
    sink: &'a Sink,
}

impl<K: Object> std::fmt::Debug for StatusWriter<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("object", &ObjectRef::from_obj(self.object))
            .finish_non_exhaustive()
    }
}

impl<'a, K: Object> StatusWriter<'a, K> {
    pub(crate) fn new(object: &'a K, draft: &'a Mutex<Draft>, sink: &'a Sink) -> Self {
        Self {
            object,
            draft,
            sink,
        }
    }

    fn with_draft<T>(&self, f: impl FnOnce(&mut Draft) -> T) -> T {
        f(&mut self.draft.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sets `status.phase`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn deploying(ctx: &Context<App>) {
    ///     ctx.status().phase("Deploying");
    /// }
    /// ```
    pub fn phase(&self, phase: impl Into<String>) -> &Self {
        self.with_draft(|d| {
            d.fields
                .insert("phase".to_owned(), Value::String(phase.into()));
        });
        self
    }

    /// Sets one status field by its JSON name; fails if `value` does not serialize.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn endpoint(ctx: &Context<App>) -> opkit::Result<()> {
    ///     ctx.status().set("url", format!("http://{}.default.svc", ctx.object().name_any()))?;
    ///     Ok(())
    /// }
    /// ```
    pub fn set(&self, field: &str, value: impl Serialize) -> Result<&Self> {
        let value = serde_json::to_value(value)
            .map_err(|e| Error::serialization(format!("encoding status.{field}"), e))?;
        self.with_draft(|d| {
            d.fields.insert(field.to_owned(), value);
        });
        Ok(self)
    }

    /// Edits the status as the resource's own status type (what `#[kube(status = "...")]`
    /// names), starting from the status as it is now with this draft's changes; conditions are
    /// left to [`StatusWriter::condition`]. Fails if the live status does not decode as that type
    /// or the edited one does not encode, instead of starting from a default.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced, status = "AppStatus")]
    /// # pub struct AppSpec { pub image: String }
    /// #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
    /// #[serde(rename_all = "camelCase")]
    /// pub struct AppStatus { ready_replicas: i32 }
    /// fn replicas(ctx: &Context<App>, ready: i32) -> opkit::Result<()> {
    ///     ctx.status().update(|s| s.ready_replicas = ready)?;
    ///     Ok(())
    /// }
    /// ```
    pub fn update(&self, edit: impl FnOnce(&mut K::Status)) -> Result<&Self>
    where
        K: HasStatus,
        K::Status: Serialize + DeserializeOwned + Default,
    {
        let kind = K::kind(&());
        let current = self.with_draft(|d| {
            let mut view = match self.sink.base(self.object, d)? {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            for (k, v) in &d.fields {
                view.insert(k.clone(), v.clone());
            }
            Ok::<_, Error>(view)
        })?;
        let mut typed: K::Status = if current.is_empty() {
            K::Status::default()
        } else {
            serde_json::from_value(Value::Object(current.clone())).map_err(|e| {
                Error::serialization(format!("decoding the status of the {kind}"), e)
            })?
        };
        edit(&mut typed);
        let edited = match serde_json::to_value(&typed)
            .map_err(|e| Error::serialization(format!("encoding the status of the {kind}"), e))?
        {
            Value::Object(edited) => edited,
            other => {
                return Err(Error::Config(format!(
                    "the status type of {kind} encodes as {other}, not as an object"
                )));
            }
        };
        self.with_draft(|d| {
            for key in current.keys() {
                if !edited.contains_key(key) && key != "conditions" {
                    d.fields.insert(key.clone(), Value::Null);
                }
            }
            for (k, v) in edited {
                if k != "conditions" {
                    d.fields.insert(k, v);
                }
            }
        });
        Ok(self)
    }

    /// Sets a condition; `lastTransitionTime` moves only if `status` differs from the live one.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn backed_up(ctx: &Context<App>) {
    ///     ctx.status().condition("BackedUp", true, "BackupSucceeded", "last backup 5 minutes ago");
    /// }
    /// ```
    pub fn condition(
        &self,
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> &Self {
        let wanted = Wanted {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
        };
        self.with_draft(|d| {
            d.conditions.retain(|c| c.type_ != wanted.type_);
            d.conditions.push(wanted);
        });
        self
    }

    /// Sets `Ready` to `ready` and `Progressing` to its opposite, with the same reason and message.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn available(ctx: &Context<App>) {
    ///     ctx.status().ready(true, "Available", "3/3 replicas ready");
    /// }
    /// ```
    pub fn ready(&self, ready: bool, reason: &str, message: impl Into<String>) -> &Self {
        let message = message.into();
        self.condition(READY, ready, reason, message.clone())
            .condition(PROGRESSING, !ready, reason, message)
    }

    /// Reports a dependent's [`Readiness`]: `Ready` as it is, `Progressing` while it gets there,
    /// `Degraded` when it stalled (reason `Stalled`), each with its message.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::Deployment;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub replicas: i32 }
    /// fn report(ctx: &Context<App>, deployment: &Deployment) {
    ///     ctx.status().readiness("Deployed", &opkit::Readiness::of(deployment));
    /// }
    /// ```
    pub fn readiness(&self, reason: &str, readiness: &Readiness) -> &Self {
        let reason = if readiness.stalled { "Stalled" } else { reason };
        let message = readiness.message.clone();
        self.condition(READY, readiness.ready, reason, message.clone())
            .condition(
                PROGRESSING,
                !readiness.ready && !readiness.stalled,
                reason,
                message.clone(),
            )
            .condition(DEGRADED, readiness.stalled, reason, message)
    }

    /// Writes the status now instead of when the reconcile returns. Returns whether a write happened.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// async fn early(ctx: &Context<App>) -> opkit::Result<()> {
    ///     let written = ctx.status().phase("Migrating").apply().await?;
    ///     tracing::info!(written, "reported the migration");
    ///     Ok(())
    /// }
    /// ```
    pub async fn apply(&self) -> Result<bool> {
        self.sink.flush(self.object, self.draft).await
    }
}

/// Merges wanted conditions into existing ones.
pub(crate) fn merge_conditions(
    old: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = old.to_vec();
    for w in wanted {
        let status = if w.status { "True" } else { "False" }.to_owned();
        let reason = if w.reason.is_empty() {
            "Unknown".to_owned()
        } else {
            w.reason.clone()
        };
        match out.iter_mut().find(|c| c.type_ == w.type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now.clone();
                }
                c.status = status;
                c.reason = reason;
                c.message = w.message.clone();
                c.observed_generation = generation;
            }
            None => out.push(Condition {
                type_: w.type_.clone(),
                status,
                reason,
                message: w.message.clone(),
                observed_generation: generation,
                last_transition_time: now.clone(),
            }),
        }
    }
    out
}

/// The status the draft describes, on top of `base`, restricted to what the schema declares.
pub(crate) fn compute(
    base: &Value,
    draft: &Draft,
    shape: &Shape,
    generation: Option<i64>,
    now: &Time,
) -> Result<Value> {
    let mut status = match base {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (k, v) in &draft.fields {
        if !shape.has(k) {
            continue;
        }
        if v.is_null() {
            status.remove(k);
        } else {
            status.insert(k.clone(), v.clone());
        }
    }
    if shape.has("observedGeneration")
        && let Some(g) = generation
    {
        status.insert("observedGeneration".to_owned(), Value::from(g));
    }
    if shape.has("conditions") && !draft.conditions.is_empty() {
        let old: Vec<Condition> = match status.get("conditions") {
            Some(v) => serde_json::from_value(v.clone()).unwrap_or_default(),
            None => Vec::new(),
        };
        let merged = merge_conditions(&old, &draft.conditions, generation, now);
        status.insert(
            "conditions".to_owned(),
            serde_json::to_value(merged)
                .map_err(|e| Error::serialization("encoding conditions", e))?,
        );
    }
    Ok(Value::Object(status))
}

/// The `status` of a merge patch turning `old` into `new` (removed keys become `null`).
pub(crate) fn merge_patch(old: &Value, new: &Value) -> Value {
    let empty = Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let mut patch: Map<String, Value> = new
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let new = new.as_object().unwrap_or(&empty);
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    Value::Object(patch)
}

/// Whether the `type_` condition is `True` in a status value.
pub(crate) fn condition_is_true(status: &Value, type_: &str) -> bool {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(type_)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH))
    }

    fn wanted(type_: &str, status: bool, reason: &str) -> Wanted {
        Wanted {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: format!("{type_} is {status}"),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-01T00:01:00Z");
        let t2 = time("2026-01-01T00:02:00Z");
        let first = merge_conditions(&[], &[wanted(READY, false, "Deploying")], Some(1), &t0);
        assert_eq!(first[0].last_transition_time, t0);
        let same = merge_conditions(
            &first,
            &[wanted(READY, false, "StillDeploying")],
            Some(2),
            &t1,
        );
        assert_eq!(same[0].last_transition_time, t0);
        assert_eq!(same[0].reason, "StillDeploying");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge_conditions(&same, &[wanted(READY, true, "Available")], Some(2), &t2);
        assert_eq!(flipped[0].last_transition_time, t2);
        assert_eq!(flipped[0].status, "True");
    }

    #[test]
    fn untouched_conditions_are_kept() {
        let t0 = time("2026-01-01T00:00:00Z");
        let first = merge_conditions(&[], &[wanted("Custom", true, "X")], Some(1), &t0);
        let next = merge_conditions(&first, &[wanted(READY, true, "Y")], Some(1), &t0);
        assert_eq!(next.len(), 2);
        assert_eq!(next[0].type_, "Custom");
    }

    #[test]
    fn compute_is_stable_when_nothing_changes() {
        let shape = Shape {
            fields: ["phase", "conditions", "observedGeneration", "readyReplicas"]
                .map(String::from)
                .into(),
            open: false,
        };
        let mut draft = Draft::default();
        draft.fields.insert("phase".into(), json!("Running"));
        draft.fields.insert("unknownField".into(), json!(1));
        draft.conditions.push(wanted(READY, true, "Available"));
        let now = time("2026-01-01T00:00:00Z");
        let first = compute(&Value::Null, &draft, &shape, Some(3), &now).unwrap_or_default();
        assert_eq!(first["phase"], "Running");
        assert_eq!(first["observedGeneration"], 3);
        assert!(first.get("unknownField").is_none());
        let later = time("2026-01-01T01:00:00Z");
        let second = compute(&first, &draft, &shape, Some(3), &later).unwrap_or_default();
        assert_eq!(first, second);
        assert!(condition_is_true(&second, READY));
    }

    #[test]
    fn merge_patch_nulls_removed_keys() {
        let patch = merge_patch(&json!({"a": 1, "b": 2}), &json!({"a": 3}));
        assert_eq!(patch, json!({"a": 3, "b": null}));
    }

    #[test]
    fn merge_patch_leaves_unchanged_fields_to_other_writers() {
        let patch = merge_patch(
            &json!({"phase": "Running", "url": "a", "conditions": [1]}),
            &json!({"phase": "Running", "url": "b", "conditions": [1]}),
        );
        assert_eq!(patch, json!({"url": "b"}));
    }
}
