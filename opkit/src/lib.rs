//! opkit: write Kubernetes operators in Rust with the plumbing supplied.
//!
//! A controller reconciles one kind of object with an implementation of [`Reconcile`]: a custom
//! resource of the operator's own (`#[derive(CustomResource, Operator)]`, the short way) or any
//! other kind, built-in or not ([`Controller`]). opkit runs it on kube-runtime and supplies what
//! every operator otherwise writes by hand:
//!
//! - dependents through [`Ensure`]: server-side apply, controller owner references, no adoption
//!   of foreign objects, writes only when something differs, read from compact caches of the
//!   owned and watched kinds, readiness by kind ([`ensure`], [`readiness`]);
//! - finalizers added before any side effect and removed after a successful cleanup
//!   ([`Reconcile::cleanup`]);
//! - status conditions with `observedGeneration` and stable `lastTransitionTime`, written once
//!   per reconcile and only when changed ([`status`]);
//! - error classification and per-object exponential backoff with jitter ([`Error`],
//!   [`Classify`], [`backoff`]);
//! - Prometheus metrics with controller-runtime's names ([`metrics`]) and Kubernetes events
//!   ([`events`]);
//! - leader election on a Lease with warm standbys, `/healthz`, `/readyz` and `/metrics`
//!   endpoints and a bounded drain on shutdown ([`Manager`], [`leader`], [`probes`]);
//! - sharding: the primaries split across replicas, each caching and reconciling its shard
//!   ([`shard`]); changes reconciled before resyncs and relists (a priority queue);
//! - a command line for every operator binary: `run`, `crd`, `rbac`, `webhooks` ([`App`]), with
//!   least-privilege RBAC ([`rbac`]);
//! - admission webhooks typed on the resource, served over HTTPS with generated or cert-manager
//!   certificates ([`webhook`]);
//! - custom resources in several versions: one CRD, conversions written as `From`/`TryFrom`
//!   served as a conversion webhook, and storage migration ([`versions`]);
//! - validation without webhooks: CEL rules on the resource's own types (kube's
//!   `#[kube(validation = ...)]` and `#[x_kube(validation = ...)]`, checked client-side by
//!   `cel` with the feature of that name) and ValidatingAdmissionPolicies declared in Rust
//!   ([`policy`]).
//!
//! Cargo features: `cli` ([`App`], clap, logging) and `webhooks` ([`webhook`], rustls, rcgen) are
//! on by default; `cel` adds client-side CEL evaluation (`opkit::cel`); `embedded` adds the
//! in-process API server for demos ([`App::embedded`]). An
//! operator that runs its [`Manager`] itself needs neither default feature.
//!
//! ```
//! use opkit::prelude::*;
//! use opkit::k8s::{Condition, ConfigMap, ObjectMeta};
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
//!         let config = ctx.ensure(GreetingConfigMap(self)).await?;
//!         ctx.status().ready(config.is_ready(), "Configured", "the ConfigMap holds the message");
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

#[cfg(feature = "cli")]
pub mod app;
pub mod backoff;
mod cache;
#[cfg(feature = "cel")]
pub mod cel;
pub mod clock;
pub mod context;
pub mod controller;
#[cfg(feature = "webhooks")]
pub mod delegated_auth;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod ensure;
pub mod error;
pub mod events;
pub mod index;
pub mod k8s;
pub mod leader;
pub mod manager;
pub mod manifests;
pub mod metrics;
pub mod object;
pub mod operator;
pub mod policy;
pub mod prelude;
pub mod probes;
pub mod rbac;
pub mod readiness;
pub mod reconcile;
pub mod security;
pub mod shard;
pub mod status;
#[cfg(feature = "webhooks")]
mod tls;
#[cfg(feature = "webhooks")]
pub mod versions;
#[cfg(feature = "webhooks")]
pub mod webhook;

#[cfg(feature = "cli")]
pub use app::{App, run};
pub use backoff::Backoff;
pub use context::Context;
pub use controller::Controller;
pub use ensure::{Ensure, Ensured};
pub use error::{Classify, Error, Result, ResultExt};
pub use index::Primaries;
pub use leader::LeaderElection;
pub use manager::{Manager, Running};
pub use metrics::Metrics;
pub use object::Object;
pub use operator::Operator;
pub use opkit_derive::Operator;
pub use rbac::Rule;
pub use readiness::Readiness;
pub use reconcile::{Action, Reconcile};
pub use shard::Sharding;
pub use status::StatusWriter;

pub use kube::runtime::reflector::ObjectRef;

#[doc(hidden)]
pub mod __private {
    pub use std::time::Duration;
}

pub use k8s_openapi;
pub use kube;
pub use prometheus_client;
pub use schemars;
pub use serde;
pub use serde_json;
