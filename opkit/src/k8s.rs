//! The Kubernetes types operators build most often, from k8s-openapi, in one place:
//! `use opkit::k8s::{Deployment, Service, ObjectMeta};` (or `opkit::k8s::*`). Every other type is
//! in [`k8s_openapi`](crate::k8s_openapi).
//!
//! ```
//! use opkit::k8s::{ConfigMap, ObjectMeta};
//! let cm = ConfigMap {
//!     metadata: ObjectMeta { name: Some("settings".into()), ..Default::default() },
//!     data: Some([("mode".to_string(), "fast".to_string())].into()),
//!     ..Default::default()
//! };
//! assert_eq!(cm.metadata.name.as_deref(), Some("settings"));
//! ```

pub use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet,
    StatefulSetSpec,
};
pub use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
pub use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    LocalObjectReference, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
pub use k8s_openapi::api::networking::v1::{
    Ingress, IngressSpec, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicySpec,
};
pub use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
pub use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, ObjectMeta, OwnerReference, Time,
};
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
