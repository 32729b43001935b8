//! An embedded Kubernetes API server for testing operators.
//!
//! `kube::Client`, kube-runtime watchers and the real `kubectl` talk to it
//! unchanged over HTTP on loopback.

pub mod resources;
