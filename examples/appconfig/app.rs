//! The AppConfig operator binary: embedded API server by default, the sample AppConfig `shop` and a Deployment reading its ConfigMap as sample.

use super::types::AppConfig;

/// The operator with its command line.
pub fn app() -> opkit::App {
    opkit::App::new("appconfig-operator")
        .operator::<AppConfig>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
