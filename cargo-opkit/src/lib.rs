//! `cargo opkit`: from an empty directory to a deployed opkit operator.
//!
//! ```text
//! cargo install cargo-opkit
//! cargo opkit new memcached-operator --group cache --domain example.com
//! cd memcached-operator
//! cargo opkit create api --version v1 --kind Memcached --owns Deployment,Service
//! cargo opkit create webhook --kind Memcached --validating --mutating
//! cargo run                          # on an embedded API server
//! cargo test                         # the controllers against a real API server, in-process
//! cargo opkit manifests              # config/ (kustomize) and charts/memcached-operator (Helm)
//! cargo opkit manifests --check      # fails when a generated manifest is out of date
//! ```
//!
//! Every command checks everything first and writes nothing when it refuses: an invalid kind or
//! group, a kind that exists, a directory that is not an opkit project, an unknown owned kind.
//! What was scaffolded is recorded in the project's `.opkit` file; the code is rendered from
//! templates kept as files in this crate (`templates/`).
//!
//! The library is what the command runs, and [`manifests`](mod@manifests) is also the generator of
//! the opkit repository's own `config/` and `charts/`.

mod changes;
pub mod cli;
mod diff;
mod error;
pub mod manifests;
mod names;
mod operator;
mod owned;
mod project;
mod scaffold;
mod template;
#[cfg(test)]
mod testing;

pub use cli::Cli;
pub use error::Error;
pub use operator::update_manifests;
pub use project::{Api, Project, RECORD, Webhook};
pub use scaffold::{Dependency, NewApi, NewProject, NewWebhook, create_api, create_webhook, new};
