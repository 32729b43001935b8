//! The seed's EcommercePlatform operator (part 6), with the PostgreSQL operator (part 3) in the
//! same process reconciling the database it asks for.
//!
//! `cargo run --example platform` starts an embedded API server, installs both CRDs, runs both
//! operators and applies `sample.yaml` (the seed's `production-store`); `-- --cluster` uses the
//! current kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

mod app;
mod monitoring;
/// The PostgreSQL operator, shared with the `postgresql` example.
#[path = "../postgresql/mod.rs"]
mod postgresql;
mod reconcile;
mod types;

fn main() -> std::process::ExitCode {
    app::app().run()
}
