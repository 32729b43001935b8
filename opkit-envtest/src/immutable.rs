//! Fields of built-in kinds the real API server refuses to change once an object exists, so an
//! operator that would rewrite them fails here as it would on a cluster.

use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::schema::FieldError;

/// The StatefulSet spec fields an update may change.
const STATEFULSET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// What an update of `old` to `new` changes that may not change, with the real server's words.
pub(crate) fn check(info: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldError> {
    match (info.group.as_str(), info.kind.as_str()) {
        ("apps", "StatefulSet") => statefulset(old, new),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => immutable(old, new, &["selector"]),
        ("batch", "Job") => immutable(old, new, &["selector", "template"]),
        _ => Vec::new(),
    }
}

fn spec_field<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    obj.get("spec")?.get(field)
}

fn statefulset(old: &Value, new: &Value) -> Vec<FieldError> {
    let fields = |obj: &Value| -> Vec<String> {
        obj.get("spec")
            .and_then(Value::as_object)
            .map(|spec| spec.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut keys = fields(old);
    keys.extend(fields(new));
    let changed = keys.iter().any(|k| {
        !STATEFULSET_MUTABLE.contains(&k.as_str()) && spec_field(old, k) != spec_field(new, k)
    });
    if !changed {
        return Vec::new();
    }
    vec![FieldError {
        field: "spec".into(),
        reason: "FieldValueForbidden",
        message: "Forbidden: updates to statefulset spec for fields other than 'replicas', \
                  'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' \
                  and 'minReadySeconds' are forbidden"
            .into(),
    }]
}

fn immutable(old: &Value, new: &Value, fields: &[&str]) -> Vec<FieldError> {
    fields
        .iter()
        .filter(|f| spec_field(old, f) != spec_field(new, f))
        .map(|f| FieldError {
            field: format!("spec.{f}"),
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: {}: field is immutable",
                spec_field(new, f).unwrap_or(&Value::Null)
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn info(group: &str, kind: &str) -> ResourceInfo {
        crate::resources::builtins()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
            .expect("a built-in kind")
    }

    #[test]
    fn a_statefulset_may_change_replicas_and_template_only() {
        let sts = info("apps", "StatefulSet");
        let old = json!({"spec": {"replicas": 1, "serviceName": "db", "template": {"a": 1}}});
        let scaled = json!({"spec": {"replicas": 3, "serviceName": "db", "template": {"a": 2}}});
        assert!(check(&sts, &old, &scaled).is_empty());
        let renamed =
            json!({"spec": {"replicas": 1, "serviceName": "other", "template": {"a": 1}}});
        let errors = check(&sts, &old, &renamed);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "spec");
        assert!(
            errors[0]
                .message
                .starts_with("Forbidden: updates to statefulset spec")
        );
        let claims = json!({"spec": {"replicas": 1, "serviceName": "db", "template": {"a": 1},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        assert_eq!(
            check(&sts, &old, &claims).len(),
            1,
            "a new claim template is refused"
        );
    }

    #[test]
    fn selectors_and_job_templates_are_immutable() {
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1}});
        let moved = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}, "replicas": 1}});
        let deployment = info("apps", "Deployment");
        assert!(
            check(
                &deployment,
                &old,
                &json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 5}})
            )
            .is_empty()
        );
        let errors = check(&deployment, &old, &moved);
        assert_eq!(errors[0].field, "spec.selector");
        assert_eq!(
            errors[0].message,
            r#"Invalid value: {"matchLabels":{"app":"b"}}: field is immutable"#
        );
        let job = info("batch", "Job");
        let old = json!({"spec": {"template": {"spec": {"restartPolicy": "Never"}}}});
        let new = json!({"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}});
        assert_eq!(check(&job, &old, &new)[0].field, "spec.template");
        assert!(check(&info("", "ConfigMap"), &old, &new).is_empty());
    }
}
