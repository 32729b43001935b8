//! The kinds `create api --owns` takes: each has a dependent in `templates/api/owns/<Kind>.rs`
//! and reads the spec fields listed here.

use crate::error::Error;

/// A kind a scaffolded controller can own.
pub(crate) struct Ownable {
    /// The kind, as in `opkit::k8s`.
    pub kind: &'static str,
    /// The spec fields its dependent reads.
    pub fields: &'static [&'static str],
    /// What pods it runs.
    pub pods: Pods,
}

/// The pods a dependent runs, which decides the helpers the reconcile needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pods {
    /// None.
    None,
    /// Long-running pods from a pod template (Deployment, StatefulSet, DaemonSet).
    Workload,
    /// Pods that run to completion (Job, CronJob).
    Job,
}

const OWNABLE: &[Ownable] = &[
    Ownable {
        kind: "Deployment",
        fields: &["image", "replicas"],
        pods: Pods::Workload,
    },
    Ownable {
        kind: "StatefulSet",
        fields: &["image", "replicas"],
        pods: Pods::Workload,
    },
    Ownable {
        kind: "DaemonSet",
        fields: &["image"],
        pods: Pods::Workload,
    },
    Ownable {
        kind: "Job",
        fields: &["image"],
        pods: Pods::Job,
    },
    Ownable {
        kind: "CronJob",
        fields: &["image", "schedule"],
        pods: Pods::Job,
    },
    Ownable {
        kind: "Service",
        fields: &["port"],
        pods: Pods::None,
    },
    Ownable {
        kind: "ConfigMap",
        fields: &["data"],
        pods: Pods::None,
    },
    Ownable {
        kind: "ServiceAccount",
        fields: &[],
        pods: Pods::None,
    },
    Ownable {
        kind: "PersistentVolumeClaim",
        fields: &["storage"],
        pods: Pods::None,
    },
];

/// The ownable kind `name` (any case), or a refusal listing those there are.
pub(crate) fn find(name: &str) -> Result<&'static Ownable, Error> {
    OWNABLE
        .iter()
        .find(|o| o.kind.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| Error::UnknownOwnedKind {
            kind: name.to_owned(),
            known: OWNABLE
                .iter()
                .map(|o| o.kind)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_in_any_case_and_unknown_ones_listed() {
        assert_eq!(find("deployment").ok().map(|o| o.kind), Some("Deployment"));
        let refused = find("Ingress").err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some(
                "unknown owned kind \"Ingress\": --owns takes Deployment, StatefulSet, DaemonSet, \
                 Job, CronJob, Service, ConfigMap, ServiceAccount, PersistentVolumeClaim"
            )
        );
    }

    #[test]
    fn every_ownable_kind_has_a_dependent_template() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/api/owns");
        for owned in OWNABLE {
            assert!(
                dir.join(format!("{}.rs", owned.kind)).is_file(),
                "{}",
                owned.kind
            );
        }
    }
}
