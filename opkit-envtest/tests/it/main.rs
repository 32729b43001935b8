//! Integration tests: a real server driven through kube::Client,
//! kube-runtime and kubectl.

mod admission;
mod authn;
mod bad_input;
mod binary;
mod cel;
mod control_plane;
mod crd;
mod crud;
mod events;
mod faults;
mod finalizers;
mod gc;
mod generators;
mod kubectl;
mod lifecycle;
mod namespaces;
mod pods;
mod rbac;
mod selectors;
mod sim;
mod stats;
mod status;
mod support;
mod versions;
mod watch;
mod webhook_server;
mod webhooks;
