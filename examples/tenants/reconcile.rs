//! What a tenant namespace gets: no traffic in unless allowed by a policy of its own, and a
//! quota on what it may request.

use std::collections::BTreeMap;

use opkit::k8s::*;
use opkit::prelude::*;

/// The label that makes a Namespace a tenant (any value).
pub const TENANT_LABEL: &str = "opkit.dev/tenant";

/// The environment variable overriding the quota, as `cpu=4,memory=8Gi,pods=20`.
pub const QUOTA_ENV: &str = "TENANT_QUOTA";

/// The operator's configuration, handed to every reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantPolicy {
    /// The hard limits of each tenant's ResourceQuota.
    pub quota: BTreeMap<String, Quantity>,
}

impl Default for TenantPolicy {
    /// 4 CPUs, 8 GiB of memory and 20 pods per tenant.
    fn default() -> Self {
        Self::parse("requests.cpu=4,requests.memory=8Gi,pods=20")
            .unwrap_or_else(|_| Self { quota: BTreeMap::new() })
    }
}

impl TenantPolicy {
    /// A quota written as `resource=quantity` pairs separated by commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut quota = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((resource, amount)) = pair.split_once('=') else {
                return Err(format!("{pair:?} is not resource=quantity"));
            };
            quota.insert(resource.trim().to_owned(), Quantity(amount.trim().to_owned()));
        }
        if quota.is_empty() {
            return Err("the quota names no resource".to_owned());
        }
        Ok(Self { quota })
    }

    /// The quota from `TENANT_QUOTA`, the default when it is unset or unreadable.
    pub fn from_env() -> Self {
        match std::env::var(QUOTA_ENV).map(|text| Self::parse(&text)) {
            Ok(Ok(policy)) => policy,
            Ok(Err(error)) => {
                tracing::warn!(%error, "{QUOTA_ENV} ignored");
                Self::default()
            }
            Err(_) => Self::default(),
        }
    }
}

impl Reconcile<TenantPolicy> for Namespace {
    async fn reconcile(&self, ctx: &Context<Self, TenantPolicy>) -> opkit::Result<Action> {
        // Nothing can be created in a namespace being deleted; its contents go with it.
        let tenant =
            self.labels().contains_key(TENANT_LABEL) && self.metadata.deletion_timestamp.is_none();
        ctx.ensure(DenyAll(self).when(tenant)).await?;
        ctx.ensure(Quota { namespace: self, hard: &ctx.data().quota }.when(tenant)).await?;
        Ok(Action::done())
    }
}

/// A NetworkPolicy selecting every pod with no ingress rule: nothing gets in unless another
/// policy of the tenant allows it.
struct DenyAll<'a>(&'a Namespace);

impl Ensure for DenyAll<'_> {
    type Object = NetworkPolicy;

    fn desired(&self) -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta {
                name: Some("default-deny-ingress".into()),
                namespace: Some(self.0.name_any()),
                ..Default::default()
            },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into()]),
                ..Default::default()
            }),
        }
    }
}

/// The tenant's ResourceQuota.
struct Quota<'a> {
    namespace: &'a Namespace,
    hard: &'a BTreeMap<String, Quantity>,
}

impl Ensure for Quota<'_> {
    type Object = ResourceQuota;

    fn desired(&self) -> ResourceQuota {
        ResourceQuota {
            metadata: ObjectMeta {
                name: Some("tenant-quota".into()),
                namespace: Some(self.namespace.name_any()),
                ..Default::default()
            },
            spec: Some(ResourceQuotaSpec { hard: Some(self.hard.clone()), ..Default::default() }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_and_refuse_nonsense() {
        let policy = TenantPolicy::parse("cpu=2, pods=5").expect("parses");
        assert_eq!(policy.quota.get("cpu"), Some(&Quantity("2".into())));
        assert_eq!(policy.quota.len(), 2);
        assert!(TenantPolicy::parse("cpu").is_err());
        assert!(TenantPolicy::parse(" , ").is_err());
        assert_eq!(TenantPolicy::default().quota.len(), 3);
    }
}
