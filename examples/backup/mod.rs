//! The Backup operator: scheduled database dumps to object storage, as a CronJob built from a
//! validated schedule, with credentials only by reference and each Job's outcome in the status.
//!
//! `cargo run --example backup` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the credentials Secrets and a nightly PostgreSQL backup to
//! S3); `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

pub mod app;
pub mod job;
pub mod reconcile;
pub mod types;

pub use app::app;
