//! The WebApp operator (placeholder until the operator lands).
fn main() {}
