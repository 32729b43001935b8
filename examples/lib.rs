//! The example operators of opkit, as a library: each module is one operator, its resource
//! types, its reconcile and its command line, run by `cargo run --example <name>` and used by
//! the workspace's tests and benchmarks.
//!
//! | module | what it shows |
//! |---|---|
//! | [`webapp`] | dependents (Deployment, Service), status from a rollout, finalizer, admission webhooks |
//! | [`postgresql`] | a StatefulSet with generated credentials, volume expansion, immutable fields, backups |
//! | [`appconfig`] | a rendered ConfigMap, a watched kind and an index, rolling the Deployments that use it |
//! | [`backup`] | a CronJob from a validated schedule, Secrets by reference, Job outcomes in status |
//! | [`platform`] | two operators in one process, dependents in dependency order, optional CRDs |
//! | [`tenants`] | a controller on a built-in, cluster-scoped kind (Namespace) with typed data |

pub mod appconfig;
pub mod backup;
pub mod platform;
pub mod postgresql;
pub mod tenants;
pub mod webapp;
