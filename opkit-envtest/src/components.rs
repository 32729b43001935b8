//! The deprecated `componentstatuses`: what the control plane reports about
//! its scheduler, controller manager and etcd, all healthy.

use crate::store::Txn;
use serde_json::json;

/// Stores the three ComponentStatuses kube-apiserver answers with.
pub(crate) fn bootstrap(txn: &mut Txn<'_>) {
    for (name, message) in [
        ("controller-manager", "ok"),
        ("etcd-0", "{\"health\":\"true\",\"reason\":\"\"}"),
        ("scheduler", "ok"),
    ] {
        txn.put(
            "/componentstatuses",
            json!({
                "apiVersion": "v1",
                "kind": "ComponentStatus",
                "metadata": {"name": name},
                "conditions": [{"type": "Healthy", "status": "True", "message": message}],
            }),
        );
    }
}
