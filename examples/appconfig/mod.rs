//! The AppConfig operator: one application's configuration rendered per environment into a
//! ConfigMap, and a rolling restart of the Deployments using it whenever its data changes.
//!
//! `cargo run --example appconfig` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (an AppConfig and a Deployment using its ConfigMap);
//! `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

pub mod app;
pub mod reconcile;
pub mod render;
pub mod types;

pub use app::app;
