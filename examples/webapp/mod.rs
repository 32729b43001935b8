//! The WebApp operator: a Deployment and a Service per WebApp, status from the Deployment's
//! rollout, a finalizer for external cleanup, ValidatingAdmissionPolicies, a mutating admission
//! webhook, and two versions of its API.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator with its admission policies and webhook (`policy.rs`) and its conversion webhook,
//! and applies `sample.yaml`; `-- --cluster` uses the current kubeconfig context instead;
//! `-- crd`, `-- rbac`, `-- policies` and `-- webhooks` print manifests, `-- migrate` moves
//! stored WebApps to `v2`. `WEBAPP_APPROVED_REGISTRIES` lists the approved image registries
//! (the default of the policy's parameter ConfigMap).
//!
//! `v2` (`types.rs`) is the version stored and reconciled; `v1` (`v1.rs`) is still served and
//! converted to and from it ([`versions`]).

pub mod app;
pub mod policy;
pub mod reconcile;
pub mod types;
pub mod v1;

pub use app::app;

/// The WebApp's versions: `v2` the hub, `v1` converted to and from it.
pub fn versions() -> opkit::versions::Versions<types::WebApp> {
    opkit::versions::Versions::new().spoke::<v1::WebApp>()
}
