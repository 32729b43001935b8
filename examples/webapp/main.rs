//! The seed's WebApp operator.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml`; `-- --cluster` uses the current kubeconfig context
//! instead; `-- crd` and `-- rbac` print manifests.

mod app;
mod reconcile;
mod types;

fn main() -> std::process::ExitCode {
    app::app().run()
}
