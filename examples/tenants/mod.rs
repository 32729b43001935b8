//! The tenant operator: a controller on a built-in, cluster-scoped kind. Every Namespace labelled
//! `opkit.dev/tenant` gets a default-deny NetworkPolicy and a ResourceQuota; when the label goes,
//! so do they. The quota comes from the operator's typed configuration ([`TenantPolicy`]).
//!
//! `cargo run --example tenants` starts an embedded API server, runs the controller and applies
//! `sample.yaml` (a tenant namespace and a plain one); `-- --cluster` uses the current kubeconfig
//! context instead; `-- rbac` prints the RBAC it needs (it defines no CRD).

pub mod app;
pub mod reconcile;

pub use app::{app, controller};
pub use reconcile::{TENANT_LABEL, TenantPolicy};
