//! The tenant operator binary: embedded API server by default, `sample.yaml` as sample.

use opkit::Controller;
use opkit::k8s::{Namespace, NetworkPolicy, ResourceQuota};

use super::reconcile::TenantPolicy;

/// The controller: Namespaces are its primaries; the policy and quota it creates are owned.
pub fn controller(policy: TenantPolicy) -> Controller<Namespace, TenantPolicy> {
    Controller::new("tenants", policy).owns::<NetworkPolicy>().owns::<ResourceQuota>()
}

/// The operator with its command line, with the policy configured in the environment.
pub fn app() -> opkit::App {
    opkit::App::new("tenant-operator")
        .controller(controller(TenantPolicy::from_env()))
        .embedded()
        .sample(include_str!("sample.yaml"))
}
