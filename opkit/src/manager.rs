//! Runs one or several controllers in one process, sharing a client and a metrics registry;
//! optionally behind leader election ([`LeaderElection`]), with health, readiness and metrics
//! endpoints ([`crate::probes`]) and a bounded drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::controller::{self, Controller, Runtime, Shutdown, Synced};
use crate::leader::{Elector, LeaderElection};
use crate::metrics::Metrics;
use crate::operator::Operator;
use crate::probes::{self, Check, Health};
use crate::reconcile::Reconcile;

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
    checks: Vec<Check>,
    election: Option<LeaderElection>,
    shutdown_timeout: Duration,
    health_probes: Option<TcpListener>,
    metrics_endpoint: Option<TcpListener>,
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
            checks: Vec::new(),
            election: None,
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

    /// Serves `/metrics` (OpenMetrics text) on `listener`.
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    /// let manager = opkit::Manager::new(client).metrics_endpoint(listener);
    /// # let _ = manager; Ok(()) }
    /// ```
    pub fn metrics_endpoint(mut self, listener: TcpListener) -> Self {
        self.metrics_endpoint = Some(listener);
        self
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
        let metrics_address = self.metrics_endpoint.and_then(|listener| {
            let router = probes::metrics_router(self.metrics.clone());
            let (addr, task) = probes::serve(listener, router, servers_stopped.clone());
            servers.push(task);
            addr
        });
        let controllers = Controllers {
            client: self.client,
            metrics: self.metrics.clone(),
            clock: self.clock,
            controllers: self.controllers,
            health: health.clone(),
        };
        let supervisor = tokio::spawn(supervise(
            controllers,
            self.election,
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
            health_probe_address,
            metrics_address,
        }
    }
}

/// What starts the controllers for one leadership term.
struct Controllers {
    client: Client,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    controllers: Vec<(String, Start)>,
    health: Arc<Health>,
}

impl Controllers {
    fn begin(&self) -> Term {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let shutdown: Shutdown = rx.map(|_| ()).boxed().shared();
        let synced = Arc::new(Synced::new(self.controllers.len()));
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
                });
                (name.clone(), tokio::spawn(task))
            })
            .collect();
        self.health.term.send_replace(Some(synced));
        Term {
            stop: Some(tx),
            tasks,
            health: self.health.clone(),
        }
    }
}

/// The controllers of one leadership term (the whole run without leader election).
struct Term {
    stop: Option<futures::channel::oneshot::Sender<()>>,
    tasks: Vec<(String, JoinHandle<()>)>,
    health: Arc<Health>,
}

impl Term {
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
    election: Option<LeaderElection>,
    shutdown_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(election) = election else {
        let mut term = controllers.begin();
        stop_requested(&mut stopped).await;
        term.drain(shutdown_timeout).await;
        return;
    };
    let mut elector = Elector::new(controllers.client.clone(), election, &controllers.metrics);
    loop {
        tokio::select! {
            () = stop_requested(&mut stopped) => break,
            () = elector.acquire() => {}
        }
        let mut term = controllers.begin();
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

    /// Whether the controllers run: always after start without leader election, only while
    /// holding the Lease with it.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// if running.is_leader() { println!("reconciling"); }
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.health.is_leading()
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
