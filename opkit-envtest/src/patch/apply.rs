//! Server-side apply: field ownership in `metadata.managedFields`.
//!
//! Field sets use the `fieldsV1` vocabulary of structured-merge-diff:
//! `f:<name>` for a field, `k:{"name":"x"}` for an item of an associative
//! list, `v:<json>` for a value of a set list and `.` for a node that is
//! owned itself besides its children.

use super::PatchError;
use super::strategic::{ListStrategy, is_builtin_group, list_strategy, schema_at};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Fields another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyConflict {
    /// The other manager's name.
    pub manager: String,
    /// The apiVersion that manager used.
    pub api_version: String,
    /// The conflicting field, e.g. `.spec.replicas`.
    pub field: String,
    /// The other manager's operation: `Apply` or `Update`.
    pub operation: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
}

impl ApplyConflict {
    /// The manager as the API server names it in messages, e.g.
    /// `"kubectl" with subresource "scale" using apps/v1`.
    pub fn manager_description(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The `StatusCause` message, e.g. `conflict with "kubectl" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

/// The 409 message of an apply with conflicts, worded as kube-apiserver words it.
pub fn conflict_message(conflicts: &[ApplyConflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.manager_description())
            .or_default()
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// A field path as `fieldsV1` keys, e.g. `["f:spec", "f:replicas"]`.
type Path = Vec<String>;
type FieldSet = BTreeSet<Path>;

/// Fields the API server never tracks ownership of.
fn ignored(path: &[String]) -> bool {
    match path {
        [f] => f == "f:apiVersion" || f == "f:kind",
        [m, f] if m == "f:metadata" => matches!(
            f.as_str(),
            "f:name"
                | "f:namespace"
                | "f:uid"
                | "f:resourceVersion"
                | "f:generation"
                | "f:creationTimestamp"
                | "f:managedFields"
                | "f:selfLink"
                | "f:deletionTimestamp"
                | "f:deletionGracePeriodSeconds"
        ),
        _ => false,
    }
}

/// What the field walkers need to know about the object's type.
struct Types<'a> {
    group: &'a str,
    kind: &'a str,
    schema: Option<&'a Value>,
}

impl Types<'_> {
    fn list(&self, names: &[&str]) -> ListStrategy {
        list_strategy(self.group, self.kind, self.schema, names, true)
    }

    /// Maps owned as a whole: label selectors of built-ins, `x-kubernetes-map-type: atomic`.
    fn atomic_map(&self, names: &[&str], map: &Map<String, Value>) -> bool {
        if !is_builtin_group(self.group) {
            return self
                .schema
                .and_then(|s| schema_at(s, names))
                .and_then(|n| n.get("x-kubernetes-map-type"))
                .and_then(Value::as_str)
                == Some("atomic");
        }
        // Service and ReplicationController selectors are `mapType=atomic`.
        if matches!(self.kind, "Service" | "ReplicationController") && names == ["spec", "selector"]
        {
            return true;
        }
        let last = names.last().copied().unwrap_or("");
        (last == "selector" || last.ends_with("Selector"))
            && (map.contains_key("matchLabels") || map.contains_key("matchExpressions"))
    }

    /// Maps whose keys are data rather than declared fields (custom resources' `additionalProperties`).
    fn granular_map(&self, names: &[&str]) -> bool {
        !is_builtin_group(self.group)
            && self
                .schema
                .and_then(|s| schema_at(s, names))
                .is_some_and(|n| n.get("additionalProperties").is_some_and(Value::is_object))
    }

    /// The `k:` key of an associative list item.
    fn item_key(
        &self,
        item: &Value,
        keys: &[String],
        defaults: &[(String, Value)],
        names: &[&str],
    ) -> Result<String, PatchError> {
        let mut key = BTreeMap::new();
        for k in keys {
            let v = item
                .get(k)
                .or_else(|| defaults.iter().find(|(d, _)| d == k).map(|(_, v)| v));
            match v {
                Some(v) => {
                    key.insert(k.clone(), v.clone());
                }
                None => {
                    return Err(PatchError::Failed(format!(
                        ".{}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)",
                        names.join(".")
                    )));
                }
            }
        }
        Ok(format!(
            "k:{}",
            serde_json::to_string(&key).unwrap_or_default()
        ))
    }
}

/// The fields an applied configuration sets (structured-merge-diff's `ToFieldSet`).
fn applied_set(types: &Types<'_>, config: &Value) -> Result<FieldSet, PatchError> {
    let mut set = FieldSet::new();
    walk_applied(types, config, &mut Vec::new(), &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn walk_applied<'v>(
    types: &Types<'_>,
    value: &'v Value,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    set: &mut FieldSet,
) -> Result<(), PatchError> {
    match value {
        Value::Object(map) => {
            if !path.is_empty() && types.atomic_map(names, map) {
                set.insert(path.clone());
                return Ok(());
            }
            let granular = types.granular_map(names);
            for (k, child) in map {
                path.push(format!("f:{k}"));
                names.push(k);
                if !ignored(path) {
                    let empty_map = child.as_object().is_some_and(Map::is_empty);
                    if child.is_null() || empty_map || granular || !is_container(child) {
                        set.insert(path.clone());
                    }
                    if is_container(child) && !empty_map {
                        walk_applied(types, child, path, names, set)?;
                    }
                }
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) => match types.list(names) {
            ListStrategy::Atomic => {
                set.insert(path.clone());
            }
            ListStrategy::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    set.insert(path.clone());
                    path.pop();
                }
            }
            ListStrategy::Map { keys, defaults } => {
                for item in items {
                    path.push(types.item_key(item, &keys, &defaults, names)?);
                    set.insert(path.clone());
                    walk_applied(types, item, path, names, set)?;
                    path.pop();
                }
            }
        },
        _ => {
            set.insert(path.clone());
        }
    }
    Ok(())
}

fn is_container(v: &Value) -> bool {
    v.is_object() || v.is_array()
}

/// Every node of an object, with the value of the leaves (`None` for containers).
fn all_paths(types: &Types<'_>, object: &Value) -> BTreeMap<Path, Option<Value>> {
    let mut out = BTreeMap::new();
    walk_all(types, object, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn walk_all<'v>(
    types: &Types<'_>,
    value: &'v Value,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    out: &mut BTreeMap<Path, Option<Value>>,
) {
    match value {
        Value::Object(map) if path.is_empty() || !types.atomic_map(names, map) => {
            if !path.is_empty() {
                out.insert(path.clone(), None);
            }
            for (k, child) in map {
                path.push(format!("f:{k}"));
                names.push(k);
                if !ignored(path) {
                    walk_all(types, child, path, names, out);
                }
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) => match types.list(names) {
            ListStrategy::Atomic => {
                out.insert(path.clone(), Some(value.clone()));
            }
            // Merged lists are tracked through their items only.
            ListStrategy::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone(), Some(item.clone()));
                    path.pop();
                }
            }
            ListStrategy::Map { keys, defaults } => {
                for item in items {
                    let Ok(key) = types.item_key(item, &keys, &defaults, names) else {
                        continue;
                    };
                    path.push(key);
                    walk_all(types, item, path, names, out);
                    path.pop();
                }
            }
        },
        leaf => {
            out.insert(path.clone(), Some(leaf.clone()));
        }
    }
}

/// What changed between two objects, as structured-merge-diff's `Compare` reports it.
/// `nodes` are the new object's paths, for callers that need them too.
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
    nodes: BTreeMap<Path, Option<Value>>,
}

fn compare(types: &Types<'_>, old: &Value, new: &Value) -> Comparison {
    let old = all_paths(types, old);
    let new = all_paths(types, new);
    let mut c = Comparison {
        added: FieldSet::new(),
        modified: FieldSet::new(),
        removed: FieldSet::new(),
        nodes: BTreeMap::new(),
    };
    for (path, value) in &new {
        match old.get(path) {
            None => {
                c.added.insert(path.clone());
            }
            Some(before) if before != value => {
                c.modified.insert(path.clone());
            }
            Some(_) => {}
        }
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            c.removed.insert(path.clone());
        }
    }
    c.nodes = new;
    c
}

/// Structs that always exist in the typed object, so creating them owns nothing.
fn always_present(last: &str) -> bool {
    matches!(
        last,
        "f:metadata" | "f:spec" | "f:status" | "f:template" | "f:jobTemplate" | "f:strategy"
    )
}

fn set_to_fields_v1(set: &FieldSet) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let child = node
            .entry(first.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(child) = child {
            if rest.is_empty() {
                child.insert(".".into(), Value::Object(Map::new()));
            } else {
                insert(child, rest);
            }
        }
    }
    // A member with no children is written `{}`, one with children gets `.`.
    fn finish(node: &mut Map<String, Value>) {
        for child in node.values_mut() {
            if let Value::Object(c) = child {
                if c.len() == 1 && c.contains_key(".") {
                    c.clear();
                } else {
                    finish(c);
                }
            }
        }
    }
    let mut root = Map::new();
    for path in set {
        insert(&mut root, path);
    }
    finish(&mut root);
    sorted(Value::Object(root))
}

/// Rebuilds maps in key order, whatever order serde_json keeps.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let entries: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        other => other,
    }
}

fn fields_v1_to_set(fields: &Value) -> FieldSet {
    fn walk(node: &Value, path: &mut Path, set: &mut FieldSet) {
        let Some(map) = node.as_object() else {
            return;
        };
        if map.is_empty() && !path.is_empty() {
            set.insert(path.clone());
        }
        for (k, child) in map {
            if k == "." {
                if !path.is_empty() {
                    set.insert(path.clone());
                }
                continue;
            }
            path.push(k.clone());
            walk(child, path, set);
            path.pop();
        }
    }
    let mut set = FieldSet::new();
    walk(fields, &mut Vec::new(), &mut set);
    set
}

/// A path in the notation of conflict messages: `.spec.containers[name="app"].image`.
fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for elem in path {
        if let Some(name) = elem.strip_prefix("f:") {
            s.push('.');
            s.push_str(name);
        } else if let Some(key) = elem.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = elem.strip_prefix("v:") {
            s.push_str(&format!("[={value}]"));
        } else if let Some(index) = elem.strip_prefix("i:") {
            s.push_str(&format!("[{index}]"));
        }
    }
    s
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Manager {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: Option<String>,
    set: FieldSet,
}

impl Manager {
    /// Appliers are one manager across versions; updaters are one per version.
    fn same(&self, other: &Manager) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".into(), Value::String(self.manager.clone()));
        entry.insert("operation".into(), Value::String(self.operation.clone()));
        entry.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            entry.insert("time".into(), Value::String(time.clone()));
        }
        entry.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        entry.insert("fieldsV1".into(), set_to_fields_v1(&self.set));
        if let Some(sub) = &self.subresource {
            entry.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(entry)
    }
}

fn read_managers(object: Option<&Value>) -> Vec<Manager> {
    let entries = object
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array);
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(String::from);
    entries
        .into_iter()
        .flatten()
        .map(|e| Manager {
            manager: text(e, "manager").unwrap_or_default(),
            operation: text(e, "operation").unwrap_or_else(|| "Update".into()),
            api_version: text(e, "apiVersion").unwrap_or_default(),
            subresource: text(e, "subresource").filter(|s| !s.is_empty()),
            time: text(e, "time"),
            set: e.get("fieldsV1").map(fields_v1_to_set).unwrap_or_default(),
        })
        .collect()
}

fn write_managers(object: &mut Value, mut managers: Vec<Manager>) {
    managers.retain(|m| !m.set.is_empty());
    managers.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if managers.is_empty() {
            meta.remove("managedFields");
        } else {
            let entries = managers.iter().map(Manager::to_json).collect();
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn api_version_of(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Merges an applied configuration into the live object.
fn merge(
    types: &Types<'_>,
    live: Option<&Value>,
    config: &Value,
    names: &mut Vec<String>,
) -> Result<Value, PatchError> {
    let here = names.clone();
    let refs: Vec<&str> = here.iter().map(String::as_str).collect();
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c))
            if names.is_empty() || !types.atomic_map(&refs, c) =>
        {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = merge(types, l.get(k), cv, names)?;
                names.pop();
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Some(Value::Array(l)), Value::Array(c)) => match types.list(&refs) {
            ListStrategy::Atomic => Ok(config.clone()),
            ListStrategy::Set => {
                let mut out = l.clone();
                for item in c {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Ok(Value::Array(out))
            }
            ListStrategy::Map { keys, defaults } => {
                let live_keys: Vec<Option<String>> = l
                    .iter()
                    .map(|item| types.item_key(item, &keys, &defaults, &refs).ok())
                    .collect();
                let mut config_keys = Vec::with_capacity(c.len());
                for item in c {
                    config_keys.push(types.item_key(item, &keys, &defaults, &refs)?);
                }
                let merged = merge_ordered(l, &live_keys, c, &config_keys, |live, item| {
                    merge(types, live, item, names)
                })?;
                Ok(Value::Array(merged))
            }
        },
        (_, Value::Object(c)) => {
            let mut out = Map::new();
            for (k, cv) in c {
                if cv.is_null() {
                    continue;
                }
                names.push(k.clone());
                out.insert(k.clone(), merge(types, None, cv, names)?);
                names.pop();
            }
            Ok(Value::Object(out))
        }
        _ => Ok(config.clone()),
    }
}

/// structured-merge-diff's order for a merged associative list: live
/// items the config does not name stay where they are, the config's items
/// follow the config's order.
fn merge_ordered(
    live: &[Value],
    live_keys: &[Option<String>],
    config: &[Value],
    config_keys: &[String],
    mut merge_item: impl FnMut(Option<&Value>, &Value) -> Result<Value, PatchError>,
) -> Result<Vec<Value>, PatchError> {
    let in_config = |k: &Option<String>| k.as_ref().is_some_and(|k| config_keys.contains(k));
    let live_index = |k: &String| live_keys.iter().position(|l| l.as_ref() == Some(k));
    let mut shared = config_keys
        .iter()
        .filter(|k| live_index(k).is_some())
        .collect::<Vec<_>>()
        .into_iter();
    let mut next_shared = shared.next();
    let mut merged_config: Vec<&String> = Vec::new();
    let mut out = Vec::with_capacity(live.len() + config.len());
    let (mut li, mut ri) = (0, 0);
    while li < live.len() || ri < config.len() {
        if li < live.len() && ri < config.len() {
            if live_keys[li].as_ref() == Some(&config_keys[ri]) {
                merged_config.push(&config_keys[ri]);
                out.push(merge_item(Some(&live[li]), &config[ri])?);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_config(&live_keys[li])
                && next_shared.is_some_and(|n| Some(n) != live_keys[li].as_ref())
            {
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            if !in_config(&live_keys[li]) {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if live_keys[li]
                .as_ref()
                .is_some_and(|k| merged_config.contains(&k))
            {
                li += 1;
                continue;
            }
        }
        if ri < config.len() {
            let key = &config_keys[ri];
            merged_config.push(key);
            let existing = live_index(key).map(|i| &live[i]);
            out.push(merge_item(existing, &config[ri])?);
            ri += 1;
            if next_shared == Some(key) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// Removes the node at `path` from `object`.
fn remove_path(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for elem in parents {
        let Some(next) = find_child(node, elem) else {
            return;
        };
        node = next;
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Value::Object(m) = node {
            m.remove(name);
        }
    } else if let Value::Array(items) = node
        && let Some(i) = items.iter().position(|item| item_matches(item, last))
    {
        items.remove(i);
    }
}

fn find_child<'a>(node: &'a mut Value, elem: &str) -> Option<&'a mut Value> {
    if let Some(name) = elem.strip_prefix("f:") {
        return node.get_mut(name);
    }
    let items = node.as_array_mut()?;
    items.iter_mut().find(|item| item_matches(item, elem))
}

fn item_matches(item: &Value, elem: &str) -> bool {
    if let Some(value) = elem.strip_prefix("v:") {
        return serde_json::from_str::<Value>(value).is_ok_and(|v| v == *item);
    }
    if let Some(key) = elem.strip_prefix("k:") {
        let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
        // Key fields the item omits were defaulted (e.g. protocol TCP).
        return fields
            .iter()
            .all(|(k, v)| item.get(k).is_none_or(|have| have == v));
    }
    false
}

fn strip_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    copy
}

/// Server-side applies `config` for `manager` onto `live` (absent: create).
///
/// Returns the new object with `metadata.managedFields` updated, or the
/// conflicts when `force` is false and other managers own changed fields.
/// Status is merged like any field: callers applying to the main resource
/// of a kind with a status subresource drop `status` from `config` first.
/// `schema` is a custom resource's `openAPIV3Schema`, whose
/// `x-kubernetes-list-type`/`x-kubernetes-list-map-keys` say how its lists
/// merge (`None` for built-ins).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    group: &str,
    kind: &str,
    schema: Option<&Value>,
) -> Result<Result<Value, Vec<ApplyConflict>>, PatchError> {
    if !config.is_object() {
        return Err(PatchError::Malformed(
            "error decoding YAML: the applied configuration is not an object".into(),
        ));
    }
    let types = Types {
        group,
        kind,
        schema,
    };
    let config = strip_managed_fields(config);
    let config_set = applied_set(&types, &config)?;
    let live_clean = live
        .map(strip_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut managers = read_managers(live);
    let me = Manager {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version_of(&config),
        subresource: None,
        time: Some(now()),
        set: config_set.clone(),
    };
    let previous = managers
        .iter()
        .position(|m| m.same(&me))
        .map(|i| managers.remove(i));

    let mut merged = merge(&types, Some(&live_clean), &config, &mut Vec::new())?;

    // Fields this manager applied before, no longer applies, and nobody else owns.
    if let Some(previous) = &previous {
        let others: FieldSet = managers
            .iter()
            .flat_map(|m| m.set.iter().cloned())
            .collect();
        let mut stale: Vec<&Path> = previous
            .set
            .difference(&config_set)
            .filter(|p| !others.iter().any(|o| o.starts_with(p)))
            .collect();
        stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in stale {
            remove_path(&mut merged, path);
        }
    }

    let changes = compare(&types, &live_clean, &merged);
    let touched: FieldSet = changes.added.union(&changes.modified).cloned().collect();
    let mut conflicts = Vec::new();
    for other in &mut managers {
        let owned: Vec<Path> = other.set.intersection(&touched).cloned().collect();
        if owned.is_empty() {
            continue;
        }
        if force {
            for p in &owned {
                other.set.remove(p);
            }
        } else {
            conflicts.extend(owned.iter().map(|p| ApplyConflict {
                manager: other.manager.clone(),
                api_version: other.api_version.clone(),
                field: display_path(p),
                operation: other.operation.clone(),
                subresource: other.subresource.clone(),
            }));
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Ok(Err(conflicts));
    }
    for m in &mut managers {
        m.set.retain(|p| !changes.removed.contains(p));
    }
    let unchanged = previous
        .as_ref()
        .is_some_and(|p| p.set == me.set && touched.is_empty() && changes.removed.is_empty());
    let time = if unchanged {
        previous.and_then(|p| p.time)
    } else {
        me.time.clone()
    };
    managers.push(Manager { time, ..me });
    write_managers(&mut merged, managers);
    Ok(Ok(merged))
}

/// Records `manager`'s ownership of what a non-apply write changed
/// (`operation` `Update`, optionally for a subresource such as `status`).
///
/// The writer takes the fields it changed from their previous owners, and
/// fields the write removed are disowned by every manager. `schema` is as
/// for [`apply`].
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    group: &str,
    kind: &str,
    schema: Option<&Value>,
) {
    let types = Types {
        group,
        kind,
        schema,
    };
    let before = old
        .map(strip_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let after = strip_managed_fields(new);
    let changes = compare(&types, &before, &after);
    let touched: FieldSet = changes.added.union(&changes.modified).cloned().collect();
    let mut managers = read_managers(old);
    let me = Manager {
        manager: manager.to_string(),
        operation: "Update".into(),
        api_version: api_version_of(new),
        subresource: subresource.map(String::from),
        time: Some(now()),
        set: FieldSet::new(),
    };
    // An update takes the fields it changes from whoever owned them.
    for m in managers.iter_mut().filter(|m| !m.same(&me)) {
        m.set
            .retain(|p| !changes.removed.contains(p) && !touched.contains(p));
    }
    let nodes = &changes.nodes;
    let owned: FieldSet = touched
        .iter()
        .filter(|p| {
            let container = nodes.get(*p).is_some_and(Option::is_none);
            !(container && p.last().is_some_and(|l| always_present(l)))
        })
        .cloned()
        .collect();
    if let Some(mine) = managers.iter_mut().find(|m| m.same(&me)) {
        mine.set.retain(|p| !changes.removed.contains(p));
    }
    if !owned.is_empty() {
        let mut mine = match managers.iter().position(|m| m.same(&me)) {
            Some(i) => managers.remove(i),
            None => me.clone(),
        };
        mine.set.extend(owned);
        mine.time = me.time;
        managers.push(mine);
    }
    write_managers(new, managers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn apply_conflicts_with_an_update_manager_until_forced() {
        let mut live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 5}});
        track_update(
            None,
            &mut live,
            "kubectl-scale",
            None,
            "apps",
            "Deployment",
            None,
        );
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 2}});
        let conflicts = apply(
            Some(&live),
            &config,
            "kubectl",
            false,
            "apps",
            "Deployment",
            None,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        let applied = apply(
            Some(&live),
            &config,
            "kubectl",
            true,
            "apps",
            "Deployment",
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(applied["spec"]["replicas"], 2);
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": image,
                        "ports": [{"containerPort": 80}]}]}}}})
    }

    fn applied(live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Value {
        match apply(live, config, manager, force, "apps", "Deployment", None) {
            Ok(Ok(v)) => v,
            Ok(Err(c)) => panic!("conflicts: {}", conflict_message(&c)),
            Err(e) => panic!("{e}"),
        }
    }

    fn conflicts(live: &Value, config: &Value, manager: &str) -> Vec<ApplyConflict> {
        match apply(
            Some(live),
            config,
            manager,
            false,
            "apps",
            "Deployment",
            None,
        ) {
            Ok(Err(c)) => c,
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .and_then(|m| {
                m.iter()
                    .find(|e| e["manager"] == manager && e["operation"] == operation)
            })
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn apply_records_fields_v1_like_the_api_server() {
        let obj = applied(None, &deployment(2, "app:1"), "kubectl", false);
        let e = entry(&obj, "kubectl", "Apply");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(
            e["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}}}}}}}}})
        );
        assert_eq!(obj["spec"]["replicas"], 2);
    }

    #[test]
    fn update_managers_conflict_and_force_takes_ownership() {
        let created = applied(None, &deployment(2, "app:1"), "kubectl", false);
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        track_update(
            Some(&created),
            &mut scaled,
            "kubectl",
            Some("scale"),
            "apps",
            "Deployment",
            None,
        );
        assert_eq!(
            entry(&scaled, "kubectl", "Update")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(entry(&scaled, "kubectl", "Update")["subresource"], "scale");
        // The applier lost the field to the update.
        assert_eq!(
            entry(&scaled, "kubectl", "Apply")["fieldsV1"]["f:spec"].get("f:replicas"),
            None
        );

        let c = conflicts(&scaled, &deployment(3, "app:1"), "kubectl");
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            c[0].cause_message(),
            "conflict with \"kubectl\" with subresource \"scale\" using apps/v1"
        );

        // Same value: no conflict, shared ownership.
        let shared = applied(Some(&scaled), &deployment(5, "app:1"), "kubectl", false);
        assert_eq!(
            entry(&shared, "kubectl", "Update")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert!(
            entry(&shared, "kubectl", "Apply")["fieldsV1"]["f:spec"]
                .get("f:replicas")
                .is_some()
        );

        let forced = applied(Some(&scaled), &deployment(3, "app:1"), "kubectl", true);
        assert_eq!(forced["spec"]["replicas"], 3);
        assert_eq!(entry(&forced, "kubectl", "Update"), &Value::Null);
    }

    #[test]
    fn appliers_conflict_with_each_other_and_messages_group_by_manager() {
        let base = applied(None, &deployment(2, "app:1"), "alice", false);
        let c = conflicts(&base, &deployment(3, "app:2"), "bob");
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
        );
        let mut edited = base.clone();
        edited["metadata"]["labels"]["tier"] = json!("x");
        track_update(
            Some(&base),
            &mut edited,
            "kubectl-edit",
            None,
            "apps",
            "Deployment",
            None,
        );
        let mut config = deployment(9, "app:1");
        config["metadata"]["labels"]["tier"] = json!("y");
        let c = conflicts(&edited, &config, "bob");
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\nconflicts with \"kubectl-edit\" using apps/v1:\n- .metadata.labels.tier"
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let mut two = deployment(2, "app:1");
        if let Some(c) = two["spec"]["template"]["spec"]["containers"].as_array_mut() {
            c.push(json!({"name": "sidecar", "image": "s:1"}));
        }
        two["metadata"]["labels"]["extra"] = json!("1");
        let live = applied(None, &two, "kubectl", false);
        let mut with_other = live.clone();
        with_other["metadata"]["annotations"] = json!({"note": "kept"});
        track_update(
            Some(&live),
            &mut with_other,
            "other",
            None,
            "apps",
            "Deployment",
            None,
        );

        let next = applied(Some(&with_other), &deployment(2, "app:1"), "kubectl", false);
        assert_eq!(
            next["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(next["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(next["metadata"]["annotations"], json!({"note": "kept"}));
    }

    #[test]
    fn associative_lists_merge_by_key_and_keep_other_managers_items() {
        let live = applied(None, &deployment(1, "app:1"), "alice", false);
        let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}}});
        let both = applied(Some(&live), &sidecar, "bob", false);
        let names: Vec<&str> = both["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(|c| c.iter().filter_map(|x| x["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["app", "sidecar"]);
        assert_eq!(both["spec"]["replicas"], 1);
    }

    #[test]
    fn finalizers_are_a_set() {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a"]}});
        let obj = match apply(None, &config, "m", false, "", "ConfigMap", None) {
            Ok(Ok(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            entry(&obj, "m", "Apply")["fieldsV1"],
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}})
        );
    }

    #[test]
    fn custom_resources_use_the_schema_list_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}},
            "tags": {"type": "array", "items": {"type": "string"}}}}}});
        let a = json!({"apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "x"},
            "spec": {"items": [{"name": "a", "v": 1}], "tags": ["t"]}});
        let b = json!({"apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "x"},
            "spec": {"items": [{"name": "b", "v": 2}]}});
        let run = |live: Option<&Value>, cfg: &Value, m: &str| match apply(
            live,
            cfg,
            m,
            false,
            "example.com",
            "App",
            Some(&schema),
        ) {
            Ok(Ok(v)) => v,
            other => panic!("{other:?}"),
        };
        let first = run(None, &a, "one");
        let second = run(Some(&first), &b, "two");
        assert_eq!(
            second["spec"]["items"],
            json!([{"name": "a", "v": 1}, {"name": "b", "v": 2}])
        );
        assert_eq!(
            entry(&first, "one", "Apply")["fieldsV1"]["f:spec"]["f:tags"],
            json!({})
        );
    }

    #[test]
    fn track_update_on_create_owns_everything_set() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "b"}, "resourceVersion": "1"}, "data": {"k": "v"}});
        track_update(
            None,
            &mut obj,
            "kubectl-create",
            None,
            "",
            "ConfigMap",
            None,
        );
        assert_eq!(
            entry(&obj, "kubectl-create", "Update")["fieldsV1"],
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
        // A write that changes nothing records nothing new.
        let before = obj.clone();
        track_update(
            Some(&before),
            &mut obj,
            "someone",
            None,
            "",
            "ConfigMap",
            None,
        );
        assert_eq!(entry(&obj, "someone", "Update"), &Value::Null);
        // Removing a field disowns it.
        let mut removed = obj.clone();
        if let Some(d) = removed["data"].as_object_mut() {
            d.remove("k");
        }
        track_update(
            Some(&obj),
            &mut removed,
            "editor",
            None,
            "",
            "ConfigMap",
            None,
        );
        assert_eq!(
            entry(&removed, "kubectl-create", "Update")["fieldsV1"],
            json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
    }

    #[test]
    fn status_fields_of_conditions_are_owned() {
        let old =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Available", "status": "True"}]});
        track_update(
            Some(&old),
            &mut new,
            "kcm",
            Some("status"),
            "apps",
            "Deployment",
            None,
        );
        assert_eq!(
            entry(&new, "kcm", "Update")["fieldsV1"],
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {
                ".": {}, "f:status": {}, "f:type": {}}}}})
        );
    }

    #[test]
    fn service_selectors_are_atomic() {
        let svc = |selector: Value| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": selector, "ports": [{"port": 80}]}})
        };
        let live = match apply(
            None,
            &svc(json!({"app": "a", "tier": "t"})),
            "one",
            false,
            "",
            "Service",
            None,
        ) {
            Ok(Ok(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            entry(&live, "one", "Apply")["fieldsV1"],
            json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                "f:selector": {}}})
        );
        let next = match apply(
            Some(&live),
            &svc(json!({"app": "a"})),
            "one",
            false,
            "",
            "Service",
            None,
        ) {
            Ok(Ok(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(next["spec"]["selector"], json!({"app": "a"}));
    }

    #[test]
    fn missing_key_fields_are_errors() {
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}});
        let err = apply(None, &config, "m", false, "apps", "Deployment", None).map(|_| ());
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err(".spec.template.spec.containers: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)".to_string())
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(|i| json!(i)),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    "spec|metadata|labels|finalizers|template|containers|name|image|ports|containerPort|replicas|[a-c]",
                    inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_objects_never_panic(live in arb_json(), config in arb_json(), force in any::<bool>()) {
            if let Ok(Ok(mut out)) = apply(Some(&live), &config, "a", force, "apps", "Deployment", None) {
                let again = apply(Some(&out), &config, "a", false, "apps", "Deployment", None);
                prop_assert!(matches!(again, Ok(Ok(_))), "re-applying the same config never conflicts");
                let before = out.clone();
                track_update(Some(&before), &mut out, "b", None, "apps", "Deployment", None);
            }
            let mut fresh = config.clone();
            track_update(Some(&live), &mut fresh, "c", Some("status"), "apps", "Deployment", None);
        }
    }
}
