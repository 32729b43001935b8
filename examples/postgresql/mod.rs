//! The PostgreSQL operator: generated credentials, a replicated StatefulSet and its Services,
//! volume expansion, and — once the database is ready — scheduled backups. The `platform`
//! operator runs it beside its own.
//!
//! `cargo run --example postgresql` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the `test-db` database); `-- --cluster` uses the current
//! kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

pub mod app;
pub mod reconcile;
pub mod types;

pub use app::app;
