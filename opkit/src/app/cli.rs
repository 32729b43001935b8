//! The command line of every operator binary: its subcommands and flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Log output format.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "--log-format", "json"]);
/// assert_eq!(cli.log_format, opkit::app::LogFormat::Json);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal only).
    Human,
    /// One JSON object per line.
    Json,
}

/// Command-line arguments of an operator binary; [`App::run`](crate::App::run) parses them and
/// `--help` lists them.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "rbac", "--namespace", "ops"]);
/// assert!(matches!(cli.command, Some(opkit::app::Command::Rbac { .. })));
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
    /// Use this kubeconfig's current context instead of the in-cluster config or $KUBECONFIG (implies --cluster).
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Where to write the embedded API server's kubeconfig.
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,
    /// How long a shutdown waits for in-flight reconciles before cancelling them.
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration, default_value = "30s")]
    pub shutdown_timeout: Duration,
    /// Leader election.
    #[command(flatten)]
    pub leader_election: crate::leader::LeaderElectionFlags,
    /// Sharding across replicas.
    #[command(flatten)]
    pub sharding: crate::shard::ShardingFlags,
    /// The health probe and metrics endpoints.
    #[command(flatten)]
    pub probes: crate::probes::ProbeFlags,
    /// The admission webhook server.
    #[cfg(feature = "webhooks")]
    #[command(flatten)]
    pub webhook: crate::webhook::WebhookFlags,
}

/// Subcommands.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "crd"]);
/// assert!(matches!(cli.command, Some(opkit::app::Command::Crd { .. })));
/// ```
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run the controllers until SIGINT/SIGTERM.
    Run,
    /// Print the CustomResourceDefinitions.
    Crd {
        /// Namespace of the webhook Service (`NAME-webhook`) that converts between versions.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Ask cert-manager to inject the conversion webhook's caBundle (`cert-manager.io/inject-ca-from`).
        #[arg(long)]
        cert_manager: bool,
    },
    /// Print the ServiceAccount, ClusterRole and ClusterRoleBinding the operator needs, the metrics-reader ClusterRole for scrapers and the leader election Role.
    Rbac {
        /// Namespace of the operator's ServiceAccount.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Include what sharding needs (labelling the primaries, watching the ring's Leases).
        #[arg(long)]
        sharding: bool,
    },
    /// Print the ValidatingAdmissionPolicies, their bindings and default parameters.
    Policies {
        /// Namespace the operator is deployed to (where its policies' parameters live).
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Print the Validating/MutatingWebhookConfigurations of the admission webhooks.
    #[cfg(feature = "webhooks")]
    Webhooks {
        /// Namespace of the webhook Service (`NAME-webhook`).
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Ask cert-manager to inject the caBundle (`cert-manager.io/inject-ca-from`).
        #[arg(long)]
        cert_manager: bool,
    },
    /// Rewrite every stored object of the kinds with several versions in their storage version, then drop the older versions from the CRDs' status.storedVersions; resumes where a stopped run stopped.
    #[cfg(feature = "webhooks")]
    Migrate {
        /// Only this CRD (`plural.group`); default: every CRD with several versions.
        #[arg(long)]
        crd: Option<String>,
    },
}
