//! Starting the webhooks with an operator: a loopback server for embedded runs, a cluster
//! server behind a Service otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;

use kube::Client;

use super::{Certificates, Endpoint, WebhookError, WebhookServer, Webhooks};

/// The webhook flags of `run`, with controller-runtime's defaults.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "--webhook-port", "8443"]);
/// assert_eq!(cli.webhook.webhook_port, 8443);
/// assert!(cli.webhook.webhook_cert_dir.is_none());
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct WebhookFlags {
    /// Port of the admission webhook server (HTTPS, all interfaces) in a cluster.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value_t = 9443, env = "OPKIT_WEBHOOK_PORT")
    )]
    pub webhook_port: u16,
    /// Directory with tls.crt and tls.key (a cert-manager Secret); without it a self-signed CA is generated and injected into the webhook configurations.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "DIR", env = "OPKIT_WEBHOOK_CERT_DIR")
    )]
    pub webhook_cert_dir: Option<PathBuf>,
}

impl Default for WebhookFlags {
    /// The flags' defaults, for a [`Cli`](crate::app::Cli) built in code.
    ///
    /// ```
    /// assert_eq!(opkit::webhook::WebhookFlags::default().webhook_port, 9443);
    /// ```
    fn default() -> Self {
        Self {
            webhook_port: 9443,
            webhook_cert_dir: None,
        }
    }
}

impl Webhooks {
    /// Serves on a loopback port with a fresh self-signed CA and installs the configurations
    /// with `url` clientConfigs and that CA as caBundle: for embedded API servers and local runs.
    /// `None` when no webhook was added.
    ///
    /// ```no_run
    /// # async fn f(client: kube::Client, webhooks: opkit::webhook::Webhooks) -> Result<(), opkit::webhook::WebhookError> {
    /// let server = webhooks.start_local(&client).await?;
    /// # let _ = server; Ok(()) }
    /// ```
    pub async fn start_local(
        &self,
        client: &Client,
    ) -> Result<Option<WebhookServer>, WebhookError> {
        if self.is_empty() {
            return Ok(None);
        }
        let certs = Certificates::self_signed(&["localhost", "127.0.0.1"])?;
        let server = self
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)), &certs)
            .await?;
        self.install(client, &Endpoint::Url(server.url()), Some(certs.ca_pem()))
            .await?;
        Ok(Some(server))
    }

    /// Serves on all interfaces at `flags.webhook_port` inside a cluster. With
    /// `flags.webhook_cert_dir` the certificate is cert-manager's and the admission
    /// configurations are left to the manifests (cert-manager injects the caBundle), while the
    /// CRDs of conversion webhooks are pointed at the Service with the directory's CA (this
    /// needs `patch` on them); without it, in a Pod, a
    /// self-signed CA is generated for the Service `<name>-webhook` in `namespace` and the
    /// configurations are installed with it (this needs `create` and `patch` on them). Outside a
    /// Pod without a certificate directory nothing is served or installed. `None` when nothing
    /// is served.
    ///
    /// ```no_run
    /// # async fn f(client: kube::Client, webhooks: opkit::webhook::Webhooks) -> Result<(), opkit::webhook::WebhookError> {
    /// let flags = opkit::webhook::WebhookFlags::default();
    /// let server = webhooks.start_in_cluster(&client, &flags, "ops").await?;
    /// # let _ = server; Ok(()) }
    /// ```
    pub async fn start_in_cluster(
        &self,
        client: &Client,
        flags: &WebhookFlags,
        namespace: &str,
    ) -> Result<Option<WebhookServer>, WebhookError> {
        if self.is_empty() {
            return Ok(None);
        }
        let addr = SocketAddr::from(([0, 0, 0, 0], flags.webhook_port));
        let service = self.service_name();
        let endpoint = Endpoint::Service {
            namespace: namespace.to_owned(),
            name: service.clone(),
            port: 443,
        };
        if let Some(dir) = &flags.webhook_cert_dir {
            let certs = Certificates::from_dir(dir)?;
            let server = self.serve(addr, &certs).await?;
            // CRDs shipped as static files (a Helm chart's) cannot name the release's namespace
            // or CA: the conversion webhooks point them here.
            for conversion in &self.conversions {
                conversion
                    .install(client, &endpoint, Some(certs.ca_pem()))
                    .await?;
            }
            return Ok(Some(server));
        }
        // From a workstation the cluster cannot reach this process: configurations pointing at
        // it would refuse every write of the kinds (failurePolicy Fail) and outlive the run.
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
            tracing::warn!(
                "admission webhooks are not served outside a cluster without --webhook-cert-dir"
            );
            return Ok(None);
        }
        let names = [
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let certs = Certificates::self_signed(&names)?;
        let server = self.serve(addr, &certs).await?;
        self.install(client, &endpoint, Some(certs.ca_pem()))
            .await?;
        Ok(Some(server))
    }
}
