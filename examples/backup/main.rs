//! The seed's Backup operator.
//!
//! `cargo run --example backup` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the credentials Secrets and a nightly PostgreSQL backup to
//! S3); `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

mod app;
mod job;
mod reconcile;
mod types;

fn main() -> std::process::ExitCode {
    app::app().run()
}
