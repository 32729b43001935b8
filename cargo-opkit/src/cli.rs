//! The command line: `cargo opkit new | create api | create webhook | manifests`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::Error;
use crate::scaffold::{Dependency, NewApi, NewProject, NewWebhook};

/// `cargo opkit`, as cargo runs it: `cargo-opkit opkit <command>`.
///
/// ```
/// use clap::Parser;
/// let cli = cargo_opkit::Cli::parse_from(["cargo-opkit", "opkit", "manifests", "--check"]);
/// # let _ = cli;
/// ```
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
pub enum Cli {
    /// Scaffolding for opkit operators.
    Opkit(Opkit),
}

/// The `cargo opkit` subcommands.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "create", "api", "--version", "v1", "--kind", "Site"]);
/// assert!(matches!(opkit.command, cargo_opkit::cli::Command::Create { .. }));
/// ```
#[derive(Debug, Args)]
#[command(version, about = "Scaffolding for opkit operators", long_about = None)]
pub struct Opkit {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `cargo opkit` subcommand.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "new", "site-operator", "--group", "sites.example.com"]);
/// assert!(matches!(opkit.command, cargo_opkit::cli::Command::New(_)));
/// ```
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an operator project in the directory NAME.
    New(NewArgs),
    /// Add a kind (`api`) or admission webhooks (`webhook`) to the project.
    Create {
        /// What to add.
        #[command(subcommand)]
        what: Create,
    },
    /// Write config/ (kustomize) and charts/NAME (Helm) from the operator's own output.
    Manifests {
        /// Write nothing; fail when a generated file is out of date.
        #[arg(long)]
        check: bool,
    },
}

/// `cargo opkit new`'s arguments.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "new", "site-operator", "--group", "sites", "--domain", "example.com"]);
/// let cargo_opkit::cli::Command::New(args) = opkit.command else { unreachable!() };
/// assert_eq!(args.domain.as_deref(), Some("example.com"));
/// ```
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's name: its package, directory and name in the cluster.
    pub name: String,
    /// The API group of its kinds (GROUP.DOMAIN with --domain).
    #[arg(long)]
    pub group: String,
    /// The domain the API group ends with, such as example.com.
    #[arg(long)]
    pub domain: Option<String>,
    /// Depend on an opkit checkout (its workspace directory) instead of the package registry.
    #[arg(long, value_name = "DIR")]
    pub opkit_path: Option<PathBuf>,
}

/// What `cargo opkit create` adds.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "create", "webhook", "--kind", "Site", "--validating"]);
/// assert!(matches!(opkit.command, cargo_opkit::cli::Command::Create { what: cargo_opkit::cli::Create::Webhook(_) }));
/// ```
#[derive(Debug, Subcommand)]
pub enum Create {
    /// A kind, its controller, a sample and a test.
    #[command(disable_version_flag = true)]
    Api(ApiArgs),
    /// Typed admission webhooks for a kind, and their tests.
    Webhook(WebhookArgs),
}

/// `cargo opkit create api`'s arguments.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "create", "api", "--version", "v1", "--kind", "Site", "--cluster", "--owns", "Deployment,Service"]);
/// let cargo_opkit::cli::Command::Create { what: cargo_opkit::cli::Create::Api(args) } = opkit.command else { unreachable!() };
/// assert_eq!(args.owns, ["Deployment", "Service"]);
/// assert!(args.cluster);
/// ```
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The kind's version, such as v1 or v1alpha1.
    #[arg(long)]
    pub version: String,
    /// The kind, UpperCamelCase.
    #[arg(long)]
    pub kind: String,
    /// Objects of the kind live in a namespace (the default).
    #[arg(long, conflicts_with = "cluster")]
    pub namespaced: bool,
    /// Objects of the kind are cluster-scoped.
    #[arg(long)]
    pub cluster: bool,
    /// Kinds its controller creates and owns, comma-separated: Deployment, StatefulSet,
    /// DaemonSet, Job, CronJob, Service, ConfigMap, ServiceAccount, PersistentVolumeClaim.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub owns: Vec<String>,
}

/// `cargo opkit create webhook`'s arguments.
///
/// ```
/// use clap::Parser;
/// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "create", "webhook", "--kind", "Site", "--mutating"]);
/// let cargo_opkit::cli::Command::Create { what: cargo_opkit::cli::Create::Webhook(args) } = opkit.command else { unreachable!() };
/// assert!(args.mutating && !args.validating);
/// ```
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// The kind the webhooks admit.
    #[arg(long)]
    pub kind: String,
    /// A validating webhook: accepts or refuses writes.
    #[arg(long)]
    pub validating: bool,
    /// A mutating webhook: changes objects before they are stored.
    #[arg(long)]
    pub mutating: bool,
}

impl Opkit {
    /// Runs the command in `dir`; returns what to tell the user.
    ///
    /// ```
    /// use clap::Parser;
    /// let dir = tempfile::tempdir()?;
    /// let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse_from(["cargo", "opkit", "new", "site-operator", "--group", "sites.example.com"]);
    /// let report = opkit.run(dir.path())?;
    /// assert!(report.contains("cd site-operator"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(self, dir: &std::path::Path) -> Result<String, Error> {
        match self.command {
            Command::New(args) => {
                let options = NewProject {
                    opkit: match args.opkit_path {
                        Some(path) => {
                            Dependency::Path(std::path::absolute(&path).map_err(Error::io(path))?)
                        }
                        None => Dependency::Registry,
                    },
                    name: args.name,
                    group: args.group,
                    domain: args.domain,
                };
                let written = crate::scaffold::new(dir, &options)?;
                Ok(format!(
                    "{}\nNext:\n\n    cd {}\n    cargo opkit create api --version v1 --kind MyKind --owns Deployment\n    cargo run\n",
                    listing(&written),
                    options.name
                ))
            }
            Command::Create {
                what: Create::Api(args),
            } => {
                let api = NewApi {
                    version: args.version,
                    kind: args.kind,
                    namespaced: !args.cluster,
                    owns: args.owns,
                };
                let written = crate::scaffold::create_api(dir, &api)?;
                Ok(format!(
                    "{}\nNext: write the spec and the reconcile, then `cargo test` and `cargo run`.\n",
                    listing(&written)
                ))
            }
            Command::Create {
                what: Create::Webhook(args),
            } => {
                let webhook = NewWebhook {
                    kind: args.kind,
                    validating: args.validating,
                    mutating: args.mutating,
                };
                Ok(listing(&crate::scaffold::create_webhook(dir, &webhook)?))
            }
            Command::Manifests { check: true } => {
                crate::operator::update_manifests(dir, true)?;
                Ok("The manifests are up to date.\n".to_owned())
            }
            Command::Manifests { check: false } => {
                let written = crate::operator::update_manifests(dir, false)?;
                if written.is_empty() {
                    Ok("The manifests are up to date.\n".to_owned())
                } else {
                    Ok(listing(&written))
                }
            }
        }
    }
}

fn listing(written: &[PathBuf]) -> String {
    written
        .iter()
        .map(|p| format!("    wrote {}\n", p.display()))
        .collect()
}
