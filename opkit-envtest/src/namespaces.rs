//! Namespaces: the ones that exist from the start, and the termination of a
//! deleted namespace (contents deleted, respecting finalizers, then the
//! namespace itself goes).

use crate::deletion::{self, Preconditions, Propagation};
use crate::meta;
use crate::store::Txn;
use serde_json::json;

/// Namespaces every cluster has; they cannot be deleted.
pub(crate) const PROTECTED: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// What the ServiceAccount controller puts in every namespace: the `default` ServiceAccount.
pub(crate) fn populate(txn: &mut Txn<'_>, namespace: &str) {
    let created = meta::now();
    if !txn
        .state()
        .contains("/serviceaccounts", namespace, "default")
    {
        txn.put(
            "/serviceaccounts",
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": "default",
                    "namespace": namespace,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": created,
                },
            }),
        );
    }
}

/// Creates the initial namespaces, their contents, and the `kubernetes` Service in `default`.
pub(crate) fn bootstrap(txn: &mut Txn<'_>) {
    let created = meta::now();
    for name in PROTECTED {
        txn.put(
            "/namespaces",
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": created,
                    "labels": {"kubernetes.io/metadata.name": name},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        );
        populate(txn, name);
    }
    txn.put(
        "/services",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": created,
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
            "status": {"loadBalancer": {}},
        }),
    );
}

/// Deletes what a terminating namespace still holds; removes the namespace once it is empty.
pub(crate) fn terminate(txn: &mut Txn<'_>, name: &str) {
    let Some(ns) = txn.state().get("/namespaces", "", name) else {
        return;
    };
    if !meta::is_deleting(&ns) {
        return;
    }
    for key in txn.state().namespace_contents(name) {
        let current = txn.state().get(&key.storage, &key.namespace, &key.name);
        if current.is_some_and(|obj| meta::is_deleting(&obj)) {
            continue;
        }
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
    if txn.state().namespace_is_empty(name) && meta::has_no_finalizers(&ns) {
        txn.remove("/namespaces", "", name);
    }
}
