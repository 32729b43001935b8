//! The WebApp operator's `App`, compiled from the example's own sources.
//!
//! A second copy beside the example tests' own (hence `duplicate_mod`), so the drift check does
//! not depend on how those tests lay out their modules.

#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/webapp/app.rs"]
mod app;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/webapp/policy.rs"]
pub mod policy;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/webapp/reconcile.rs"]
mod reconcile;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/webapp/types.rs"]
pub mod types;

/// The operator with its admission webhooks, as the example's `main` builds it.
pub fn app() -> opkit::App {
    policy::enforce(app::app(), policy::WebAppPolicy::from_env())
}
