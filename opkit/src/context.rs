//! The `Context` a reconcile receives: client, caches, dependents, status, events, metrics, data.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use crate::backoff::FailureTracker;
use crate::cache::Caches;
use crate::ensure::{Ensure, Ensured};
use crate::error::{Error, Result};
use crate::events::{EventType, Events};
use crate::index::Primaries;
use crate::metrics::Metrics;
use crate::operator::{ApiScope, CleanupFn, Descriptor, Object};
use crate::status::{self, Draft, Shape, StatusWriter};

/// Values an operator hands to every reconcile (its own configuration, clients of external systems).
#[derive(Clone, Default)]
pub(crate) struct Data {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Data {
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }
}

/// What one controller shares between its reconciles.
pub(crate) struct Shared<K: Object> {
    pub client: Client,
    pub descriptor: Descriptor,
    pub events: Events,
    pub metrics: Metrics,
    pub caches: Caches,
    pub primaries: Primaries<K>,
    pub data: Data,
    pub failures: FailureTracker,
    /// Uids of primaries seen Ready in this process (for the time-to-first-Ready metric);
    /// entries leave when the primary is deleted.
    pub ready_seen: Arc<Mutex<HashSet<String>>>,
    /// Statuses this process wrote that the primary's cache may not show yet.
    pub written: Arc<crate::cache::OwnWrites<String, Value>>,
    /// Resolves once every cache of the controller has listed its kind.
    pub synced: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
    /// Resolves once shutdown was requested.
    pub shutdown: crate::controller::Shutdown,
    pub cleanups: Vec<CleanupFn>,
    pub shape: Shape,
}

/// Everything a reconcile needs besides the object itself.
///
/// ```
/// use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub secret: String }
/// async fn needs_secret(app: &App, ctx: &Context<App>) -> opkit::Result<()> {
///     let secrets: Api<Secret> = ctx.api(app.namespace().as_deref());
///     if secrets.get_opt(&app.spec.secret).await?.is_none() {
///         return Err(opkit::Error::invalid_spec(format!("secret {} not found", app.spec.secret)));
///     }
///     Ok(())
/// }
/// ```
pub struct Context<K: Object> {
    object: Arc<K>,
    shared: Arc<Shared<K>>,
    draft: Mutex<Draft>,
}

impl<K: Object> std::fmt::Debug for Context<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("controller", &self.shared.descriptor.name)
            .field("object", &ObjectRef::from_obj(&*self.object))
            .finish_non_exhaustive()
    }
}

impl<K: Object> Context<K> {
    pub(crate) fn new(object: Arc<K>, shared: Arc<Shared<K>>) -> Self {
        Self {
            object,
            shared,
            draft: Mutex::new(Draft::default()),
        }
    }

    /// The client, as configured for the operator.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// async fn version(ctx: &Context<App>) -> opkit::Result<String> {
    ///     Ok(ctx.client().apiserver_version().await?.git_version)
    /// }
    /// ```
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The object being reconciled (the same as `self` in `Reconcile::reconcile`), as the cache
    /// holds it: without `metadata.managedFields` and kubectl's last-applied annotation.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn image(ctx: &Context<App>) -> &str {
    ///     &ctx.object().spec.image
    /// }
    /// ```
    pub fn object(&self) -> &K {
        &self.object
    }

    /// The controller's name.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn name(ctx: &Context<App>) -> &str {
    ///     ctx.controller() // "app"
    /// }
    /// ```
    pub fn controller(&self) -> &str {
        &self.shared.descriptor.name
    }

    /// The field manager used for server-side apply.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn manager(ctx: &Context<App>) -> &str {
    ///     ctx.field_manager() // "app-operator"
    /// }
    /// ```
    pub fn field_manager(&self) -> &str {
        &self.shared.descriptor.field_manager
    }

    /// An `Api` for kind `C` in `namespace` (ignored for cluster-scoped kinds), or across all namespaces.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// async fn secret(ctx: &Context<App>, name: &str) -> opkit::Result<Option<Secret>> {
    ///     let secrets: Api<Secret> = ctx.api(ctx.object().namespace().as_deref());
    ///     Ok(secrets.get_opt(name).await?)
    /// }
    /// ```
    pub fn api<C: Object>(&self, namespace: Option<&str>) -> Api<C> {
        <C::Scope as ApiScope>::api::<C>(self.shared.client.clone(), namespace)
    }

    /// The metrics registry, to record the operator's own metrics.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn encoded(ctx: &Context<App>) -> String {
    ///     ctx.metrics().encode()
    /// }
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A value given to the manager with `Manager::data` (the operator's configuration).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// struct Settings { registry: String }
    /// fn image(ctx: &Context<App>) -> opkit::Result<String> {
    ///     let settings = ctx.data::<Settings>()?;
    ///     Ok(format!("{}/{}", settings.registry, ctx.object().spec.image))
    /// }
    /// ```
    pub fn data<T: Send + Sync + 'static>(&self) -> Result<&T> {
        self.shared.data.get::<T>().ok_or_else(|| {
            Error::Config(format!(
                "no value of type {} was given to the manager",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The controller's cache of primaries.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn count(ctx: &Context<App>) -> usize {
    ///     ctx.store().len()
    /// }
    /// ```
    pub fn store(&self) -> &Store<K> {
        self.shared.primaries.store()
    }

    /// The cache of primaries with its indexes.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn names(ctx: &Context<App>) -> Vec<String> {
    ///     ctx.primaries().state().iter().map(|a| a.name_any()).collect()
    /// }
    /// ```
    pub fn primaries(&self) -> &Primaries<K> {
        &self.shared.primaries
    }

    /// The primaries whose secondary index `index` has `key` ("all WebApps using image X"),
    /// from the cache: see [`crate::index`].
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(index(image = crate::app_image))]
    /// # pub struct AppSpec { pub image: String }
    /// fn app_image(app: &App) -> Vec<String> {
    ///     vec![app.spec.image.clone()]
    /// }
    /// fn sharing_my_image(ctx: &Context<App>) -> usize {
    ///     ctx.index("image", &ctx.object().spec.image).len()
    /// }
    /// # fn main() {}
    /// ```
    pub fn index(&self, index: &str, key: &str) -> Vec<Arc<K>> {
        self.shared.primaries.index(index, key)
    }

    /// Primaries in the cache matching `predicate` (a scan; prefer an index for hot paths).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn using_nginx(ctx: &Context<App>) -> usize {
    ///     ctx.find(|a| a.spec.image.starts_with("nginx")).len()
    /// }
    /// ```
    pub fn find(&self, predicate: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.store()
            .state()
            .into_iter()
            .filter(|o| predicate(o))
            .collect()
    }

    /// An object of an owned or watched kind from the controller's cache (without
    /// `metadata.managedFields` and kubectl's last-applied annotation, which caches drop),
    /// decoded from the cache's compact form on each call.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn config(ctx: &Context<App>) -> Option<std::sync::Arc<ConfigMap>> {
    ///     ctx.cached::<ConfigMap>(ctx.object().namespace().as_deref(), &ctx.object().name_any())
    /// }
    /// ```
    pub fn cached<C: Object>(&self, namespace: Option<&str>, name: &str) -> Option<Arc<C>> {
        self.shared.caches.get::<C>(namespace, name).map(Arc::new)
    }

    /// Makes the dependent `dependent` exist as desired; see [`Ensure`].
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// struct AppConfig<'a>(&'a App);
    /// impl Ensure for AppConfig<'_> {
    ///     type Object = ConfigMap;
    ///     fn desired(&self) -> ConfigMap {
    ///         ConfigMap { metadata: ObjectMeta { name: Some(self.0.name_any()), ..Default::default() }, ..Default::default() }
    ///     }
    /// }
    /// async fn configure(app: &App, ctx: &Context<App>) -> opkit::Result<bool> {
    ///     Ok(ctx.ensure(AppConfig(app)).await?.get().is_some())
    /// }
    /// ```
    pub async fn ensure<D: Ensure>(&self, dependent: D) -> Result<Ensured<D::Object>> {
        crate::ensure::ensure(self, &dependent).await
    }

    /// The status of the object being reconciled; see [`StatusWriter`].
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn report(ctx: &Context<App>) {
    ///     ctx.status().phase("Running").ready(true, "Available", "all replicas ready");
    /// }
    /// ```
    pub fn status(&self) -> StatusWriter<'_, K> {
        StatusWriter::new(self)
    }

    /// Publishes an event about the object being reconciled.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// async fn announce(ctx: &Context<App>) {
    ///     ctx.event(EventType::Normal, "Scaled", "scaled to 3 replicas").await;
    /// }
    /// ```
    pub async fn event(&self, type_: EventType, reason: &str, note: &str) {
        let reference = self.object.object_ref(&());
        self.shared
            .events
            .publish(&reference, None, type_, reason, note)
            .await;
    }

    /// Publishes an event about the object being reconciled that concerns `related` (a dependent).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// async fn announce(ctx: &Context<App>, config: &ConfigMap) {
    ///     ctx.event_about(config.object_ref(&()), EventType::Warning, "Drift", "the ConfigMap was edited by hand").await;
    /// }
    /// ```
    pub async fn event_about(
        &self,
        related: ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let reference = self.object.object_ref(&());
        self.shared
            .events
            .publish(&reference, Some(related), type_, reason, note)
            .await;
    }

    pub(crate) fn shared(&self) -> &Shared<K> {
        &self.shared
    }

    pub(crate) fn with_draft<T>(&self, f: impl FnOnce(&mut Draft) -> T) -> T {
        f(&mut self.draft.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The status of the object as received.
    pub(crate) fn live_status(&self) -> Option<Value> {
        serde_json::to_value(&*self.object)
            .ok()?
            .get("status")
            .cloned()
    }

    pub(crate) async fn flush_status(&self) -> Result<bool> {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
        let generation = self.object.meta().generation;
        let (base, new) = {
            let draft = self.draft.lock().unwrap_or_else(|p| p.into_inner());
            // Nothing reported: writing observedGeneration alone would claim an observation.
            if draft.fields.is_empty() && draft.conditions.is_empty() {
                return Ok(false);
            }
            let base = draft
                .base
                .clone()
                .or_else(|| {
                    let uid = self.object.uid()?;
                    self.shared
                        .written
                        .newer_than(&uid, Some(self.object.meta()))
                })
                .or_else(|| self.live_status())
                .unwrap_or(Value::Null);
            let new = status::compute(&base, &draft, &self.shared.shape, generation, &now)?;
            (base, new)
        };
        let unchanged = match &base {
            Value::Null => new.as_object().is_some_and(|m| m.is_empty()),
            base => *base == new,
        };
        if unchanged {
            return Ok(false);
        }
        let name = self
            .object
            .meta()
            .name
            .clone()
            .ok_or(Error::MissingField("metadata.name"))?;
        let api: Api<K> = self.api(self.object.namespace().as_deref());
        let patch = serde_json::json!({ "status": status::merge_patch(&base, &new) });
        let written = api
            .patch_status(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map_err(|e| {
                Error::kube(
                    format!(
                        "writing the status of {}",
                        ObjectRef::from_obj(&*self.object)
                    ),
                    e,
                )
            })?;
        if let Some(uid) = written.uid() {
            self.shared.written.record(uid, written.meta(), new.clone());
        }
        self.observe_first_ready(&base, &new);
        self.with_draft(|d| d.base = Some(new));
        Ok(true)
    }

    fn observe_first_ready(&self, old: &Value, new: &Value) {
        if status::condition_is_true(old, status::READY)
            || !status::condition_is_true(new, status::READY)
        {
            return;
        }
        let Some(uid) = self.object.uid() else { return };
        let first = self
            .shared
            .ready_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid);
        if let (true, Some(created)) = (first, self.object.meta().creation_timestamp.as_ref()) {
            let took = jiff::Timestamp::now().duration_since(created.0);
            if let Ok(took) = std::time::Duration::try_from(took) {
                self.shared
                    .metrics
                    .record_time_to_ready(&self.shared.descriptor.name, took);
            }
        }
    }
}
