//! The baseline: the WebApp controller as it is usually written with kube-rs alone.
//!
//! A `Controller` owning Deployments and Services, kube-runtime's finalizer helper, and on every
//! reconcile: get each dependent, create it when missing or replace it with the desired object
//! (no diffing), then a status patch. Full objects are cached for every watched kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::types::WebApp;

const FINALIZER: &str = "webapp.example.com/finalizer";

/// Why one reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Adding or removing the finalizer, or the reconcile inside it, failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A WebApp without a namespace or name.
    #[error("the WebApp has no {0}")]
    Missing(&'static str),
}

struct State {
    client: Client,
    reconciles: Arc<AtomicU64>,
}

/// Runs the controller until the process ends, counting reconciles into `reconciles`.
pub async fn run(client: Client, reconciles: Arc<AtomicU64>) {
    let apps = Api::<WebApp>::all(client.clone());
    let state = Arc::new(State {
        client: client.clone(),
        reconciles,
    });
    Controller::new(apps, watcher::Config::default())
        .owns(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        .owns(Api::<Service>::all(client), watcher::Config::default())
        .run(reconcile, error_policy, state)
        .for_each(|_| async {})
        .await;
}

fn error_policy(_app: Arc<WebApp>, _error: &Error, _state: Arc<State>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

async fn reconcile(app: Arc<WebApp>, state: Arc<State>) -> Result<Action, Error> {
    state.reconciles.fetch_add(1, Ordering::Relaxed);
    let namespace = app.namespace().ok_or(Error::Missing("namespace"))?;
    let apps: Api<WebApp> = Api::namespaced(state.client.clone(), &namespace);
    finalizer(&apps, FINALIZER, app, |event| async {
        match event {
            Event::Apply(app) => apply(&app, &state.client, &namespace).await,
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(app: &WebApp, client: &Client, namespace: &str) -> Result<Action, Error> {
    let name = app.meta().name.clone().ok_or(Error::Missing("name"))?;
    let params = PostParams::default();

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let desired = deployment(app, &name);
    let live = match deployments.get_opt(&name).await? {
        None => deployments.create(&params, &desired).await?,
        // The live object keeps what others set (the Deployment controller's revision
        // annotation); only the spec is replaced.
        Some(mut live) => {
            live.spec = desired.spec;
            deployments.replace(&name, &params, &live).await?
        }
    };

    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let mut desired = service(app, &name);
    match services.get_opt(&name).await? {
        None => {
            services.create(&params, &desired).await?;
        }
        Some(mut live) => {
            // The allocated cluster IP is immutable; a replace must carry it.
            if let (Some(spec), Some(live_spec)) = (desired.spec.as_mut(), live.spec.take()) {
                spec.cluster_ip = live_spec.cluster_ip;
                spec.cluster_ips = live_spec.cluster_ips;
            }
            live.spec = desired.spec;
            services.replace(&name, &params, &live).await?;
        }
    }

    let status = live.status.unwrap_or_default();
    let observed = status.observed_generation >= live.metadata.generation;
    let ready = status.ready_replicas.unwrap_or(0);
    let phase = if observed && ready >= app.spec.replicas {
        "Running"
    } else {
        "Deploying"
    };
    let apps: Api<WebApp> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"status": {
        "phase": phase,
        "readyReplicas": ready,
        "observedGeneration": app.meta().generation,
    }});
    apps.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn metadata(app: &WebApp, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some([("app".to_owned(), name.to_owned())].into()),
        owner_references: app.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

fn deployment(app: &WebApp, name: &str) -> Deployment {
    let labels = [("app".to_owned(), name.to_owned())].into();
    let container = Container {
        name: "webapp".into(),
        image: Some(app.spec.image.clone()),
        ports: Some(vec![ContainerPort {
            container_port: app.spec.port,
            ..Default::default()
        }]),
        security_context: Some(opkit::security::restricted()),
        ..Default::default()
    };
    Deployment {
        metadata: metadata(app, name),
        spec: Some(DeploymentSpec {
            replicas: Some(app.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    owner_references: None,
                    ..metadata(app, name)
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(app: &WebApp, name: &str) -> Service {
    Service {
        metadata: metadata(app, name),
        spec: Some(ServiceSpec {
            selector: Some([("app".to_owned(), name.to_owned())].into()),
            ports: Some(vec![ServicePort {
                port: app.spec.port,
                target_port: Some(IntOrString::Int(app.spec.port)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
