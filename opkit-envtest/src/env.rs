//! [`TestEnv`]: starting the server, clients and kubeconfigs for it, CRD
//! installation, statistics, faults, and shutdown on drop.

use crate::authn;
use crate::crd;
use crate::error::Error;
use crate::faults::Faults;
use crate::gc;
use crate::http::{self, INTERNAL_HEADER, Server, TlsListener};
use crate::namespaces;
use crate::pki::{Authority, KeyedCert};
use crate::rbac;
use crate::stats::{Recorder, Stats};
use crate::store::Store;
use crate::tokens::TokenIssuer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{AuthInfo, Kubeconfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the tokens of [`TestEnv::service_account_client`] last: a year, as kubelets'
/// extended tokens do, so no test outlives them.
const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 365 * 24 * 3600;

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
    plain_http: bool,
    watch_history: usize,
    bookmark_interval: Duration,
    pub(crate) simulation: Option<crate::sim::Simulation>,
    webhook_services: crate::admission::Services,
}

impl std::fmt::Debug for TestEnvBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnvBuilder")
            .field("port", &self.port)
            .field("plain_http", &self.plain_http)
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
            plain_http: false,
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

    /// Serves plain HTTP instead of HTTPS. Requests without credentials then act as the
    /// admin (`admin` in `system:masters`), like kube-apiserver's old insecure port;
    /// ServiceAccount tokens and impersonation still work. Clients that inspect the
    /// server's TLS need the default, HTTPS.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), opkit_envtest::Error> {
    /// let env = opkit_envtest::TestEnv::builder().plain_http().build().await?;
    /// assert!(env.url().starts_with("http://"));
    /// # Ok(()) }
    /// ```
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
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
        let authority = Authority::new()?;
        let tokens = TokenIssuer::new()?;
        let (store, work) = Store::new(crd::DEFINITIONS, self.watch_history);
        store.write(|txn| {
            namespaces::bootstrap(txn);
            rbac::bootstrap(txn);
            crate::components::bootstrap(txn);
            crate::apiservices::sync(txn);
            if self.simulation.is_some() {
                crate::sim::node::register(txn);
            }
        });
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
        let scheme = if self.plain_http { "http" } else { "https" };
        let url = format!("{scheme}://{addr}");
        let admin = self.credentials(&authority, authn::ADMIN)?;
        let config = client_config(&url, &authority, &admin, false)?;
        let client = make_client(config.clone())?;
        let internal = self.credentials(&authority, "system:kube-controller-manager")?;
        let internal_client = make_client(client_config(&url, &authority, &internal, true)?)?;
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
            tokens,
        });
        let router = http::router(server.clone());
        let stop = shutdown_rx.clone();
        let serving = if self.plain_http {
            tokio::spawn(serve(listener, router, stop))
        } else {
            let listener =
                TlsListener::new(listener, authority.server_config()).map_err(|source| {
                    Error::Bind {
                        addr: bind.clone(),
                        source,
                    }
                })?;
            tokio::spawn(serve(listener, router, stop))
        };
        let mut tasks = vec![serving];
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
            plain_http: self.plain_http,
            authority,
            admin,
            server,
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

impl TestEnvBuilder {
    /// How the server's own clients authenticate as `user` in `system:masters`: a
    /// client certificate over HTTPS; none over plain HTTP, where that makes the admin.
    fn credentials(&self, authority: &Authority, user: &str) -> Result<Credentials, Error> {
        Ok(match self.plain_http {
            false => Credentials::Certificate(authority.client_cert(user, authn::MASTERS)?),
            true => Credentials::None,
        })
    }
}

async fn serve<L>(listener: L, router: axum::Router, mut stop: tokio::sync::watch::Receiver<bool>)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    authn::Peer: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let service = router.into_make_service_with_connect_info::<authn::Peer>();
    let serve = axum::serve(listener, service).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    if let Err(error) = serve.await {
        tracing::error!(%error, "the API server stopped");
    }
}

/// How a client proves who it is.
#[derive(Clone, Debug)]
enum Credentials {
    Certificate(KeyedCert),
    Token(String),
    /// None: over plain HTTP, that is the admin.
    None,
}

impl Credentials {
    /// The kubeconfig `user` entry.
    fn auth_info(&self) -> Value {
        match self {
            Credentials::Certificate(cert) => json!({
                "client-certificate-data": BASE64.encode(&cert.cert_pem),
                "client-key-data": BASE64.encode(&cert.key_pem),
            }),
            Credentials::Token(token) => json!({"token": token}),
            Credentials::None => json!({}),
        }
    }
}

fn client_config(
    url: &str,
    authority: &Authority,
    credentials: &Credentials,
    internal: bool,
) -> Result<kube::Config, Error> {
    let client_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Client {
        url: url.to_string(),
        source,
    };
    let uri: ::http::Uri = url.parse().map_err(|e| client_error(Box::new(e)))?;
    let mut config = kube::Config::new(uri);
    if url.starts_with("https") {
        config.root_cert = Some(vec![authority.ca_der().to_vec()]);
    }
    config.auth_info = serde_json::from_value::<AuthInfo>(credentials.auth_info())
        .map_err(|e| client_error(Box::new(e)))?;
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
    plain_http: bool,
    authority: Authority,
    admin: Credentials,
    server: Arc<Server>,
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

    /// A client for the server, authenticated as `admin` in `system:masters` (which
    /// may do anything), namespace `default`.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client acting as the ServiceAccount `namespace/name`, with a token from the
    /// server's TokenRequest (valid for a year): it may do exactly what RBAC grants
    /// the ServiceAccount. The ServiceAccount must exist.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    /// use kube::api::{Api, PostParams};
    ///
    /// let env = opkit_envtest::TestEnv::start().await?;
    /// let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    /// let mut robot = ServiceAccount::default();
    /// robot.metadata.name = Some("robot".into());
    /// accounts.create(&PostParams::default(), &robot).await?;
    ///
    /// let as_robot = env.service_account_client("default", "robot")?;
    /// let cms: Api<ConfigMap> = Api::namespaced(as_robot, "default");
    /// let refused = cms.list(&Default::default()).await.unwrap_err();
    /// assert!(refused.to_string().contains(
    ///     r#"User "system:serviceaccount:default:robot" cannot list resource "configmaps""#));
    /// # Ok(()) }
    /// ```
    pub fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, Error> {
        make_client(self.config_with(&self.service_account_credentials(namespace, name)?)?)
    }

    /// A client acting as `user` in `groups` (plus `system:authenticated`), with a
    /// bearer token the server issued for them (as from a token file): it may do what
    /// RBAC grants them.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use k8s_openapi::api::core::v1::Pod;
    /// let env = opkit_envtest::TestEnv::start().await?;
    /// let jane = env.user_client("jane", &["developers"])?;
    /// let pods: kube::Api<Pod> = kube::Api::namespaced(jane, "default");
    /// assert!(pods.list(&Default::default()).await.is_err()); // no RoleBinding yet
    /// # Ok(()) }
    /// ```
    pub fn user_client(&self, user: &str, groups: &[&str]) -> Result<kube::Client, Error> {
        make_client(self.config_with(&self.user_credentials(user, groups)?)?)
    }

    /// A kubeconfig acting as the ServiceAccount `namespace/name` (see
    /// [`TestEnv::service_account_client`]), for kubectl or an operator run as its own process.
    ///
    /// ```no_run
    /// # async fn demo(env: &opkit_envtest::TestEnv) -> Result<(), opkit_envtest::Error> {
    /// let kubeconfig = env.service_account_kubeconfig("ops", "webapp-operator")?;
    /// std::fs::write("operator.kubeconfig", serde_yaml_ng::to_string(&kubeconfig)?)
    ///     .map_err(|source| opkit_envtest::Error::WriteKubeconfig { path: "operator.kubeconfig".into(), source })?;
    /// # Ok(()) }
    /// ```
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Kubeconfig, Error> {
        Ok(self.kubeconfig_with(&self.service_account_credentials(namespace, name)?))
    }

    /// A kubeconfig acting as `user` in `groups` (see [`TestEnv::user_client`]).
    ///
    /// ```no_run
    /// # async fn demo(env: &opkit_envtest::TestEnv) -> Result<(), opkit_envtest::Error> {
    /// let kubeconfig = env.user_kubeconfig("jane", &["developers"])?;
    /// assert_eq!(kubeconfig.contexts.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<Kubeconfig, Error> {
        Ok(self.kubeconfig_with(&self.user_credentials(user, groups)?))
    }

    /// The server's CA certificate (PEM): what clients verify its serving certificate
    /// with, and what signs the client certificates it accepts.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), opkit_envtest::Error> {
    /// let env = opkit_envtest::TestEnv::start().await?;
    /// assert!(env.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok(()) }
    /// ```
    pub fn ca_pem(&self) -> &str {
        self.authority.ca_pem()
    }

    fn user_credentials(&self, user: &str, groups: &[&str]) -> Result<Credentials, Error> {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        let token = self
            .server
            .tokens
            .user_token(authn::UserInfo::new(user, groups))?;
        Ok(Credentials::Token(token))
    }

    fn service_account_credentials(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Credentials, Error> {
        let request = json!({"spec": {"expirationSeconds": SERVICE_ACCOUNT_TOKEN_SECONDS}});
        let state = self.store.read();
        let answer = self
            .server
            .tokens
            .request(&state, namespace, name, request)?;
        let token = answer
            .pointer("/status/token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(Credentials::Token(token.to_string()))
    }

    fn config_with(&self, credentials: &Credentials) -> Result<kube::Config, Error> {
        client_config(&self.url, &self.authority, credentials, false)
    }

    fn kubeconfig_with(&self, credentials: &Credentials) -> Kubeconfig {
        let mut cluster = json!({"server": self.url});
        if !self.plain_http {
            cluster["certificate-authority-data"] = json!(BASE64.encode(self.authority.ca_pem()));
        }
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "opkit-envtest", "cluster": cluster}],
            "users": [{"name": "opkit-envtest", "user": credentials.auth_info()}],
            "contexts": [{"name": "opkit-envtest", "context": {
                "cluster": "opkit-envtest", "user": "opkit-envtest", "namespace": "default"}}],
            "current-context": "opkit-envtest",
        }))
        .unwrap_or_default()
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

    /// The server URL, `https://127.0.0.1:PORT` (`http://` with [`TestEnvBuilder::plain_http`]).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig with one context, `opkit-envtest`, pointing at the server with its
    /// CA and authenticating as the admin, as [`TestEnv::client`] does.
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.kubeconfig_with(&self.admin)
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
            reason: "Failure".into(),
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
