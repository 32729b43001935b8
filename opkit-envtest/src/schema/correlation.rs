//! Which old value a node of an updated object corresponds to, for
//! validation ratcheting: an error in a part of the object the update left
//! as it was does not fail the update.
//!
//! As kube-apiserver's `CorrelatedObject`: object fields correlate by name,
//! items of `map` lists by their keys, items of lists without a list type by
//! index; `set` and `atomic` list items do not correlate, and errors inside
//! them ratchet only when the nearest correlated ancestor is unchanged.

use super::validation::json_equal;
use serde_json::{Map, Value};

/// The old value of one node of the object being validated.
#[derive(Clone, Copy)]
pub(super) struct Correlation<'a> {
    old: Option<&'a Value>,
    /// Whether the correlated old value equals the new one.
    equal: bool,
    /// Whether the nearest correlated ancestor is unchanged.
    ancestor_equal: bool,
}

impl<'a> Correlation<'a> {
    /// No old value: a create.
    pub(super) fn none() -> Self {
        Self {
            old: None,
            equal: false,
            ancestor_equal: false,
        }
    }

    /// The root of an update of `new` from `old`.
    pub(super) fn root(old: Option<&'a Value>, new: &Value) -> Self {
        Self::node(old, new, false)
    }

    fn node(old: Option<&'a Value>, new: &Value, ancestor_equal: bool) -> Self {
        Self {
            old,
            equal: old.is_some_and(|o| json_equal(o, new)),
            ancestor_equal,
        }
    }

    /// Whether errors found at this node are ratcheted: it is unchanged, or
    /// it does not correlate and its nearest correlated ancestor is unchanged.
    pub(super) fn ratchets(&self) -> bool {
        if self.old.is_some() {
            self.equal
        } else {
            self.ancestor_equal
        }
    }

    /// The field `key` of this node, whose new value is `new`.
    pub(super) fn key(&self, key: &str, new: &Value) -> Correlation<'a> {
        let old = self.old.and_then(|o| o.get(key));
        Self::node(old, new, self.ratchets())
    }

    /// The item `index` of this list node, whose new items are `items`.
    pub(super) fn index(
        &self,
        schema: &Map<String, Value>,
        items: &[Value],
        index: usize,
    ) -> Correlation<'a> {
        let old_items = self.old.and_then(Value::as_array);
        let old = old_items.and_then(|old| correlated_item(schema, old, items.get(index)?, index));
        Self::node(old, &items[index], self.ratchets())
    }
}

/// The old item a new list item corresponds to, by the list's type.
pub(super) fn correlated_item<'a>(
    schema: &Map<String, Value>,
    old: &'a [Value],
    item: &Value,
    index: usize,
) -> Option<&'a Value> {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => map_list_item(schema, old, item),
        Some(_) => None,
        None => old.get(index),
    }
}

/// The item of a `map` list with the same keys as `item`.
pub(super) fn map_list_item<'a>(
    schema: &Map<String, Value>,
    old: &'a [Value],
    item: &Value,
) -> Option<&'a Value> {
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    old.iter().find(|candidate| {
        keys.iter().all(|k| {
            candidate
                .get(*k)
                .zip(item.get(*k))
                .is_some_and(|(a, b)| json_equal(a, b))
        })
    })
}
