//! The AppConfig operator: the rendered ConfigMap, and a rolling restart of the Deployments
//! using it whenever its data changes.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{ListParams, Patch, PatchParams};
use opkit::k8s::*;
use opkit::prelude::*;

use super::render::{hash, render};
use super::types::AppConfig;

/// Prefix of the pod template annotation holding the hash of a ConfigMap's data.
pub const CHECKSUM_PREFIX: &str = "checksum.config.example.com/";

impl Reconcile for AppConfig {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        let data = render(&self.spec).map_err(|e| opkit::Error::invalid_spec(e.to_string()))?;
        let digest = hash(&data);
        let name = config_map_name(self);
        let status = self.status.clone().unwrap_or_default();
        // A renamed application leaves its old ConfigMap behind; delete it.
        if let Some(old) = status.config_map.as_ref().filter(|old| **old != name) {
            ctx.ensure(RetiredConfigMap(old)).await?;
        }
        let keys = data.len();
        ctx.ensure(AppConfigMap { app: self, name: &name, data }).await?;

        let namespace = self.namespace().unwrap_or_default();
        let deployments: Api<Deployment> = ctx.api(Some(&namespace));
        let list = deployments.list(&ListParams::default()).await.map_err(|e| {
            opkit::Error::kube(format!("listing the Deployments of {namespace}"), e)
        })?;
        let annotation = format!("{CHECKSUM_PREFIX}{name}");
        let mut users = Vec::new();
        for deployment in list.items.iter().filter(|d| config_maps_used(d).contains(&name)) {
            users.push(deployment.name_any());
            if !needs_roll(deployment, &annotation, &digest, status.config_hash.as_deref()) {
                continue;
            }
            let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {&annotation: &digest}}}}});
            let params = PatchParams {
                field_manager: Some(ctx.field_manager().to_owned()),
                ..Default::default()
            };
            deployments
                .patch(&deployment.name_any(), &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    opkit::Error::kube(
                        format!("rolling Deployment {namespace}/{}", deployment.name_any()),
                        e,
                    )
                })?;
            let note = format!(
                "Rolled Deployment {namespace}/{}: ConfigMap {name} changed",
                deployment.name_any()
            );
            ctx.event_about(
                deployment.object_ref(&()),
                EventType::Normal,
                "RolledDeployment",
                &note,
            )
            .await;
        }
        let message = format!(
            "{name} holds {keys} keys for {}; used by {} Deployments",
            self.spec.environment.as_str(),
            users.len()
        );
        ctx.status()
            .update(|s| {
                s.config_map = Some(name.clone());
                s.config_hash = Some(digest);
                s.deployments = users;
            })?
            .ready(true, "Rendered", message);
        Ok(Action::done())
    }
}

/// `<application>-config`: the ConfigMap an AppConfig renders.
pub fn config_map_name(app: &AppConfig) -> String {
    format!("{}-config", app.spec.application)
}

/// Whether a Deployment must be rolled to the data hashed as `digest`.
///
/// A stamped Deployment rolls when its stamp differs. An unstamped one started after the data
/// last changed, unless the data changed since every user was last rolled (`rolled_to`).
fn needs_roll(
    deployment: &Deployment,
    annotation: &str,
    digest: &str,
    rolled_to: Option<&str>,
) -> bool {
    let stamp = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(annotation));
    match stamp {
        Some(stamp) => stamp != digest,
        None => rolled_to.is_some_and(|previous| previous != digest),
    }
}

/// The ConfigMaps a Deployment's pod template reads (envFrom, env valueFrom, or a volume).
pub fn config_maps_used(deployment: &Deployment) -> BTreeSet<String> {
    let Some(pod) = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        return BTreeSet::new();
    };
    let mut names = BTreeSet::new();
    for c in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
        names.extend(
            c.env_from
                .iter()
                .flatten()
                .filter_map(|e| e.config_map_ref.as_ref())
                .map(|r| r.name.clone()),
        );
        let refs = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value_from.as_ref()?.config_map_key_ref.as_ref());
        names.extend(refs.map(|r| r.name.clone()));
    }
    for v in pod.volumes.iter().flatten() {
        names.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        let sources = v.projected.as_ref().and_then(|p| p.sources.as_ref()).into_iter().flatten();
        names.extend(sources.filter_map(|s| s.config_map.as_ref()).map(|c| c.name.clone()));
    }
    names
}

/// Index keys: the ConfigMap an AppConfig renders, as `<namespace>/<name>`.
pub fn config_map_key(app: &AppConfig) -> Vec<String> {
    vec![format!("{}/{}", app.namespace().unwrap_or_default(), config_map_name(app))]
}

/// The AppConfigs to reconcile when a Deployment changes: those whose ConfigMap it reads.
pub fn appconfigs_used_by(
    deployment: &Deployment,
    apps: &opkit::Primaries<AppConfig>,
) -> Vec<opkit::ObjectRef<AppConfig>> {
    let namespace = deployment.namespace().unwrap_or_default();
    let used = config_maps_used(deployment);
    used.iter()
        .flat_map(|name| apps.index_refs("config_map", &format!("{namespace}/{name}")))
        .collect()
}

struct AppConfigMap<'a> {
    app: &'a AppConfig,
    name: &'a str,
    data: BTreeMap<String, String>,
}

impl Ensure for AppConfigMap<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        let labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), self.app.spec.application.clone()),
            ("app.kubernetes.io/managed-by".to_owned(), "appconfig-operator".to_owned()),
            (
                "config.example.com/environment".to_owned(),
                self.app.spec.environment.as_str().to_owned(),
            ),
        ]);
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.to_owned()),
                labels: Some(labels),
                ..Default::default()
            },
            data: Some(self.data.clone()),
            ..Default::default()
        }
    }
}

/// The ConfigMap of a former application name: disabled, so `ensure` deletes it if it is ours.
struct RetiredConfigMap<'a>(&'a str);

impl Ensure for RetiredConfigMap<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some(self.0.to_owned()), ..Default::default() },
            ..Default::default()
        }
    }

    fn enabled(&self) -> bool {
        false
    }
}
