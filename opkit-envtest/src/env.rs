//! [`TestEnv`]: starting the server, clients and kubeconfigs for it, CRD
//! installation, statistics, faults, and shutdown on drop.

use crate::crd;
use crate::error::Error;
use crate::faults::Faults;
use crate::gc;
use crate::http::{self, INTERNAL_HEADER, Server};
use crate::namespaces;
use crate::stats::{Recorder, Stats};
use crate::store::Store;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// What a background controller that works through the API (the workload
/// simulation) gets. Controllers that write the store itself, like garbage
/// collection, are spawned beside the server with it.
#[derive(Clone)]
pub(crate) struct ControllerContext {
    /// A client whose requests are neither counted in [`TestEnv::stats`]
    /// nor subject to injected faults.
    pub client: kube::Client,
    /// The store, for reads by index (an owner's dependents) that no API
    /// request offers.
    pub store: Arc<Store>,
}

/// Options for a [`TestEnv`].
///
/// ```no_run
/// # async fn demo() -> Result<(), opkit_envtest::Error> {
/// let env = opkit_envtest::TestEnv::builder()
///     .port(0)
///     .watch_history(10_000)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct TestEnvBuilder {
    port: u16,
    watch_history: usize,
    bookmark_interval: Duration,
    pub(crate) simulation: Option<crate::sim::Simulation>,
    webhook_services: crate::admission::Services,
}

impl std::fmt::Debug for TestEnvBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnvBuilder")
            .field("port", &self.port)
            .field("watch_history", &self.watch_history)
            .field("bookmark_interval", &self.bookmark_interval)
            .field("simulation", &self.simulation)
            .field("webhook_services", &self.webhook_services.0)
            .finish()
    }
}

impl Default for TestEnvBuilder {
    fn default() -> Self {
        TestEnvBuilder {
            port: 0,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(5),
            simulation: Some(crate::sim::Simulation::default()),
            webhook_services: crate::admission::Services::default(),
        }
    }
}

impl TestEnvBuilder {
    /// The port on 127.0.0.1; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How many changes the watch history keeps (default 10,000). Watches
    /// from an older resourceVersion get 410 Gone.
    pub fn watch_history(mut self, changes: usize) -> Self {
        self.watch_history = changes;
        self
    }

    /// How often watches that asked for bookmarks get one (default 5 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Where admission webhooks with a `service` clientConfig are reached: `service` is
    /// `namespace/name:port` (the configuration's port, 443 when it names none), `addr` a local
    /// address. The TLS server name stays `name.namespace.svc`, as in a cluster.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), opkit_envtest::Error> {
    /// let env = opkit_envtest::TestEnv::builder()
    ///     .webhook_service("ops/app-operator-webhook:443", ([127, 0, 0, 1], 9443).into())
    ///     .build()
    ///     .await?;
    /// # let _ = env; Ok(()) }
    /// ```
    pub fn webhook_service(mut self, service: impl Into<String>, addr: SocketAddr) -> Self {
        self.webhook_services.0.insert(service.into(), addr);
        self
    }

    /// Starts the server and its background controllers.
    pub async fn build(self) -> Result<TestEnv, Error> {
        let (store, work) = Store::new(crd::DEFINITIONS, self.watch_history);
        store.write(namespaces::bootstrap);
        let bind = format!("127.0.0.1:{}", self.port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| Error::Bind {
                addr: bind.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: bind.clone(),
            source,
        })?;
        let url = format!("http://{addr}");
        let config = client_config(&url, false)?;
        let client = make_client(config.clone())?;
        let internal_client = make_client(client_config(&url, true)?)?;
        let stats = Arc::new(Recorder::default());
        let faults = Faults::new(store.clone());
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let server = Arc::new(Server {
            store: store.clone(),
            stats: stats.clone(),
            faults: faults.clone(),
            bookmark_interval: self.bookmark_interval,
            shutdown: shutdown_rx.clone(),
            webhook_services: self.webhook_services.clone(),
        });
        let router = http::router(server);
        let mut stop = shutdown_rx.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "the API server stopped");
            }
        })];
        tasks.push(tokio::spawn(gc::run(store.clone(), work)));
        if let Some(simulation) = self.simulation {
            let context = ControllerContext {
                client: internal_client.clone(),
                store: store.clone(),
            };
            tasks.push(tokio::spawn(crate::sim::run(context, simulation)));
        }
        Ok(TestEnv {
            addr,
            url,
            store,
            stats,
            faults,
            config,
            client,
            internal_client,
            shutdown,
            tasks,
        })
    }
}

fn client_config(url: &str, internal: bool) -> Result<kube::Config, Error> {
    let uri: ::http::Uri = url
        .parse()
        .map_err(|e: ::http::uri::InvalidUri| Error::Client {
            url: url.to_string(),
            source: Box::new(e),
        })?;
    let mut config = kube::Config::new(uri);
    if internal {
        config.headers.push((
            ::http::HeaderName::from_static(INTERNAL_HEADER),
            ::http::HeaderValue::from_static("true"),
        ));
    }
    Ok(config)
}

fn make_client(config: kube::Config) -> Result<kube::Client, Error> {
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|source| Error::Client {
        url,
        source: Box::new(source),
    })
}

/// An embedded Kubernetes API server on 127.0.0.1, for tests.
///
/// `kube::Client`, kube-runtime watchers and `kubectl` (through
/// [`TestEnv::write_kubeconfig`]) use it unchanged. Dropping it shuts the
/// server and its background controllers down.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::api::{Api, PostParams};
///
/// let env = opkit_envtest::TestEnv::start().await?;
/// let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// cms.create(&PostParams::default(), &cm).await?;
/// assert_eq!(env.stats().count("create", "configmaps"), 1);
/// # Ok(()) }
/// ```
pub struct TestEnv {
    addr: SocketAddr,
    url: String,
    store: Arc<Store>,
    stats: Arc<Recorder>,
    faults: Faults,
    config: kube::Config,
    client: kube::Client,
    internal_client: kube::Client,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv").field("url", &self.url).finish()
    }
}

impl TestEnv {
    /// Starts a server on a free port with default options.
    pub async fn start() -> Result<TestEnv, Error> {
        TestEnvBuilder::default().build().await
    }

    /// Options for a server; finish with [`TestEnvBuilder::build`].
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// A client for the server (no authentication, `default` namespace).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The configuration behind [`TestEnv::client`], to build clients with
    /// other settings, for example without kube's automatic retries of 429,
    /// 503 and 504 when a test wants to see injected faults:
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let env = opkit_envtest::TestEnv::start().await?;
    /// let mut config = env.config();
    /// config.default_retry = false;
    /// let client = kube::Client::try_from(config)?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// The server URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig with one context, `opkit-envtest`, pointing at the server.
    pub fn kubeconfig(&self) -> Kubeconfig {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "opkit-envtest", "cluster": {"server": self.url}}],
            "users": [{"name": "opkit-envtest", "user": {}}],
            "contexts": [{"name": "opkit-envtest", "context": {
                "cluster": "opkit-envtest", "user": "opkit-envtest", "namespace": "default"}}],
            "current-context": "opkit-envtest",
        }))
        .unwrap_or_default()
    }

    /// Writes [`TestEnv::kubeconfig`] to `path` (YAML), for kubectl or helm.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let yaml = serde_yaml_ng::to_string(&self.kubeconfig())?;
        std::fs::write(path, yaml).map_err(|source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// Installs the CRD of `K` and returns once it is Established. Installing
    /// the same CRD again updates it.
    pub async fn install_crd<K: kube::CustomResourceExt>(&self) -> Result<(), Error> {
        self.install(K::crd()).await
    }

    /// Installs every CustomResourceDefinition in `yaml` (one or more documents).
    pub async fn install_crd_yaml(&self, yaml: &str) -> Result<(), Error> {
        use serde::Deserialize;
        // Parse every document first: the YAML parser is not `Send` and must not be held across
        // an await, or this future could not be spawned.
        let mut crds = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value =
                Value::deserialize(document).map_err(|e| Error::CrdDocument(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition =
                serde_json::from_value(value).map_err(|e| Error::CrdDocument(e.to_string()))?;
            crds.push(crd);
        }
        for crd in crds {
            self.install(crd).await?;
        }
        Ok(())
    }

    async fn install(&self, mut crd: CustomResourceDefinition) -> Result<(), Error> {
        let api: Api<CustomResourceDefinition> = Api::all(self.internal_client.clone());
        let name = crd.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let live = api.get(&name).await.map_err(|e| api_error(&e))?;
                crd.metadata.resource_version = live.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &crd)
                    .await
                    .map_err(|e| api_error(&e))?;
                Ok(())
            }
            Err(e) => Err(api_error(&e)),
        }
    }

    /// A snapshot of the request counts since start or the last [`TestEnv::reset_stats`].
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Zeroes the request counts.
    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    /// The fault injection controls.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Drops the watch history: watches from any resourceVersion older than
    /// now get 410 Gone (reason Expired).
    pub fn compact(&self) {
        self.store.compact();
    }
}

fn api_error(error: &kube::Error) -> Error {
    match error {
        kube::Error::Api(status) => Error::Api(crate::error::ApiError {
            code: status.code,
            reason: "Failure",
            message: status.message.clone(),
            details: None,
            retry_after: None,
        }),
        other => Error::Api(crate::error::ApiError::internal(other)),
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks[1..] {
            task.abort();
        }
    }
}
