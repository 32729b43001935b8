//! The seed's PostgreSQL operator (part 3).
//!
//! `cargo run --example postgresql` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (the seed's `test-db`); `-- --cluster` uses the current
//! kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

mod app;
#[path = "mod.rs"]
mod postgresql;

fn main() -> std::process::ExitCode {
    app::app().run()
}
