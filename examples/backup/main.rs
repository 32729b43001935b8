//! The seed's Backup operator.
//!
//! `cargo run --example backup` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the credentials Secrets and a nightly PostgreSQL backup to
//! S3); `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

mod job;
mod reconcile;
mod types;

pub use types::{Backup, BackupSpec, BackupStatus};

fn main() -> std::process::ExitCode {
    opkit::App::new("backup-operator")
        .operator::<Backup>()
        .embedded()
        .sample(include_str!("sample.yaml"))
        .run()
}
