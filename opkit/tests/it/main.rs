//! opkit on a real (embedded) API server: one module per numbered point of the specification.

mod fixture;

mod controllers;
mod dependents;
mod errors;
mod events;
mod finalizers;
mod leader;
mod lookups;
mod manifests;
mod metrics;
mod probes;
mod reconcile;
mod sharding;
mod status;
mod validation;
mod versions;
mod webhook;
