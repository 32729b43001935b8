//! opkit: write Kubernetes operators in Rust with the plumbing supplied.
//!
//! An operator is a custom resource type with `#[derive(CustomResource, Operator)]` and an
//! implementation of [`Reconcile`]. opkit runs it on kube-runtime and supplies what every
//! operator otherwise writes by hand:
//!
//! - dependents through [`Ensure`]: server-side apply, controller owner references, no adoption
//!   of foreign objects, writes only when something differs ([`ensure`]), read from compact caches
//!   of the owned and watched kinds ([`cache`]);
//! - finalizers added before any side effect and removed after a successful cleanup;
//! - status conditions with `observedGeneration` and stable `lastTransitionTime` ([`status`]);
//! - error classification and per-object exponential backoff with jitter ([`Error`], [`backoff`]);
//! - Prometheus metrics with controller-runtime's names ([`metrics`]) and Kubernetes events ([`events`]);
//! - leader election on a Lease, `/healthz`, `/readyz` and `/metrics` endpoints and a bounded
//!   drain on shutdown ([`leader`], [`probes`]);
//! - a CLI for every operator binary: `run`, `crd`, `rbac`, `webhooks` ([`App`]), with least-privilege RBAC ([`manifests`]);
//! - admission webhooks typed on the custom resource, served over HTTPS with generated or cert-manager certificates ([`webhook`]).
//!
//! ```
//! use opkit::prelude::*;
//!
//! #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Greeting", namespaced, status = "GreetingStatus")]
//! #[operator(owns(ConfigMap), finalizer = "example.com/greeting")]
//! pub struct GreetingSpec {
//!     pub message: String,
//! }
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
//! pub struct GreetingStatus {
//!     pub conditions: Vec<Condition>,
//! }
//!
//! struct GreetingConfigMap<'a>(&'a Greeting);
//!
//! impl Ensure for GreetingConfigMap<'_> {
//!     type Object = ConfigMap;
//!     fn desired(&self) -> ConfigMap {
//!         ConfigMap {
//!             metadata: ObjectMeta { name: Some(self.0.name_any()), ..Default::default() },
//!             data: Some([("message".to_string(), self.0.spec.message.clone())].into()),
//!             ..Default::default()
//!         }
//!     }
//! }
//!
//! impl Reconcile for Greeting {
//!     async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
//!         ctx.ensure(GreetingConfigMap(self)).await?;
//!         ctx.status().ready(true, "Configured", "the ConfigMap holds the message");
//!         Ok(Action::done())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//! #   if true { return std::process::ExitCode::SUCCESS; }
//!     opkit::run::<Greeting>()
//! }
//! ```

#![warn(missing_docs)]

pub mod backoff;
pub mod cache;
pub mod cli;
pub mod context;
mod controller;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod ensure;
pub mod error;
pub mod events;
pub mod index;
pub mod leader;
pub mod manager;
pub mod manifests;
pub mod metrics;
pub mod operator;
pub mod prelude;
pub mod probes;
#[cfg(feature = "embedded")]
mod progress;
pub mod readiness;
pub mod security;
pub mod status;
pub mod webhook;

pub use backoff::Backoff;
pub use cli::{App, run};
pub use context::Context;
pub use ensure::{Ensure, Ensured};
pub use error::{Error, Result};
pub use leader::LeaderElection;
pub use manager::{Manager, Running};
pub use manifests::Rule;
pub use metrics::Metrics;
pub use operator::{Action, Descriptor, Operator, Reconcile, Triggers};
pub use opkit_derive::Operator;
pub use status::StatusWriter;

pub use kube::runtime::reflector::{ObjectRef, Store};

#[doc(hidden)]
pub mod __private {
    pub use std::time::Duration;
}

pub use k8s_openapi;
pub use kube;
pub use schemars;
pub use serde;
pub use serde_json;
