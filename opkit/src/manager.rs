//! Runs one or several controllers in one process, sharing a client and a metrics registry.

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use tokio::task::JoinHandle;

use crate::context::Data;
use std::sync::Arc;

use crate::controller::{self, Shutdown, Synced};
use crate::metrics::Metrics;
use crate::operator::{Descriptor, Reconcile};

type Start =
    Box<dyn FnOnce(Client, Metrics, Data, Shutdown, Arc<Synced>) -> BoxFuture<'static, ()> + Send>;

/// The controllers of one process.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub replicas: i32 }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::try_default().await?;
/// let running = Manager::new(client).operator::<App>().start();
/// tokio::signal::ctrl_c().await?;
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Manager {
    client: Client,
    metrics: Metrics,
    data: Data,
    controllers: Vec<(String, Start)>,
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
            data: Data::default(),
            controllers: Vec::new(),
        }
    }

    /// Adds the controller of operator `K`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// # fn f(client: Client) {
    /// let manager = Manager::new(client).operator::<App>();
    /// assert_eq!(manager.controllers(), ["app"]);
    /// # }
    /// ```
    pub fn operator<K: Reconcile>(self) -> Self {
        self.operator_with::<K>(|d| d)
    }

    /// Adds the controller of operator `K` with its descriptor adjusted by `adjust` (a faster
    /// backoff in tests, a concurrency from a flag).
    ///
    /// ```no_run
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub replicas: i32 }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// # fn f(client: Client) {
    /// let manager = Manager::new(client).operator_with::<App>(|d| d.concurrency(8));
    /// # }
    /// ```
    pub fn operator_with<K: Reconcile>(
        mut self,
        adjust: impl FnOnce(Descriptor) -> Descriptor,
    ) -> Self {
        let descriptor = adjust(K::descriptor());
        self.controllers.push((
            descriptor.name.clone(),
            Box::new(move |client, metrics, data, shutdown, synced| {
                controller::run::<K>(client, descriptor, metrics, data, shutdown, synced)
            }),
        ));
        self
    }

    /// Hands `value` to every reconcile, available through [`Context::data`](crate::Context::data).
    ///
    /// ```
    /// struct Settings { registry: String }
    /// # fn f(client: kube::Client) {
    /// let manager = opkit::Manager::new(client).data(Settings { registry: "registry.example.com".into() });
    /// # let _ = manager; }
    /// ```
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
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
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// # async fn f(client: Client) {
    /// let running = Manager::new(client).operator::<App>().start();
    /// running.shutdown().await;
    /// # }
    /// ```
    pub fn start(self) -> Running {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let shutdown: Shutdown = rx.map(|_| ()).boxed().shared();
        let synced = Arc::new(Synced::new(self.controllers.len()));
        let tasks = self
            .controllers
            .into_iter()
            .map(|(name, start)| {
                let task = start(
                    self.client.clone(),
                    self.metrics.clone(),
                    self.data.clone(),
                    shutdown.clone(),
                    synced.clone(),
                );
                (name, tokio::spawn(task))
            })
            .collect();
        Running {
            stop: tx,
            tasks,
            metrics: self.metrics,
            synced,
        }
    }
}

/// Controllers running in the background.
///
/// ```
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # #[operator(owns(ConfigMap))]
/// # pub struct AppSpec { pub image: String }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// # async fn f(client: Client) {
/// let running: opkit::Running = Manager::new(client).operator::<App>().start();
/// println!("{}", running.metrics().encode());
/// running.shutdown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct Running {
    stop: futures::channel::oneshot::Sender<()>,
    tasks: Vec<(String, JoinHandle<()>)>,
    metrics: Metrics,
    synced: Arc<Synced>,
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
    /// list: the condition for a meaningful readiness probe.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// running.wait_synced().await;
    /// assert!(running.is_synced());
    /// # }
    /// ```
    pub fn is_synced(&self) -> bool {
        self.synced.is_synced()
    }

    /// Waits until [`Running::is_synced`].
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// running.wait_synced().await;
    /// # }
    /// ```
    pub async fn wait_synced(&self) {
        self.synced.wait().await;
    }

    /// Stops taking new work, lets in-flight reconciles finish, and waits for every controller.
    ///
    /// ```
    /// # async fn f(running: opkit::Running) {
    /// tokio::signal::ctrl_c().await.ok();
    /// running.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        // The receivers may already be gone if every controller stopped; nothing to signal then.
        let _ = self.stop.send(());
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(controller = %name, %error, "controller task failed");
            }
        }
    }
}
