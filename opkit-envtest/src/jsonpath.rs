//! The JSONPath subset that printer columns and the scale subresource use.

use serde_json::Value;

/// Evaluates a printer-column style JSONPath (`.spec.replicas`,
/// `.status.conditions[?(@.type=="Ready")].status`) and returns the matches.
pub fn evaluate<'a>(_object: &'a Value, _path: &str) -> Vec<&'a Value> {
    todo!()
}
