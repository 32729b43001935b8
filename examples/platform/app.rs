//! The EcommercePlatform operator binary: the platform and PostgreSQL controllers in one process,
//! embedded API server by default, the seed's `production-store` as sample.

use super::postgresql::types::PostgreSQL;
use super::types::EcommercePlatform;

/// The operators with their command line.
pub fn app() -> opkit::App {
    opkit::App::new("ecommerceplatform-operator")
        .operator::<EcommercePlatform>()
        .operator::<PostgreSQL>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
