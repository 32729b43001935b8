//! The seed's AppConfig operator.
//!
//! `cargo run --example appconfig` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (an AppConfig and a Deployment using its ConfigMap);
//! `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

mod app;
mod reconcile;
mod render;
mod types;

fn main() -> std::process::ExitCode {
    app::app().run()
}
