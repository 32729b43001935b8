//! The WebApp operator: a Deployment and a Service per WebApp, status from the Deployment.

use opkit::prelude::*;

use super::types::{WebApp, WebAppStatus};

impl Reconcile for WebApp {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        let deployment = ctx.ensure(WebAppDeployment(self)).await?;
        ctx.ensure(WebAppService(self)).await?;
        let ready = deployment
            .get()
            .and_then(|d| d.status.as_ref()?.ready_replicas)
            .unwrap_or(0);
        let (phase, message) = match deployment.get().and_then(stalled) {
            _ if deployment.is_ready() => (
                "Running",
                format!("{ready}/{} replicas ready", self.spec.replicas),
            ),
            Some(reason) => ("Deploying", reason),
            None if deployment.get().is_some() => (
                "Deploying",
                format!("{ready}/{} replicas ready", self.spec.replicas),
            ),
            None => ("Pending", "waiting for the Deployment".to_string()),
        };
        ctx.status()
            .update(|s: &mut WebAppStatus| s.ready_replicas = ready)
            .phase(phase)
            .ready(deployment.is_ready(), phase, message);
        Ok(Action::done())
    }

    async fn cleanup(&self, ctx: &Context<Self>) -> opkit::Result<()> {
        // The Deployment and Service go with the WebApp through their owner references; what
        // lives outside the cluster (DNS records, CDN entries) would be released here.
        ctx.event(
            EventType::Normal,
            "CleanedUp",
            "released external resources",
        )
        .await;
        Ok(())
    }
}

/// A Deployment that stopped progressing, as its Progressing condition reports it.
fn stalled(d: &Deployment) -> Option<String> {
    let conditions = d.status.as_ref()?.conditions.as_ref()?;
    let c = conditions
        .iter()
        .find(|c| c.type_ == "Progressing" && c.status == "False")?;
    Some(
        c.message
            .clone()
            .unwrap_or_else(|| "the Deployment is not progressing".into()),
    )
}

fn labels(app: &WebApp) -> std::collections::BTreeMap<String, String> {
    [("app".to_string(), app.name_any())].into()
}

struct WebAppDeployment<'a>(&'a WebApp);

impl Ensure for WebAppDeployment<'_> {
    type Object = Deployment;

    fn desired(&self) -> Deployment {
        let app = self.0;
        let restricted = SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = Container {
            name: "webapp".into(),
            image: Some(app.spec.image.clone()),
            ports: Some(vec![ContainerPort {
                container_port: app.spec.port,
                ..Default::default()
            }]),
            security_context: Some(restricted),
            ..Default::default()
        };
        Deployment {
            metadata: ObjectMeta {
                name: Some(app.name_any()),
                labels: Some(labels(app)),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(app.spec.replicas),
                selector: LabelSelector {
                    match_labels: Some(labels(app)),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(app)),
                        ..Default::default()
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

    fn is_ready(&self, live: &Deployment) -> bool {
        let status = live.status.as_ref();
        status.and_then(|s| s.ready_replicas).unwrap_or(0) >= self.0.spec.replicas
            && status.and_then(|s| s.observed_generation) >= live.metadata.generation
    }
}

struct WebAppService<'a>(&'a WebApp);

impl Ensure for WebAppService<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        let app = self.0;
        Service {
            metadata: ObjectMeta {
                name: Some(app.name_any()),
                labels: Some(labels(app)),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(labels(app)),
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
}
