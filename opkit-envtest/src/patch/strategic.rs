//! Strategic merge patch with the list merge keys of the built-in kinds.
//!
//! The list strategies live in one table, keyed by group, kind and field
//! path, which server-side apply reuses. Custom resources take theirs from
//! the schema's `x-kubernetes-list-type` and `x-kubernetes-list-map-keys`.

use super::PatchError;
use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Clone, Debug, PartialEq)]
pub enum ListStrategy {
    /// Replaced as a whole (lists without merge metadata).
    Atomic,
    /// Scalars merged as a set (`finalizers`, `x-kubernetes-list-type: set`).
    Set,
    /// Objects merged by key fields. Strategic merge patch uses the first
    /// key; server-side apply uses them all, with `default` filling a key a
    /// list item omits (ports default `protocol` to `TCP`).
    Map {
        /// The key fields, e.g. `["containerPort", "protocol"]`.
        keys: Vec<String>,
        /// Defaults of key fields that items may omit.
        defaults: Vec<(String, Value)>,
    },
}

/// Where a pod spec sits inside each built-in kind.
fn pod_spec_root(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// Whether a group is served by kube-apiserver itself rather than by a CRD.
pub(crate) fn is_builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

fn map(keys: &[&str]) -> ListStrategy {
    ListStrategy::Map {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        defaults: if keys.contains(&"protocol") {
            vec![("protocol".to_string(), Value::String("TCP".into()))]
        } else {
            Vec::new()
        },
    }
}

/// The strategy of the list at `path` (field names from the object root,
/// list items skipped) for the given type.
///
/// `for_apply` selects server-side apply's keys (`containerPort` and
/// `protocol` for ports) over strategic merge patch's (`containerPort`).
pub fn list_strategy(
    group: &str,
    kind: &str,
    schema: Option<&Value>,
    path: &[&str],
    for_apply: bool,
) -> ListStrategy {
    match path {
        ["metadata", "finalizers"] => return ListStrategy::Set,
        ["metadata", "ownerReferences"] => return map(&["uid"]),
        ["metadata", "managedFields"] => return ListStrategy::Atomic,
        _ => {}
    }
    if !is_builtin_group(group) {
        return schema
            .and_then(|s| schema_at(s, path))
            .map(schema_strategy)
            .unwrap_or(ListStrategy::Atomic);
    }
    if let Some(root) = pod_spec_root(kind)
        && path.len() > root.len()
        && path[..root.len()] == *root
    {
        return pod_spec_strategy(&path[root.len()..], for_apply);
    }
    let ports = |apply: bool| {
        if apply {
            map(&["port", "protocol"])
        } else {
            map(&["port"])
        }
    };
    match (kind, path) {
        (_, ["status", "conditions"]) => map(&["type"]),
        ("Service", ["spec", "ports"]) => ports(for_apply),
        ("Pod", ["status", "podIPs"]) => map(&["ip"]),
        ("Pod", ["status", "hostIPs"]) => map(&["ip"]),
        ("ServiceAccount", ["secrets"]) => map(&["name"]),
        ("ServiceAccount", ["imagePullSecrets"]) => map(&["name"]),
        ("Node", ["spec", "podCIDRs"]) => ListStrategy::Set,
        ("Node", ["status", "addresses"]) => map(&["type"]),
        ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration", ["webhooks"]) => {
            map(&["name"])
        }
        _ => ListStrategy::Atomic,
    }
}

fn pod_spec_strategy(rel: &[&str], for_apply: bool) -> ListStrategy {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rel {
        [c] if CONTAINERS.contains(c) => map(&["name"]),
        [c, "ports"] if CONTAINERS.contains(c) => {
            if for_apply {
                map(&["containerPort", "protocol"])
            } else {
                map(&["containerPort"])
            }
        }
        [c, "env"] if CONTAINERS.contains(c) => map(&["name"]),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => map(&["mountPath"]),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => map(&["devicePath"]),
        [c, "resizePolicy"] if CONTAINERS.contains(c) => map(&["resourceName"]),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            map(&["name"])
        }
        ["hostAliases"] => map(&["ip"]),
        ["topologySpreadConstraints"] => {
            if for_apply {
                map(&["topologyKey", "whenUnsatisfiable"])
            } else {
                map(&["topologyKey"])
            }
        }
        _ => ListStrategy::Atomic,
    }
}

/// The schema node of `path`, stepping through list items.
pub(crate) fn schema_at<'a>(schema: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = schema;
    for name in path {
        if node.get("type").and_then(Value::as_str) == Some("array") {
            node = node.get("items")?;
        }
        node = node
            .get("properties")
            .and_then(|p| p.get(*name))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
    }
    Some(node)
}

fn schema_strategy(node: &Value) -> ListStrategy {
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListStrategy::Set,
        Some("map") => {
            let keys: Vec<String> = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let item_props = node.get("items").and_then(|i| i.get("properties"));
            let defaults = keys
                .iter()
                .filter_map(|k| {
                    let d = item_props?.get(k)?.get("default")?;
                    Some((k.clone(), d.clone()))
                })
                .collect();
            if keys.is_empty() {
                ListStrategy::Atomic
            } else {
                ListStrategy::Map { keys, defaults }
            }
        }
        _ => ListStrategy::Atomic,
    }
}

/// Go's `%v` for a decoded JSON value, as patch error messages print them.
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_v).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_v(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        other => other.to_string(),
    }
}

struct Merger<'a> {
    group: &'a str,
    kind: &'a str,
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to an object of the built-in `group`/`kind`.
///
/// Lists merge by their keys, `null` deletes a field, and the directives
/// kubectl sends (`$patch: replace|delete|merge`, `$retainKeys`,
/// `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`) are
/// honoured. Lists of unknown kinds are replaced as a whole.
pub fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    group: &str,
    kind: &str,
) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match patch {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            }
        )));
    };
    let merger = Merger { group, kind };
    let original = match target {
        Value::Object(m) => std::mem::take(m),
        _ => Map::new(),
    };
    match merger.merge_map(original, patch, &mut Vec::new())? {
        Some(merged) => *target = Value::Object(merged),
        None => *target = Value::Object(Map::new()),
    }
    Ok(())
}

impl Merger<'_> {
    fn strategy(&self, path: &[String]) -> ListStrategy {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        list_strategy(self.group, self.kind, None, &path, false)
    }

    /// Merges `patch` into `original`; `None` when the patch deletes the map.
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        match patch.get(DIRECTIVE) {
            None => {}
            Some(Value::String(d)) if d == "merge" => {}
            Some(Value::String(d)) if d == "delete" => return Ok(None),
            Some(Value::String(d)) if d == "replace" => {
                return Ok(Some(self.fresh_map(patch, path)?));
            }
            Some(other) => {
                return Err(PatchError::Failed(format!(
                    "Unknown patch type: {} in map: {}",
                    go_v(other),
                    go_v(&Value::Object(patch.clone()))
                )));
            }
        }
        for (key, value) in patch {
            if key == DIRECTIVE || key == RETAIN_KEYS || key.starts_with(ORDER_PREFIX) {
                continue;
            }
            if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE_PREFIX) {
                if let (Some(Value::Array(list)), Value::Array(remove)) =
                    (original.get_mut(field), value)
                {
                    list.retain(|v| !remove.contains(v));
                }
                continue;
            }
            path.push(key.clone());
            let merged = self.merge_value(original.remove(key), value, path)?;
            path.pop();
            if let Some(v) = merged {
                original.insert(key.clone(), v);
            }
        }
        for (key, order) in patch {
            if let (Some(field), Value::Array(order)) = (key.strip_prefix(ORDER_PREFIX), order)
                && let Some(Value::Array(list)) = original.get_mut(field)
            {
                path.push(field.to_string());
                let strategy = self.strategy(path);
                path.pop();
                reorder(list, order, &strategy);
            }
        }
        if let Some(Value::Array(retain)) = patch.get(RETAIN_KEYS) {
            let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
            original.retain(|k, _| keep.contains(&k.as_str()));
        }
        Ok(Some(original))
    }

    /// A map built from the patch alone (directives processed, nulls dropped).
    fn fresh_map(
        &self,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, PatchError> {
        let mut stripped = patch.clone();
        stripped.remove(DIRECTIVE);
        Ok(self
            .merge_map(Map::new(), &stripped, path)?
            .unwrap_or_default())
    }

    fn merge_value(
        &self,
        original: Option<Value>,
        patch: &Value,
        path: &mut Vec<String>,
    ) -> Result<Option<Value>, PatchError> {
        match (original, patch) {
            (_, Value::Null) => Ok(None),
            (Some(Value::Object(o)), Value::Object(p)) => {
                Ok(self.merge_map(o, p, path)?.map(Value::Object))
            }
            (None | Some(_), Value::Object(p)) => {
                Ok(self.merge_map(Map::new(), p, path)?.map(Value::Object))
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Ok(Some(Value::Array(self.merge_list(o, p, path)?)))
            }
            (None | Some(_), Value::Array(p)) => {
                Ok(Some(Value::Array(self.merge_list(Vec::new(), p, path)?)))
            }
            (_, scalar) => Ok(Some(scalar.clone())),
        }
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        // A `{"$patch": "replace"}` item replaces the list with the other items.
        let replace = patch.iter().any(|item| {
            item.get(DIRECTIVE).and_then(Value::as_str) == Some("replace")
                && item.as_object().is_some_and(|m| m.len() == 1)
        });
        let strategy = self.strategy(path);
        match strategy {
            ListStrategy::Atomic => {
                let mut out = Vec::new();
                for item in patch {
                    out.push(self.strip(item, path)?);
                }
                Ok(out)
            }
            ListStrategy::Set => {
                let mut out = if replace { Vec::new() } else { original };
                for item in patch {
                    if item.is_object() {
                        continue;
                    }
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Ok(out)
            }
            ListStrategy::Map { keys, .. } => {
                let key = keys.first().cloned().unwrap_or_default();
                let mut out = if replace { Vec::new() } else { original };
                for item in patch {
                    let Value::Object(p) = item else {
                        return Err(PatchError::Failed(format!(
                            "unable to find api field in struct {} for the json field {:?}",
                            self.kind,
                            path.last().cloned().unwrap_or_default()
                        )));
                    };
                    let directive = p.get(DIRECTIVE).and_then(Value::as_str);
                    if directive == Some("replace") && p.len() == 1 {
                        continue;
                    }
                    let Some(wanted) = p.get(&key) else {
                        return Err(PatchError::Failed(format!(
                            "map: {} does not contain declared merge key: {key}",
                            go_v(item)
                        )));
                    };
                    let at = out.iter().position(|o| o.get(&key) == Some(wanted));
                    if directive == Some("delete") {
                        out.retain(|o| o.get(&key) != Some(wanted));
                        continue;
                    }
                    match at {
                        Some(i) => {
                            let existing = match std::mem::take(&mut out[i]) {
                                Value::Object(m) => m,
                                _ => Map::new(),
                            };
                            match self.merge_map(existing, p, path)? {
                                Some(m) => out[i] = Value::Object(m),
                                None => {
                                    out.remove(i);
                                }
                            }
                        }
                        None => {
                            if let Some(m) = self.merge_map(Map::new(), p, path)? {
                                out.push(Value::Object(m));
                            }
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// A patch value with its directives processed, for places it is stored whole.
    fn strip(&self, value: &Value, path: &mut Vec<String>) -> Result<Value, PatchError> {
        Ok(self.merge_value(None, value, path)?.unwrap_or(Value::Null))
    }
}

/// Orders a merged list as `$setElementOrder` says; items it does not name keep their place after.
fn reorder(list: &mut Vec<Value>, order: &[Value], strategy: &ListStrategy) {
    let identity = |item: &Value| -> Value {
        match strategy {
            ListStrategy::Map { keys, .. } => keys
                .first()
                .and_then(|k| item.get(k))
                .cloned()
                .unwrap_or(Value::Null),
            _ => item.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&identity).collect();
    let mut ordered: Vec<Value> = Vec::with_capacity(list.len());
    let mut rest: Vec<Value> = Vec::new();
    let mut slots: Vec<Option<Value>> = vec![None; wanted.len()];
    for item in list.drain(..) {
        match wanted.iter().position(|w| *w == identity(&item)) {
            Some(i) if slots[i].is_none() => slots[i] = Some(item),
            _ => rest.push(item),
        }
    }
    ordered.extend(slots.into_iter().flatten());
    ordered.extend(rest);
    *list = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let mut deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "proxy:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2"}]}}}});
        strategic_merge(&mut deploy, &patch, "apps", "Deployment").unwrap();
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["image"],
            "app:2"
        );
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][1]["image"],
            "proxy:1"
        );
    }

    fn smp(mut target: Value, patch: Value, group: &str, kind: &str) -> Value {
        if let Err(e) = strategic_merge(&mut target, &patch, group, kind) {
            panic!("{e}");
        }
        target
    }

    fn deploy(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn containers_merge_by_name_and_their_lists_by_their_keys() {
        let live = deploy(json!([{"name": "app", "image": "a:1",
            "ports": [{"containerPort": 80}, {"containerPort": 443}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumeMounts": [{"mountPath": "/data", "name": "data"}],
            "args": ["--x", "--y"],
            "envFrom": [{"configMapRef": {"name": "c"}}]}]));
        let patch = deploy(json!([{"name": "app",
            "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
            "volumeMounts": [{"mountPath": "/data", "readOnly": true}],
            "args": ["--z"],
            "envFrom": [{"secretRef": {"name": "s"}}]},
            {"name": "sidecar", "image": "s:1"}]));
        let out = smp(live, patch, "apps", "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "a:1",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                "volumeMounts": [{"mountPath": "/data", "name": "data", "readOnly": true}],
                "args": ["--z"],
                "envFrom": [{"secretRef": {"name": "s"}}]},
                {"name": "sidecar", "image": "s:1"}])
        );
    }

    #[test]
    fn delete_and_replace_directives() {
        let live = deploy(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let out = smp(
            live.clone(),
            deploy(json!([{"name": "a", "$patch": "delete"}])),
            "apps",
            "Deployment",
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b"}])
        );
        let out = smp(
            live.clone(),
            deploy(json!([{"$patch": "replace"}, {"name": "c", "image": "c"}])),
            "apps",
            "Deployment",
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c", "image": "c"}])
        );
        let out = smp(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            "",
            "ConfigMap",
        );
        assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}}));
        let out = smp(
            json!({"data": {"a": "1"}, "x": 1}),
            json!({"data": {"$patch": "delete"}}),
            "",
            "ConfigMap",
        );
        assert_eq!(out, json!({"x": 1}));
    }

    #[test]
    fn null_deletes_and_maps_merge() {
        let out = smp(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}),
            json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": null}),
            "",
            "ConfigMap",
        );
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
    }

    #[test]
    fn finalizers_merge_as_a_set_and_primitive_deletes() {
        let out = smp(
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "",
            "ConfigMap",
        );
        assert_eq!(out, json!({"metadata": {"finalizers": ["b", "c"]}}));
    }

    #[test]
    fn retain_keys_clears_the_other_fields() {
        let live = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = smp(live, patch, "apps", "Deployment");
        assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
    }

    #[test]
    fn set_element_order_orders_the_result() {
        let live = deploy(json!([{"name": "a"}, {"name": "b"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "c"}]}}}});
        let out = smp(live, patch, "apps", "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c"}, {"name": "b"}, {"name": "a"}])
        );
    }

    #[test]
    fn other_built_in_lists() {
        let svc = smp(
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}),
            json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            "",
            "Service",
        );
        assert_eq!(
            svc["spec"]["ports"][1],
            json!({"port": 443, "name": "https", "targetPort": 8443})
        );
        let tolerations = smp(
            json!({"spec": {"tolerations": [{"key": "a"}], "volumes": [{"name": "v", "emptyDir": {}}]}}),
            json!({"spec": {"tolerations": [{"key": "b"}], "volumes": [{"name": "w", "emptyDir": {}}]}}),
            "",
            "Pod",
        );
        assert_eq!(tolerations["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(
            tolerations["spec"]["volumes"].as_array().map(Vec::len),
            Some(2)
        );
        let owners = smp(
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
            "",
            "ConfigMap",
        );
        assert_eq!(
            owners["metadata"]["ownerReferences"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let conditions = smp(
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Other", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            "",
            "Pod",
        );
        assert_eq!(conditions["status"]["conditions"][0]["status"], "True");
        assert_eq!(conditions["status"]["conditions"][1]["type"], "Other");
        let cron = smp(
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}}}),
            "batch",
            "CronJob",
        );
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn custom_resources_replace_lists() {
        let out = smp(
            json!({"spec": {"items": [1, 2]}}),
            json!({"spec": {"items": [3]}}),
            "example.com",
            "App",
        );
        assert_eq!(out, json!({"spec": {"items": [3]}}));
    }

    #[test]
    fn errors() {
        let mut obj = deploy(json!([{"name": "a"}]));
        let missing_key = strategic_merge(
            &mut obj,
            &deploy(json!([{"image": "x"}])),
            "apps",
            "Deployment",
        );
        assert_eq!(
            missing_key.map_err(|e| e.to_string()),
            Err("map: map[image:x] does not contain declared merge key: name".to_string())
        );
        let bad = strategic_merge(
            &mut obj,
            &json!({"spec": {"$patch": "frob"}}),
            "apps",
            "Deployment",
        );
        assert_eq!(
            bad.map_err(|e| e.to_string()),
            Err("Unknown patch type: frob in map: map[$patch:frob]".to_string())
        );
        let not_object = strategic_merge(&mut obj, &json!([1]), "apps", "Deployment");
        assert_eq!(not_object.map_err(|e| e.status_code()), Err(400));
    }

    #[test]
    fn crd_list_types_come_from_the_schema() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}});
        assert_eq!(
            list_strategy(
                "example.com",
                "App",
                Some(&schema),
                &["spec", "items"],
                true
            ),
            map(&["name"])
        );
        assert_eq!(
            list_strategy("example.com", "App", None, &["spec", "items"], true),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy(
                "apps",
                "Deployment",
                None,
                &["spec", "template", "spec", "containers", "ports"],
                true
            ),
            map(&["containerPort", "protocol"])
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            "[a-z]{0,4}|replace|delete|merge".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    "spec|template|containers|name|ports|containerPort|metadata|finalizers|\\$patch|\\$retainKeys|\\$setElementOrder/containers|\\$deleteFromPrimitiveList/finalizers|[a-z]{1,3}",
                    inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_patches_never_panic(mut target in arb_json(), patch in arb_json()) {
            let _ = strategic_merge(&mut target, &patch, "apps", "Deployment");
            let _ = strategic_merge(&mut target, &patch, "", "Pod");
        }
    }
}
