//! An embedded Kubernetes API server for testing operators.
//!
//! `kube::Client`, kube-runtime watchers and the real `kubectl` talk to it
//! unchanged over HTTP on loopback.

pub mod discovery;
pub mod jsonpath;
pub mod openapi;
pub mod patch;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod table;
pub mod tools;
