//! The EcommercePlatform operator's `App` (with the PostgreSQL operator it runs beside), compiled
//! from the examples' own sources.
//!
//! A second copy beside the example tests' own (hence `duplicate_mod`), so the drift check does
//! not depend on how those tests lay out their modules.

#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/platform/app.rs"]
pub mod app;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/platform/monitoring.rs"]
mod monitoring;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/postgresql/mod.rs"]
mod postgresql;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/platform/reconcile.rs"]
mod reconcile;
#[rustfmt::skip]
#[allow(clippy::duplicate_mod)]
#[path = "../../../examples/platform/types.rs"]
mod types;
