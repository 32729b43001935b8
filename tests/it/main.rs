//! Cross-crate behavior: the example operators driven by the real kubectl.

mod appconfig;
mod backup;
mod support;
mod webapp;
