//! The HTTP endpoints of a running manager: `/healthz` and `/readyz` for the kubelet's probes,
//! `/metrics` for Prometheus.
//!
//! `/healthz` answers 200 while the process serves requests. `/readyz` answers 200 only when the
//! process can do its work: every controller's caches hold their first list and the API server
//! answers a list of every primary kind; a replica standing by for
//! the leader election Lease only needs the API server, so a rolling update is not blocked by
//! standbys. During a graceful shutdown `/readyz` answers 503. Failures answer 503 with the
//! reason in the body. `/metrics` is the manager's registry in the OpenMetrics text format.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::controller::Synced;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Where to listen: `0` disables the endpoint, `:8080` is every interface, anything else is a
/// `host:port`, as with controller-runtime's `--metrics-bind-address`.
///
/// ```
/// use opkit::probes::BindAddress;
/// assert_eq!("0".parse::<BindAddress>(), Ok(BindAddress::Disabled));
/// assert_eq!(":8081".parse::<BindAddress>(), Ok(BindAddress::Addr("0.0.0.0:8081".into())));
/// assert!("8081".parse::<BindAddress>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddress {
    /// No endpoint.
    Disabled,
    /// A `host:port` to bind.
    Addr(String),
}

impl FromStr for BindAddress {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "0" => Ok(Self::Disabled),
            s if s.starts_with(':') => Ok(Self::Addr(format!("0.0.0.0{s}"))),
            s if s
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok()) =>
            {
                Ok(Self::Addr(s.to_owned()))
            }
            s => Err(format!(
                "{s:?} is not an address: use HOST:PORT, :PORT, or 0 to disable"
            )),
        }
    }
}

impl BindAddress {
    /// Binds the address; `None` when disabled.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// let listener = opkit::probes::BindAddress::Addr("127.0.0.1:0".into()).bind().await?;
    /// assert!(listener.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn bind(&self) -> Result<Option<TcpListener>> {
        match self {
            Self::Disabled => Ok(None),
            Self::Addr(addr) => {
                TcpListener::bind(addr)
                    .await
                    .map(Some)
                    .map_err(|source| Error::Io {
                        context: format!("binding {addr}"),
                        source,
                    })
            }
        }
    }
}

/// A request that succeeds when the API server serves one primary kind.
pub(crate) type Check = Arc<dyn Fn(Client) -> BoxFuture<'static, kube::Result<()>> + Send + Sync>;

/// How long `/readyz` waits for the API server.
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/readyz` looks at, shared with the manager.
pub(crate) struct Health {
    pub client: Client,
    pub checks: Vec<Check>,
    /// Leader election is on: not leading is a normal, ready state.
    pub elected: bool,
    /// The sync state of the controllers while they run.
    pub term: watch::Sender<Option<Arc<Synced>>>,
    pub stopping: AtomicBool,
}

impl Health {
    pub(crate) fn is_synced(&self) -> bool {
        self.term.borrow().as_ref().is_some_and(|s| s.is_synced())
    }

    pub(crate) fn is_leading(&self) -> bool {
        self.term.borrow().is_some()
    }

    pub(crate) async fn ready(&self) -> std::result::Result<(), String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("shutting down".to_owned());
        }
        match self.term.borrow().as_ref() {
            None if self.elected => {}
            None => return Err("the controllers are not running".to_owned()),
            Some(synced) if !synced.is_synced() => {
                return Err("the caches have not synced yet".to_owned());
            }
            Some(_) => {}
        }
        let requests: Vec<_> = if self.checks.is_empty() {
            vec![Box::pin({
                let client = self.client.clone();
                async move { client.apiserver_version().await.map(|_| ()) }
            }) as BoxFuture<'static, kube::Result<()>>]
        } else {
            self.checks.iter().map(|c| c(self.client.clone())).collect()
        };
        let answered = tokio::time::timeout(API_TIMEOUT, futures::future::try_join_all(requests));
        match answered.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("the API server did not answer: {error}")),
            Err(_) => Err(format!(
                "the API server did not answer within {API_TIMEOUT:?}"
            )),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    match health.ready().await {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => {
            tracing::debug!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            )
        }
    }
}

async fn metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

pub(crate) fn health_router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

pub(crate) fn metrics_router(registry: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry)
}

/// Serves `router` on `listener` until `stop` turns true; returns the bound address.
pub(crate) fn serve<L: axum::serve::Listener<Addr = SocketAddr>>(
    listener: L,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> (Option<SocketAddr>, tokio::task::JoinHandle<()>) {
    let addr = listener.local_addr().ok();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        });
        if let Err(error) = served.await {
            tracing::error!(%error, "the probe or metrics endpoint stopped");
        }
    });
    (addr, task)
}

/// The endpoint flags of `run`, with controller-runtime's names.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "--metrics-bind-address", "0"]);
/// assert_eq!(cli.probes.metrics_bind_address, Some(opkit::probes::BindAddress::Disabled));
/// ```
#[cfg(feature = "cli")]
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ProbeFlags {
    /// Address of /healthz and /readyz; 0 disables (default :8081, or a free loopback port with the embedded server).
    #[arg(long, value_name = "ADDR")]
    pub health_probe_bind_address: Option<BindAddress>,
    /// Address of /metrics; 0 disables (default :8443 when secure, :8080 otherwise, or a free loopback port with the embedded server).
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind_address: Option<BindAddress>,
    /// Serve /metrics over HTTPS, only to callers the API server authenticates and authorizes (get on the URL /metrics); =false serves plain HTTP to anyone (default: true in a cluster, false with the embedded server).
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_secure: Option<bool>,
    /// Directory with tls.crt and tls.key for the secure /metrics (a mounted Secret); without it a self-signed certificate is generated at start.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "DIR", env = "OPKIT_METRICS_CERT_DIR")]
    pub metrics_cert_dir: Option<std::path::PathBuf>,
}

#[cfg(feature = "cli")]
impl ProbeFlags {
    /// Binds the endpoints the flags ask for and gives them to `manager`; `local` defaults to
    /// free loopback ports instead of `:8081` and `:8443` (`:8080` for plain HTTP), and to plain
    /// HTTP for `/metrics` instead of HTTPS for authorized callers only
    /// ([`crate::Manager::secure_metrics_endpoint`]).
    ///
    /// ```
    /// # async fn f(client: kube::Client) -> opkit::Result<()> {
    /// let flags = opkit::probes::ProbeFlags::default();
    /// let manager = flags.apply(opkit::Manager::new(client), true).await?;
    /// # let _ = manager; Ok(()) }
    /// ```
    pub async fn apply(&self, mut manager: crate::Manager, local: bool) -> Result<crate::Manager> {
        let default = |port: &str| {
            BindAddress::Addr(if local {
                "127.0.0.1:0".to_owned()
            } else {
                format!("0.0.0.0:{port}")
            })
        };
        let probes = self
            .health_probe_bind_address
            .clone()
            .unwrap_or_else(|| default("8081"));
        if let Some(listener) = probes.bind().await? {
            manager = manager.health_probes(listener);
        }
        #[cfg(feature = "webhooks")]
        let secure = self.metrics_secure.unwrap_or(!local);
        #[cfg(not(feature = "webhooks"))]
        let secure = false;
        let metrics = self
            .metrics_bind_address
            .clone()
            .unwrap_or_else(|| default(if secure { "8443" } else { "8080" }));
        let Some(listener) = metrics.bind().await? else {
            return Ok(manager);
        };
        #[cfg(feature = "webhooks")]
        if secure {
            let certificates = match &self.metrics_cert_dir {
                Some(dir) => crate::webhook::Certificates::from_dir(dir),
                None => crate::webhook::Certificates::self_signed(&["localhost", "127.0.0.1"]),
            }
            .map_err(|e| Error::Config(format!("the metrics endpoint's certificate: {e}")))?;
            return manager.secure_metrics_endpoint(listener, &certificates);
        }
        Ok(manager.metrics_endpoint(listener))
    }
}
