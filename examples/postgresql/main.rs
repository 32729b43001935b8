//! The seed's PostgreSQL operator (part 3).
//!
//! `cargo run --example postgresql` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the seed's `test-db`); `-- --cluster` uses the current
//! kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

#[path = "mod.rs"]
mod postgresql;

pub use postgresql::types::{PostgreSQL, PostgreSQLSpec, PostgreSQLStatus};

fn main() -> std::process::ExitCode {
    opkit::App::new("postgresql-operator")
        .operator::<PostgreSQL>()
        .embedded()
        .sample(include_str!("sample.yaml"))
        .run()
}
