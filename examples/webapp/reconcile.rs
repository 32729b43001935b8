//! The WebApp operator: a Deployment and a Service per WebApp, status from the Deployment.

use std::collections::BTreeMap;

use opkit::k8s::*;
use opkit::prelude::*;

use super::types::WebApp;

impl Reconcile for WebApp {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        let deployment = ctx.ensure(WebAppDeployment(self)).await?;
        ctx.ensure(WebAppService(self)).await?;
        let rollout = deployment.readiness();
        let phase = match (rollout.ready, deployment.get()) {
            (true, _) => "Running",
            (false, Some(_)) => "Deploying",
            (false, None) => "Pending",
        };
        ctx.status()
            .update(|s| s.ready_replicas = rollout.ready_replicas)?
            .phase(phase)
            .readiness(phase, rollout);
        Ok(Action::done())
    }

    async fn cleanup(&self, ctx: &Context<Self>) -> opkit::Result<()> {
        // The Deployment and Service go with the WebApp (owner references); resources outside
        // the cluster (DNS records, CDN entries) would be released here.
        ctx.event(EventType::Normal, "CleanedUp", "released external resources").await;
        Ok(())
    }
}

fn labels(app: &WebApp) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.name_any())])
}

fn metadata(app: &WebApp) -> ObjectMeta {
    ObjectMeta { name: Some(app.name_any()), labels: Some(labels(app)), ..Default::default() }
}

struct WebAppDeployment<'a>(&'a WebApp);

impl Ensure for WebAppDeployment<'_> {
    type Object = Deployment;

    fn desired(&self) -> Deployment {
        let app = self.0;
        let container = Container {
            name: "webapp".into(),
            image: Some(app.spec.image.reference()),
            image_pull_policy: app.spec.image.pull_policy.clone(),
            ports: Some(vec![ContainerPort {
                container_port: app.spec.port,
                ..Default::default()
            }]),
            security_context: Some(
                app.spec.security_context.clone().unwrap_or_else(opkit::security::restricted),
            ),
            resources: app.spec.resources.clone(),
            ..Default::default()
        };
        Deployment {
            metadata: metadata(app),
            spec: Some(DeploymentSpec {
                replicas: Some(app.spec.scale.replicas),
                selector: LabelSelector { match_labels: Some(labels(app)), ..Default::default() },
                template: PodTemplateSpec {
                    metadata: Some(metadata(app)),
                    spec: Some(PodSpec { containers: vec![container], ..Default::default() }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

struct WebAppService<'a>(&'a WebApp);

impl Ensure for WebAppService<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        let port = self.0.spec.port;
        let ports = vec![ServicePort {
            port,
            target_port: Some(IntOrString::Int(port)),
            ..Default::default()
        }];
        Service {
            metadata: metadata(self.0),
            spec: Some(ServiceSpec {
                selector: Some(labels(self.0)),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
