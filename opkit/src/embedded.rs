//! Opt-in embedded mode: run an operator against an in-process API server (`opkit-envtest`).
//!
//! For demos and local development: no cluster, nothing to install. A user's operator defaults
//! to the in-cluster configuration or the current kubeconfig context; [`App::embedded`](crate::App::embedded)
//! makes the embedded server its default, and `--cluster` opts back out.

use std::path::Path;

use kube::{Client, CustomResourceExt};

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
    pub async fn start() -> Result<Self> {
        let env = opkit_envtest::TestEnv::start()
            .await
            .map_err(|e| Error::Embedded(e.to_string()))?;
        Ok(Self { env })
    }

    /// Wraps an already started test environment.
    pub fn from_env(env: opkit_envtest::TestEnv) -> Self {
        Self { env }
    }

    /// A client for the server.
    pub fn client(&self) -> Client {
        self.env.client()
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.env.url().to_string()
    }

    /// Installs the CRD of `K` and waits until it is served.
    pub async fn install_crd<K: CustomResourceExt>(&self) -> Result<()> {
        self.env
            .install_crd::<K>()
            .await
            .map_err(|e| Error::Embedded(format!("installing the CRD of {}: {e}", K::crd_name())))
    }

    /// Writes a kubeconfig pointing at the server, for kubectl.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        self.env.write_kubeconfig(path).map_err(|e| Error::Io {
            context: format!("writing the kubeconfig to {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })
    }
}
