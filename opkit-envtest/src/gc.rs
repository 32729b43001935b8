//! Owner-reference garbage collection (background, foreground with
//! blockOwnerDeletion, orphan) and the other background work writes raise:
//! namespace termination and CRD cleanup. It acts on the store directly, so
//! it never shows in request statistics.

use crate::crd;
use crate::deletion::{self, Preconditions, Propagation};
use crate::meta;
use crate::namespaces;
use crate::store::{ObjKey, Store, Txn, Work, meta_str};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Processes work items until the store's sender is dropped.
pub(crate) async fn run(store: Arc<Store>, mut work: mpsc::UnboundedReceiver<Work>) {
    while let Some(first) = work.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = work.try_recv() {
            batch.push(more);
        }
        let mut seen = HashSet::new();
        batch.retain(|item| seen.insert(item.clone()));
        store.write(|txn| {
            for item in &batch {
                process(txn, item);
            }
        });
    }
}

fn process(txn: &mut Txn<'_>, item: &Work) {
    match item {
        Work::Owner(uid) => owner(txn, uid),
        Work::OwnerGone(uid) => {
            for key in txn.state().dependents(uid) {
                dependent(txn, &key);
            }
        }
        Work::Dependent(key) => dependent(txn, key),
        Work::Namespace(name) => namespaces::terminate(txn, name),
        Work::Definition(name) => crd::cleanup(txn, name),
    }
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn ref_uid(r: &Value) -> &str {
    r.get("uid").and_then(Value::as_str).unwrap_or("")
}

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(finalizer)))
}

/// An owner being deleted with the `orphan` or `foregroundDeletion` finalizer.
fn owner(txn: &mut Txn<'_>, uid: &str) {
    let Some((key, obj)) = txn.state().by_uid(uid) else {
        return;
    };
    if !meta::is_deleting(&obj) {
        return;
    }
    let dependents = txn.state().dependents(uid);
    if has_finalizer(&obj, "orphan") {
        for dep in &dependents {
            let Some(mut updated) = txn.state().get(&dep.storage, &dep.namespace, &dep.name) else {
                continue;
            };
            if let Some(refs) = updated
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| ref_uid(r) != uid);
            }
            txn.put(&dep.storage, updated);
        }
        deletion::remove_finalizer(txn, &key.storage, &key.namespace, &key.name, "orphan");
        return;
    }
    if has_finalizer(&obj, "foregroundDeletion") {
        let mut blocked = false;
        for dep in &dependents {
            let Some(current) = txn.state().get(&dep.storage, &dep.namespace, &dep.name) else {
                continue;
            };
            let blocks = owner_refs(&current).iter().any(|r| {
                ref_uid(r) == uid
                    && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
            });
            if !meta::is_deleting(&current) {
                let propagation = if txn.state().dependents(meta_str(&current, "uid")).is_empty() {
                    Propagation::Background
                } else {
                    Propagation::Foreground
                };
                let outcome = deletion::delete(
                    txn,
                    &dep.storage,
                    &dep.namespace,
                    &dep.name,
                    propagation,
                    &Preconditions::default(),
                    false,
                );
                if matches!(outcome, deletion::Outcome::Removed(_)) {
                    continue;
                }
            }
            blocked |= blocks;
        }
        if !blocked {
            deletion::remove_finalizer(
                txn,
                &key.storage,
                &key.namespace,
                &key.name,
                "foregroundDeletion",
            );
        }
    }
}

/// A dependent whose owners may be gone: deleted when none is left, else
/// its dangling references are dropped.
fn dependent(txn: &mut Txn<'_>, key: &ObjKey) {
    let Some(obj) = txn.state().get(&key.storage, &key.namespace, &key.name) else {
        return;
    };
    let refs = owner_refs(&obj);
    if refs.is_empty() {
        return;
    }
    let live: Vec<&Value> = refs
        .iter()
        .filter(|r| {
            // A namespaced owner counts only in the dependent's namespace, as on a real cluster.
            txn.state()
                .uid_key(ref_uid(r))
                .is_some_and(|owner| owner.namespace.is_empty() || owner.namespace == key.namespace)
        })
        .collect();
    if live.is_empty() {
        if !meta::is_deleting(&obj) {
            deletion::delete(
                txn,
                &key.storage,
                &key.namespace,
                &key.name,
                Propagation::Background,
                &Preconditions::default(),
                false,
            );
        }
        return;
    }
    if live.len() < refs.len() {
        let kept: Vec<Value> = live.into_iter().cloned().collect();
        let mut updated = obj.clone();
        if let Some(meta) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("ownerReferences".into(), Value::Array(kept));
        }
        txn.put(&key.storage, updated);
    }
}
