//! The seed's EcommercePlatform operator (part 6), with the PostgreSQL operator (part 3) in the
//! same process reconciling the database it asks for.
//!
//! `cargo run --example platform` starts an embedded API server, installs both CRDs, runs both
//! operators and applies `sample.yaml` (the seed's `production-store`); `-- --cluster` uses the
//! current kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

mod monitoring;
mod reconcile;
mod types;

#[path = "../postgresql/mod.rs"]
mod postgresql;

pub use types::{EcommercePlatform, EcommercePlatformSpec, EcommercePlatformStatus};

fn main() -> std::process::ExitCode {
    opkit::App::new("ecommerceplatform-operator")
        .operator::<EcommercePlatform>()
        .operator::<postgresql::types::PostgreSQL>()
        .embedded()
        .sample(include_str!("sample.yaml"))
        .run()
}
