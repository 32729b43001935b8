//! The deletion lifecycle shared by the DELETE verb and the background
//! controllers: preconditions, propagation finalizers, deletionTimestamp,
//! and removal once no finalizer is left.

use crate::meta;
use crate::store::{Txn, meta_str};
use serde_json::{Value, json};

/// How dependents are treated when their owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            "Orphan" => Some(Propagation::Orphan),
            _ => None,
        }
    }

    fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Background => None,
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Orphan => Some("orphan"),
        }
    }
}

/// Conditions a delete must meet (`DeleteOptions.preconditions`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// What a delete did.
#[derive(Debug)]
pub(crate) enum Outcome {
    NotFound,
    /// A precondition failed; the text says which.
    Conflict(String),
    /// The object is now being deleted (finalizers or a terminating namespace remain).
    Deferred(Value),
    /// The object is gone; this is its last state.
    Removed(Value),
}

/// Deletes one object inside a transaction. `dry_run` computes the outcome without storing it.
pub(crate) fn delete(
    txn: &mut Txn<'_>,
    storage: &str,
    namespace: &str,
    name: &str,
    propagation: Propagation,
    preconditions: &Preconditions,
    dry_run: bool,
) -> Outcome {
    let Some(current) = txn.state().get(storage, namespace, name) else {
        return Outcome::NotFound;
    };
    if let Some(uid) = &preconditions.uid {
        let actual = meta_str(&current, "uid");
        if uid != actual {
            return Outcome::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
            ));
        }
    }
    if let Some(rv) = &preconditions.resource_version {
        let actual = meta_str(&current, "resourceVersion");
        if rv != actual {
            return Outcome::Conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
            ));
        }
    }
    let mut obj = current.clone();
    let is_namespace = storage == "/namespaces";
    let mut changed = false;
    if let Some(finalizer) = propagation.finalizer()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        let list = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut()
            && !list.iter().any(|f| f.as_str() == Some(finalizer))
        {
            list.push(json!(finalizer));
            changed = true;
        }
    }
    if is_namespace || !meta::has_no_finalizers(&obj) {
        if !meta::is_deleting(&obj) {
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("deletionTimestamp".into(), json!(meta::now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
                    meta.insert("generation".into(), json!(generation + 1));
                }
            }
            if is_namespace && let Some(map) = obj.as_object_mut() {
                let status = map.entry("status").or_insert_with(|| json!({}));
                status["phase"] = json!("Terminating");
            }
            changed = true;
        }
        if !changed || dry_run {
            return Outcome::Deferred(obj);
        }
        return Outcome::Deferred(txn.put(storage, obj));
    }
    if dry_run {
        return Outcome::Removed(current);
    }
    match txn.remove(storage, namespace, name) {
        Some(last) => Outcome::Removed(last),
        None => Outcome::NotFound,
    }
}

/// Removes `finalizer` from a stored object, completing its deletion if it
/// was the last one and the object is being deleted.
pub(crate) fn remove_finalizer(
    txn: &mut Txn<'_>,
    storage: &str,
    namespace: &str,
    name: &str,
    finalizer: &str,
) {
    let Some(mut obj) = txn.state().get(storage, namespace, name) else {
        return;
    };
    let Some(list) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let before = list.len();
    list.retain(|f| f.as_str() != Some(finalizer));
    if list.len() == before {
        return;
    }
    finish_or_put(txn, storage, obj);
}

/// Stores an updated object, or removes it when it is being deleted and has no finalizer left.
pub(crate) fn finish_or_put(txn: &mut Txn<'_>, storage: &str, obj: Value) -> Value {
    let namespace = meta_str(&obj, "namespace").to_string();
    let name = meta_str(&obj, "name").to_string();
    if meta::is_deleting(&obj)
        && meta::has_no_finalizers(&obj)
        && storage != "/namespaces"
        && let Some(last) = txn.remove_as(storage, &namespace, &name, Some(obj.clone()))
    {
        return last;
    }
    txn.put(storage, obj)
}
