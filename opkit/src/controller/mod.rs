//! Controllers: what one controller watches and how it is configured ([`Controller`]), and the
//! loop that runs it on kube-runtime.
//!
//! A controller reconciles objects of one kind `K` (its primaries) with the [`Reconcile<D>`]
//! implementation of `K`, handing every reconcile the data `D`. Any kind can be a primary: a
//! custom resource of the operator's own (built by `#[derive(Operator)]` through
//! [`Operator::controller`](crate::Operator::controller)), a custom resource of another project,
//! or a built-in kind, namespaced or cluster-scoped. Several controllers may run on the same kind
//! in one process; each has its own name, used in metrics, events, logs and the server-side apply
//! field manager.
//!
//! ```
//! use opkit::prelude::*;
//! use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
//!
//! struct Quotas {
//!     cpu: String,
//! }
//!
//! impl Reconcile<Quotas> for Namespace {
//!     async fn reconcile(&self, ctx: &Context<Self, Quotas>) -> opkit::Result<Action> {
//!         let _limit = &ctx.data().cpu;
//!         Ok(Action::done())
//!     }
//! }
//!
//! let quotas = opkit::Controller::<Namespace, _>::new("quotas", Quotas { cpu: "4".into() })
//!     .owns::<ResourceQuota>()
//!     .on_label_changes();
//! assert_eq!(quotas.name(), "quotas");
//! assert!(quotas.crd().is_none());
//! ```

mod queue;
mod run;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::reflector::ObjectRef;

use crate::backoff::Backoff;
use crate::index::{KeyFn, Primaries};
use crate::object::{self, Object};
use crate::rbac::{self, Rule};

pub(crate) use run::{Runtime, Shutdown, Synced, run};
pub(crate) use watches::CleanupFn;
use watches::Watches;

/// The configuration of one controller.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Metrics label, event reporter, log field.
    pub name: String,
    /// Finalizer added before any side effect, when the controller has cleanup.
    pub finalizer: Option<String>,
    /// Maximum concurrent reconciles (0: unbounded). Never two at once for the same object.
    pub concurrency: u16,
    /// Interval of the level-triggered resync when nothing changes.
    pub requeue: Duration,
    /// Field manager name for server-side apply.
    pub field_manager: String,
    /// RBAC rules beyond those derived from the primary, dependents and watches.
    pub rules: Vec<Rule>,
    /// Retry policy for failed reconciles.
    pub backoff: Backoff,
    /// Also reconcile when the primary's labels change.
    pub on_labels: bool,
    /// Also reconcile when the primary's annotations change.
    pub on_annotations: bool,
}

/// One controller: its primary kind `K`, what it owns and watches, its configuration and its
/// shared data `D`. Hand it to [`Manager::controller`](crate::Manager::controller) or
/// [`App::controller`](crate::App::controller); `K` must implement [`Reconcile<D>`](crate::Reconcile).
///
/// The defaults: no finalizer, 16 concurrent reconciles, hourly resync, field manager
/// `<name>-operator`, the standard [`Backoff`], reconciles on spec changes only. Reconciles
/// mostly wait on the API server, so 16 keep a 10,000-object resync moving; an unbounded default
/// would let a burst of new objects open as many connections and buffers at once (a third more
/// peak memory at 2,000 objects, `docs/performance.md`).
///
/// ```
/// use opkit::prelude::*;
/// use k8s_openapi::api::core::v1::Secret;
///
/// struct Replicator;
///
/// impl Reconcile<Replicator> for Secret {
///     async fn reconcile(&self, _ctx: &Context<Self, Replicator>) -> opkit::Result<Action> {
///         Ok(Action::done())
///     }
/// }
///
/// let controller = opkit::Controller::<Secret, _>::new("secret-replicator", Replicator)
///     .owns::<Secret>()
///     .concurrency(4)
///     .requeue(std::time::Duration::from_secs(600));
/// assert_eq!(controller.kinds(), ["Secret"]);
/// ```
pub struct Controller<K: Object, D = ()> {
    pub(crate) config: Config,
    pub(crate) watches: Watches<K>,
    pub(crate) indexes: Vec<(String, KeyFn<K>)>,
    pub(crate) data: Arc<D>,
    pub(crate) crd: Option<CustomResourceDefinition>,
}

impl<K: Object, D> Clone for Controller<K, D> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            watches: self.watches.clone(),
            indexes: self.indexes.clone(),
            data: self.data.clone(),
            crd: self.crd.clone(),
        }
    }
}

impl<K: Object, D> std::fmt::Debug for Controller<K, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.config.name)
            .field("kind", &K::kind(&()))
            .field("watches", &self.kinds())
            .finish_non_exhaustive()
    }
}

impl<K: Object, D: Send + Sync + 'static> Controller<K, D> {
    /// A controller named `name` on kind `K`, handing `data` to every reconcile.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("labeller", ());
    /// assert_eq!(c.name(), "labeller");
    /// ```
    pub fn new(name: impl Into<String>, data: D) -> Self {
        let name = name.into();
        Self {
            config: Config {
                field_manager: format!("{name}-operator"),
                name,
                finalizer: None,
                concurrency: 16,
                requeue: Duration::from_secs(3600),
                rules: Vec::new(),
                backoff: Backoff::default(),
                on_labels: false,
                on_annotations: false,
            },
            watches: Watches::default(),
            indexes: Vec::new(),
            data: Arc::new(data),
            crd: None,
        }
    }
}

impl<K: Object, D> Controller<K, D> {
    /// The controller's name: its metrics label, event reporter and log field.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// assert_eq!(opkit::Controller::<Namespace, _>::new("labeller", ()).name(), "labeller");
    /// ```
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Declares a finalizer: the controller has cleanup ([`Reconcile::cleanup`](crate::Reconcile::cleanup)).
    /// Finalizer names are domain-qualified, like `webapp.example.com/finalizer`.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).finalizer("tenants.example.com/cleanup");
    /// assert!(c.rules().iter().any(|r| r.resources == ["namespaces/finalizers"]));
    /// ```
    pub fn finalizer(mut self, name: impl Into<String>) -> Self {
        self.config.finalizer = Some(name.into());
        self
    }

    /// At most `n` reconciles at once (0: unbounded); never two of the same object.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).concurrency(4);
    /// # let _ = c;
    /// ```
    pub fn concurrency(mut self, n: u16) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Reconciles every object again after `every` when nothing changed (the resync).
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).requeue(std::time::Duration::from_secs(300));
    /// # let _ = c;
    /// ```
    pub fn requeue(mut self, every: Duration) -> Self {
        self.config.requeue = every;
        self
    }

    /// The field manager of server-side apply (default `<name>-operator`).
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).field_manager("tenant-controller");
    /// # let _ = c;
    /// ```
    pub fn field_manager(mut self, name: impl Into<String>) -> Self {
        self.config.field_manager = name.into();
        self
    }

    /// Adds an RBAC rule beyond those derived from what the controller watches and owns (a
    /// Secret it reads with its own client, say).
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ())
    ///     .rule(opkit::Rule::new("", &["secrets"], &["get"]));
    /// assert!(c.rules().contains(&opkit::Rule::new("", &["secrets"], &["get"])));
    /// ```
    pub fn rule(mut self, rule: Rule) -> Self {
        self.config.rules.push(rule);
        self
    }

    /// The retry policy of failed reconciles.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let fast = opkit::Backoff { base: std::time::Duration::from_millis(50), ..Default::default() };
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).backoff(fast);
    /// # let _ = c;
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Also reconciles when the primary's labels change. By default only changes of its spec
    /// (`metadata.generation`), finalizers and deletion do; kinds without a generation
    /// (Namespace, ConfigMap, Secret) reconcile on every change anyway.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).on_label_changes();
    /// # let _ = c;
    /// ```
    pub fn on_label_changes(mut self) -> Self {
        self.config.on_labels = true;
        self
    }

    /// Also reconciles when the primary's annotations change.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).on_annotation_changes();
    /// # let _ = c;
    /// ```
    pub fn on_annotation_changes(mut self) -> Self {
        self.config.on_annotations = true;
        self
    }

    /// Objects of kind `C` controlled by a primary (through its controller owner reference, or
    /// opkit's owner labels for dependents it cannot reference) are cached, and their changes
    /// reconcile that primary. Dependents written with [`Ensure`](crate::Ensure) should be owned.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ()).owns::<ResourceQuota>();
    /// assert_eq!(c.kinds(), ["ResourceQuota"]);
    /// ```
    pub fn owns<C: Object>(mut self) -> Self {
        self.watches.owns::<C>();
        self
    }

    /// Objects of kind `W` are cached, and a change of one reconciles the primaries `mapper`
    /// returns; `mapper` may look through the primaries' cache and indexes.
    ///
    /// ```
    /// use opkit::prelude::*;
    /// use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ())
    ///     .watches::<ConfigMap>(|cm, _namespaces| {
    ///         cm.namespace().map(|ns| opkit::ObjectRef::new(&ns)).into_iter().collect()
    ///     });
    /// assert_eq!(c.kinds(), ["ConfigMap"]);
    /// ```
    pub fn watches<W: Object>(
        mut self,
        mapper: impl Fn(&W, &Primaries<K>) -> Vec<ObjectRef<K>> + Send + Sync + 'static,
    ) -> Self {
        self.watches.watches::<W>(mapper);
        self
    }

    /// A secondary index `name` over the cache of primaries, keyed by `keys`; read it with
    /// [`Context::index`](crate::Context::index) or [`Primaries::index`].
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let c = opkit::Controller::<Namespace, _>::new("tenants", ())
    ///     .index("team", |ns: &Namespace| ns.metadata.labels.iter().flatten()
    ///         .filter(|(k, _)| *k == "team").map(|(_, v)| v.clone()).collect());
    /// # let _ = c;
    /// ```
    pub fn index(mut self, name: impl Into<String>, keys: KeyFn<K>) -> Self {
        self.indexes.push((name.into(), keys));
        self
    }

    /// Declares that this operator defines `K` with `crd`: printed by `crd`, installed on the
    /// embedded API server, and the source of the status schema (fields it does not declare
    /// are never written). `#[derive(Operator)]` sets it.
    ///
    /// ```
    /// use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub port: i32 }
    /// let c = opkit::Controller::<Site, _>::new("sites", ()).with_crd(Site::crd());
    /// assert_eq!(c.crd().and_then(|crd| crd.metadata.name.as_deref()), Some("sites.example.com"));
    /// ```
    pub fn with_crd(mut self, crd: CustomResourceDefinition) -> Self {
        self.crd = Some(crd);
        self
    }

    /// The CRD this controller's operator defines, if any.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Namespace;
    /// assert!(opkit::Controller::<Namespace, _>::new("tenants", ()).crd().is_none());
    /// ```
    pub fn crd(&self) -> Option<&CustomResourceDefinition> {
        self.crd.as_ref()
    }

    /// The kinds owned and watched, in the order they were added.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
    /// assert!(opkit::Controller::<Namespace, _>::new("tenants", ()).kinds().is_empty());
    /// ```
    pub fn kinds(&self) -> Vec<String> {
        self.watches.kinds()
    }

    /// The least-privilege RBAC rules of this controller, merged so each resource appears once
    /// (see [`crate::rbac`]).
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
    /// let rules = opkit::Controller::<Namespace, _>::new("tenants", ()).owns::<ResourceQuota>().rules();
    /// let namespaces = rules.iter().find(|r| r.resources == ["namespaces"]);
    /// assert_eq!(namespaces.map(|r| r.verbs.clone()), Some(vec!["get".into(), "list".into(), "watch".into()]));
    /// assert!(rules.iter().all(|r| !r.verbs.contains(&"*".to_string())));
    /// ```
    pub fn rules(&self) -> Vec<Rule> {
        let group = K::group(&()).into_owned();
        let plural = K::plural(&()).into_owned();
        let mut primary = vec!["get", "list", "watch"];
        if self.config.finalizer.is_some() {
            primary.push("patch");
        }
        let mut rules = vec![
            Rule::new(&group, &[&plural], &primary),
            Rule::new("events.k8s.io", &["events"], &["create", "patch"]),
        ];
        // Built-in kinds' status belongs to Kubernetes' own controllers; opkit writes
        // conditions only on custom resources.
        if !object::is_builtin::<K>() {
            rules.push(Rule::new(
                &group,
                &[&format!("{plural}/status")],
                &["get", "patch", "update"],
            ));
        }
        if self.config.finalizer.is_some() || self.watches.owns_any() {
            rules.push(Rule::new(
                &group,
                &[&format!("{plural}/finalizers")],
                &["update"],
            ));
        }
        rules.extend(self.watches.rules());
        rules.extend(self.config.rules.iter().cloned());
        rbac::merge(rules)
    }
}
