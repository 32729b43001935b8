//! The PostgreSQL operator: its resource type and its reconcile, shared by the `postgresql` and
//! `platform` examples.

pub mod reconcile;
pub mod types;
