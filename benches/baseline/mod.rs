//! The baseline: the WebApp controller as it is usually written with kube-rs alone.
//!
//! A `Controller` owning Deployments and Services, kube-runtime's finalizer helper, and on every
//! reconcile: get each dependent, create it when missing, otherwise set the fields the WebApp
//! decides and replace it (no diffing), then a status patch. Full objects are cached for every
//! watched kind.

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
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use opkit_examples::webapp::types::WebApp;

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
        // opkit's default; kube-runtime's own is unbounded, which at 10,000 WebApps opens as
        // many requests at once and leaves the benchmark measuring connection failures.
        .with_config(Config::default().concurrency(16))
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
    let live = match deployments.get_opt(&name).await? {
        None => deployments.create(&params, &deployment(app, &name)).await?,
        Some(mut live) => {
            set_deployment(app, &name, &mut live);
            deployments.replace(&name, &params, &live).await?
        }
    };

    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    match services.get_opt(&name).await? {
        None => {
            services.create(&params, &service(app, &name)).await?;
        }
        Some(mut live) => {
            set_service(app, &name, &mut live);
            services.replace(&name, &params, &live).await?;
        }
    }

    let status = live.status.unwrap_or_default();
    let observed = status.observed_generation >= live.metadata.generation;
    let ready = status.ready_replicas.unwrap_or(0);
    let phase = if observed && ready >= app.spec.scale.replicas {
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

/// Read-modify-write: the fields the WebApp decides are set on the live object, which keeps
/// what the server defaulted and what others set (the revision annotation, the cluster IP).
fn set_deployment(app: &WebApp, name: &str, live: &mut Deployment) {
    let desired = deployment(app, name).spec.unwrap_or_default();
    let spec = live.spec.get_or_insert_with(Default::default);
    spec.replicas = desired.replicas;
    let container = spec
        .template
        .spec
        .as_mut()
        .and_then(|pod| pod.containers.first_mut());
    let Some(container) = container else {
        spec.template = desired.template;
        return;
    };
    container.image = Some(app.spec.image.reference());
    container.security_context = Some(opkit::security::restricted());
    match container.ports.as_mut().and_then(|p| p.first_mut()) {
        Some(port) => port.container_port = app.spec.port,
        None => {
            container.ports = Some(vec![ContainerPort {
                container_port: app.spec.port,
                ..Default::default()
            }])
        }
    }
}

fn set_service(app: &WebApp, name: &str, live: &mut Service) {
    let desired = service(app, name).spec.unwrap_or_default();
    let spec = live.spec.get_or_insert_with(Default::default);
    spec.selector = desired.selector;
    match spec.ports.as_mut().and_then(|p| p.first_mut()) {
        Some(port) => {
            port.port = app.spec.port;
            port.target_port = Some(IntOrString::Int(app.spec.port));
        }
        None => spec.ports = desired.ports,
    }
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
        image: Some(app.spec.image.reference()),
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
            replicas: Some(app.spec.scale.replicas),
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
