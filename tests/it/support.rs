//! Shared helpers of the example tests: the real kubectl against an embedded API server.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use opkit_envtest::TestEnv;

/// How long a test waits for the operator to converge before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The real kubectl, configured for one embedded API server, with assertions for tests.
pub struct Kubectl(opkit_envtest::tools::Kubectl);

impl Kubectl {
    /// A kubectl whose kubeconfig points at `env`.
    pub fn new(env: &TestEnv) -> Kubectl {
        Kubectl(opkit_envtest::tools::Kubectl::new(env).expect("kubectl is available"))
    }

    /// A kubectl whose kubeconfig is yet to be written to [`Kubectl::kubeconfig`].
    pub fn unconfigured() -> Kubectl {
        Kubectl(opkit_envtest::tools::Kubectl::unconfigured().expect("kubectl is available"))
    }

    /// Where kubectl reads its kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.0.kubeconfig()
    }

    /// Runs kubectl with `args`, feeding `stdin` when given.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.0.run(args, stdin).await.expect("kubectl runs")
    }

    /// Runs kubectl and fails the test unless it succeeds; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None).await
    }

    /// [`Kubectl::ok`] with `stdin`.
    pub async fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of `manifest`, which must succeed.
    pub async fn apply(&self, manifest: &str) -> String {
        self.ok_with(&["apply", "-f", "-"], Some(manifest)).await
    }

    /// `kubectl apply -f -` of `manifest`, which must be refused; returns stderr.
    pub async fn refused(&self, manifest: &str) -> String {
        let out = self.run(&["apply", "-f", "-"], Some(manifest)).await;
        assert!(!out.status.success(), "accepted:\n{manifest}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Polls kubectl until it prints `want` (trimmed).
    pub async fn wait_for(&self, args: &[&str], want: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = self.run(args, None).await;
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            if got.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl {} printed {got:?}, not {want:?}",
                args.join(" ")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kubectl get <what> -o jsonpath=<path>`.
    pub async fn jsonpath(&self, what: &str, path: &str) -> String {
        let template = format!("jsonpath={path}");
        self.ok(&["get", what, "-o", &template]).await
    }
}

/// An example's `App`, served as `cargo run --example <name>` serves it (embedded API server,
/// CRDs, operator, sample), until [`Served::stop`].
pub struct Served {
    /// kubectl for the example's embedded API server.
    pub kubectl: Kubectl,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<opkit::Result<()>>,
}

impl Served {
    /// Starts `app` with the default command line and `--write-kubeconfig`.
    pub fn start(app: opkit::App) -> Served {
        let kubectl = Kubectl::unconfigured();
        let cli = opkit::cli::Cli {
            command: None,
            log_format: opkit::cli::LogFormat::Human,
            cluster: false,
            write_kubeconfig: Some(kubectl.kubeconfig()),
            production: Default::default(),
            webhook: Default::default(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.execute_until(cli, async {
            let _ = stopped.await;
        }));
        Served {
            kubectl,
            stop,
            task,
        }
    }

    /// Waits until the kubeconfig exists and `kubectl get <what>` succeeds.
    pub async fn wait_exists(&self, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.kubectl.kubeconfig().exists()
                && self
                    .kubectl
                    .run(&["get", what], None)
                    .await
                    .status
                    .success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{what} never appeared");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the example and fails the test unless it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(PATIENCE, self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "the example did not stop cleanly: {result:?}"
        );
    }
}

/// An example's CRD and RBAC output: every `crd` snippet in the CRDs, no wildcard in the RBAC and
/// every `rbac` snippet in it. Returns both for checks of the example's own.
pub fn manifests(app: &opkit::App, crd: &[&str], rbac: &[&str]) -> (String, String) {
    let crd_yaml = app.crd_yaml().expect("CRD YAML");
    for expected in crd {
        assert!(
            crd_yaml.contains(expected),
            "{expected} missing from:\n{crd_yaml}"
        );
    }
    let rbac_yaml = app.rbac_yaml("operators").expect("RBAC YAML");
    assert!(!rbac_yaml.contains('*'), "{rbac_yaml}");
    for expected in rbac {
        assert!(
            rbac_yaml.contains(expected),
            "{expected} missing from:\n{rbac_yaml}"
        );
    }
    (crd_yaml, rbac_yaml)
}
