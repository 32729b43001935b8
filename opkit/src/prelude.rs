//! What an operator's files need, in one `use opkit::prelude::*;`: opkit's traits and the types
//! of a reconcile, kube's traits and derives (`KubeSchema` for CEL rules on a type's fields),
//! serde and schemars. Kubernetes object types are in
//! [`crate::k8s`]; nothing here is a name operators commonly give their own types.
//!
//! ```
//! use opkit::prelude::*;
//! fn next(converged: bool) -> Action {
//!     if converged { Action::done() } else { Action::requeue_after(Duration::from_secs(5)) }
//! }
//! assert_eq!(next(true), Action::Done);
//! ```

pub use crate::ensure::{Ensure, Ensured};
pub use crate::error::ResultExt as _;
pub use crate::events::EventType;
pub use crate::{Action, Context, Operator, Reconcile};

pub use kube::{Api, Client, CustomResource, CustomResourceExt, KubeSchema, Resource, ResourceExt};
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};
pub use std::time::Duration;
