//! The WebApp operator binary: embedded API server by default, `sample.yaml`'s `my-webapp` as
//! sample, the admission policies of `policy.rs`, and `v1` served beside the hub `v2`.

use super::policy::{self, WebAppPolicy};
use super::types::WebApp;

/// The operator with its command line, enforcing the policy configured in the environment.
pub fn app() -> opkit::App {
    with_policy(WebAppPolicy::from_env())
}

/// The operator with its command line, enforcing `policy`.
pub fn with_policy(policy: WebAppPolicy) -> opkit::App {
    let app = opkit::App::new("webapp-operator")
        .operator::<WebApp>()
        .versions(super::versions())
        .embedded()
        .sample(include_str!("sample.yaml"));
    policy::enforce(app, policy)
}
