//! Runs one or several controllers in one process, sharing a client and a metrics registry;
//! optionally behind leader election ([`LeaderElection`]) or split across replicas
//! ([`Sharding`]), with health, readiness and metrics endpoints ([`crate::probes`]) and a
//! bounded drain on shutdown.
//!
//! With leader election, a replica that does not lead is a *warm* standby by default: its
//! watches run and its caches and queue stay current, only its reconciles wait; once it
//! acquires the Lease it reconciles at once instead of first listing every kind
//! ([`Manager::warm_standby`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::controller::{self, Controller, Runtime, Shutdown, Synced};
#[cfg(feature = "webhooks")]
use crate::delegated_auth;
#[cfg(feature = "webhooks")]
use crate::error::{Error, Result};
use crate::leader::{Elector, LeaderElection, LeaseStatus};
use crate::metrics::Metrics;
use crate::operator::Operator;
use crate::probes::{self, Check, Health};
use crate::reconcile::Reconcile;
use crate::shard::{self, Scope, SharderFn, Sharding};

type Start = Arc<dyn Fn(Runtime) -> BoxFuture<'static, ()> + Send + Sync>;

/// The controllers of one process.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # use opkit::k8s::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub replicas: i32 }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::try_default().await?;
/// let running = opkit::Manager::new(client).operator::<App>().start();
/// tokio::signal::ctrl_c().await?;
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Manager {
    client: Client,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    controllers: Vec<(String, Start)>,
    sharders: Vec<SharderFn>,
    checks: Vec<Check>,
    election: Option<LeaderElection>,
    sharding: Option<Sharding>,
    warm: bool,
    shutdown_timeout: Duration,
    health_probes: Option<TcpListener>,
    metrics_endpoint: Option<MetricsEndpoint>,
}

/// How `/metrics` is served.
enum MetricsEndpoint {
    /// Plain HTTP, to anyone.
    Plain(TcpListener),
    /// HTTPS, to callers the API server authenticates and authorizes.
    #[cfg(feature = "webhooks")]
    Secure(TcpListener, tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.controllers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Manager")
            .field("controllers", &names)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager using `client` for every controller.
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client);
    /// assert!(manager.controllers().is_empty());
    /// # }
    /// ```
    pub fn new(client: Client) -> Self {
        Self {
            client,
            metrics: Metrics::new(),
            clock: Arc::new(SystemClock),
            controllers: Vec::new(),
            sharders: Vec::new(),
            checks: Vec::new(),
            election: None,
            sharding: None,
            warm: true,
            shutdown_timeout: Duration::from_secs(30),
            health_probes: None,
            metrics_endpoint: None,
        }
    }

    /// Adds the controller of the operator's own custom resource `K`, as `#[derive(Operator)]`
    /// configures it, with no data (`impl Reconcile for K`). A kind whose reconcile needs data
    /// goes through [`Manager::controller`] with `K::controller(data)`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::ConfigMap;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// # fn f(client: Client) {
    /// let manager = opkit::Manager::new(client).operator::<App>();
    /// assert_eq!(manager.controllers(), ["app"]);
    /// # }
    /// ```
    pub fn operator<K: Operator + Reconcile>(self) -> Self {
        self.controller(K::controller(()))
    }

    /// Adds a controller: any kind, any data (see [`Controller`]).
    ///
    /// ```
    /// use opkit::prelude::*;
    /// use opkit::k8s::Namespace;
    /// struct Labeller { team: String }
    /// impl Reconcile<Labeller> for Namespace {
    ///     async fn reconcile(&self, ctx: &Context<Self, Labeller>) -> opkit::Result<Action> {
    ///         let _team = &ctx.data().team;
    ///         Ok(Action::done())
    ///     }
    /// }
    /// # fn f(client: Client) {
    /// let labeller = opkit::Controller::<Namespace, _>::new("labeller", Labeller { team: "web".into() });
    /// let manager = opkit::Manager::new(client).controller(labeller);
    /// assert_eq!(manager.controllers(), ["labeller"]);
    /// # }
    /// ```
    pub fn controller<K, D>(mut self, controller: Controller<K, D>) -> Self
    where
        K: Reconcile<D>,
        D: Send + Sync + 'static,
    {
        self.controllers.push((
            controller.name().to_owned(),
            Arc::new(move |runtime| controller::run(controller.clone(), runtime)),
        ));
        self.sharders.push(shard::sharder::<K>());
        // Ready means the API server answers for the primary kind: one small list.
        self.checks.push(Arc::new(|client| {
            async move {
                let params = kube::api::ListParams::default().limit(1);
                kube::Api::<K>::all(client)
                    .list_metadata(&params)
                    .await
                    .map(|_| ())
            }
            .boxed()
        }));
        self
    }

    /// Uses `clock` for the times opkit writes (conditions' `lastTransitionTime`) and measures,
    /// instead of the system clock; for tests.
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let clock = std::sync::Arc::new(opkit::clock::ManualClock::new(jiff::Timestamp::UNIX_EPOCH));
    /// let manager = opkit::Manager::new(client).clock(clock.clone());
    /// # let _ = manager; }
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Records into `metrics` instead of a fresh registry.
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let shared = opkit::Metrics::new();
    /// let manager = opkit::Manager::new(client).metrics(shared.clone());
    /// # let _ = manager; }
    /// ```
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs the controllers only while this process holds the Lease of `election`; other
    /// replicas stand by and take over when it is released or expires. The timing is used as
    /// given: check it with [`LeaderElection::validate`] (the CLI does).
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client)
    ///     .leader_election(opkit::LeaderElection::new("webapp-operator-lock"));
    /// # let _ = manager; }
    /// ```
    pub fn leader_election(mut self, election: LeaderElection) -> Self {
        self.election = Some(election);
        self
    }

    /// Whether a replica standing by for the leader election Lease keeps its caches and queue
    /// current (the default), so that it reconciles as soon as it leads; `false` starts the
    /// watches only then, saving a standby's memory at the cost of a slower takeover.
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client)
    ///     .leader_election(opkit::LeaderElection::new("webapp-operator-lock"))
    ///     .warm_standby(false);
    /// # let _ = manager; }
    /// ```
    pub fn warm_standby(mut self, warm: bool) -> Self {
        self.warm = warm;
        self
    }

    /// Splits the primaries of every controller across the replicas running this manager (see
    /// [`crate::shard`]): each replica reconciles and caches only its shard. One replica at a
    /// time assigns them: the holder of the leader election Lease if one is configured, else of
    /// the Lease `<ring>-sharder`. The timing is used as given: check it with
    /// [`Sharding::validate`] (the CLI does).
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client)
    ///     .sharded(opkit::Sharding::new("webapp-operator").identity("replica-a"));
    /// # let _ = manager; }
    /// ```
    pub fn sharded(mut self, sharding: Sharding) -> Self {
        self.sharding = Some(sharding);
        self
    }

    /// How long [`Running::shutdown`] waits for in-flight reconciles before cancelling them
    /// (30 s by default).
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client).shutdown_timeout(std::time::Duration::from_secs(10));
    /// # let _ = manager; }
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serves `/healthz` and `/readyz` on `listener` ([`crate::probes`]).
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
    /// let manager = opkit::Manager::new(client).health_probes(listener);
    /// # let _ = manager; Ok(()) }
    /// ```
    pub fn health_probes(mut self, listener: TcpListener) -> Self {
        self.health_probes = Some(listener);
        self
    }

    /// Serves `/metrics` (OpenMetrics text) on `listener` over plain HTTP, to anyone; see
    /// [`Manager::secure_metrics_endpoint`] for what a cluster should expose.
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    /// let manager = opkit::Manager::new(client).metrics_endpoint(listener);
    /// # let _ = manager; Ok(()) }
    /// ```
    pub fn metrics_endpoint(mut self, listener: TcpListener) -> Self {
        self.metrics_endpoint = Some(MetricsEndpoint::Plain(listener));
        self
    }

    /// Serves `/metrics` on `listener` over HTTPS with `certificates`, only to callers the API
    /// server authenticates (TokenReview of their bearer token) and authorizes (SubjectAccessReview
    /// of `get` on the non-resource URL `/metrics`), as controller-runtime's
    /// `WithAuthenticationAndAuthorization` filter does: 401 without a valid token, 403 for a user
    /// RBAC does not allow (see [`crate::delegated_auth`]). The reviews go through the manager's
    /// client, so its ServiceAccount needs `create` on `tokenreviews` and `subjectaccessreviews`.
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let certificates = opkit::webhook::Certificates::self_signed(&["localhost"])?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// let manager = opkit::Manager::new(client).secure_metrics_endpoint(listener, &certificates)?;
    /// # let _ = manager; Ok(()) }
    /// ```
    #[cfg(feature = "webhooks")]
    pub fn secure_metrics_endpoint(
        mut self,
        listener: TcpListener,
        certificates: &crate::webhook::Certificates,
    ) -> Result<Self> {
        let config = certificates
            .server_config()
            .map_err(|e| Error::Config(format!("the metrics endpoint's certificate: {e}")))?;
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        self.metrics_endpoint = Some(MetricsEndpoint::Secure(listener, tls));
        Ok(self)
    }

    /// The names of the controllers added so far.
    ///
    /// ```
    /// # fn f(client: kube::Client) {
    /// assert!(opkit::Manager::new(client).controllers().is_empty());
    /// # }
    /// ```
    pub fn controllers(&self) -> Vec<String> {
        self.controllers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Starts every controller on the current tokio runtime.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// # async fn f(client: Client) {
    /// let running = opkit::Manager::new(client).operator::<App>().start();
    /// running.shutdown().await;
    /// # }
    /// ```
    pub fn start(self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let (servers_stop, servers_stopped) = watch::channel(false);
        let health = Arc::new(Health {
            client: self.client.clone(),
            checks: self.checks,
            elected: self.election.is_some(),
            term: watch::channel(None).0,
            stopping: false.into(),
        });
        let mut servers = Vec::new();
        let health_probe_address = self.health_probes.and_then(|listener| {
            let router = probes::health_router(health.clone());
            let (addr, task) = probes::serve(listener, router, servers_stopped.clone());
            servers.push(task);
            addr
        });
        let metrics_address = self.metrics_endpoint.and_then(|endpoint| {
            let router = probes::metrics_router(self.metrics.clone());
            let (addr, task) = match endpoint {
                MetricsEndpoint::Plain(listener) => {
                    probes::serve(listener, router, servers_stopped.clone())
                }
                #[cfg(feature = "webhooks")]
                MetricsEndpoint::Secure(listener, tls) => {
                    let delegated = Arc::new(delegated_auth::Delegated::new(self.client.clone()));
                    let router = router.layer(axum::middleware::from_fn_with_state(
                        delegated,
                        delegated_auth::authenticate_and_authorize,
                    ));
                    match crate::tls::TlsListener::new(listener, tls, "metrics endpoint") {
                        Ok(listener) => probes::serve(listener, router, servers_stopped.clone()),
                        Err(error) => {
                            tracing::error!(%error, "the metrics endpoint cannot serve");
                            return None;
                        }
                    }
                }
            };
            servers.push(task);
            addr
        });
        let status = if self.election.is_some() || self.sharding.is_some() {
            LeaseStatus::register(&self.metrics)
        } else {
            LeaseStatus::default()
        };
        let label_writes = self
            .sharding
            .as_ref()
            .map(|_| shard::LabelWrites::register(&self.metrics))
            .unwrap_or_default();
        let sharder = Arc::new(AtomicBool::new(false));
        let controllers = Controllers {
            client: self.client,
            metrics: self.metrics.clone(),
            clock: self.clock,
            controllers: self.controllers,
            health: health.clone(),
            label_writes,
        };
        let mode = match (self.sharding, self.election) {
            (Some(sharding), election) => {
                let election = election
                    .unwrap_or_else(|| sharding.election(format!("{}-sharder", sharding.ring)));
                Mode::Sharded {
                    sharding: Arc::new(sharding),
                    election,
                    sharders: self.sharders,
                    sharder: sharder.clone(),
                }
            }
            (None, Some(election)) => Mode::Elected {
                election,
                warm: self.warm,
            },
            (None, None) => Mode::Alone,
        };
        let supervisor = tokio::spawn(supervise(
            controllers,
            mode,
            status,
            self.shutdown_timeout,
            stopped,
        ));
        Running {
            stop,
            supervisor,
            servers_stop,
            servers,
            metrics: self.metrics,
            health,
            sharder,
            health_probe_address,
            metrics_address,
        }
    }
}

/// How the controllers of a manager run.
enum Mode {
    /// Always.
    Alone,
    /// While holding the leader election Lease; `warm`: watching meanwhile.
    Elected {
        election: LeaderElection,
        warm: bool,
    },
    /// On their shard, while holding the membership Lease; the sharders while holding `election`.
    Sharded {
        sharding: Arc<Sharding>,
        election: LeaderElection,
        sharders: Vec<SharderFn>,
        sharder: Arc<AtomicBool>,
    },
}

/// What starts the controllers for one term.
struct Controllers {
    client: Client,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    controllers: Vec<(String, Start)>,
    health: Arc<Health>,
    label_writes: shard::LabelWrites,
}

impl Controllers {
    /// Starts the controllers, watching but not reconciling until [`Term::activate`].
    fn begin(&self, shard: Option<Arc<Scope>>) -> Term {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let shutdown: Shutdown = rx.map(|_| ()).boxed().shared();
        let synced = Arc::new(Synced::new(self.controllers.len()));
        let (active, activated) = watch::channel(false);
        let tasks = self
            .controllers
            .iter()
            .map(|(name, start)| {
                let task = start(Runtime {
                    client: self.client.clone(),
                    metrics: self.metrics.clone(),
                    clock: self.clock.clone(),
                    shutdown: shutdown.clone(),
                    synced: synced.clone(),
                    active: activated.clone(),
                    shard: shard.clone(),
                });
                (name.clone(), tokio::spawn(task))
            })
            .collect();
        Term {
            stop: Some(tx),
            tasks,
            health: self.health.clone(),
            active,
            synced,
        }
    }
}

/// The controllers of one term: a leadership or membership term, or the whole run.
struct Term {
    stop: Option<futures::channel::oneshot::Sender<()>>,
    tasks: Vec<(String, JoinHandle<()>)>,
    health: Arc<Health>,
    active: watch::Sender<bool>,
    synced: Arc<Synced>,
}

impl Term {
    /// Lets the controllers reconcile.
    fn activate(&self) {
        self.active.send_replace(true);
        self.health.term.send_replace(Some(self.synced.clone()));
    }

    /// Stops taking new work and waits up to `timeout` for in-flight reconciles, then cancels
    /// what is left.
    async fn drain(&mut self, timeout: Duration) {
        if let Some(stop) = self.stop.take() {
            // The receivers may already be gone if every controller stopped.
            let _ = stop.send(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some((name, task)) = self.tasks.last_mut() {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(joined) => {
                    if let Err(error) = joined {
                        tracing::error!(controller = %name, %error, "controller task failed");
                    }
                    self.tasks.pop();
                }
                Err(_) => {
                    tracing::warn!(
                        ?timeout,
                        "in-flight reconciles did not finish in time; cancelling them"
                    );
                    self.cancel().await;
                    return;
                }
            }
        }
    }

    /// Cancels every controller at once and waits until none runs.
    async fn cancel(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        for (_, task) in self.tasks.drain(..) {
            // A cancelled task's JoinError is expected here.
            let _ = task.await;
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        self.health.term.send_replace(None);
    }
}

async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // A dropped Running (sender gone) stops the controllers too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn supervise(
    controllers: Controllers,
    mode: Mode,
    status: LeaseStatus,
    shutdown_timeout: Duration,
    stopped: watch::Receiver<bool>,
) {
    match mode {
        Mode::Alone => {
            let mut term = controllers.begin(None);
            term.activate();
            stop_requested(&mut stopped.clone()).await;
            term.drain(shutdown_timeout).await;
        }
        Mode::Elected { election, warm } => {
            let elector = Elector::new(controllers.client.clone(), election, &status);
            lead(&controllers, elector, None, warm, shutdown_timeout, stopped).await;
        }
        Mode::Sharded {
            sharding,
            election,
            sharders,
            sharder,
        } => {
            let member = Elector::new(
                controllers.client.clone(),
                sharding.election(sharding.lease_name()),
                &status,
            )
            .fenced(sharding.lease_labels());
            let assign = Elector::new(controllers.client.clone(), election, &status);
            tokio::join!(
                lead(
                    &controllers,
                    member,
                    Some(sharding.clone()),
                    false,
                    shutdown_timeout,
                    stopped.clone()
                ),
                assign_shards(
                    controllers.client.clone(),
                    assign,
                    sharding,
                    sharders,
                    controllers.label_writes.clone(),
                    sharder,
                    stopped
                ),
            );
        }
    }
}

/// Runs the controllers while `elector` holds its Lease: a leadership, or (with `sharding`) a
/// membership of the ring, each acquisition a new term of its shard. `warm`: the next term's
/// controllers watch while waiting for the Lease.
async fn lead(
    controllers: &Controllers,
    mut elector: Elector,
    sharding: Option<Arc<Sharding>>,
    warm: bool,
    shutdown_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let standby = warm.then(|| controllers.begin(None));
        tokio::select! {
            () = stop_requested(&mut stopped) => break,
            () = elector.acquire() => {}
        }
        let mut term = match standby {
            Some(term) => term,
            None => controllers.begin(sharding.as_deref().map(|s| {
                Arc::new(Scope::new(
                    s,
                    elector.term(),
                    controllers.label_writes.clone(),
                ))
            })),
        };
        term.activate();
        let lost = tokio::select! {
            () = stop_requested(&mut stopped) => false,
            () = elector.hold() => true,
        };
        if lost {
            term.cancel().await;
            continue;
        }
        // Keep renewing while draining, so the Lease cannot expire under running reconciles.
        let lost = tokio::select! {
            () = term.drain(shutdown_timeout) => false,
            () = elector.hold() => true,
        };
        if lost {
            term.cancel().await;
        }
        break;
    }
    elector.release().await;
}

/// Assigns the primaries to the ring's members while `elector` holds its Lease.
async fn assign_shards(
    client: Client,
    mut elector: Elector,
    sharding: Arc<Sharding>,
    sharders: Vec<SharderFn>,
    writes: shard::LabelWrites,
    sharder: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = stop_requested(&mut stopped) => break,
            () = elector.acquire() => {}
        }
        sharder.store(true, Ordering::SeqCst);
        let (members, live) = watch::channel(None);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(shard::follow_members(
            client.clone(),
            sharding.clone(),
            members,
        ));
        for start in &sharders {
            tasks.spawn(start(
                client.clone(),
                sharding.clone(),
                writes.clone(),
                live.clone(),
            ));
        }
        let lost = tokio::select! {
            () = stop_requested(&mut stopped) => false,
            () = elector.hold() => true,
        };
        tasks.shutdown().await;
        sharder.store(false, Ordering::SeqCst);
        if !lost {
            break;
        }
    }
    elector.release().await;
}

/// Controllers running in the background.
///
/// ```
/// # use opkit::prelude::*;
/// # use opkit::k8s::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # #[operator(owns(ConfigMap))]
/// # pub struct AppSpec { pub image: String }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// # async fn f(client: Client) {
/// let running: opkit::Running = opkit::Manager::new(client).operator::<App>().start();
/// println!("{}", running.metrics().encode());
/// running.shutdown().await;
/// # }
/// ```
pub struct Running {
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    servers_stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    metrics: Metrics,
    health: Arc<Health>,
    sharder: Arc<AtomicBool>,
    health_probe_address: Option<SocketAddr>,
    metrics_address: Option<SocketAddr>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("leading", &self.is_leader())
            .field("synced", &self.is_synced())
            .field("health_probe_address", &self.health_probe_address)
            .field("metrics_address", &self.metrics_address)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The metrics registry the controllers record into.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// let text = running.metrics().encode();
    /// assert!(text.ends_with("# EOF\n"));
    /// # }
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether every controller's caches (primaries, owned and watched kinds) hold their first
    /// list: the condition for a meaningful readiness probe. False while standing by for the
    /// leader election Lease.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// running.wait_synced().await;
    /// assert!(running.is_synced());
    /// # }
    /// ```
    pub fn is_synced(&self) -> bool {
        self.health.is_synced()
    }

    /// Waits until [`Running::is_synced`] (with leader election: until this process leads and
    /// its caches synced).
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// running.wait_synced().await;
    /// # }
    /// ```
    pub async fn wait_synced(&self) {
        let mut term = self.health.term.subscribe();
        loop {
            let current = term.borrow_and_update().clone();
            match current {
                Some(synced) if synced.is_synced() => return,
                Some(synced) => {
                    tokio::select! {
                        () = synced.wait() => return,
                        changed = term.changed() => if changed.is_err() { return },
                    }
                }
                None => {
                    if term.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Whether the controllers reconcile: always after start without leader election, only
    /// while holding the Lease with it; when sharded, while holding this replica's membership
    /// Lease.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// if running.is_leader() { println!("reconciling"); }
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.health.is_leading()
    }

    /// Whether this replica assigns the primaries to the shards of the ring (see
    /// [`Manager::sharded`]); always false without sharding.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// if running.is_sharder() { println!("assigning shards"); }
    /// # }
    /// ```
    pub fn is_sharder(&self) -> bool {
        self.sharder.load(Ordering::SeqCst)
    }

    /// Where `/healthz` and `/readyz` are served, if they are.
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let running = opkit::Manager::new(client).health_probes(listener).start();
    /// assert!(running.health_probe_address().is_some());
    /// # Ok(()) }
    /// ```
    pub fn health_probe_address(&self) -> Option<SocketAddr> {
        self.health_probe_address
    }

    /// Where `/metrics` is served, if it is.
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let running = opkit::Manager::new(client).metrics_endpoint(listener).start();
    /// assert!(running.metrics_address().is_some());
    /// # Ok(()) }
    /// ```
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Stops taking new work (`/readyz` turns 503), lets in-flight reconciles finish within the
    /// shutdown timeout, releases the leader election Lease, then stops the endpoints.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// tokio::signal::ctrl_c().await.ok();
    /// running.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.health.stopping.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
        if let Err(error) = self.supervisor.await {
            tracing::error!(%error, "the manager task failed");
        }
        self.servers_stop.send_replace(true);
        for server in self.servers {
            if let Err(error) = server.await {
                tracing::error!(%error, "an endpoint task failed");
            }
        }
    }
}
