//! Status: metav1 Conditions, observedGeneration and an optional phase, written only when changed.
//!
//! A reconcile describes the status it wants through [`Context::status`](crate::Context::status);
//! opkit merges it into the live status and patches the status subresource once the reconcile
//! returns, only if something differs, so a converged operator writes nothing. A condition's
//! `lastTransitionTime` moves only when its `status` changes; `observedGeneration` is set on every
//! condition (and on `status.observedGeneration` when the CRD declares it). After a failed
//! reconcile opkit itself sets `Degraded=True` (and `Ready=False` for a permanent error) with the
//! error's reason and message — for conflicts only from the third in a row; after a successful
//! one it sets `Degraded=False`.
//!
//! Fields the status schema does not declare are left out, so the API server's pruning cannot
//! make opkit write the same status forever.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResourceExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::operator::Object;

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
    /// The status as last read or written; `None` before the first read.
    pub base: Option<Value>,
    pub fields: Map<String, Value>,
    pub conditions: Vec<Wanted>,
}

/// Which of the well-known status fields the CRD's schema declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub fields: BTreeSet<String>,
    pub open: bool,
}

impl Shape {
    /// Reads the status properties from the CRD (its storage version).
    pub fn of<K: CustomResourceExt>() -> Self {
        let crd = K::crd();
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

/// Builds the wanted status of the object being reconciled; see the [module docs](self).
///
/// ```
/// use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced, status = "AppStatus")]
/// # pub struct AppSpec { pub replicas: i32 }
/// # #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
/// # #[serde(rename_all = "camelCase")]
/// # pub struct AppStatus { pub ready_replicas: i32, pub phase: Option<String>, pub conditions: Vec<Condition> }
/// async fn report(ctx: &Context<App>, ready: i32) -> opkit::Result<()> {
///     ctx.status()
///         .update(|s: &mut AppStatus| s.ready_replicas = ready)
///         .phase(if ready > 0 { "Running" } else { "Deploying" })
///         .ready(ready > 0, "ReplicasReady", format!("{ready} replicas ready"));
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct StatusWriter<'a, K: Object> {
    ctx: &'a Context<K>,
}

impl<'a, K: Object> StatusWriter<'a, K> {
    pub(crate) fn new(ctx: &'a Context<K>) -> Self {
        Self { ctx }
    }

    /// Sets `status.phase`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// fn deploying(ctx: &Context<App>) {
    ///     ctx.status().phase("Deploying");
    /// }
    /// ```
    pub fn phase(self, phase: impl Into<String>) -> Self {
        self.set("phase", phase.into())
    }

    /// Sets one status field by its JSON name.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// fn endpoint(ctx: &Context<App>) {
    ///     ctx.status().set("url", format!("http://{}.default.svc", ctx.object().name_any()));
    /// }
    /// ```
    pub fn set(self, field: &str, value: impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(value) => {
                self.ctx.with_draft(|d| {
                    d.fields.insert(field.to_owned(), value);
                });
            }
            Err(error) => tracing::warn!(%error, field, "status field is not serializable"),
        }
        self
    }

    /// Edits the status as the operator's typed status struct `S`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// #[derive(Default, Serialize, Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct AppStatus { ready_replicas: i32 }
    /// fn replicas(ctx: &Context<App>, ready: i32) {
    ///     ctx.status().update(|s: &mut AppStatus| s.ready_replicas = ready);
    /// }
    /// ```
    pub fn update<S: Serialize + DeserializeOwned + Default>(
        self,
        edit: impl FnOnce(&mut S),
    ) -> Self {
        let ctx = self.ctx;
        let current = ctx.with_draft(|d| {
            let mut view = match d.base.clone().or_else(|| ctx.live_status()) {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            for (k, v) in &d.fields {
                view.insert(k.clone(), v.clone());
            }
            view
        });
        let mut typed: S =
            serde_json::from_value(Value::Object(current.clone())).unwrap_or_default();
        edit(&mut typed);
        match serde_json::to_value(&typed) {
            Ok(Value::Object(edited)) => ctx.with_draft(|d| {
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
            }),
            Ok(_) => tracing::warn!("the status type does not serialize to an object"),
            Err(error) => tracing::warn!(%error, "status is not serializable"),
        }
        self
    }

    /// Sets a condition; `lastTransitionTime` moves only if `status` differs from the live one.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// fn backed_up(ctx: &Context<App>) {
    ///     ctx.status().condition("BackedUp", true, "BackupSucceeded", "last backup 5 minutes ago");
    /// }
    /// ```
    pub fn condition(
        self,
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        let wanted = Wanted {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
        };
        self.ctx.with_draft(|d| {
            d.conditions.retain(|c| c.type_ != wanted.type_);
            d.conditions.push(wanted);
        });
        self
    }

    /// Sets `Ready` to `ready` and `Progressing` to its opposite, with the same reason and message.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// fn available(ctx: &Context<App>) {
    ///     ctx.status().ready(true, "Available", "3/3 replicas ready");
    /// }
    /// ```
    pub fn ready(self, ready: bool, reason: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        self.condition(READY, ready, reason, message.clone())
            .condition(PROGRESSING, !ready, reason, message)
    }

    /// Reports a workload's rollout: `Ready` as it is, `Progressing` while it rolls out,
    /// `Degraded` when it stalled (reason `RolloutStalled`), each with the rollout's message.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub replicas: i32 }
    /// fn report(ctx: &Context<App>, deployment: &Deployment) {
    ///     ctx.status().rollout("Deployed", &deployment.readiness());
    /// }
    /// ```
    pub fn rollout(self, reason: &str, rollout: &crate::readiness::Readiness) -> Self {
        let reason = if rollout.stalled {
            "RolloutStalled"
        } else {
            reason
        };
        let message = rollout.message.clone();
        self.condition(READY, rollout.ready, reason, message.clone())
            .condition(
                PROGRESSING,
                !rollout.ready && !rollout.stalled,
                reason,
                message.clone(),
            )
            .condition(DEGRADED, rollout.stalled, reason, message)
    }

    /// Writes the status now instead of when the reconcile returns. Returns whether a write happened.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// async fn early(ctx: &Context<App>) -> opkit::Result<()> {
    ///     let written = ctx.status().phase("Migrating").apply().await?;
    ///     tracing::info!(written, "reported the migration");
    ///     Ok(())
    /// }
    /// ```
    pub async fn apply(self) -> Result<bool> {
        flush(self.ctx).await
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
    let mut patch = match new {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if let Value::Object(old) = old {
        for key in old.keys() {
            if !patch.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
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

/// Writes the draft if it changes the status.
pub(crate) async fn flush<K: Object>(ctx: &Context<K>) -> Result<bool> {
    ctx.flush_status().await
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
}
