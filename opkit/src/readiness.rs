//! Readiness of common workloads, read the way `kubectl rollout status` reads it.
//!
//! A Deployment is ready when its controller has observed the current generation and every
//! desired replica is updated and ready; it is stalled when its `Progressing` condition turned
//! `False` (for example `ProgressDeadlineExceeded` after an image that cannot be pulled). Feeding
//! this into status gives users a message instead of a silent "Deploying" forever.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

/// What a workload's status says about it.
///
/// ```
/// let pending = opkit::readiness::Readiness::pending("waiting for the Deployment");
/// assert!(!pending.ready && !pending.stalled);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Every desired replica of the current generation is ready.
    pub ready: bool,
    /// The workload stopped making progress; `message` says why.
    pub stalled: bool,
    /// Replicas ready now.
    pub ready_replicas: i32,
    /// Replicas wanted.
    pub desired_replicas: i32,
    /// A human-readable summary.
    pub message: String,
}

impl Readiness {
    /// Not there yet, with a reason.
    ///
    /// ```
    /// let r = opkit::readiness::Readiness::pending("waiting for the StatefulSet");
    /// assert_eq!(r.message, "waiting for the StatefulSet");
    /// ```
    pub fn pending(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

/// Workloads whose readiness opkit can read.
///
/// ```
/// use opkit::readiness::Ready;
/// use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
/// let d = Deployment {
///     metadata: kube::api::ObjectMeta { generation: Some(2), ..Default::default() },
///     spec: Some(DeploymentSpec { replicas: Some(3), ..Default::default() }),
///     status: Some(DeploymentStatus {
///         observed_generation: Some(2),
///         replicas: Some(3),
///         updated_replicas: Some(3),
///         ready_replicas: Some(3),
///         ..Default::default()
///     }),
/// };
/// let r = d.readiness();
/// assert!(r.ready);
/// assert_eq!(r.message, "3/3 replicas ready");
/// ```
pub trait Ready {
    /// Reads the object's status.
    fn readiness(&self) -> Readiness;
}

fn replicas(observed: bool, desired: i32, updated: i32, ready: i32) -> Readiness {
    let is_ready = observed && updated >= desired && ready >= desired;
    let message = if observed {
        format!("{ready}/{desired} replicas ready")
    } else {
        "waiting for the controller to observe the new spec".to_owned()
    };
    Readiness {
        ready: is_ready,
        stalled: false,
        ready_replicas: ready,
        desired_replicas: desired,
        message,
    }
}

impl Ready for Deployment {
    fn readiness(&self) -> Readiness {
        let desired = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let Some(status) = &self.status else {
            return Readiness::pending("the Deployment has no status yet");
        };
        let observed = status.observed_generation >= self.metadata.generation;
        let mut r = replicas(
            observed,
            desired,
            status.updated_replicas.unwrap_or(0),
            status.ready_replicas.unwrap_or(0),
        );
        let stalled = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing" && c.status == "False");
        if let (Some(c), false) = (stalled, r.ready) {
            r.stalled = true;
            r.message = c
                .message
                .clone()
                .unwrap_or_else(|| "the Deployment stopped progressing".to_owned());
        }
        r
    }
}

impl Ready for StatefulSet {
    fn readiness(&self) -> Readiness {
        let desired = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let Some(status) = &self.status else {
            return Readiness::pending("the StatefulSet has no status yet");
        };
        let observed = status.observed_generation >= self.metadata.generation;
        replicas(
            observed,
            desired,
            status.updated_replicas.unwrap_or(0),
            status.ready_replicas.unwrap_or(0),
        )
    }
}

impl Ready for DaemonSet {
    fn readiness(&self) -> Readiness {
        let Some(status) = &self.status else {
            return Readiness::pending("the DaemonSet has no status yet");
        };
        let observed = status.observed_generation >= self.metadata.generation;
        replicas(
            observed,
            status.desired_number_scheduled,
            status.updated_number_scheduled.unwrap_or(0),
            status.number_ready,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, observed: i64, ready: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(3),
                ready_replicas: Some(ready),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_stale_status_is_not_ready() {
        assert!(!deployment(3, 2, 3).readiness().ready);
        assert!(deployment(3, 3, 3).readiness().ready);
        assert!(!deployment(3, 3, 2).readiness().ready);
    }

    #[test]
    fn a_stalled_rollout_says_why() {
        let mut d = deployment(1, 1, 0);
        if let Some(status) = d.status.as_mut() {
            status.conditions = Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some("ProgressDeadlineExceeded".into()),
                message: Some("ReplicaSet \"web-1\" has timed out progressing.".into()),
                ..Default::default()
            }]);
        }
        let r = d.readiness();
        assert!(r.stalled && !r.ready);
        assert!(r.message.contains("timed out"), "{}", r.message);
    }
}
