//! The EcommercePlatform operator binary: the platform and PostgreSQL controllers in one process,
//! embedded API server by default, `sample.yaml`'s `production-store` as sample.

use super::types::EcommercePlatform;
use crate::postgresql::types::PostgreSQL;

/// The operators with their command line.
pub fn app() -> opkit::App {
    opkit::App::new("ecommerceplatform-operator")
        .operator::<EcommercePlatform>()
        .operator::<PostgreSQL>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
