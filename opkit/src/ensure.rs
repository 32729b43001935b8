//! Dependents: objects an operator makes exist for each primary.
//!
//! A dependent implements [`Ensure`]: it builds the desired object from the primary, and
//! [`Context::ensure`](crate::Context::ensure) makes it so:
//!
//! - the object is written with server-side apply under the operator's field manager (`force`,
//!   since the operator is the authority on the fields it sets);
//! - a controller owner reference (`controller: true`, `blockOwnerDeletion: true`) is added, so
//!   the garbage collector deletes the dependent with its primary and changes to the dependent
//!   trigger a reconcile of the primary;
//! - owner references cannot cross namespaces, and a namespaced primary cannot own a
//!   cluster-scoped object: such dependents carry `opkit.dev/owner-*` labels instead, and opkit
//!   deletes them in the finalizer's cleanup (the operator must declare a finalizer);
//! - an object of the same name controlled by someone else is never adopted: the reconcile fails
//!   with [`crate::Error::NotOwned`], a permanent error shown as a condition;
//! - the write happens only when a field the operator sets differs from the live object (or the
//!   desired object changed since the last write), so a converged operator makes zero writes;
//! - writes are counted (`opkit_dependent_writes_total`) and logged; putting back a dependent
//!   someone else changed (drift) and deleting one are also published as Events on the primary,
//!   while creating dependents and following the primary's own spec changes are not (they are
//!   what the user asked for, and at scale those Events would double the operator's writes);
//! - [`Ensure::enabled`] returning false deletes the dependent (a conditional dependent).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::EventType;
use crate::operator::{ApiScope, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, OWNER_UID_LABEL, Object};

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
    /// primary's namespace.
    fn desired(&self) -> Self::Object;

    /// Whether the dependent should exist at all; when false, an existing one is deleted.
    fn enabled(&self) -> bool {
        true
    }

    /// Whether the live object is ready (feeds status and ordering of dependents).
    fn is_ready(&self, live: &Self::Object) -> bool {
        let _ = live;
        true
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
    ready: bool,
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
    /// let created = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert_eq!(created.operation(), opkit::ensure::Operation::Absent);
    /// ```
    pub fn absent() -> Self {
        Self {
            live: None,
            ready: false,
            operation: Operation::Absent,
        }
    }

    /// The live object after the write, when it exists.
    ///
    /// ```
    /// let created = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(created.get().is_none());
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.live.as_ref()
    }

    /// The live object after the write, when it exists.
    ///
    /// ```
    /// let created = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(created.into_inner().is_none());
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.live
    }

    /// Whether the dependent exists and [`Ensure::is_ready`] holds for it.
    ///
    /// ```
    /// let created = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert!(!created.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The readiness of the live object, or "pending" when there is none.
    ///
    /// ```
    /// let absent = opkit::Ensured::<k8s_openapi::api::apps::v1::Deployment>::absent();
    /// assert!(!absent.readiness().ready);
    /// ```
    pub fn readiness(&self) -> crate::readiness::Readiness
    where
        T: crate::readiness::Ready,
    {
        match &self.live {
            Some(live) => live.readiness(),
            None => crate::readiness::Readiness::pending("not created yet"),
        }
    }

    /// The write that was made.
    ///
    /// ```
    /// let created = opkit::Ensured::<k8s_openapi::api::core::v1::Service>::absent();
    /// assert_eq!(created.operation().as_str(), "none");
    /// ```
    pub fn operation(&self) -> Operation {
        self.operation
    }
}

pub(crate) async fn ensure<K: Object, D: Ensure>(
    ctx: &Context<K>,
    dependent: &D,
) -> Result<Ensured<D::Object>> {
    let primary = ctx.object();
    let mut desired = dependent.desired();
    let name = desired.meta().name.clone().ok_or(Error::MissingField(
        "metadata.name of the desired dependent",
    ))?;
    let namespaced = <<D::Object as Resource>::Scope as ApiScope>::NAMESPACED;
    if namespaced && desired.meta().namespace.is_none() {
        desired.meta_mut().namespace = primary.namespace();
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
    let api = ctx.api::<D::Object>(namespace.as_deref());
    // Reconciles start once the caches synced, so an owned kind's cache is trusted for absence.
    let live = match ctx
        .shared()
        .caches
        .lookup::<D::Object>(namespace.as_deref(), &name)
    {
        Some(cached) => cached,
        None => api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(format!("reading {display}"), e))?,
    };
    let uid = primary.uid().ok_or(Error::MissingField("metadata.uid"))?;
    if let Some(live) = &live {
        check_not_foreign(live, &uid, &kind, &qualified)?;
    }

    if !dependent.enabled() {
        let Some(live) = live else {
            return Ok(Ensured::absent());
        };
        if !controlled_by(&live, &uid) {
            return Ok(Ensured::absent());
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Ensured::absent()),
            Err(e) => return Err(Error::kube(format!("deleting {display}"), e)),
        }
        record_write(
            ctx,
            &kind,
            Operation::Deleted,
            &display,
            live.object_ref(&()),
            true,
        )
        .await;
        return Ok(Ensured {
            live: None,
            ready: false,
            operation: Operation::Deleted,
        });
    }

    claim(ctx, &mut desired, namespace.as_deref())?;
    let mut desired_json = serde_json::to_value(&desired)
        .map_err(|e| Error::serialization(format!("encoding {display}"), e))?;
    let desired_hash = stamp_hash(&mut desired_json);

    if let Some(live) = &live {
        let live_json = serde_json::to_value(live)
            .map_err(|e| Error::serialization(format!("encoding {display}"), e))?;
        if is_subset(&desired_json, &live_json) {
            let ready = dependent.is_ready(live);
            return Ok(Ensured {
                live: Some(live.clone()),
                ready,
                operation: Operation::Unchanged,
            });
        }
    }

    let params = PatchParams::apply(ctx.field_manager()).force();
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
    ctx.shared().caches.remember(&applied);
    record_write(
        ctx,
        &kind,
        operation,
        &display,
        applied.object_ref(&()),
        drifted,
    )
    .await;
    let ready = dependent.is_ready(&applied);
    Ok(Ensured {
        live: Some(applied),
        ready,
        operation,
    })
}

/// Counts and logs a write; `announce` also publishes it as an Event on the primary.
async fn record_write<K: Object>(
    ctx: &Context<K>,
    kind: &str,
    operation: Operation,
    what: &str,
    related: k8s_openapi::api::core::v1::ObjectReference,
    announce: bool,
) {
    ctx.metrics()
        .record_dependent_write(ctx.controller(), kind, operation.as_str());
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
        ctx.event_about(related, EventType::Normal, reason, &note)
            .await;
    }
}

/// Sets the controller owner reference, or owner labels when a reference cannot be used.
fn claim<K: Object, C: Object>(
    ctx: &Context<K>,
    desired: &mut C,
    namespace: Option<&str>,
) -> Result<()> {
    let primary = ctx.object();
    let primary_namespaced = <K::Scope as ApiScope>::NAMESPACED;
    let same_namespace = primary.namespace().as_deref() == namespace;
    if !primary_namespaced || same_namespace {
        let mut reference = primary
            .controller_owner_ref(&())
            .ok_or(Error::MissingField(
                "metadata.name or metadata.uid of the primary",
            ))?;
        reference.block_owner_deletion = Some(true);
        let refs = desired
            .meta_mut()
            .owner_references
            .get_or_insert_with(Vec::new);
        refs.retain(|r| r.uid != reference.uid);
        refs.push(reference);
        return Ok(());
    }
    if ctx.shared().descriptor.finalizer.is_none() {
        return Err(Error::Config(format!(
            "{} cannot own a {} outside its namespace; declare #[operator(finalizer = \"...\")] so opkit can delete it on cleanup",
            K::kind(&()),
            C::kind(&())
        )));
    }
    let labels = desired.meta_mut().labels.get_or_insert_with(BTreeMap::new);
    labels.insert(
        OWNER_UID_LABEL.to_owned(),
        primary.uid().unwrap_or_default(),
    );
    labels.insert(OWNER_NAME_LABEL.to_owned(), primary.name_any());
    if let Some(ns) = primary.namespace() {
        labels.insert(OWNER_NAMESPACE_LABEL.to_owned(), ns);
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
