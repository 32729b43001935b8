//! The `apiregistration.k8s.io` APIServices the aggregator keeps: one per
//! served group/version (`v1.`, `v1.apps`, `v1.example.com`), local and
//! Available, created and removed as CRDs come and go.

use crate::crd::CRD_STORAGE;
use crate::meta;
use crate::resources;
use crate::store::{State, Txn};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const STORAGE: &str = "apiregistration.k8s.io/apiservices";
const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// The group priorities kube-apiserver gives its own groups; others get 16000.
const PRIORITIES: &[(&str, i64)] = &[
    ("", 18000),
    ("apps", 17800),
    ("events.k8s.io", 17750),
    ("authentication.k8s.io", 17700),
    ("authorization.k8s.io", 17600),
    ("autoscaling", 17500),
    ("batch", 17400),
    ("certificates.k8s.io", 17300),
    ("networking.k8s.io", 17200),
    ("policy", 17100),
    ("rbac.authorization.k8s.io", 17000),
    ("admissionregistration.k8s.io", 16700),
    ("apiextensions.k8s.io", 16700),
    ("coordination.k8s.io", 16500),
];

/// Stores the APIServices of the served group/versions and removes those of group/versions
/// no longer served.
pub(crate) fn sync(txn: &mut Txn<'_>) {
    let wanted = served(txn.state());
    let stored: Vec<String> = txn
        .state()
        .list(STORAGE, None, None)
        .filter(|(_, s)| {
            s.value()
                .pointer(&format!(
                    "/metadata/labels/{}",
                    AUTOMANAGED.replace('/', "~1")
                ))
                .is_some()
        })
        .map(|((_, name), _)| name.clone())
        .collect();
    for name in &stored {
        if !wanted.contains_key(name) {
            txn.remove(STORAGE, "", name);
        }
    }
    for (name, service) in wanted {
        if !txn.state().contains(STORAGE, "", &name) {
            txn.put(STORAGE, service);
        }
    }
}

/// The APIService of each served group/version, by name.
fn served(state: &State) -> BTreeMap<String, Value> {
    let now = meta::now();
    let mut services = BTreeMap::new();
    for info in resources::builtins() {
        let priority = PRIORITIES
            .iter()
            .find(|(g, _)| *g == info.group)
            .map_or(16000, |(_, p)| *p);
        let service = apiservice(&info.group, &info.version, priority, 15, "onstart", &now);
        services.insert(name(&info.group, &info.version), service);
    }
    for (_, crd) in state.list(CRD_STORAGE, None, None) {
        let crd = crd.value();
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
        for version in versions.into_iter().flatten() {
            let Some(v) = version.get("name").and_then(Value::as_str) else {
                continue;
            };
            if version.get("served").and_then(Value::as_bool) == Some(true) {
                services.insert(
                    name(group, v),
                    apiservice(group, v, 1000, 100, "true", &now),
                );
            }
        }
    }
    services
}

fn name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

fn apiservice(
    group: &str,
    version: &str,
    group_priority: i64,
    version_priority: i64,
    managed: &str,
    now: &str,
) -> Value {
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {
            "name": name(group, version),
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
            "labels": {AUTOMANAGED: managed},
        },
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": group_priority,
            "versionPriority": version_priority,
        },
        "status": {"conditions": [{
            "type": "Available",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "Local",
            "message": "Local APIServices are always available",
        }]},
    })
}
