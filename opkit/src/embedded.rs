//! Opt-in embedded mode: run an operator against an in-process API server (`opkit-envtest`).
//!
//! For demos and local development: no cluster, nothing to install. A user's operator defaults
//! to the in-cluster configuration or the current kubeconfig context; [`App::embedded`](crate::App::embedded)
//! makes the embedded server its default, and `--cluster` opts back out.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;

use crate::error::{Error, Result};

/// A running embedded API server.
///
/// ```no_run
/// # async fn f() -> opkit::Result<()> {
/// let server = opkit::embedded::Embedded::start().await?;
/// let client = server.client();
/// server.write_kubeconfig(std::path::Path::new("kubeconfig.yaml"))?;
/// # let _ = client; Ok(()) }
/// ```
pub struct Embedded {
    env: opkit_envtest::TestEnv,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("url", &self.url())
            .finish()
    }
}

impl Embedded {
    /// Starts a fresh server on a loopback port.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// let server = opkit::embedded::Embedded::start().await?;
    /// println!("API server at {}", server.url());
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self> {
        let env = opkit_envtest::TestEnv::start()
            .await
            .map_err(|e| Error::Embedded(e.to_string()))?;
        Ok(Self { env })
    }

    /// Wraps an already started test environment.
    ///
    /// ```
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let env = opkit_envtest::TestEnv::start().await?;
    /// let server = opkit::embedded::Embedded::from_env(env);
    /// # let _ = server; Ok(()) }
    /// ```
    pub fn from_env(env: opkit_envtest::TestEnv) -> Self {
        Self { env }
    }

    /// A client for the server.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// let server = opkit::embedded::Embedded::start().await?;
    /// let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(server.client());
    /// # let _ = namespaces; Ok(()) }
    /// ```
    pub fn client(&self) -> Client {
        self.env.client()
    }

    /// The server's base URL.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// let server = opkit::embedded::Embedded::start().await?;
    /// assert!(server.url().contains("://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        self.env.url().to_string()
    }

    /// Installs `crd` (or updates it when it exists).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub image: String }
    /// # async fn f() -> opkit::Result<()> {
    /// let server = opkit::embedded::Embedded::start().await?;
    /// server.install(&Site::crd()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn install(&self, crd: &CustomResourceDefinition) -> Result<()> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let yaml = crate::manifests::to_yaml(std::slice::from_ref(crd))?;
        self.env
            .install_crd_yaml(&yaml)
            .await
            .map_err(|e| Error::Embedded(format!("installing the CRD {name}: {e}")))
    }

    /// Writes a kubeconfig pointing at the server, for kubectl.
    ///
    /// ```
    /// # async fn f() -> opkit::Result<()> {
    /// let server = opkit::embedded::Embedded::start().await?;
    /// server.write_kubeconfig(std::path::Path::new("/tmp/embedded-kubeconfig.yaml"))?;
    /// # Ok(()) }
    /// ```
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        self.env.write_kubeconfig(path).map_err(|e| Error::Io {
            context: format!("writing the kubeconfig to {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })
    }
}
