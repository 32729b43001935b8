//! The `Context` a reconcile receives: the object, the controller's data, client, caches,
//! dependents, status, events and metrics.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};

use crate::backoff::FailureTracker;
use crate::cache::Caches;
use crate::controller::{CleanupFn, Config};
use crate::ensure::{self, Ensure, Ensured, Owner};
use crate::error::Result;
use crate::events::{EventType, Events};
use crate::index::Primaries;
use crate::metrics::Metrics;
use crate::object::{self, Object};
use crate::shard::Scope;
use crate::status::{self, Draft, Sink, StatusWriter};

/// What one controller shares between its reconciles.
pub(crate) struct Shared<K: Object, D> {
    pub client: Client,
    pub config: Config,
    pub events: Events,
    pub metrics: Metrics,
    pub caches: Caches,
    pub primaries: Primaries<K>,
    pub data: Arc<D>,
    pub failures: FailureTracker,
    pub status: Arc<Sink>,
    pub cleanups: Vec<CleanupFn>,
    /// This replica's shard, when sharded: dependents carry its label.
    pub shard: Option<Arc<Scope>>,
}

/// Everything a reconcile needs besides the object itself. `D` is the controller's data
/// ([`Context::data`]).
///
/// ```
/// use opkit::prelude::*;
/// use opkit::k8s::Secret;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
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
pub struct Context<K: Object, D = ()> {
    object: Arc<K>,
    shared: Arc<Shared<K, D>>,
    draft: Mutex<Draft>,
}

impl<K: Object, D> std::fmt::Debug for Context<K, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("controller", &self.shared.config.name)
            .field("object", &ObjectRef::from_obj(&*self.object))
            .finish_non_exhaustive()
    }
}

impl<K: Object, D> Context<K, D> {
    pub(crate) fn new(object: Arc<K>, shared: Arc<Shared<K, D>>) -> Self {
        Self {
            object,
            shared,
            draft: Mutex::new(Draft::default()),
        }
    }

    /// The controller's data, as given to [`Controller::new`](crate::Controller::new) or
    /// [`Operator::controller`](crate::Operator::controller).
    ///
    /// ```
    /// use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// struct Settings { registry: String }
    /// fn image(ctx: &Context<App, Settings>) -> String {
    ///     format!("{}/{}", ctx.data().registry, ctx.object().spec.image)
    /// }
    /// ```
    pub fn data(&self) -> &D {
        &self.shared.data
    }

    /// The client, as configured for the operator.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn name(ctx: &Context<App>) -> &str {
    ///     ctx.controller() // "app"
    /// }
    /// ```
    pub fn controller(&self) -> &str {
        &self.shared.config.name
    }

    /// The field manager used for server-side apply.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn manager(ctx: &Context<App>) -> &str {
    ///     ctx.field_manager() // "app-operator"
    /// }
    /// ```
    pub fn field_manager(&self) -> &str {
        &self.shared.config.field_manager
    }

    /// An `Api` for kind `C` in `namespace` (ignored for cluster-scoped kinds), or across all namespaces.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
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
        object::api::<C>(self.shared.client.clone(), namespace)
    }

    /// The metrics registry, to record the operator's own metrics.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
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

    /// The cache of primaries with its indexes.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn using_nginx(ctx: &Context<App>) -> usize {
    ///     ctx.find(|a| a.spec.image.starts_with("nginx")).len()
    /// }
    /// ```
    pub fn find(&self, predicate: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.shared
            .primaries
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
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
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
    pub async fn ensure<E: Ensure>(&self, dependent: E) -> Result<Ensured<E::Object>> {
        ensure::ensure(&self.owner(), &dependent).await
    }

    fn owner(&self) -> Owner<'_> {
        let shared = &*self.shared;
        let reference = self.object.controller_owner_ref(&()).map(|mut r| {
            r.block_owner_deletion = Some(true);
            r
        });
        Owner {
            client: &shared.client,
            caches: &shared.caches,
            metrics: &shared.metrics,
            events: &shared.events,
            controller: &shared.config.name,
            field_manager: &shared.config.field_manager,
            has_finalizer: shared.config.finalizer.is_some(),
            shard_label: shared.shard.as_ref().map(|s| s.dependent_label()),
            kind: K::kind(&()).into_owned(),
            namespaced: object::is_namespaced::<K>(),
            meta: self.object.meta(),
            reference,
            regarding: self.object.object_ref(&()),
        }
    }

    /// The status of the object being reconciled; see [`StatusWriter`].
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// fn report(ctx: &Context<App>) {
    ///     ctx.status().phase("Running").ready(true, "Available", "all replicas ready");
    /// }
    /// ```
    pub fn status(&self) -> StatusWriter<'_, K> {
        StatusWriter::new(&self.object, &self.draft, &self.shared.status)
    }

    /// Publishes an event about the object being reconciled.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
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
    /// # use opkit::k8s::*;
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

    pub(crate) fn shared(&self) -> &Shared<K, D> {
        &self.shared
    }

    pub(crate) fn with_draft<T>(&self, f: impl FnOnce(&mut Draft) -> T) -> T {
        f(&mut self.draft.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes the status draft if it changes the status.
    pub(crate) async fn flush_status(&self) -> Result<bool> {
        self.shared.status.flush(&*self.object, &self.draft).await
    }

    /// Whether the live status has a condition of type `type_`.
    pub(crate) fn has_condition(&self, type_: &str) -> bool {
        status::live_status(&*self.object)
            .ok()
            .and_then(|s| s.get("conditions").cloned())
            .and_then(|c| c.as_array().cloned())
            .into_iter()
            .flatten()
            .any(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
    }
}
