//! An embedded Kubernetes API server for testing operators.
//!
//! `kube::Client`, kube-runtime watchers and the real `kubectl` talk to it
//! unchanged over HTTP on loopback. Start one with [`TestEnv::start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), opkit_envtest::Error> {
//! let env = opkit_envtest::TestEnv::start().await?;
//! let client = env.client();
//! # let _ = client;
//! # Ok(()) }
//! ```

mod admission;
mod admission_cel;
mod admission_policy;
mod apiservices;
mod authn;
mod authz;
mod cel;
mod certificates;
mod components;
mod conversion;
mod crd;
mod defaults;
mod deletion;
mod discovery;
mod env;
mod error;
mod events;
mod faults;
mod fields;
mod gc;
mod go_order;
mod http;
mod immutable;
mod jsonpath;
mod meta;
mod namespaces;
mod openapi;
mod openapi_protobuf;
mod patch;
mod pki;
mod pod_security;
mod protobuf;
mod rbac;
mod resources;
mod schema;
mod selector;
pub mod sim;
mod stats;
mod store;
mod table;
mod tokens;
pub mod tools;
mod webhook_client;

pub use env::{TestEnv, TestEnvBuilder};
pub use error::{ApiError, Error};
pub use faults::{Fault, Faults};
pub use stats::{Stats, WRITE_VERBS};
