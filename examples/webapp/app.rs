//! The WebApp operator binary: embedded API server by default, the seed's `my-webapp` as sample.

use super::types::WebApp;

/// The operator with its command line.
pub fn app() -> opkit::App {
    opkit::App::new("webapp-operator")
        .operator::<WebApp>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
