//! The WebApp operator: a Deployment and a Service per WebApp, status from the Deployment's
//! rollout, a finalizer for external cleanup, and validating and mutating admission webhooks.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator with its admission webhooks (`policy.rs`) and applies `sample.yaml`; `-- --cluster`
//! uses the current kubeconfig context instead; `-- crd`, `-- rbac` and `-- webhooks` print
//! manifests. `WEBAPP_APPROVED_REGISTRIES` lists the approved image registries.

pub mod app;
pub mod policy;
pub mod reconcile;
pub mod types;

pub use app::app;
