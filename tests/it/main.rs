//! Cross-crate behavior: the example operators driven by the real kubectl.

mod appconfig;
mod backup;
mod faults;
mod platform;
mod postgresql;
mod support;
mod webapp;
