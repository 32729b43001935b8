//! The command line of every operator binary: `run` (default), `crd`, `rbac`, `webhooks`.
//!
//! ```text
//! my-operator                 # run against the in-cluster config or the current kubeconfig context
//! my-operator crd             # the CRD YAML of every kind the binary manages
//! my-operator rbac            # least-privilege ServiceAccount, ClusterRole and binding
//! my-operator webhooks        # the Validating/MutatingWebhookConfigurations of its admission webhooks
//! my-operator --log-format json
//! ```
//!
//! With the `embedded` feature an [`App`] can default to an embedded API server instead (the
//! examples do): `--cluster` then selects the current kubeconfig context, and
//! `--write-kubeconfig PATH` says where to write the embedded server's kubeconfig.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;

use crate::error::{Error, Result};
use crate::leader::LeaderElection;
use crate::manager::Manager;
use crate::manifests::{self, Rule};
use crate::operator::Reconcile;
use crate::probes::BindAddress;

/// Log output format.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::cli::Cli::parse_from(["op", "--log-format", "json"]);
/// assert_eq!(cli.log_format, opkit::cli::LogFormat::Json);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Command-line arguments of an operator binary.
///
/// Parsed by [`App::run`]; `--help` lists them.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::cli::Cli::parse_from(["op", "rbac", "--namespace", "ops"]);
/// assert!(matches!(cli.command, Some(opkit::cli::Command::Rbac { .. })));
/// ```
#[derive(Clone, Debug, Parser)]
#[command(about = "A Kubernetes operator built with opkit", long_about = None)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, env = "OPKIT_LOG_FORMAT", global = true)]
    pub log_format: LogFormat,
    /// Use the current kubeconfig context (or in-cluster config) even when the binary defaults to an embedded API server.
    #[arg(long)]
    pub cluster: bool,
    /// Where to write the embedded API server's kubeconfig.
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Leader election, probes, metrics and shutdown.
    #[command(flatten)]
    pub production: Production,
    /// The admission webhook server.
    #[command(flatten)]
    pub webhook: crate::webhook::WebhookFlags,
}

/// The flags of `run` for production, with controller-runtime's names: leader election, the
/// probe and metrics endpoints, the shutdown drain.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::cli::Cli::parse_from(["op", "--leader-elect=false", "--metrics-bind-address", "0"]);
/// assert_eq!(cli.production.leader_elect, Some(false));
/// assert_eq!(cli.production.metrics_bind_address, Some(opkit::probes::BindAddress::Disabled));
/// assert_eq!(cli.production.shutdown_timeout, std::time::Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, clap::Args)]
pub struct Production {
    /// Run the controllers only while holding the leader election Lease (default: on inside a cluster, off otherwise).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// Name of the leader election Lease (default: NAME-lock).
    #[arg(long, value_name = "NAME")]
    pub leader_election_id: Option<String>,
    /// Namespace of the Lease (default: the Pod's namespace, or the kubeconfig context's).
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// How long other replicas honour a Lease that stopped being renewed (default 15s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Option<Duration>,
    /// How long the leader keeps acting while it cannot renew (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Option<Duration>,
    /// How often to try to acquire or renew the Lease (default 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub leader_elect_retry_period: Option<Duration>,
    /// Address of /healthz and /readyz; 0 disables (default :8081, or a free loopback port with the embedded server).
    #[arg(long, value_name = "ADDR")]
    pub health_probe_bind_address: Option<BindAddress>,
    /// Address of /metrics; 0 disables (default :8080, or a free loopback port with the embedded server).
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind_address: Option<BindAddress>,
    /// How long a shutdown waits for in-flight reconciles before cancelling them.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub shutdown_timeout: Duration,
}

/// The flags' defaults, for building a [`Cli`] in code.
///
/// ```
/// let production = opkit::cli::Production::default();
/// assert_eq!(production.leader_elect, None);
/// assert_eq!(production.shutdown_timeout, std::time::Duration::from_secs(30));
/// ```
impl Default for Production {
    fn default() -> Self {
        Self {
            leader_elect: None,
            leader_election_id: None,
            leader_election_namespace: None,
            leader_elect_lease_duration: None,
            leader_elect_renew_deadline: None,
            leader_elect_retry_period: None,
            health_probe_bind_address: None,
            metrics_bind_address: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let parsed: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration such as 15s or 1m30s: {e}"))?;
    Duration::try_from(parsed).map_err(|_| format!("{s:?} is negative"))
}

impl Production {
    /// Applies the flags to `manager`. `election` is the code's choice ([`App::leader_election`]),
    /// `in_cluster` turns leader election on by default, `local` picks free loopback ports.
    async fn apply(
        &self,
        mut manager: Manager,
        name: &str,
        election: Option<LeaderElection>,
        in_cluster: bool,
        local: bool,
    ) -> Result<Manager> {
        let elect = self
            .leader_elect
            .unwrap_or(election.is_some() || (in_cluster && !local));
        if elect {
            let mut election =
                election.unwrap_or_else(|| LeaderElection::new(format!("{name}-lock")));
            if let Some(id) = &self.leader_election_id {
                election.id.clone_from(id);
            }
            if let Some(namespace) = &self.leader_election_namespace {
                election.namespace = Some(namespace.clone());
            }
            if let Some(d) = self.leader_elect_lease_duration {
                election.lease_duration = d;
            }
            if let Some(d) = self.leader_elect_renew_deadline {
                election.renew_deadline = d;
            }
            if let Some(d) = self.leader_elect_retry_period {
                election.retry_period = d;
            }
            election.validate()?;
            manager = manager.leader_election(election);
        }
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
        let metrics = self
            .metrics_bind_address
            .clone()
            .unwrap_or_else(|| default("8080"));
        if let Some(listener) = metrics.bind().await? {
            manager = manager.metrics_endpoint(listener);
        }
        Ok(manager.shutdown_timeout(self.shutdown_timeout))
    }
}

/// Subcommands.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::cli::Cli::parse_from(["op", "crd"]);
/// assert!(matches!(cli.command, Some(opkit::cli::Command::Crd)));
/// ```
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run the controllers until SIGINT/SIGTERM.
    Run,
    /// Print the CustomResourceDefinitions.
    Crd,
    /// Print the ServiceAccount, ClusterRole and ClusterRoleBinding the operator needs.
    Rbac {
        /// Namespace of the operator's ServiceAccount.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Print the Validating/MutatingWebhookConfigurations of the admission webhooks.
    Webhooks {
        /// Namespace of the webhook Service (`NAME-webhook`).
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Ask cert-manager to inject the caBundle (`cert-manager.io/inject-ca-from`).
        #[arg(long)]
        cert_manager: bool,
    },
}

type Configure = Box<dyn FnOnce(Manager) -> Manager + Send>;
#[cfg(feature = "embedded")]
type Install = Box<
    dyn Fn(
            &crate::embedded::Embedded,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>>
        + Send
        + Sync,
>;
#[cfg(feature = "embedded")]
type Progress = Box<
    dyn FnOnce(Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
>;

/// An operator binary: its controllers, manifests and command line.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub replicas: i32 }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// fn main() -> std::process::ExitCode {
///     opkit::App::new("app-operator").operator::<App>().run()
/// }
/// ```
pub struct App {
    name: String,
    configure: Vec<Configure>,
    crds: Vec<CustomResourceDefinition>,
    rules: Vec<Rule>,
    election: Option<LeaderElection>,
    webhooks: crate::webhook::Webhooks,
    #[cfg(feature = "embedded")]
    progress: Vec<Progress>,
    #[cfg(feature = "embedded")]
    installs: Vec<Install>,
    #[cfg(feature = "embedded")]
    embedded: bool,
    #[cfg(feature = "embedded")]
    samples: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Runs the single operator `K` with the standard command line; for `fn main`.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub replicas: i32 }
/// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// fn main() -> std::process::ExitCode {
///     opkit::run::<App>()
/// }
/// ```
pub fn run<K: Reconcile>() -> ExitCode {
    App::new(format!("{}-operator", K::descriptor().name))
        .operator::<K>()
        .run()
}

impl App {
    /// An operator binary named `name` (the name of its ServiceAccount and ClusterRole).
    ///
    /// ```
    /// let app = opkit::App::new("webapp-operator");
    /// assert!(app.crd_yaml().is_ok_and(|y| y.is_empty()));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            webhooks: crate::webhook::Webhooks::new(name.clone()),
            name,
            configure: Vec::new(),
            crds: Vec::new(),
            rules: Vec::new(),
            election: None,
            #[cfg(feature = "embedded")]
            progress: Vec::new(),
            #[cfg(feature = "embedded")]
            installs: Vec::new(),
            #[cfg(feature = "embedded")]
            embedded: false,
            #[cfg(feature = "embedded")]
            samples: Vec::new(),
        }
    }

    /// Adds the controller of `K`, its CRD and its RBAC rules.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let app = opkit::App::new("app-operator").operator::<App>();
    /// assert!(app.crd_yaml().is_ok_and(|y| y.contains("apps.example.com")));
    /// ```
    pub fn operator<K: Reconcile>(mut self) -> Self {
        self.configure.push(Box::new(|m| m.operator::<K>()));
        self.crds.push(manifests::crd::<K>());
        self.rules.extend(manifests::rules::<K>());
        #[cfg(feature = "embedded")]
        self.progress.push(Box::new(|client| {
            Box::pin(crate::progress::follow::<K>(client))
        }));
        #[cfg(feature = "embedded")]
        self.installs
            .push(Box::new(|server| Box::pin(server.install_crd::<K>())));
        self
    }

    /// Hands `value` to every reconcile ([`Context::data`](crate::Context::data)).
    ///
    /// ```
    /// struct Settings { registry: String }
    /// let app = opkit::App::new("app-operator").data(Settings { registry: "registry.example.com".into() });
    /// # let _ = app;
    /// ```
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.configure.push(Box::new(move |m| m.data(value)));
        self
    }

    /// Runs with leader election configured by `election`, even outside a cluster; the
    /// `--leader-elect*` flags override it (`--leader-elect=false` turns it off). Without this
    /// call leader election is on inside a cluster with the Lease `NAME-lock`.
    ///
    /// ```
    /// let app = opkit::App::new("webapp-operator")
    ///     .leader_election(opkit::LeaderElection::new("webapp-operator-lock").namespace("ops"));
    /// # let _ = app;
    /// ```
    pub fn leader_election(mut self, election: LeaderElection) -> Self {
        self.election = Some(election);
        self
    }

    /// Adds a validating admission webhook for `K` (served by `run`, printed by `webhooks`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::webhook::{AdmissionRequest, Validator, Verdict};
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub replicas: i32 }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// struct AtMostTen;
    /// impl Validator<App> for AtMostTen {
    ///     async fn validate(&self, request: &AdmissionRequest<App>) -> Verdict {
    ///         match &request.object {
    ///             Some(app) if app.spec.replicas > 10 => Verdict::deny("at most 10 replicas"),
    ///             _ => Verdict::allow(),
    ///         }
    ///     }
    /// }
    /// let app = opkit::App::new("app-operator").operator::<App>().validator::<App>(AtMostTen);
    /// assert!(app.webhooks_yaml("ops", false).is_ok_and(|y| y.contains("ValidatingWebhookConfiguration")));
    /// ```
    pub fn validator<K: crate::webhook::Admitted>(
        mut self,
        validator: impl crate::webhook::Validator<K>,
    ) -> Self {
        self.webhooks = self.webhooks.validator(validator);
        self
    }

    /// Adds a mutating admission webhook for `K` (served by `run`, printed by `webhooks`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::webhook::{AdmissionRequest, Mutator, Verdict};
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub replicas: i32 }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// struct ManagedBy;
    /// impl Mutator<App> for ManagedBy {
    ///     async fn mutate(&self, _: &AdmissionRequest<App>, app: &mut App) -> Verdict {
    ///         app.labels_mut().insert("managed-by".into(), "app-operator".into());
    ///         Verdict::allow()
    ///     }
    /// }
    /// let app = opkit::App::new("app-operator").operator::<App>().mutator::<App>(ManagedBy);
    /// assert!(app.webhooks_yaml("ops", false).is_ok_and(|y| y.contains("MutatingWebhookConfiguration")));
    /// ```
    pub fn mutator<K: crate::webhook::Admitted>(
        mut self,
        mutator: impl crate::webhook::Mutator<K>,
    ) -> Self {
        self.webhooks = self.webhooks.mutator(mutator);
        self
    }

    /// The webhook configurations' YAML for a Service `NAME-webhook` in `namespace`; empty
    /// without webhooks.
    ///
    /// ```
    /// let yaml = opkit::App::new("app-operator").webhooks_yaml("ops", true).unwrap_or_default();
    /// assert!(yaml.is_empty());
    /// ```
    pub fn webhooks_yaml(&self, namespace: &str, cert_manager: bool) -> Result<String> {
        self.webhooks
            .clone()
            .cert_manager(cert_manager)
            .yaml(namespace)
            .map_err(|e| Error::Config(format!("admission webhooks: {e}")))
    }

    /// Defaults to an embedded API server (for demos and local development); `--cluster` opts out.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let app = opkit::App::new("app-operator").operator::<App>().embedded();
    /// # let _ = app;
    /// ```
    #[cfg(feature = "embedded")]
    pub fn embedded(mut self) -> Self {
        self.embedded = true;
        self
    }

    /// YAML applied to the embedded API server once the controllers run.
    ///
    /// ```
    /// let app = opkit::App::new("demo")
    ///     .embedded()
    ///     .sample("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n");
    /// # let _ = app;
    /// ```
    #[cfg(feature = "embedded")]
    pub fn sample(mut self, yaml: impl Into<String>) -> Self {
        self.samples.push(yaml.into());
        self
    }

    /// The CRD YAML of every kind.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let yaml = opkit::App::new("app-operator").operator::<App>().crd_yaml().unwrap_or_default();
    /// assert!(yaml.starts_with("apiVersion: apiextensions.k8s.io/v1"));
    /// ```
    pub fn crd_yaml(&self) -> Result<String> {
        manifests::to_yaml(&self.crds)
    }

    /// The RBAC YAML for a ServiceAccount in `namespace`, with the Role that lets it hold the
    /// leader election Lease there.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct AppSpec { pub image: String }
    /// # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let yaml = opkit::App::new("app-operator").operator::<App>().rbac_yaml("ops").unwrap_or_default();
    /// assert!(yaml.contains("kind: ClusterRole") && !yaml.contains("'*'"));
    /// ```
    pub fn rbac_yaml(&self, namespace: &str) -> Result<String> {
        let rules = manifests::merge(self.rules.clone());
        let mut objects = manifests::rbac_objects(&self.name, namespace, &rules);
        objects.extend(crate::leader::rbac_objects(&self.name, namespace));
        manifests::to_yaml(&objects)
    }

    /// Parses the process arguments and runs; for `fn main`.
    ///
    /// ```
    /// fn main() -> std::process::ExitCode {
    /// #   if true { return std::process::ExitCode::SUCCESS; }
    ///     opkit::App::new("demo-operator").run()
    /// }
    /// ```
    pub fn run(self) -> ExitCode {
        self.run_with(Cli::parse())
    }

    /// Runs with already parsed arguments.
    ///
    /// ```
    /// use clap::Parser;
    /// let cli = opkit::cli::Cli::parse_from(["demo-operator", "crd"]);
    /// let code = opkit::App::new("demo-operator").run_with(cli);
    /// assert_eq!(code, std::process::ExitCode::SUCCESS);
    /// ```
    pub fn run_with(self, cli: Cli) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.execute(cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    }

    /// Does what the arguments ask; `run` stops on SIGINT or SIGTERM.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// use clap::Parser;
    /// let cli = opkit::cli::Cli::parse_from(["demo-operator", "rbac"]);
    /// opkit::App::new("demo-operator").execute(cli).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute(self, cli: Cli) -> Result<()> {
        self.execute_until(cli, shutdown_signal()).await
    }

    /// Like [`App::execute`], but `run` stops when `shutdown` resolves (tests, embedding).
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// use clap::Parser;
    /// let cli = opkit::cli::Cli::parse_from(["demo-operator", "crd"]);
    /// opkit::App::new("demo-operator").execute_until(cli, std::future::ready(())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_until(
        self,
        cli: Cli,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        match &cli.command {
            Some(Command::Crd) => {
                print!("{}", self.crd_yaml()?);
                Ok(())
            }
            Some(Command::Rbac { namespace }) => {
                print!("{}", self.rbac_yaml(namespace)?);
                Ok(())
            }
            Some(Command::Webhooks {
                namespace,
                cert_manager,
            }) => {
                print!("{}", self.webhooks_yaml(namespace, *cert_manager)?);
                Ok(())
            }
            Some(Command::Run) | None => self.serve(cli, shutdown).await,
        }
    }

    async fn serve(self, cli: Cli, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        #[cfg(feature = "embedded")]
        if self.embedded && !cli.cluster {
            init_logging(cli.log_format, "warn");
            return self
                .serve_embedded(cli.write_kubeconfig, &cli.production, shutdown)
                .await;
        }
        if cli.write_kubeconfig.is_some() {
            return Err(Error::Config(
                "--write-kubeconfig only applies to the embedded API server".to_owned(),
            ));
        }
        init_logging(cli.log_format, "info");
        let mut config = kube::Config::infer().await.map_err(|e| {
            Error::Config(format!("loading the in-cluster config or kubeconfig: {e}"))
        })?;
        // opkit retries failed reconciles per object with backoff and jitter; the client's own
        // retries (up to 15 on 429/503/504) would hide those errors and stall the worker.
        config.default_retry = false;
        let client = Client::try_from(config).map_err(|e| Error::kube("building the client", e))?;
        // Every replica serves admission, leader or not.
        let webhook_server = self
            .webhooks
            .start_in_cluster(&client, &cli.webhook, client.default_namespace())
            .await
            .map_err(|e| Error::Config(format!("admission webhooks: {e}")))?;
        if let Some(webhooks) = &webhook_server {
            tracing::info!(addr = %webhooks.addr(), "serving admission webhooks");
        }
        let manager = self
            .configure
            .into_iter()
            .fold(Manager::new(client), |m, configure| configure(m));
        // Inside a Pod the kubelet sets KUBERNETES_SERVICE_HOST; that is where replicas compete.
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        let manager = cli
            .production
            .apply(manager, &self.name, self.election, in_cluster, false)
            .await?;
        tracing::info!(controllers = ?manager.controllers(), "running");
        let running = manager.start();
        tracing::info!(
            probes = ?running.health_probe_address(),
            metrics = ?running.metrics_address(),
            "serving endpoints"
        );
        shutdown.await;
        tracing::info!("shutting down; waiting for in-flight reconciles");
        running.shutdown().await;
        Ok(())
    }

    #[cfg(feature = "embedded")]
    async fn serve_embedded(
        self,
        kubeconfig: Option<PathBuf>,
        production: &Production,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        use crate::embedded::Embedded;
        println!("Starting the embedded API server...");
        let server = Embedded::start().await?;
        for install in &self.installs {
            install(&server).await?;
        }
        let webhook_server = self
            .webhooks
            .start_local(&server.client())
            .await
            .map_err(|e| Error::Config(format!("admission webhooks: {e}")))?;
        if let Some(webhooks) = &webhook_server {
            println!("Admission webhooks at {}", webhooks.url());
        }
        let path = match kubeconfig {
            Some(path) => path,
            None => std::env::temp_dir().join(format!("{}-kubeconfig.yaml", self.name)),
        };
        server.write_kubeconfig(&path)?;
        println!("API server at {}; CRDs installed.", server.url());
        println!(
            "In another terminal:\n\n    export KUBECONFIG={}\n",
            path.display()
        );
        let client = server.client();
        tokio::spawn(crate::progress::events(client.clone()));
        for follow in self.progress {
            tokio::spawn(follow(client.clone()));
        }
        let manager = self
            .configure
            .into_iter()
            .fold(Manager::new(client.clone()), |m, configure| configure(m));
        let manager = production
            .apply(manager, &self.name, self.election, false, true)
            .await?;
        println!("Operator running: {}", manager.controllers().join(", "));
        let running = manager.start();
        if let Some(addr) = running.health_probe_address() {
            println!("Probes at http://{addr}/healthz and http://{addr}/readyz");
        }
        if let Some(addr) = running.metrics_address() {
            println!("Metrics at http://{addr}/metrics");
        }
        for sample in &self.samples {
            for applied in manifests::apply_yaml(&client, &self.name, sample).await? {
                println!("Applied {applied}");
            }
        }
        println!("Press Ctrl-C to stop.");
        shutdown.await;
        println!("Shutting down...");
        running.shutdown().await;
        Ok(())
    }
}

fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A subscriber may already be installed (tests, embedding applications); keep theirs.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
