//! The seed's WebApp operator.
//!
//! `cargo run --example webapp` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml`; `-- --cluster` uses the current kubeconfig context
//! instead; `-- crd` and `-- rbac` print manifests.

mod reconcile;
mod types;

pub use types::{WebApp, WebAppSpec, WebAppStatus};

fn main() -> std::process::ExitCode {
    opkit::App::new("webapp-operator")
        .operator::<WebApp>()
        .embedded()
        .sample(include_str!("sample.yaml"))
        .run()
}
