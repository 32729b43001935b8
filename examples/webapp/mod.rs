//! The WebApp operator: a Deployment and a Service per WebApp, status from the Deployment's
//! rollout, a finalizer for external cleanup, ValidatingAdmissionPolicies and a mutating
//! admission webhook.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator with its admission policies and webhook (`policy.rs`) and applies `sample.yaml`;
//! `-- --cluster` uses the current kubeconfig context instead; `-- crd`, `-- rbac`,
//! `-- policies` and `-- webhooks` print manifests. `WEBAPP_APPROVED_REGISTRIES` lists the
//! approved image registries (the default of the policy's parameter ConfigMap).

pub mod app;
pub mod policy;
pub mod reconcile;
pub mod types;

pub use app::app;
