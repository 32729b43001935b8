//! The Backup operator binary: embedded API server by default, the sample nightly PostgreSQL backup to S3 and its Secrets as sample.

use super::types::Backup;

/// The operator with its command line.
pub fn app() -> opkit::App {
    opkit::App::new("backup-operator")
        .operator::<Backup>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
