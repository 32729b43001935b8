//! CEL rules on an operator's own types, checked client-side.
//!
//! The rules themselves are kube's derive attributes, reachable through [`crate::prelude`]:
//! `#[kube(validation = "...")]` on the custom resource (rules on the whole object, where
//! `self.spec` and `self.metadata.name` are visible), and `#[x_kube(validation = ...)]` on a
//! struct or field of a type deriving [`KubeSchema`](crate::prelude::KubeSchema) instead of
//! `JsonSchema`. They become the CRD's `x-kubernetes-validations` (printed by `crd`, installed by
//! the embedded mode), and the API server enforces them on every write: a transition rule
//! (`self == oldSelf`) makes a field immutable.
//!
//! This module evaluates the same rules without a server, with kube's CEL support and its
//! Kubernetes CEL libraries (the `cel` feature of opkit): [`validate`] on a new object,
//! [`validate_update`] with the object it replaces for transition rules. It is a function rather
//! than a switch on the controller because the server checks every write anyway: what the
//! client-side check buys is a clear error *before* a side effect outside the cluster (a
//! database created from a spec), or in a unit test without an API server, and only the
//! operator knows where that is.
//!
//! ```
//! use opkit::prelude::*;
//!
//! #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, KubeSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Site", namespaced,
//!        validation = Rule::new("self.spec.minReplicas <= self.spec.maxReplicas")
//!            .message("minReplicas must not exceed maxReplicas"))]
//! #[serde(rename_all = "camelCase")]
//! pub struct SiteSpec {
//!     pub min_replicas: i32,
//!     pub max_replicas: i32,
//!     #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable"))]
//!     pub region: String,
//! }
//!
//! let spec = |min, max, region: &str| SiteSpec { min_replicas: min, max_replicas: max, region: region.into() };
//! let site = Site::new("web", spec(1, 3, "eu"));
//! assert!(opkit::cel::validate(&site).is_ok());
//!
//! let inverted = Site::new("web", spec(4, 3, "eu"));
//! let error = opkit::cel::validate(&inverted).unwrap_err();
//! assert_eq!(error.to_string(),
//!     r#"Site.example.com "web" is invalid: <nil>: Invalid value: "object": minReplicas must not exceed maxReplicas"#);
//!
//! let moved = Site::new("web", spec(1, 3, "us"));
//! let error = opkit::cel::validate_update(&moved, &site).unwrap_err();
//! assert_eq!(error.causes()[0].field, "spec.region");
//! // In a reconcile, `?` turns it into a permanent `opkit::Error::InvalidSpec`.
//! let _: opkit::Error = error.into();
//! ```

use kube::core::cel::{ValidationErrors, Validator};
use kube::{CustomResourceExt, Resource};
use serde::Serialize;

/// One rule an object breaks: where and why, as the API server reports it.
///
/// ```
/// let cause = opkit::cel::Cause { field: "spec".into(), message: "too big".into(), reason: None };
/// assert_eq!(cause.to_string(), r#"spec: Invalid value: "object": too big"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// The path of the value the rule is on (`spec.region`), or its `fieldPath`; empty for a
    /// rule on the whole object.
    pub field: String,
    /// The rule's `message` (or `messageExpression`'s result, or `failed rule: <rule>`).
    pub message: String,
    /// The rule's `reason` (`FieldValueForbidden`, ...), if it declares one.
    pub reason: Option<String>,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = if self.field.is_empty() {
            "<nil>"
        } else {
            &self.field
        };
        let detail = match self.reason.as_deref() {
            Some("FieldValueForbidden") => "Forbidden",
            Some("FieldValueRequired") => "Required value",
            Some("FieldValueDuplicate") => "Duplicate value",
            _ => "Invalid value: \"object\"",
        };
        write!(f, "{field}: {detail}: {}", self.message)
    }
}

/// An object breaks CEL rules of its CRD: the API server would refuse it with 422 Invalid.
///
/// ```
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, validation = "self.spec.replicas > 0")]
/// # pub struct SiteSpec { pub replicas: i32 }
/// let error = opkit::cel::validate(&Site::new("web", SiteSpec { replicas: 0 })).unwrap_err();
/// assert_eq!(error.causes()[0].message, "failed rule: self.spec.replicas > 0");
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("{kind} {name:?} is invalid: {}", join(causes))]
pub struct Invalid {
    kind: String,
    name: String,
    causes: Vec<Cause>,
}

fn join(causes: &[Cause]) -> String {
    match causes {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(Cause::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Invalid {
    /// The broken rules, in schema order.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, validation = "self.spec.replicas > 0")]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// let error = opkit::cel::validate(&Site::new("web", SiteSpec { replicas: 0 })).unwrap_err();
    /// assert_eq!(error.causes().len(), 1);
    /// ```
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }
}

impl From<Invalid> for crate::Error {
    fn from(invalid: Invalid) -> Self {
        crate::Error::InvalidSpec(invalid.to_string())
    }
}

/// Checks `object` against the CEL rules its CRD declares, as the API server does on create.
///
/// ```
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, validation = "self.spec.replicas > 0")]
/// # pub struct SiteSpec { pub replicas: i32 }
/// assert!(opkit::cel::validate(&Site::new("web", SiteSpec { replicas: 1 })).is_ok());
/// ```
pub fn validate<K>(object: &K) -> Result<(), Invalid>
where
    K: Resource<DynamicType = ()> + CustomResourceExt + Serialize,
{
    check(object, None)
}

/// Checks `object`, replacing `old`, against the CEL rules of its CRD, transition rules
/// (`oldSelf`) included, as the API server does on update.
///
/// ```
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, validation = "self.spec.replicas >= oldSelf.spec.replicas")]
/// # pub struct SiteSpec { pub replicas: i32 }
/// let old = Site::new("web", SiteSpec { replicas: 2 });
/// assert!(opkit::cel::validate_update(&Site::new("web", SiteSpec { replicas: 3 }), &old).is_ok());
/// assert!(opkit::cel::validate_update(&Site::new("web", SiteSpec { replicas: 1 }), &old).is_err());
/// ```
pub fn validate_update<K>(object: &K, old: &K) -> Result<(), Invalid>
where
    K: Resource<DynamicType = ()> + CustomResourceExt + Serialize,
{
    check(object, Some(old))
}

fn check<K>(object: &K, old: Option<&K>) -> Result<(), Invalid>
where
    K: Resource<DynamicType = ()> + CustomResourceExt + Serialize,
{
    let invalid = |causes| Invalid {
        kind: format!("{}.{}", K::kind(&()), K::group(&())),
        name: object.meta().name.clone().unwrap_or_default(),
        causes,
    };
    let unusable = |message: String| {
        invalid(vec![Cause {
            field: String::new(),
            message,
            reason: None,
        }])
    };
    let crd = K::crd();
    let version = K::version(&());
    let schema = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(serde_json::to_value);
    let (Some(Ok(schema)), Ok(value)) = (schema, serde_json::to_value(object)) else {
        return Err(unusable(format!(
            "the {version} schema of the CRD or the object does not serialize"
        )));
    };
    let old = match old.map(serde_json::to_value).transpose() {
        Ok(old) => old,
        Err(e) => return Err(unusable(format!("the old object does not serialize: {e}"))),
    };
    Validator::new()
        .validate(&schema, &value, old.as_ref())
        .map_err(|errors: ValidationErrors| {
            invalid(
                errors
                    .into_vec()
                    .into_iter()
                    .map(|e| Cause {
                        field: e.field_path,
                        message: e.message,
                        reason: e.reason,
                    })
                    .collect(),
            )
        })
}
