//! The `Operator` description (what `#[derive(Operator)]` generates) and the `Reconcile` contract.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::runtime::controller::{ReconcileRequest, trigger_with};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::Backoff;
use crate::cache::{Caches, Compact, prune};
use crate::context::Context;
use crate::error::Result;
use crate::index::{Indexes, Primaries};
use crate::manifests::Rule;

/// Label on a dependent that cannot carry an owner reference (cluster-scoped or in another
/// namespace than its primary): the uid of the primary.
///
/// ```
/// assert_eq!(opkit::operator::OWNER_UID_LABEL, "opkit.dev/owner-uid");
/// ```
pub const OWNER_UID_LABEL: &str = "opkit.dev/owner-uid";
/// Label on such a dependent: the name of the primary.
///
/// ```
/// assert_eq!(opkit::operator::OWNER_NAME_LABEL, "opkit.dev/owner-name");
/// ```
pub const OWNER_NAME_LABEL: &str = "opkit.dev/owner-name";
/// Label on such a dependent: the namespace of the primary (absent for cluster-scoped primaries).
///
/// ```
/// assert_eq!(opkit::operator::OWNER_NAMESPACE_LABEL, "opkit.dev/owner-namespace");
/// ```
pub const OWNER_NAMESPACE_LABEL: &str = "opkit.dev/owner-namespace";

/// Builds an [`Api`] for a type whatever its scope (namespaced or cluster-scoped).
///
/// Implemented for the two scope markers of k8s-openapi; generic code reaches it through
/// `<K::Scope as ApiScope>::api::<K>(client, namespace)`.
///
/// ```
/// use opkit::operator::ApiScope;
/// use k8s_openapi::api::apps::v1::Deployment;
/// # fn f(client: kube::Client) {
/// let deployments: kube::Api<Deployment> =
///     <k8s_openapi::NamespaceResourceScope as ApiScope>::api(client, Some("default"));
/// # }
/// assert!(<k8s_openapi::NamespaceResourceScope as ApiScope>::NAMESPACED);
/// ```
pub trait ApiScope {
    /// Whether objects of this scope live in a namespace.
    const NAMESPACED: bool;
    /// An `Api` in `namespace` (ignored for cluster-scoped types), or across all namespaces.
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = Self>;
}

impl ApiScope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = Self>,
    {
        match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

impl ApiScope for ClusterResourceScope {
    const NAMESPACED: bool = false;
    fn api<K>(client: Client, _namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = Self>,
    {
        Api::all(client)
    }
}

/// A Kubernetes type opkit can read, write and watch.
///
/// Blanket-implemented for every static k8s-openapi type and every `#[derive(CustomResource)]` type.
///
/// ```
/// fn takes<T: opkit::operator::Object>() {}
/// takes::<k8s_openapi::api::core::v1::Service>();
/// ```
pub trait Object:
    Resource<DynamicType = (), Scope: ApiScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Object for T where
    T: Resource<DynamicType = (), Scope: ApiScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The static description of an operator: what `#[derive(Operator)]` reads from `#[operator(...)]`.
///
/// ```
/// use std::time::Duration;
/// let d = opkit::Descriptor::new("webapp")
///     .finalizer("webapp.example.com/finalizer")
///     .concurrency(4)
///     .requeue(Duration::from_secs(300));
/// assert_eq!(d.field_manager, "webapp-operator");
/// assert_eq!(d.finalizer.as_deref(), Some("webapp.example.com/finalizer"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Descriptor {
    /// Controller name: metrics label, event reporter, log field.
    pub name: String,
    /// Finalizer added before any side effect when the operator has cleanup.
    pub finalizer: Option<String>,
    /// Maximum concurrent reconciles (0: unbounded). Never two at once for the same object.
    pub concurrency: u16,
    /// Interval of the level-triggered resync when nothing changes.
    pub requeue: Duration,
    /// Field manager name for server-side apply.
    pub field_manager: String,
    /// RBAC rules beyond those opkit derives from the primary, dependents and watches.
    pub rbac: Vec<Rule>,
    /// Retry policy for failed reconciles.
    pub backoff: Backoff,
    /// Also reconcile when the primary's labels change (besides generation).
    pub filter_labels: bool,
    /// Also reconcile when the primary's annotations change (besides generation).
    pub filter_annotations: bool,
}

impl Descriptor {
    /// A descriptor with the defaults: no finalizer, 16 concurrent reconciles, hourly resync,
    /// field manager `<name>-operator`.
    ///
    /// Reconciles mostly wait on the API server, so 16 keep a 10,000-object resync moving; an
    /// unbounded default would let a burst of new objects open as many connections and buffers
    /// at once (measured: a third more peak memory at 2,000 objects, `docs/performance.md`).
    ///
    /// ```
    /// let d = opkit::Descriptor::new("cache");
    /// assert_eq!((d.concurrency, d.requeue.as_secs()), (16, 3600));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            field_manager: format!("{name}-operator"),
            name,
            finalizer: None,
            concurrency: 16,
            requeue: Duration::from_secs(3600),
            rbac: Vec::new(),
            backoff: Backoff::default(),
            filter_labels: false,
            filter_annotations: false,
        }
    }

    /// Sets the finalizer (the operator has a cleanup step).
    ///
    /// ```
    /// let d = opkit::Descriptor::new("db").finalizer("db.example.com/backup");
    /// assert!(d.finalizer.is_some());
    /// ```
    pub fn finalizer(mut self, name: impl Into<String>) -> Self {
        self.finalizer = Some(name.into());
        self
    }

    /// Sets the maximum number of concurrent reconciles.
    ///
    /// ```
    /// assert_eq!(opkit::Descriptor::new("db").concurrency(8).concurrency, 8);
    /// ```
    pub fn concurrency(mut self, n: u16) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the resync interval.
    ///
    /// ```
    /// let d = opkit::Descriptor::new("db").requeue(std::time::Duration::from_secs(60));
    /// assert_eq!(d.requeue.as_secs(), 60);
    /// ```
    pub fn requeue(mut self, every: Duration) -> Self {
        self.requeue = every;
        self
    }

    /// Sets the server-side apply field manager.
    ///
    /// ```
    /// assert_eq!(opkit::Descriptor::new("db").field_manager("db-ctl").field_manager, "db-ctl");
    /// ```
    pub fn field_manager(mut self, name: impl Into<String>) -> Self {
        self.field_manager = name.into();
        self
    }

    /// Adds an RBAC rule.
    ///
    /// ```
    /// let d = opkit::Descriptor::new("db").rule(opkit::Rule::new("", &["secrets"], &["get"]));
    /// assert_eq!(d.rbac.len(), 1);
    /// ```
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rbac.push(rule);
        self
    }

    /// Sets the retry policy.
    ///
    /// ```
    /// let fast = opkit::Backoff { base: std::time::Duration::from_millis(100), ..Default::default() };
    /// assert_eq!(opkit::Descriptor::new("db").backoff(fast.clone()).backoff, fast);
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Also reconcile on label and/or annotation changes of the primary.
    ///
    /// ```
    /// let d = opkit::Descriptor::new("db").filter_metadata(true, false);
    /// assert!(d.filter_labels && !d.filter_annotations);
    /// ```
    pub fn filter_metadata(mut self, labels: bool, annotations: bool) -> Self {
        self.filter_labels = labels;
        self.filter_annotations = annotations;
        self
    }
}

/// A custom resource managed by an operator. Implemented by `#[derive(Operator)]`.
///
/// ```
/// use opkit::prelude::*;
///
/// #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "example.com", version = "v1", kind = "Cache", namespaced)]
/// #[operator(owns(ConfigMap), concurrency = 2)]
/// pub struct CacheSpec {
///     pub size: i32,
/// }
///
/// assert_eq!(<Cache as Operator>::descriptor().concurrency, 2);
/// assert_eq!(opkit::Triggers::<Cache>::of().kinds(), vec!["ConfigMap".to_string()]);
/// ```
pub trait Operator: Object + CustomResourceExt {
    /// The operator's configuration.
    fn descriptor() -> Descriptor;

    /// Registers owned and watched kinds.
    fn triggers(triggers: &mut Triggers<Self>) {
        let _ = triggers;
    }

    /// Registers secondary indexes over the cache of primaries.
    fn indexes(indexes: &mut Indexes<Self>) {
        let _ = indexes;
    }
}

/// What the reconcile asks for next.
///
/// ```
/// use std::time::Duration;
/// let a = opkit::Action::requeue_after(Duration::from_secs(30));
/// assert_eq!(a.requeue(), Some(Some(Duration::from_secs(30))));
/// assert_eq!(opkit::Action::done().requeue(), None);
/// assert_eq!(opkit::Action::await_change().requeue(), Some(None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue: Option<Option<Duration>>,
}

impl Action {
    /// Converged: look again after the operator's resync interval (`requeue = "..."`).
    ///
    /// ```
    /// assert_eq!(opkit::Action::done().requeue(), None);
    /// ```
    pub const fn done() -> Self {
        Self { requeue: None }
    }

    /// Look again after `after`, even if nothing changes.
    ///
    /// ```
    /// let a = opkit::Action::requeue_after(std::time::Duration::from_secs(10));
    /// assert_eq!(a.requeue(), Some(Some(std::time::Duration::from_secs(10))));
    /// ```
    pub const fn requeue_after(after: Duration) -> Self {
        Self {
            requeue: Some(Some(after)),
        }
    }

    /// Look again only when something changes.
    ///
    /// ```
    /// assert_eq!(opkit::Action::await_change().requeue(), Some(None));
    /// ```
    pub const fn await_change() -> Self {
        Self {
            requeue: Some(None),
        }
    }

    /// `None` for the default interval, `Some(None)` to wait for a change, `Some(Some(d))` for `d`.
    ///
    /// ```
    /// assert_eq!(opkit::Action::done().requeue(), None);
    /// ```
    pub fn requeue(&self) -> Option<Option<Duration>> {
        self.requeue
    }
}

/// The reconcile contract of an operator.
///
/// `reconcile` is level-triggered: it is called on creation, every spec change, every change of a
/// dependent, after a restart and on resync, and must make the world match the spec each time.
/// `cleanup` runs once the primary is being deleted, when the operator declared a finalizer; the
/// finalizer is removed only after it succeeds.
///
/// ```
/// use opkit::prelude::*;
///
/// #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "example.com", version = "v1", kind = "Echo", namespaced)]
/// #[operator(owns(ConfigMap))]
/// pub struct EchoSpec {
///     pub text: String,
/// }
///
/// struct EchoConfig<'a>(&'a Echo);
///
/// impl Ensure for EchoConfig<'_> {
///     type Object = ConfigMap;
///     fn desired(&self) -> ConfigMap {
///         ConfigMap {
///             metadata: ObjectMeta { name: Some(self.0.name_any()), ..Default::default() },
///             data: Some([("text".to_string(), self.0.spec.text.clone())].into()),
///             ..Default::default()
///         }
///     }
/// }
///
/// impl Reconcile for Echo {
///     async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
///         ctx.ensure(EchoConfig(self)).await?;
///         ctx.status().ready(true, "Echoing", "the ConfigMap is up to date");
///         Ok(Action::done())
///     }
/// }
/// ```
pub trait Reconcile: Operator {
    /// Makes the world match this object's spec.
    fn reconcile(&self, ctx: &Context<Self>) -> impl Future<Output = Result<Action>> + Send;

    /// Releases what owner references cannot (external resources); runs before the finalizer is removed.
    fn cleanup(&self, ctx: &Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

pub(crate) type TriggerStream<K> = BoxStream<'static, Result<ReconcileRequest<K>, watcher::Error>>;
type StartFn<K> = Box<dyn FnOnce(Client, &Caches, Primaries<K>) -> TriggerStream<K> + Send>;
pub(crate) type CleanupFn = Arc<
    dyn Fn(
            Client,
            String,
        ) -> futures::future::BoxFuture<'static, std::result::Result<usize, kube::Error>>
        + Send
        + Sync,
>;

struct Relation<K: Object> {
    kind: String,
    rule: Rule,
    start: StartFn<K>,
    cleanup: Option<CleanupFn>,
}

/// The kinds whose changes trigger a reconcile of the primary `K`.
///
/// `#[operator(owns(...), watches(...))]` fills it; hand-written `Operator` impls call
/// [`Triggers::owns`] and [`Triggers::watches`] themselves.
///
/// ```
/// use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub secret: String }
/// fn secret_users(secret: &Secret, apps: &opkit::index::Primaries<App>) -> Vec<opkit::ObjectRef<App>> {
///     apps.state()
///         .iter()
///         .filter(|a| Some(&a.spec.secret) == secret.metadata.name.as_ref())
///         .map(|a| opkit::ObjectRef::from_obj(&**a))
///         .collect()
/// }
/// let mut t = opkit::Triggers::<App>::default();
/// t.owns::<Deployment>().watches::<Secret>(secret_users);
/// assert_eq!(t.kinds(), vec!["Deployment".to_string(), "Secret".to_string()]);
/// ```
pub struct Triggers<K: Object> {
    relations: Vec<Relation<K>>,
}

impl<K: Object> Default for Triggers<K> {
    fn default() -> Self {
        Self {
            relations: Vec::new(),
        }
    }
}

impl<K: Object> Debug for Triggers<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl<K: Operator> Triggers<K> {
    /// The triggers `K` declares.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// assert_eq!(opkit::Triggers::<App>::of().kinds(), ["ConfigMap"]);
    /// ```
    pub fn of() -> Self {
        let mut t = Self::default();
        K::triggers(&mut t);
        t
    }
}

impl<K: Object> Triggers<K> {
    /// Objects of kind `C` controlled by a `K` (owner reference, or opkit's owner labels for
    /// cross-namespace and cluster-scoped dependents) trigger a reconcile of that `K`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// let mut t = opkit::Triggers::<App>::default();
    /// t.owns::<Deployment>().owns::<Service>();
    /// assert_eq!(t.kinds(), ["Deployment", "Service"]);
    /// ```
    pub fn owns<C: Object>(&mut self) -> &mut Self {
        let kind = C::kind(&()).into_owned();
        let start: StartFn<K> = Box::new(|client, caches, _primary| {
            let (store, mut writer) = reflector::store::<Compact<C>>();
            let cache = caches.insert(store);
            let objects = watcher(Api::<C>::all(client), watcher::Config::default())
                .default_backoff()
                .modify(prune)
                .inspect_ok(move |event| cache.store(&mut writer, event))
                .touched_objects();
            trigger_with(objects, |obj: C| owners_of::<K>(&obj)).boxed()
        });
        let cleanup: CleanupFn = Arc::new(|client: Client, uid: String| {
            Box::pin(async move {
                let api = Api::<C>::all(client.clone());
                let selector = format!("{OWNER_UID_LABEL}={uid}");
                let list = api
                    .list(&kube::api::ListParams::default().labels(&selector))
                    .await?;
                let mut deleted: usize = 0;
                for obj in list.items {
                    let name = obj.name_any();
                    let scoped = <C::Scope as ApiScope>::api::<C>(
                        client.clone(),
                        obj.namespace().as_deref(),
                    );
                    match scoped.delete(&name, &Default::default()).await {
                        Ok(_) => deleted += 1,
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(deleted)
            }) as futures::future::BoxFuture<'static, _>
        });
        self.relations.push(Relation {
            rule: Rule::for_kind::<C>(&["get", "list", "watch", "create", "patch", "delete"]),
            kind,
            start,
            cleanup: Some(cleanup),
        });
        self
    }

    /// Objects of kind `W` trigger reconciles of the primaries `mapper` returns; `mapper` may
    /// look through the primaries' cache (a secondary index).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn none(_: &Secret, _: &opkit::index::Primaries<App>) -> Vec<ObjectRef<App>> { Vec::new() }
    /// let mut t = opkit::Triggers::<App>::default();
    /// t.watches::<Secret>(none);
    /// assert_eq!(t.rules()[0].verbs, ["get", "list", "watch"]);
    /// ```
    pub fn watches<W: Object>(
        &mut self,
        mapper: fn(&W, &Primaries<K>) -> Vec<ObjectRef<K>>,
    ) -> &mut Self {
        let kind = W::kind(&()).into_owned();
        let start: StartFn<K> = Box::new(move |client, caches, primary| {
            let (store, mut writer) = reflector::store::<Compact<W>>();
            let cache = caches.insert(store);
            let objects = watcher(Api::<W>::all(client), watcher::Config::default())
                .default_backoff()
                .modify(prune)
                .inspect_ok(move |event| cache.store(&mut writer, event))
                .touched_objects();
            trigger_with(objects, move |obj: W| mapper(&obj, &primary)).boxed()
        });
        self.relations.push(Relation {
            rule: Rule::for_kind::<W>(&["get", "list", "watch"]),
            kind,
            start,
            cleanup: None,
        });
        self
    }

    /// The kinds registered, in order.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// assert!(opkit::Triggers::<App>::default().kinds().is_empty());
    /// ```
    pub fn kinds(&self) -> Vec<String> {
        self.relations.iter().map(|r| r.kind.clone()).collect()
    }

    /// The RBAC rules the registered kinds need.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// let mut t = opkit::Triggers::<App>::default();
    /// t.owns::<ConfigMap>();
    /// assert_eq!(t.rules()[0].resources, ["configmaps"]);
    /// ```
    pub fn rules(&self) -> Vec<Rule> {
        self.relations.iter().map(|r| r.rule.clone()).collect()
    }

    pub(crate) fn start(
        self,
        client: &Client,
        caches: &Caches,
        primary: &Primaries<K>,
    ) -> (Vec<TriggerStream<K>>, Vec<CleanupFn>) {
        let mut streams = Vec::new();
        let mut cleanups = Vec::new();
        for relation in self.relations {
            streams.push((relation.start)(client.clone(), caches, primary.clone()));
            cleanups.extend(relation.cleanup);
        }
        (streams, cleanups)
    }
}

/// The primaries controlling a dependent: through its controller owner reference, or through
/// opkit's owner labels when a reference cannot be used.
fn owners_of<K: Object>(obj: &impl Resource) -> Vec<ObjectRef<K>> {
    let meta = obj.meta();
    let api_version = K::api_version(&());
    let kind = K::kind(&());
    let mut owners: Vec<ObjectRef<K>> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true) && r.api_version == api_version && r.kind == kind)
        .map(|r| {
            let reference = ObjectRef::new(&r.name);
            match &meta.namespace {
                Some(ns) if <K::Scope as ApiScope>::NAMESPACED => reference.within(ns),
                _ => reference,
            }
        })
        .collect();
    if let Some(labels) = &meta.labels
        && labels.contains_key(OWNER_UID_LABEL)
        && let Some(name) = labels.get(OWNER_NAME_LABEL)
    {
        let reference = ObjectRef::new(name);
        owners.push(match labels.get(OWNER_NAMESPACE_LABEL) {
            Some(ns) => reference.within(ns),
            None => reference,
        });
    }
    owners
}

/// The primary's predicate: spec (generation), finalizers and deletion, plus labels and
/// annotations when asked. Status-only updates never pass.
pub(crate) fn primary_predicate<K: Resource>(
    labels: bool,
    annotations: bool,
) -> impl Fn(&K) -> Option<u64> + Send + 'static {
    move |obj: &K| {
        use std::hash::{Hash, Hasher};
        let meta = obj.meta();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        meta.generation.hash(&mut h);
        meta.finalizers.hash(&mut h);
        meta.deletion_timestamp.is_some().hash(&mut h);
        if labels {
            meta.labels.hash(&mut h);
        }
        if annotations {
            meta.annotations.hash(&mut h);
        }
        Some(h.finish())
    }
}
