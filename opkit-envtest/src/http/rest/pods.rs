//! The Pod subresources that act rather than store: `eviction`, which deletes
//! a pod unless a PodDisruptionBudget forbids it, and `binding`, which assigns
//! a pod to a node as the scheduler does. `ephemeralcontainers` writes are
//! checked here too.

use super::{RestRequest, Written};
use crate::deletion::{self, Outcome, Preconditions, Propagation};
use crate::error::ApiError;
use crate::meta;
use crate::schema::FieldError;
use crate::selector::LabelSelector;
use crate::store::{State, Txn, meta_str};
use serde_json::{Value, json};

const PODS: &str = "/pods";
const BUDGETS: &str = "policy/poddisruptionbudgets";

/// The Status a successful eviction or binding answers with.
fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

impl RestRequest {
    /// Runs an `eviction` or `binding` of the pod on the URL.
    pub(super) fn pod_action(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let body = self.parse(bytes)?;
        let binding = self.target.subresource.as_deref() == Some("binding");
        let named = meta_str(&body, "name");
        if !named.is_empty() && named != self.name() {
            let kind = if binding { "Binding" } else { "Eviction" };
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in {kind} object"
            )));
        }
        let dry_run = self.dry_run()
            || body
                .pointer("/deleteOptions/dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        self.server.store.write(|txn| {
            let Some(pod) = txn.state().get(PODS, self.namespace(), self.name()) else {
                return Err(ApiError::not_found(&self.target.info, self.name()));
            };
            if binding {
                bind(txn, pod, &body, dry_run)?;
            } else {
                self.evict(txn, &pod, &body, dry_run)?;
            }
            Ok(Written {
                code: 201,
                object: success(),
                warnings: Vec::new(),
            })
        })
    }

    /// Deletes the pod unless the one PodDisruptionBudget selecting it allows no
    /// disruption: 429 then, as the eviction REST storage answers.
    fn evict(
        &self,
        txn: &mut Txn<'_>,
        pod: &Value,
        eviction: &Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let name = self.name().to_string();
        // Terminal, pending and deleting pods disrupt nothing.
        let phase = pod.pointer("/status/phase").and_then(Value::as_str);
        let ignores_budgets =
            matches!(phase, Some("Succeeded" | "Failed" | "Pending")) || meta::is_deleting(pod);
        if !ignores_budgets {
            let budgets = budgets_of(txn.state(), pod);
            if budgets.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(budget) = budgets.into_iter().next() {
                let mut status = disruption_status(txn.state(), &budget);
                let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
                let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
                let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
                // An unready pod is not counted as healthy: evicting it costs the budget nothing
                // once the budget is met.
                let costs = is_ready(pod) || healthy < desired;
                if costs && allowed == 0 {
                    return Err(ApiError::disruption_budget(
                        meta_str(&budget, "name"),
                        desired,
                        healthy,
                    ));
                }
                if costs && !dry_run {
                    status["disruptionsAllowed"] = json!(allowed - 1);
                    status["disruptedPods"] = json!({name.clone(): meta::now()});
                    let mut budget = budget;
                    budget["status"] = status;
                    txn.put(BUDGETS, budget);
                }
            }
        }
        let preconditions = Preconditions {
            uid: string_at(eviction, "/deleteOptions/preconditions/uid"),
            resource_version: string_at(eviction, "/deleteOptions/preconditions/resourceVersion"),
        };
        match deletion::delete(
            txn,
            PODS,
            self.namespace(),
            &name,
            Propagation::Background,
            &preconditions,
            dry_run,
        ) {
            Outcome::NotFound => Err(ApiError::not_found(&self.target.info, &name)),
            Outcome::Conflict(why) => {
                Err(ApiError::conflict_because(&self.target.info, &name, &why))
            }
            Outcome::Deferred(_) | Outcome::Removed(_) => Ok(()),
        }
    }
}

/// Assigns the pod to the Binding's target node; 409 when it already runs on one.
fn bind(txn: &mut Txn<'_>, mut pod: Value, binding: &Value, dry_run: bool) -> Result<(), ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = meta_str(&pod, "name").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid_kind(
            "Binding",
            &name,
            "target.name",
            &json!(node),
            "must not be empty",
        ));
    }
    let current = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !current.is_empty() {
        return Err(ApiError::conflict_binding(&name, current));
    }
    if dry_run {
        return Ok(());
    }
    pod["spec"]["nodeName"] = json!(node);
    let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": meta::now()});
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .chain([scheduled])
        .collect::<Vec<_>>();
    pod["status"]["conditions"] = json!(conditions);
    txn.put(PODS, pod);
    Ok(())
}

/// Refuses an ephemeral containers write that removes or changes an existing one,
/// or names one as another container is named.
pub(crate) fn check_ephemeral(old: &Value, new: &Value) -> Vec<FieldError> {
    let list = |obj: &Value, pointer: &str| -> Vec<Value> {
        obj.pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let ephemeral = list(new, "/spec/ephemeralContainers");
    let mut errors = Vec::new();
    for existing in list(old, "/spec/ephemeralContainers") {
        let name = existing["name"].as_str().unwrap_or("");
        let verb = match ephemeral.iter().find(|c| c["name"] == existing["name"]) {
            None => "removed",
            Some(now) if *now != existing => "changed",
            Some(_) => continue,
        };
        errors.push(FieldError {
            field: "spec.ephemeralContainers".into(),
            reason: "FieldValueForbidden",
            message: format!(
                "Forbidden: existing ephemeral containers \"{name}\" may not be {verb}"
            ),
        });
    }
    let mut names: Vec<Value> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .flat_map(|p| list(new, p))
        .map(|c| c["name"].clone())
        .collect();
    for (i, container) in ephemeral.iter().enumerate() {
        let field = format!("spec.ephemeralContainers[{i}]");
        match container.get("name").and_then(Value::as_str) {
            None | Some("") => errors.push(FieldError {
                field: format!("{field}.name"),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            }),
            Some(name) if names.contains(&container["name"]) => errors.push(FieldError {
                field: format!("{field}.name"),
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: \"{name}\""),
            }),
            Some(_) => names.push(container["name"].clone()),
        }
        if container
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push(FieldError {
                field: format!("{field}.image"),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            });
        }
    }
    errors
}

fn string_at(obj: &Value, pointer: &str) -> Option<String> {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The budgets in the pod's namespace whose selector selects it.
fn budgets_of(state: &State, pod: &Value) -> Vec<Value> {
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    state
        .list(BUDGETS, Some(meta_str(pod, "namespace")), None)
        .map(|(_, stored)| stored.value())
        .filter(|budget| {
            let selector = budget.pointer("/spec/selector").unwrap_or(&Value::Null);
            LabelSelector::from_object(selector).is_ok_and(|s| s.matches(labels))
        })
        .collect()
}

/// The budget's status as the disruption controller computes it from the pods it
/// selects now: expected, healthy and desired healthy pods, disruptions allowed.
fn disruption_status(state: &State, budget: &Value) -> Value {
    let selector = budget.pointer("/spec/selector").unwrap_or(&Value::Null);
    let selector = LabelSelector::from_object(selector).unwrap_or_default();
    let pods: Vec<Value> = state
        .list(PODS, Some(meta_str(budget, "namespace")), None)
        .map(|(_, stored)| stored.value())
        .filter(|p| {
            !meta::is_deleting(p)
                && selector.matches(p.pointer("/metadata/labels").and_then(Value::as_object))
        })
        .collect();
    let expected = i64::try_from(pods.len()).unwrap_or(i64::MAX);
    let healthy = i64::try_from(pods.iter().filter(|p| is_ready(p)).count()).unwrap_or(i64::MAX);
    let desired = if let Some(min) = budget.pointer("/spec/minAvailable") {
        scaled(min, expected)
    } else if let Some(max) = budget.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, expected)).max(0)
    } else {
        0
    };
    let allowed = (healthy - desired).max(0);
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    json!({
        "observedGeneration": budget.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [{"type": "DisruptionAllowed", "status": status, "reason": reason,
            "message": "", "observedGeneration": budget.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "lastTransitionTime": meta::now()}],
    })
}

/// An IntOrString of a budget: a count, or a percentage of `total` rounded up.
fn scaled(value: &Value, total: i64) -> i64 {
    match value {
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(0, |percent| (percent * total + 99) / 100),
        other => other.as_i64().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&json!("50%"), 3), 2);
        assert_eq!(scaled(&json!(2), 3), 2);
        assert_eq!(scaled(&json!("x%"), 3), 0);
    }

    #[test]
    fn existing_ephemeral_containers_stay() {
        let old = json!({"spec": {"containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}});
        let changed = json!({"spec": {"containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "debug", "image": "alpine"}, {"name": "app", "image": "x"}]}});
        let messages: Vec<String> = check_ephemeral(&old, &changed)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be changed",
                "spec.ephemeralContainers[1].name: Duplicate value: \"app\"",
            ]
        );
        assert!(check_ephemeral(&old, &old).is_empty());
    }
}
