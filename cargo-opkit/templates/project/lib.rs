//! {= name =}: a Kubernetes operator written with opkit.
//!
//! `cargo run` starts an embedded API server, installs the CRDs, runs the controllers and applies
//! the samples of `config/samples`; `cargo run -- --cluster` runs against the current kubeconfig
//! context instead, and `cargo run -- crd` (`rbac`, `webhooks`) prints the manifests.

// cargo-opkit: modules

/// The operator binary: its controllers, admission webhooks and samples.
pub fn app() -> opkit::App {
    let app = opkit::App::new("{= name =}").embedded();
    // cargo-opkit: app (`cargo opkit create` adds controllers and webhooks above this line)
    app
}
