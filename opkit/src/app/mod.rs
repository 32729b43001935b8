//! An operator binary: its controllers, manifests and command line (`run`, `crd`, `rbac`,
//! `webhooks`).
//!
//! ```text
//! my-operator                 # run against the in-cluster config or the current kubeconfig context
//! my-operator crd             # the CRD YAML of every custom resource the operator defines
//! my-operator rbac            # least-privilege ServiceAccount, ClusterRole and binding
//! my-operator webhooks        # the Validating/MutatingWebhookConfigurations of its admission webhooks
//! my-operator migrate         # rewrite stored objects in the storage version of each kind with several versions
//! my-operator policies        # its ValidatingAdmissionPolicies, their bindings and parameters
//! my-operator --log-format json
//! ```
//!
//! With the `embedded` feature an [`App`] can default to an embedded API server instead
//! ([`App::embedded`], the examples do): `--cluster` (or `--kubeconfig PATH`) then selects a cluster,
//! and `--write-kubeconfig PATH` says where to write the embedded server's kubeconfig.

mod cli;
#[cfg(feature = "embedded")]
mod demo;
mod logging;
#[cfg(feature = "webhooks")]
mod migrate;
#[cfg(feature = "embedded")]
mod progress;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub use cli::{Cli, Command, LogFormat};

use crate::controller::Controller;
use crate::error::Result;
use crate::leader::LeaderElection;
use crate::manager::Manager;
use crate::manifests;
use crate::operator::Operator;
use crate::policy::Policy;
use crate::rbac::{self, Rule};
use crate::reconcile::Reconcile;
use crate::shard::Sharding;

type Configure = Box<dyn FnOnce(Manager) -> Manager + Send>;

/// An operator binary: its controllers, manifests and command line.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
/// # pub struct SiteSpec { pub replicas: i32 }
/// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// fn main() -> std::process::ExitCode {
///     opkit::App::new("site-operator").operator::<Site>().run()
/// }
/// ```
pub struct App {
    name: String,
    controllers: Vec<String>,
    configure: Vec<Configure>,
    crds: Vec<CustomResourceDefinition>,
    policies: Vec<Policy>,
    rules: Vec<Rule>,
    /// What sharding needs of each primary kind.
    sharding_rules: Vec<Rule>,
    election: Option<LeaderElection>,
    sharding: Option<Sharding>,
    #[cfg(feature = "webhooks")]
    webhooks: crate::webhook::Webhooks,
    /// The kinds with several versions, whose CRDs these assemble.
    #[cfg(feature = "webhooks")]
    versions: Vec<crate::versions::Catalog>,
    #[cfg(feature = "embedded")]
    demo: demo::Demo,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("controllers", &self.controllers)
            .finish_non_exhaustive()
    }
}

/// Runs the operator's own custom resource `K` with the standard command line; for `fn main`.
///
/// ```no_run
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
/// # pub struct SiteSpec { pub replicas: i32 }
/// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
/// fn main() -> std::process::ExitCode {
///     opkit::run::<Site>()
/// }
/// ```
pub fn run<K: Operator + Reconcile>() -> ExitCode {
    let controller = K::controller(());
    App::new(format!("{}-operator", controller.name()))
        .controller(controller)
        .run()
}

impl App {
    /// An operator binary named `name` (the name of its ServiceAccount and ClusterRole).
    ///
    /// ```
    /// let app = opkit::App::new("site-operator");
    /// assert!(app.crd_yaml().is_ok_and(|y| y.is_empty()));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            #[cfg(feature = "webhooks")]
            webhooks: crate::webhook::Webhooks::new(name.clone()),
            #[cfg(feature = "webhooks")]
            versions: Vec::new(),
            name,
            controllers: Vec::new(),
            configure: Vec::new(),
            crds: Vec::new(),
            policies: Vec::new(),
            rules: Vec::new(),
            sharding_rules: Vec::new(),
            election: None,
            sharding: None,
            #[cfg(feature = "embedded")]
            demo: demo::Demo::default(),
        }
    }

    /// The operator's name: its ServiceAccount, ClusterRole and field manager prefix.
    ///
    /// ```
    /// assert_eq!(opkit::App::new("site-operator").name(), "site-operator");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a controller (see [`Controller`]): its RBAC rules, and its CRD when it defines one.
    ///
    /// ```
    /// use opkit::prelude::*;
    /// use opkit::k8s::{Namespace, ResourceQuota};
    /// struct Quotas;
    /// impl Reconcile<Quotas> for Namespace {
    ///     async fn reconcile(&self, _: &Context<Self, Quotas>) -> opkit::Result<Action> { Ok(Action::done()) }
    /// }
    /// let quotas = opkit::Controller::<Namespace, _>::new("quotas", Quotas).owns::<ResourceQuota>();
    /// let app = opkit::App::new("quota-operator").controller(quotas);
    /// assert!(app.rbac_yaml("ops").is_ok_and(|y| y.contains("resourcequotas")));
    /// assert!(app.crd_yaml().is_ok_and(|y| y.is_empty()));
    /// ```
    pub fn controller<K, D>(mut self, controller: Controller<K, D>) -> Self
    where
        K: Reconcile<D>,
        D: Send + Sync + 'static,
    {
        self.controllers.push(controller.name().to_owned());
        if let Some(crd) = controller.crd() {
            self = self.crd(crd.clone());
        }
        self.rules.extend(controller.rules());
        self.sharding_rules.extend(crate::shard::rules::<K>());
        #[cfg(feature = "embedded")]
        self.demo.follow::<K>();
        self.configure
            .push(Box::new(move |manager| manager.controller(controller)));
        self
    }

    /// Adds the controller of the operator's own custom resource `K` with no data.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::ConfigMap;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct SiteSpec { pub image: String }
    /// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let app = opkit::App::new("site-operator").operator::<Site>();
    /// assert!(app.crd_yaml().is_ok_and(|y| y.contains("sites.example.com")));
    /// ```
    pub fn operator<K: Operator + Reconcile>(self) -> Self {
        self.controller(K::controller(()))
    }

    /// Adds a CRD the operator defines besides those of its controllers (printed by `crd`,
    /// installed on the embedded server); a CRD of the same name replaces the earlier one.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub image: String }
    /// let app = opkit::App::new("site-operator").crd(Site::crd());
    /// assert!(app.crd_yaml().is_ok_and(|y| y.contains("name: sites.example.com")));
    /// ```
    pub fn crd(mut self, crd: CustomResourceDefinition) -> Self {
        self.crds.retain(|c| c.metadata.name != crd.metadata.name);
        self.crds.push(crd);
        self
    }

    /// Adds a ValidatingAdmissionPolicy the operator ships, with its bindings and default
    /// parameters (printed by `policies`, installed on the embedded server); a policy of the
    /// same name replaces the earlier one.
    ///
    /// ```
    /// use opkit::policy::{Binding, Policy, Validation};
    /// let replicas = Policy::new("replicas")
    ///     .on::<opkit::k8s::Deployment>()
    ///     .validation(Validation::new("object.spec.replicas <= 5").message("at most 5 replicas"))
    ///     .binding(Binding::new("replicas"));
    /// let app = opkit::App::new("site-operator").policy(replicas);
    /// assert!(app.policies_yaml("ops").is_ok_and(|y| y.contains("kind: ValidatingAdmissionPolicy\n")));
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policies.retain(|p| p.name() != policy.name());
        self.policies.push(policy);
        self
    }

    /// The YAML of the operator's admission policies, their bindings and parameters for an
    /// operator deployed to `namespace`; empty without policies.
    ///
    /// ```
    /// assert_eq!(opkit::App::new("site-operator").policies_yaml("ops").unwrap_or_default(), "");
    /// ```
    pub fn policies_yaml(&self, namespace: &str) -> Result<String> {
        let objects: Vec<_> = self
            .policies
            .iter()
            .flat_map(|p| p.objects(namespace))
            .collect();
        manifests::to_yaml(&objects)
    }

    /// Runs with leader election configured by `election`, even outside a cluster; the
    /// `--leader-elect*` flags override it (`--leader-elect=false` turns it off). Without this
    /// call leader election is on inside a cluster with the Lease `NAME-lock`.
    ///
    /// ```
    /// let app = opkit::App::new("site-operator")
    ///     .leader_election(opkit::LeaderElection::new("site-operator-lock").namespace("ops"));
    /// # let _ = app;
    /// ```
    pub fn leader_election(mut self, election: LeaderElection) -> Self {
        self.election = Some(election);
        self
    }

    /// Splits the primaries across the operator's replicas (see [`crate::shard`]); the
    /// `--sharding*` flags override it (`--sharding=false` turns it off), and `rbac` then
    /// includes what sharding needs.
    ///
    /// ```
    /// let app = opkit::App::new("site-operator").sharding(opkit::Sharding::new("site-operator"));
    /// assert!(app.rbac_yaml("ops").is_ok_and(|y| y.contains("watch")));
    /// ```
    pub fn sharding(mut self, sharding: Sharding) -> Self {
        self.sharding = Some(sharding);
        self
    }

    /// Adds a validating admission webhook for `K` (served by `run`, printed by `webhooks`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::webhook::{AdmissionRequest, Validator, Verdict};
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// struct AtMostTen;
    /// impl Validator<Site> for AtMostTen {
    ///     async fn validate(&self, request: &AdmissionRequest<Site>) -> Verdict {
    ///         match &request.object {
    ///             Some(site) if site.spec.replicas > 10 => Verdict::deny("at most 10 replicas"),
    ///             _ => Verdict::allow(),
    ///         }
    ///     }
    /// }
    /// let app = opkit::App::new("site-operator").validator::<Site>(AtMostTen);
    /// assert!(app.webhooks_yaml("ops", false).is_ok_and(|y| y.contains("ValidatingWebhookConfiguration")));
    /// ```
    #[cfg(feature = "webhooks")]
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
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// struct ManagedBy;
    /// impl Mutator<Site> for ManagedBy {
    ///     async fn mutate(&self, _: &AdmissionRequest<Site>, site: &mut Site) -> Verdict {
    ///         site.labels_mut().insert("managed-by".into(), "site-operator".into());
    ///         Verdict::allow()
    ///     }
    /// }
    /// let app = opkit::App::new("site-operator").mutator::<Site>(ManagedBy);
    /// assert!(app.webhooks_yaml("ops", false).is_ok_and(|y| y.contains("MutatingWebhookConfiguration")));
    /// ```
    #[cfg(feature = "webhooks")]
    pub fn mutator<K: crate::webhook::Admitted>(
        mut self,
        mutator: impl crate::webhook::Mutator<K>,
    ) -> Self {
        self.webhooks = self.webhooks.mutator(mutator);
        self
    }

    /// Serves a kind in several versions ([`Versions`](crate::versions::Versions)): its CRD
    /// (printed by `crd`) holds every version and calls the operator's conversion webhook,
    /// served by `run` and listed by `webhooks`; `migrate` moves its stored objects to the
    /// hub's version. The operator reconciles the hub. Its RBAC gains `get` and `patch` on the
    /// CRD and its status (pointing the CRD at the webhook, migrating).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # mod v1 { use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 } }
    /// # mod v2 { use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } } }
    /// # impl From<v1::Site> for v2::Site { fn from(s: v1::Site) -> Self { v2::Site { metadata: s.metadata, spec: v2::SiteSpec { replicas: s.spec.replicas } } } }
    /// # impl From<v2::Site> for v1::Site { fn from(s: v2::Site) -> Self { v1::Site { metadata: s.metadata, spec: v1::SiteSpec { replicas: s.spec.replicas } } } }
    /// use opkit::versions::Versions;
    /// let app = opkit::App::new("site-operator")
    ///     .operator::<v2::Site>()
    ///     .versions(Versions::<v2::Site>::new().spoke::<v1::Site>());
    /// let crd = app.crd_yaml()?;
    /// assert!(crd.contains("name: v1") && crd.contains("name: v2") && crd.contains("strategy: Webhook"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "webhooks")]
    pub fn versions<H>(mut self, versions: crate::versions::Versions<H>) -> Self {
        let catalog = versions.catalog().clone();
        let name = catalog.crd_name();
        let crds = "customresourcedefinitions";
        let group = "apiextensions.k8s.io";
        self.rules
            .push(Rule::new(group, &[crds], &["get", "patch"]).named(&[&name]));
        self.rules.push(
            Rule::new(group, &[&format!("{crds}/status")], &["get", "patch"]).named(&[&name]),
        );
        self.versions.retain(|c| c.crd_name() != name);
        self.versions.push(catalog);
        self.webhooks = self.webhooks.conversion(versions);
        self
    }

    /// The webhook configurations' YAML for a Service `NAME-webhook` in `namespace`; empty
    /// without webhooks.
    ///
    /// ```
    /// let yaml = opkit::App::new("site-operator").webhooks_yaml("ops", true).unwrap_or_default();
    /// assert!(yaml.is_empty());
    /// ```
    #[cfg(feature = "webhooks")]
    pub fn webhooks_yaml(&self, namespace: &str, cert_manager: bool) -> Result<String> {
        self.webhooks
            .clone()
            .cert_manager(cert_manager)
            .yaml(namespace)
            .map_err(|e| crate::Error::Config(format!("admission webhooks: {e}")))
    }

    /// Defaults to an embedded API server (for demos and local development); `--cluster` opts out.
    ///
    /// ```
    /// let app = opkit::App::new("site-operator").embedded();
    /// # let _ = app;
    /// ```
    #[cfg(feature = "embedded")]
    pub fn embedded(mut self) -> Self {
        self.demo.enabled = true;
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
        self.demo.samples.push(yaml.into());
        self
    }

    /// The CRD YAML of every custom resource the operator defines; those with several
    /// versions call the conversion webhook behind the Service `NAME-webhook` in `default`
    /// (see [`App::crd_yaml_for`]).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::ConfigMap;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct SiteSpec { pub image: String }
    /// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let yaml = opkit::App::new("site-operator").operator::<Site>().crd_yaml().unwrap_or_default();
    /// assert!(yaml.starts_with("apiVersion: apiextensions.k8s.io/v1"));
    /// ```
    pub fn crd_yaml(&self) -> Result<String> {
        self.crd_yaml_for("default", false)
    }

    /// The CRD YAML for an operator whose webhook Service `NAME-webhook` is in `namespace`;
    /// with `cert_manager`, CRDs with a conversion webhook ask cert-manager to inject its CA
    /// (`cert-manager.io/inject-ca-from`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub image: String }
    /// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let app = opkit::App::new("site-operator").operator::<Site>();
    /// assert_eq!(app.crd_yaml_for("ops", true)?, app.crd_yaml()?);
    /// # Ok::<(), opkit::Error>(())
    /// ```
    pub fn crd_yaml_for(&self, namespace: &str, cert_manager: bool) -> Result<String> {
        manifests::to_yaml(&self.crds(namespace, cert_manager)?)
    }

    /// The CRDs, those with several versions assembled with their conversion webhook.
    fn crds(&self, namespace: &str, cert_manager: bool) -> Result<Vec<CustomResourceDefinition>> {
        #[cfg(feature = "webhooks")]
        {
            let service = self.webhooks.service_name();
            let endpoint = crate::webhook::Endpoint::Service {
                namespace: namespace.to_owned(),
                name: service.clone(),
                port: 443,
            };
            let assemble = |catalog: &crate::versions::Catalog| {
                let mut crd = catalog
                    .crd(&endpoint, None)
                    .map_err(|e| crate::Error::Config(e.to_string()))?;
                if cert_manager {
                    crd.metadata.annotations.get_or_insert_default().insert(
                        "cert-manager.io/inject-ca-from".to_owned(),
                        format!("{namespace}/{service}"),
                    );
                }
                Ok::<_, crate::Error>(crd)
            };
            let mut crds = Vec::new();
            for crd in &self.crds {
                match self
                    .versions
                    .iter()
                    .find(|c| Some(c.crd_name()) == crd.metadata.name)
                {
                    Some(catalog) => crds.push(assemble(catalog)?),
                    None => crds.push(crd.clone()),
                }
            }
            for catalog in &self.versions {
                if !crds
                    .iter()
                    .any(|c| c.metadata.name == Some(catalog.crd_name()))
                {
                    crds.push(assemble(catalog)?);
                }
            }
            Ok(crds)
        }
        #[cfg(not(feature = "webhooks"))]
        {
            let _ = (namespace, cert_manager);
            Ok(self.crds.clone())
        }
    }

    /// The RBAC YAML for a ServiceAccount in `namespace`: the rules of every controller and
    /// those of the secured `/metrics` endpoint ([`rbac::metrics_auth`]), the
    /// `NAME-metrics-reader` ClusterRole for scrapers ([`rbac::metrics_reader`]), and the Role
    /// that lets it hold the leader election Lease there.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::ConfigMap;
    /// # #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # #[operator(owns(ConfigMap))]
    /// # pub struct SiteSpec { pub image: String }
    /// # impl Reconcile for Site { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
    /// let yaml = opkit::App::new("site-operator").operator::<Site>().rbac_yaml("ops").unwrap_or_default();
    /// assert!(yaml.contains("kind: ClusterRole") && !yaml.contains("'*'"));
    /// ```
    pub fn rbac_yaml(&self, namespace: &str) -> Result<String> {
        let mut rules = self.rules.clone();
        let mut leases = rbac::leader_election(&self.name, namespace);
        if self.sharding.is_some() {
            rules.extend(self.sharding_rules.iter().cloned());
            // The sharder watches the ring's membership Leases.
            if let Some(verbs) = leases
                .first_mut()
                .and_then(|role| role.pointer_mut("/rules/0/verbs"))
                .and_then(|v| v.as_array_mut())
            {
                verbs.extend(["list", "watch"].map(serde_json::Value::from));
            }
        }
        #[cfg(feature = "webhooks")]
        rules.extend(rbac::metrics_auth());
        let mut objects = rbac::objects(&self.name, namespace, &rbac::merge(rules));
        #[cfg(feature = "webhooks")]
        objects.push(rbac::metrics_reader(&self.name));
        objects.extend(leases);
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
    /// let cli = opkit::app::Cli::parse_from(["demo-operator", "crd"]);
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
    /// let cli = opkit::app::Cli::parse_from(["demo-operator", "rbac"]);
    /// opkit::App::new("demo-operator").execute(cli).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute(self, cli: Cli) -> Result<()> {
        self.execute_until(cli, serve::shutdown_signal()).await
    }

    /// Like [`App::execute`], but `run` stops when `shutdown` resolves (tests, embedding).
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// use clap::Parser;
    /// let cli = opkit::app::Cli::parse_from(["demo-operator", "crd"]);
    /// opkit::App::new("demo-operator").execute_until(cli, std::future::ready(())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_until(
        mut self,
        cli: Cli,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        match &cli.command {
            Some(Command::Crd {
                namespace,
                cert_manager,
            }) => {
                print!("{}", self.crd_yaml_for(namespace, *cert_manager)?);
                Ok(())
            }
            #[cfg(feature = "webhooks")]
            Some(Command::Migrate { crd }) => {
                let crds = self.versions.iter().map(|c| c.crd_name()).collect();
                migrate::run(
                    crds,
                    cli.log_format,
                    cli.kubeconfig.as_deref(),
                    crd.as_deref(),
                )
                .await
            }
            Some(Command::Rbac {
                namespace,
                sharding,
            }) => {
                if *sharding && self.sharding.is_none() {
                    self.sharding = Some(Sharding::new(self.name.clone()));
                }
                print!("{}", self.rbac_yaml(namespace)?);
                Ok(())
            }
            #[cfg(feature = "webhooks")]
            Some(Command::Webhooks {
                namespace,
                cert_manager,
            }) => {
                print!("{}", self.webhooks_yaml(namespace, *cert_manager)?);
                Ok(())
            }
            Some(Command::Policies { namespace }) => {
                print!("{}", self.policies_yaml(namespace)?);
                Ok(())
            }
            Some(Command::Run) | None => {
                #[cfg(feature = "embedded")]
                if self.demo.enabled && !cli.cluster && cli.kubeconfig.is_none() {
                    return demo::serve(self, cli, shutdown).await;
                }
                serve::serve(self, cli, shutdown).await
            }
        }
    }

    /// The manager with every controller added and the command line's leader election,
    /// endpoints and drain applied; `elect` turns leader election on by default, `local` binds
    /// the endpoints to free loopback ports.
    async fn manager(
        configure: Vec<Configure>,
        client: kube::Client,
        election: Option<LeaderElection>,
        name: &str,
        cli: &Cli,
        elect: bool,
        local: bool,
    ) -> Result<Manager> {
        let mut manager = configure
            .into_iter()
            .fold(Manager::new(client), |manager, add| add(manager));
        if let Some(election) = cli.leader_election.resolve(election, name, elect)? {
            manager = manager.leader_election(election);
        }
        Ok(cli
            .probes
            .apply(manager, local)
            .await?
            .shutdown_timeout(cli.shutdown_timeout))
    }
}
