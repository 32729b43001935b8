//! Dependents: objects an operator makes exist for each primary.
//!
//! A dependent implements [`Ensure`]: it builds the desired object from the primary, and
//! [`Context::ensure`](crate::Context::ensure) makes it so. The guarantees:
//!
//! - The object is written with server-side apply under the controller's field manager, with
//!   `force` (the operator is the authority on the fields it sets; other managers keep theirs).
//! - A controller owner reference (`controller: true`, `blockOwnerDeletion: true`) is added, so
//!   the garbage collector deletes the dependent with its primary and changes to the dependent
//!   reconcile the primary (when the controller [`owns`](crate::Controller::owns) its kind).
//!   Owner references cannot cross namespaces, and a namespaced primary cannot own a
//!   cluster-scoped object: such dependents carry `opkit.dev/owner-*` labels instead; for the
//!   kinds the controller owns, their changes are mapped back to the primary through those labels
//!   and opkit deletes them before the controller's cleanup (the controller must declare a
//!   finalizer).
//! - An object of the same name controlled by someone else is never adopted: the reconcile fails
//!   with [`Error::NotOwned`](crate::Error::NotOwned), a permanent error shown as a condition. An
//!   existing object with no controller at all is adopted (it gets this primary's owner reference
//!   or labels), as controller-runtime's `SetControllerReference` does.
//! - The write happens only when the desired object **differs** from the live one (see
//!   [`Ensure::desired`] for the rules), so a converged operator makes zero writes. For kinds the
//!   controller owns or watches, the live object is read from the controller's cache, never with
//!   a GET once the cache synced; an object this process just wrote is read back from memory until
//!   the watch shows it, so the next reconcile does not write it again. Other kinds are read with
//!   a GET on every `ensure`: own the kinds you ensure.
//! - Writes are counted (`opkit_dependent_writes_total`) and logged; putting back a dependent
//!   someone else changed (drift) and deleting one are also published as Events on the primary,
//!   while creating dependents and following the primary's own spec changes are not (they are
//!   what the user asked for, and at scale those Events would double the operator's writes).
//! - [`Ensure::enabled`] returning false (or [`Ensure::when`] with `false`) deletes the
//!   dependent if this primary controls it, and does nothing otherwise.
//!
//! What is never done: fields the desired object leaves out are not removed from the live one
//! unless this field manager set them before (server-side apply removes fields a manager stops
//! setting); the live object's status is never written.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::Value;

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::events::{EventType, Events};
use crate::metrics::Metrics;
use crate::object::{self, Object};
use crate::readiness::Readiness;

/// Label on a dependent that cannot carry an owner reference (cluster-scoped, or in another
/// namespace than its primary): the uid of the primary.
///
/// ```
/// assert_eq!(opkit::ensure::OWNER_UID_LABEL, "opkit.dev/owner-uid");
/// ```
pub const OWNER_UID_LABEL: &str = "opkit.dev/owner-uid";
/// Label on such a dependent: the name of the primary.
///
/// ```
/// assert_eq!(opkit::ensure::OWNER_NAME_LABEL, "opkit.dev/owner-name");
/// ```
pub const OWNER_NAME_LABEL: &str = "opkit.dev/owner-name";
/// Label on such a dependent: the namespace of the primary (absent for cluster-scoped primaries).
///
/// ```
/// assert_eq!(opkit::ensure::OWNER_NAMESPACE_LABEL, "opkit.dev/owner-namespace");
/// ```
pub const OWNER_NAMESPACE_LABEL: &str = "opkit.dev/owner-namespace";

/// Annotation holding a hash of the last desired object, so removed fields are noticed too.
///
/// ```
/// assert_eq!(opkit::ensure::DESIRED_HASH_ANNOTATION, "opkit.dev/desired-hash");
/// ```
pub const DESIRED_HASH_ANNOTATION: &str = "opkit.dev/desired-hash";

/// A dependent resource of a primary.
///
/// ```
/// use opkit::prelude::*;
/// use opkit::k8s::{ObjectMeta, Service, ServicePort, ServiceSpec};
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub port: i32, pub expose: bool }
///
/// struct AppService<'a>(&'a App);
///
/// impl Ensure for AppService<'_> {
///     type Object = Service;
///     fn desired(&self) -> Service {
///         Service {
///             metadata: ObjectMeta { name: Some(self.0.name_any()), ..Default::default() },
///             spec: Some(ServiceSpec {
///                 selector: Some([("app".to_string(), self.0.name_any())].into()),
///                 ports: Some(vec![ServicePort { port: self.0.spec.port, ..Default::default() }]),
///                 ..Default::default()
///             }),
///             ..Default::default()
///         }
///     }
///     fn enabled(&self) -> bool {
///         self.0.spec.expose
///     }
/// }
/// ```
pub trait Ensure: Send + Sync {
    /// The kind of the dependent.
    type Object: Object;

    /// The object as it should be. Without a namespace, a namespaced dependent goes into the
    /// primary's namespace (a cluster-scoped primary's namespaced dependents must name theirs).
    ///
    /// # What counts as "differs"
    ///
    /// The desired object is compared with the live one as JSON, field by field, and written
    /// only when one of these holds:
    ///
    /// - a field set in the desired object has another value in the live one (numbers compare
    ///   by value, so `1` and `1.0` are equal);
    /// - a list has another length, or one of its elements differs by these same rules (lists
    ///   compare element by element, in order);
    /// - the desired object changed since opkit last wrote it (opkit stamps a hash of it in the
    ///   `opkit.dev/desired-hash` annotation), which catches fields the operator stopped setting.
    ///
    /// Fields the live object has and the desired one does not (server defaults, fields other
    /// managers set, `status`) never count, and an empty value (`null`, `{}`, `[]`) matches an
    /// absent one. So build the desired object with only the fields the operator cares about,
    /// and do not set a field to a value the API server rewrites (say, a quantity written
    /// `1000m` that the server returns as `1`): it would differ on every reconcile.
    fn desired(&self) -> Self::Object;

    /// Whether the dependent should exist at all; when false, an existing one this primary
    /// controls is deleted.
    fn enabled(&self) -> bool {
        true
    }

    /// How ready the live object is; feeds status and the ordering of dependents. By default the
    /// kind's own notion ([`Readiness::of`]): a Deployment is ready once rolled out, a Job once
    /// complete, a custom resource once its `Ready` condition holds, other kinds once they exist.
    fn readiness(&self, live: &Self::Object) -> Readiness {
        Readiness::of(live)
    }

    /// This dependent, existing only while `enabled` holds (and its own [`Ensure::enabled`]).
    ///
    /// ```
    /// use opkit::prelude::*;
    /// use opkit::k8s::{ConfigMap, ObjectMeta};
    /// struct Settings;
    /// impl Ensure for Settings {
    ///     type Object = ConfigMap;
    ///     fn desired(&self) -> ConfigMap {
    ///         ConfigMap { metadata: ObjectMeta { name: Some("settings".into()), ..Default::default() }, ..Default::default() }
    ///     }
    /// }
    /// assert!(!Settings.when(false).enabled());
    /// assert!(Settings.when(true).enabled());
    /// ```
    fn when(self, enabled: bool) -> When<Self>
    where
        Self: Sized,
    {
        When {
            inner: self,
            enabled,
        }
    }
}

/// A dependent that exists only under a condition; see [`Ensure::when`].
#[derive(Clone, Debug)]
pub struct When<E> {
    inner: E,
    enabled: bool,
}

impl<E: Ensure> Ensure for When<E> {
    type Object = E::Object;

    fn desired(&self) -> Self::Object {
        self.inner.desired()
    }

    fn enabled(&self) -> bool {
        self.enabled && self.inner.enabled()
    }

    fn readiness(&self, live: &Self::Object) -> Readiness {
        self.inner.readiness(live)
    }
}

/// What [`Context::ensure`](crate::Context::ensure) did and found.
///
/// ```
/// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
/// assert!(absent.get().is_none());
/// assert!(!absent.is_ready());
/// ```
#[derive(Clone, Debug)]
pub struct Ensured<T> {
    live: Option<T>,
    readiness: Readiness,
    operation: Operation,
}

/// The write `ensure` made, if any.
///
/// ```
/// assert_eq!(opkit::ensure::Operation::Created.as_str(), "create");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Nothing differed: no write.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The object differed and was patched.
    Updated,
    /// The dependent is disabled and the object was deleted.
    Deleted,
    /// The dependent is disabled and no object exists.
    Absent,
}

impl Operation {
    /// The metric label of the write (`none` when nothing was written).
    ///
    /// ```
    /// assert_eq!(opkit::ensure::Operation::Unchanged.as_str(), "none");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::Deleted => "delete",
            Self::Unchanged | Self::Absent => "none",
        }
    }
}

impl<T> Ensured<T> {
    /// No object (a disabled dependent).
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert_eq!(absent.operation(), opkit::ensure::Operation::Absent);
    /// ```
    pub fn absent() -> Self {
        Self::gone(Operation::Absent)
    }

    fn gone(operation: Operation) -> Self {
        Self {
            live: None,
            readiness: Readiness::pending("the dependent is disabled"),
            operation,
        }
    }

    /// The live object after the write, when it exists.
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(absent.get().is_none());
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.live.as_ref()
    }

    /// The live object after the write, when it exists.
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(absent.into_inner().is_none());
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.live
    }

    /// Whether the dependent exists and is ready ([`Ensure::readiness`]).
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(!absent.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.readiness.ready
    }

    /// The dependent's readiness, with its message ("2/3 replicas ready").
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::apps::v1::Deployment>::absent();
    /// assert!(!absent.readiness().ready);
    /// ```
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The write that was made.
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert_eq!(absent.operation().as_str(), "none");
    /// ```
    pub fn operation(&self) -> Operation {
        self.operation
    }
}

/// What `ensure` needs of the primary and its controller: who owns the dependents and how to
/// write them.
pub(crate) struct Owner<'a> {
    pub client: &'a Client,
    pub caches: &'a Caches,
    pub metrics: &'a Metrics,
    pub events: &'a Events,
    pub controller: &'a str,
    pub field_manager: &'a str,
    pub has_finalizer: bool,
    /// The label every dependent carries when the controller is sharded: the replica's shard,
    /// so each replica caches only the dependents of its own primaries.
    pub shard_label: Option<(&'a str, &'a str)>,
    /// The primary's kind, namespace, name and uid.
    pub kind: String,
    pub namespaced: bool,
    pub meta: &'a ObjectMeta,
    /// The primary's controller owner reference.
    pub reference: Option<OwnerReference>,
    /// The primary as events refer to it.
    pub regarding: ObjectReference,
}

impl Owner<'_> {
    async fn event_about(
        &self,
        related: ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        self.events
            .publish(&self.regarding, Some(related), type_, reason, note)
            .await;
    }
}

pub(crate) async fn ensure<D: Ensure>(
    owner: &Owner<'_>,
    dependent: &D,
) -> Result<Ensured<D::Object>> {
    let mut desired = dependent.desired();
    let name = desired.meta().name.clone().ok_or(Error::MissingField(
        "metadata.name of the desired dependent",
    ))?;
    let namespaced = object::is_namespaced::<D::Object>();
    if namespaced && desired.meta().namespace.is_none() {
        if !owner.namespaced {
            return Err(Error::Config(format!(
                "the {} {name} needs metadata.namespace: its primary, a {}, has no namespace to default to",
                D::Object::kind(&()),
                owner.kind,
            )));
        }
        desired.meta_mut().namespace = owner.meta.namespace.clone();
    }
    if !namespaced {
        desired.meta_mut().namespace = None;
    }
    let namespace = desired.meta().namespace.clone();
    let kind = D::Object::kind(&()).into_owned();
    let qualified = match &namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    };
    let display = format!("{kind} {qualified}");
    let api = object::api::<D::Object>(owner.client.clone(), namespace.as_deref());
    // Reconciles start once the caches synced, so an owned kind's cache is trusted for absence.
    let live = match owner
        .caches
        .lookup::<D::Object>(namespace.as_deref(), &name)
    {
        Some(cached) => cached,
        None => api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(format!("reading {display}"), e))?,
    };
    let uid = owner
        .meta
        .uid
        .clone()
        .ok_or(Error::MissingField("metadata.uid"))?;
    if !dependent.enabled() {
        // An object of that name this primary does not control is someone else's: left alone.
        let Some(live) = live.filter(|live| controlled_by(live, &uid)) else {
            return Ok(Ensured::absent());
        };
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Ensured::absent()),
            Err(e) => return Err(Error::kube(format!("deleting {display}"), e)),
        }
        record_write(
            owner,
            &kind,
            Operation::Deleted,
            &display,
            live.object_ref(&()),
            true,
        )
        .await;
        return Ok(Ensured::gone(Operation::Deleted));
    }

    if let Some(live) = &live {
        check_not_foreign(live, &uid, &kind, &qualified)?;
    }
    claim(owner, &mut desired, namespace.as_deref())?;
    let mut desired_json = serde_json::to_value(&desired)
        .map_err(|e| Error::serialization(format!("encoding {display}"), e))?;
    let desired_hash = stamp_hash(&mut desired_json);

    if let Some(live) = &live {
        let live_json = serde_json::to_value(live)
            .map_err(|e| Error::serialization(format!("encoding {display}"), e))?;
        if is_subset(&desired_json, &live_json) {
            return Ok(Ensured {
                readiness: dependent.readiness(live),
                live: Some(live.clone()),
                operation: Operation::Unchanged,
            });
        }
    }

    let params = PatchParams::apply(owner.field_manager).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(&desired_json))
        .await
        .map_err(|e| Error::kube(format!("applying {display}"), e))?;
    let operation = if live.is_some() {
        Operation::Updated
    } else {
        Operation::Created
    };
    // The operator's own spec changes are expected; a live object changed by someone else is
    // news, so only putting such a drift back is announced.
    let drifted = live
        .as_ref()
        .is_some_and(|live| hash_of(live.meta()) == Some(desired_hash.as_str()));
    owner.caches.remember(&applied);
    record_write(
        owner,
        &kind,
        operation,
        &display,
        applied.object_ref(&()),
        drifted,
    )
    .await;
    Ok(Ensured {
        readiness: dependent.readiness(&applied),
        live: Some(applied),
        operation,
    })
}

/// Counts and logs a write; `announce` also publishes it as an Event on the primary.
async fn record_write(
    owner: &Owner<'_>,
    kind: &str,
    operation: Operation,
    what: &str,
    related: k8s_openapi::api::core::v1::ObjectReference,
    announce: bool,
) {
    owner
        .metrics
        .record_dependent_write(owner.controller, kind, operation.as_str());
    let (reason, note) = match operation {
        Operation::Created => ("Created", format!("Created {what}")),
        Operation::Updated if announce => (
            "DriftCorrected",
            format!("Put back {what}: it was changed outside the operator"),
        ),
        Operation::Updated => ("Updated", format!("Updated {what}")),
        _ => ("Deleted", format!("Deleted {what}")),
    };
    tracing::info!(dependent = %what, operation = operation.as_str(), "{note}");
    if announce {
        owner
            .event_about(related, EventType::Normal, reason, &note)
            .await;
    }
}

/// Sets the controller owner reference, or owner labels when a reference cannot be used.
fn claim<C: Object>(owner: &Owner<'_>, desired: &mut C, namespace: Option<&str>) -> Result<()> {
    if let Some((key, value)) = owner.shard_label {
        desired
            .meta_mut()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
    }
    let same_namespace = owner.meta.namespace.as_deref() == namespace;
    if !owner.namespaced || same_namespace {
        let reference = owner.reference.clone().ok_or(Error::MissingField(
            "metadata.name or metadata.uid of the primary",
        ))?;
        let refs = desired
            .meta_mut()
            .owner_references
            .get_or_insert_with(Vec::new);
        refs.retain(|r| r.uid != reference.uid);
        refs.push(reference);
        return Ok(());
    }
    if !owner.has_finalizer {
        return Err(Error::Config(format!(
            "a {} cannot own a {} outside its namespace; declare a finalizer (#[operator(finalizer = \"...\")] or Controller::finalizer) so opkit can delete it on cleanup",
            owner.kind,
            C::kind(&())
        )));
    }
    let labels = desired.meta_mut().labels.get_or_insert_with(BTreeMap::new);
    labels.insert(
        OWNER_UID_LABEL.to_owned(),
        owner.meta.uid.clone().unwrap_or_default(),
    );
    labels.insert(
        OWNER_NAME_LABEL.to_owned(),
        owner.meta.name.clone().unwrap_or_default(),
    );
    if let Some(ns) = &owner.meta.namespace {
        labels.insert(OWNER_NAMESPACE_LABEL.to_owned(), ns.clone());
    }
    Ok(())
}

fn controlled_by<C: Resource>(live: &C, uid: &str) -> bool {
    let meta = live.meta();
    let by_reference = meta
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid);
    let by_label = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(OWNER_UID_LABEL))
        .is_some_and(|u| u == uid);
    by_reference || by_label
}

/// Refuses objects another controller controls.
fn check_not_foreign<C: Resource>(live: &C, uid: &str, kind: &str, name: &str) -> Result<()> {
    let meta = live.meta();
    let foreign: Option<&OwnerReference> = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.uid != uid);
    if let Some(owner) = foreign {
        return Err(Error::NotOwned {
            kind: kind.to_owned(),
            name: name.to_owned(),
            owner_kind: owner.kind.clone(),
            owner_name: owner.name.clone(),
        });
    }
    let labels = meta.labels.as_ref();
    if let Some(other) = labels
        .and_then(|l| l.get(OWNER_UID_LABEL))
        .filter(|u| *u != uid)
    {
        return Err(Error::NotOwned {
            kind: kind.to_owned(),
            name: name.to_owned(),
            owner_kind: "primary with uid".to_owned(),
            owner_name: other.clone(),
        });
    }
    Ok(())
}

/// The desired-object hash an object carries, if any.
fn hash_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(DESIRED_HASH_ANNOTATION)
        .map(String::as_str)
}

/// Adds the hash of the desired object (without the hash itself) as an annotation; returns it.
fn stamp_hash(desired: &mut Value) -> String {
    let hash = format!("{:016x}", fnv1a(desired.to_string().as_bytes()));
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(
                DESIRED_HASH_ANNOTATION.to_owned(),
                Value::String(hash.clone()),
            );
        }
    }
    hash
}

/// FNV-1a: stable across Rust releases and processes, unlike `DefaultHasher`, so upgrading the
/// operator does not rewrite every dependent.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether every field set in `desired` has the same value in `live`.
///
/// Objects compare key by key (extra keys in `live` are fields others or the server set);
/// arrays compare element-wise and must have the same length; empty values match absent ones.
pub(crate) fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => is_subset(dv, lv),
            None => is_empty(dv),
        }),
        (Value::Object(d), Value::Null) => d.values().all(is_empty),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Array(d), Value::Null) => d.is_empty(),
        (Value::Null, _) => true,
        (Value::Number(d), Value::Number(l)) => d == l || d.as_f64() == l.as_f64(),
        (d, l) => d == l,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_defaults() {
        let desired = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let live = json!({"spec": {"replicas": 3, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn subset_detects_drift() {
        let desired = json!({"spec": {"replicas": 3}});
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 5}})));
        assert!(!is_subset(&desired, &json!({"spec": {}})));
        let two = json!({"ports": [{"port": 80}, {"port": 443}]});
        assert!(!is_subset(&two, &json!({"ports": [{"port": 80}]})));
    }

    #[test]
    fn empty_desired_values_match_absent_live_ones() {
        let desired = json!({"metadata": {"labels": {}}, "spec": {"tolerations": []}});
        assert!(is_subset(&desired, &json!({"metadata": {}, "spec": {}})));
    }

    #[test]
    fn the_hash_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn hash_changes_with_the_desired_object() {
        let mut a = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
        let mut b = json!({"metadata": {"name": "a"}, "spec": {"x": 2}});
        stamp_hash(&mut a);
        stamp_hash(&mut b);
        assert_ne!(
            a["metadata"]["annotations"][DESIRED_HASH_ANNOTATION],
            b["metadata"]["annotations"][DESIRED_HASH_ANNOTATION]
        );
    }
}
