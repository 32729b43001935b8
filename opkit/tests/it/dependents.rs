//! Point 2: dependents through `Ensure`.

use std::time::Duration;

use opkit::k8s::*;
use opkit::prelude::*;

use crate::fixture::*;

#[tokio::test]
async fn dependent_gets_a_controller_owner_reference_and_is_collected_with_its_owner() {
    let mut h = Harness::start().await;
    let widget = h.create("owned", spec(3)).await;
    ready(&h, "owned").await;
    let cm = h
        .config_maps("default")
        .get("owned-config")
        .await
        .expect("ConfigMap exists");
    let owner = cm
        .metadata
        .owner_references
        .as_ref()
        .and_then(|r| r.first())
        .expect("owner reference");
    assert_eq!(owner.kind, "Widget");
    assert_eq!(owner.uid, widget.metadata.uid.clone().unwrap_or_default());
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert_eq!(
        cm.data.and_then(|d| d.get("size").cloned()).as_deref(),
        Some("3")
    );
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"widget-operator".to_string()),
        "{managers:?}"
    );

    h.widgets()
        .delete("owned", &Default::default())
        .await
        .expect("delete");
    let cms = h.config_maps("default");
    eventually("the ConfigMap to be garbage collected", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("owned-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn converged_operator_makes_zero_writes_on_resync() {
    let mut h = Harness::start_with(|d| d.requeue(Duration::from_millis(200))).await;
    h.create("calm", spec(1)).await;
    ready(&h, "calm").await;
    // One resync after the first Ready: whatever the first reconciles wrote is done.
    let first = h.probe.reconciles_of("calm");
    eventually("a resync", || async {
        (h.probe.reconciles_of("calm") > first).then_some(())
    })
    .await;
    h.env.reset_stats();
    let before = h.probe.reconciles_of("calm");
    eventually("three more resyncs", || async {
        (h.probe.reconciles_of("calm") >= before + 3).then_some(())
    })
    .await;
    let stats = h.env.stats();
    assert_eq!(stats.writes(), 0, "writes while converged: {stats:?}");
    h.stop().await;
}

#[tokio::test]
async fn an_object_controlled_by_someone_else_is_not_adopted() {
    let mut h = Harness::start().await;
    let cms = h.config_maps("default");
    let owner = ConfigMap {
        metadata: ObjectMeta {
            name: Some("someone-else".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let owner = cms
        .create(&Default::default(), &owner)
        .await
        .expect("create owner");
    let foreign = ConfigMap {
        metadata: ObjectMeta {
            name: Some("taken-config".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "someone-else".into(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        data: Some([("size".to_string(), "untouched".to_string())].into()),
        ..Default::default()
    };
    cms.create(&Default::default(), &foreign)
        .await
        .expect("create foreign");
    h.create("taken", spec(2)).await;
    let api = h.widgets();
    let degraded = eventually("Degraded=True with reason NotOwned", || {
        let api = api.clone();
        async move {
            let w = api.get("taken").await.ok()?;
            condition(&w, "Degraded")
                .filter(|c| c.status == "True" && c.reason == "NotOwned")
                .cloned()
        }
    })
    .await;
    assert!(
        degraded.message.contains("someone-else"),
        "{}",
        degraded.message
    );
    let cm = h
        .config_maps("default")
        .get("taken-config")
        .await
        .expect("still there");
    assert_eq!(
        cm.data.and_then(|d| d.get("size").cloned()).as_deref(),
        Some("untouched")
    );

    // Disabled, the dependent is no longer this widget's business: the reconcile succeeds and
    // leaves the other controller's object alone.
    let disable = serde_json::json!({"spec": {"expose": false}});
    api.patch(
        "taken",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&disable),
    )
    .await
    .expect("disable");
    let w = ready(&h, "taken").await;
    assert!(!is_true(&w, "Degraded"));
    let cm = h
        .config_maps("default")
        .get("taken-config")
        .await
        .expect("not deleted");
    assert_eq!(
        cm.data.and_then(|d| d.get("size").cloned()).as_deref(),
        Some("untouched")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_disabled_dependent_is_deleted() {
    let mut h = Harness::start().await;
    h.create("toggle", spec(1)).await;
    ready(&h, "toggle").await;
    assert!(
        h.config_maps("default")
            .get_opt("toggle-config")
            .await
            .expect("get")
            .is_some()
    );
    let patch = serde_json::json!({"spec": {"expose": false}});
    h.widgets()
        .patch(
            "toggle",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    let cms = h.config_maps("default");
    eventually("the disabled ConfigMap to be deleted", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("toggle-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_cross_namespace_dependent_carries_owner_labels_and_is_deleted_on_cleanup() {
    let mut h = Harness::start().await;
    let ns = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some("shared".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Namespace>::all(h.env.client())
        .create(&Default::default(), &ns)
        .await
        .expect("namespace");
    let mut s = spec(4);
    s.config_namespace = Some("shared".into());
    let widget = h.create("far", s).await;
    ready(&h, "far").await;
    let cm = h
        .config_maps("shared")
        .get("far-config")
        .await
        .expect("ConfigMap in shared");
    assert!(cm.metadata.owner_references.unwrap_or_default().is_empty());
    let labels = cm.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(opkit::ensure::OWNER_UID_LABEL),
        widget.metadata.uid.as_ref()
    );
    assert_eq!(
        labels
            .get(opkit::ensure::OWNER_NAMESPACE_LABEL)
            .map(String::as_str),
        Some("default")
    );

    h.widgets()
        .delete("far", &Default::default())
        .await
        .expect("delete");
    let cms = h.config_maps("shared");
    eventually("the labelled ConfigMap to be deleted by cleanup", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("far-config")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    let widgets = h.widgets();
    eventually("the widget to be gone", || {
        let widgets = widgets.clone();
        async move { widgets.get_opt("far").await.ok()?.is_none().then_some(()) }
    })
    .await;
    h.stop().await;
}

/// A primary running one Deployment, its readiness read with no override of `Ensure::readiness`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "test.opkit.dev",
    version = "v1",
    kind = "Server",
    namespaced,
    status = "ServerStatus"
)]
#[operator(owns(Deployment))]
pub struct ServerSpec {
    /// Keeps the Deployment's pods unready (the embedded server's simulation honours it).
    pub hold: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ServerStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

struct ServerDeployment<'a>(&'a Server);

impl Ensure for ServerDeployment<'_> {
    type Object = Deployment;

    fn desired(&self) -> Deployment {
        let labels: std::collections::BTreeMap<String, String> =
            [("server".to_string(), self.0.name_any())].into();
        let annotations = self.0.spec.hold.then(|| {
            [(
                opkit_envtest::sim::NEVER_READY.to_string(),
                "true".to_string(),
            )]
            .into()
        });
        Deployment {
            metadata: ObjectMeta {
                name: Some(self.0.name_any()),
                annotations,
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "server".into(),
                            image: Some("nginx:1.27".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Reconcile for Server {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        let deployment = ctx.ensure(ServerDeployment(self)).await?;
        ctx.status().ready(
            deployment.is_ready(),
            "Deployment",
            &deployment.readiness().message,
        );
        Ok(Action::done())
    }
}

#[tokio::test]
async fn a_deployment_is_not_ready_until_rolled_out_without_an_override() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Server>().await.expect("crd");
    let running = opkit::Manager::new(env.client())
        .operator::<Server>()
        .start();
    let servers: Api<Server> = Api::namespaced(env.client(), "default");
    servers
        .create(
            &Default::default(),
            &Server::new("web", ServerSpec { hold: true }),
        )
        .await
        .expect("create");
    let deployments: Api<Deployment> = Api::namespaced(env.client(), "default");
    // The simulation ran the held pods (unready): the Deployment exists and reports them.
    eventually("the held Deployment to report its unready pod", || async {
        let d = deployments.get_opt("web").await.ok()??;
        (d.status?.replicas? == 1).then_some(())
    })
    .await;
    let ready = |servers: Api<Server>| async move {
        let s = servers.get("web").await.ok()?;
        let c = s
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        Some((c.status, c.message))
    };
    let (status, message) = eventually("Ready=False with the Deployment's count", || {
        let servers = servers.clone();
        async move {
            let (status, message) = ready(servers).await?;
            (message == "0/1 replicas ready").then_some((status, message))
        }
    })
    .await;
    assert_eq!(status, "False", "{message}");

    let release = serde_json::json!({"spec": {"hold": false}});
    servers
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&release),
        )
        .await
        .expect("release");
    eventually("Ready=True once the Deployment rolled out", || {
        let servers = servers.clone();
        async move {
            let (status, message) = ready(servers).await?;
            (status == "True" && message == "1/1 replicas ready").then_some(())
        }
    })
    .await;
    running.shutdown().await;
}
