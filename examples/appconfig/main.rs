//! The seed's AppConfig operator.
//!
//! `cargo run --example appconfig` starts an embedded API server, installs the CRD, runs the
//! operator and applies `sample.yaml` (an AppConfig and a Deployment using its ConfigMap);
//! `-- --cluster` uses the current kubeconfig context instead; `-- crd` and `-- rbac` print
//! manifests.

mod reconcile;
mod render;
mod types;

pub use types::{AppConfig, AppConfigSpec, AppConfigStatus, Environment};

fn main() -> std::process::ExitCode {
    opkit::App::new("appconfig-operator")
        .operator::<AppConfig>()
        .embedded()
        .sample(include_str!("sample.yaml"))
        .run()
}
