//! Cross-crate behavior: the example operators driven by the real kubectl.

mod appconfig;
mod backup;
mod deploy;
mod faults;
mod manifests;
mod platform;
mod postgresql;
mod support;
mod tenants;
mod versions;
mod webapp;
