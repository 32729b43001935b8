//! The PostgreSQL operator binary: embedded API server by default, `sample.yaml`'s `test-db`
//! as sample.

use super::types::PostgreSQL;

/// The operator with its command line.
pub fn app() -> opkit::App {
    opkit::App::new("postgresql-operator")
        .operator::<PostgreSQL>()
        .embedded()
        .sample(include_str!("sample.yaml"))
}
