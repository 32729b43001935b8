//! Label and field selectors, as list and watch requests carry them.

use serde_json::{Map, Value};

/// A selector string that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

/// A parsed label selector (`app=web,tier in (a,b),!canary`).
#[derive(Clone, Debug, Default)]
pub struct LabelSelector {}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(_s: &str) -> Result<Self, SelectorError> {
        todo!()
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(_selector: &Value) -> Result<Self, SelectorError> {
        todo!()
    }

    /// Whether an object's `metadata.labels` (absent counts as empty) match.
    pub fn matches(&self, _labels: Option<&Map<String, Value>>) -> bool {
        todo!()
    }
}

/// A parsed field selector (`metadata.name=x,metadata.namespace!=y`).
#[derive(Clone, Debug, Default)]
pub struct FieldSelector {}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter syntax.
    pub fn parse(_s: &str) -> Result<Self, SelectorError> {
        todo!()
    }

    /// Whether the object matches.
    pub fn matches(&self, _object: &Value) -> bool {
        todo!()
    }
}
