//! Everything an operator file needs, in one `use opkit::prelude::*;`.
//!
//! ```
//! use opkit::prelude::*;
//! let _meta = ObjectMeta { name: Some("web".into()), ..Default::default() };
//! let _wait = Duration::from_secs(5);
//! ```

pub use crate::ensure::{Ensure, Ensured};
pub use crate::error::{Error as OpkitError, Result as OpkitResult};
pub use crate::events::EventType;
pub use crate::index::{Indexes, Primaries};
pub use crate::readiness::{Readiness, Ready};
pub use crate::{
    Action, App, Context, LeaderElection, Manager, ObjectRef, Operator, Reconcile, Store,
};

pub use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
pub use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec};
pub use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EnvVar, PersistentVolumeClaim, Pod,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, ObjectMeta, OwnerReference,
};
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
pub use kube::{Api, Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};
pub use std::time::Duration;
