//! A demo of an example operator for tests: an embedded API server, the operator running
//! in-process, and the real kubectl pointed at the server.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use opkit_envtest::TestEnv;

/// How long a kubectl poll waits for the expected output.
const WAIT: Duration = Duration::from_secs(30);

/// A running operator on its own embedded API server, driven through kubectl.
pub struct Demo {
    /// The embedded API server.
    pub env: TestEnv,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    running: Option<opkit::Running>,
}

impl Demo {
    /// Runs the controllers `manager` adds against `env` (whose CRDs are installed).
    pub fn start(env: TestEnv, manager: impl FnOnce(opkit::Manager) -> opkit::Manager) -> Demo {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let kubectl = opkit_envtest::tools::kubectl().expect("kubectl is available");
        let running = Some(manager(opkit::Manager::new(env.client())).start());
        Demo {
            env,
            _dir: dir,
            kubeconfig,
            kubectl,
            running,
        }
    }

    /// A client for the server.
    pub fn client(&self) -> kube::Client {
        self.env.client()
    }

    /// Runs kubectl with `args`, feeding `stdin` when given.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = std::process::Command::new(&self.kubectl);
        command.args(args).env("KUBECONFIG", &self.kubeconfig);
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = command.spawn().expect("kubectl starts");
            if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(input.as_bytes()).expect("write stdin");
            }
            child.wait_with_output().expect("kubectl finishes")
        })
        .await
        .expect("kubectl task")
    }

    /// Runs kubectl and fails the test unless it succeeds; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None).await
    }

    /// Runs kubectl with `stdin` and fails the test unless it succeeds; returns stdout.
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

    /// Applies `yaml` with `kubectl apply -f -`.
    pub async fn apply(&self, yaml: &str) -> String {
        self.ok_with(&["apply", "-f", "-"], Some(yaml)).await
    }

    /// Runs kubectl, fails the test if it succeeds, and returns stderr.
    pub async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            !out.status.success(),
            "kubectl {} succeeded:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Polls kubectl until its trimmed stdout is `want`.
    pub async fn wait_for(&self, args: &[&str], want: &str) {
        let deadline = Instant::now() + WAIT;
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

    /// Polls until `kubectl get <what>` fails with NotFound.
    pub async fn wait_gone(&self, what: &[&str]) {
        let deadline = Instant::now() + WAIT;
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        loop {
            let out = self.run(&args, None).await;
            if String::from_utf8_lossy(&out.stderr).contains("NotFound") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} still exists",
                what.join(" ")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the operator, waiting for in-flight reconciles.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}
