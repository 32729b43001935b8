//! The EcommercePlatform operator: database, cache, backend and frontend created in dependency
//! order, then monitoring and the Ingress, with the PostgreSQL operator in the same process
//! reconciling the database it asks for.
//!
//! `cargo run --example platform` starts an embedded API server, installs both CRDs, runs both
//! operators and applies `sample.yaml` (the `production-store` platform); `-- --cluster` uses the
//! current kubeconfig context instead; `-- crd` and `-- rbac` print manifests.

pub mod app;
pub mod monitoring;
pub mod reconcile;
pub mod types;

pub use app::app;
