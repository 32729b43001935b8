//! Cross-crate behavior: the example operators driven by the real kubectl.

mod webapp;
