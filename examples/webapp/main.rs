//! The seed's WebApp operator.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator with its admission webhooks (`policy.rs`) and applies `sample.yaml`; `-- --cluster`
//! uses the current kubeconfig context instead; `-- crd`, `-- rbac` and `-- webhooks` print
//! manifests. `WEBAPP_APPROVED_REGISTRIES` lists the approved image registries.

mod app;
mod policy;
mod reconcile;
mod types;

fn main() -> std::process::ExitCode {
    app::app().run()
}
