//! Shared helpers of the example tests: the real kubectl against an embedded API server.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use opkit_envtest::TestEnv;
use opkit_envtest::sim::Simulation;

/// How long a test waits for the operator to converge before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh embedded API server.
pub async fn env() -> TestEnv {
    TestEnv::start().await.expect("embedded API server starts")
}

/// The namespace of the example operators' ServiceAccounts.
pub const OPERATORS: &str = "operators";

/// Applies, as the admin, exactly the RBAC `app`'s `rbac` subcommand prints for a ServiceAccount
/// in [`OPERATORS`], and returns a client acting as that ServiceAccount: the operator may do what
/// its RBAC grants and nothing else, as on a cluster.
pub async fn operator_client(env: &TestEnv, app: &opkit::App) -> kube::Client {
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATORS}\n");
    let rbac = app.rbac_yaml(OPERATORS).expect("RBAC YAML");
    opkit::manifests::apply_yaml(&env.client(), "tests", &format!("{namespace}---\n{rbac}"))
        .await
        .expect("the operator's RBAC applies");
    env.service_account_client(OPERATORS, app.name())
        .expect("a token for the operator's ServiceAccount")
}

/// A server whose workloads take long enough to become ready that a test can hold them first.
pub async fn slow_env() -> TestEnv {
    TestEnv::builder()
        .simulation(Simulation::default().delay(Duration::from_secs(3)))
        .build()
        .await
        .expect("embedded API server starts")
}

/// The jsonpath of condition `type_`'s `field`.
pub fn condition(type_: &str, field: &str) -> String {
    format!("{{.status.conditions[?(@.type==\"{type_}\")].{field}}}")
}

/// A deadline [`PATIENCE`] away, for polling loops.
struct Patience(Instant);

impl Patience {
    fn start() -> Patience {
        Patience(Instant::now() + PATIENCE)
    }

    /// Fails the test with `stuck` once the deadline has passed, else pauses before the next poll.
    async fn pause(&self, stuck: impl FnOnce() -> String) {
        assert!(Instant::now() < self.0, "{}", stuck());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`]: the one wait of
/// these tests (kubectl's waits below use it too).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let patience = Patience::start();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        patience
            .pause(|| format!("timed out waiting for {what}"))
            .await;
    }
}

/// Successful reconciles of `controller` that `running` counted (each after its status write).
pub fn succeeded(running: &opkit::Running, controller: &str) -> u64 {
    let prefix = format!(
        "controller_runtime_reconcile_total{{controller=\"{controller}\",result=\"success\"}} "
    );
    running
        .metrics()
        .encode()
        .lines()
        .find_map(|l| {
            l.strip_prefix(prefix.as_str())
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits until `running` has completed `n` successful reconciles of `controller`.
pub async fn reconciled(running: &opkit::Running, controller: &str, n: u64) {
    eventually(&format!("{n} reconciles of {controller}"), || async {
        (succeeded(running, controller) >= n).then_some(())
    })
    .await;
}

/// `kubectl get` arguments for `what`, which may hold several words.
fn get(what: &str) -> Vec<&str> {
    std::iter::once("get")
        .chain(what.split_whitespace())
        .collect()
}

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

    /// [`Kubectl::refused`], with an error that names `field`.
    pub async fn refused_naming(&self, manifest: &str, field: &str) {
        let stderr = self.refused(manifest).await;
        assert!(
            stderr.contains(field),
            "the error does not name {field}: {stderr}"
        );
    }

    /// Polls kubectl until it prints `want` (trimmed).
    pub async fn wait_for(&self, args: &[&str], want: &str) {
        let patience = Patience::start();
        loop {
            let out = self.run(args, None).await;
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            if got.trim() == want {
                return;
            }
            patience
                .pause(|| format!("kubectl {} printed {got:?}, not {want:?}", args.join(" ")))
                .await;
        }
    }

    /// `kubectl get <what> -o jsonpath=<path>`.
    pub async fn jsonpath(&self, what: &str, path: &str) -> String {
        let template = format!("jsonpath={path}");
        self.ok(&["get", what, "-o", &template]).await
    }

    /// [`Kubectl::jsonpath`] of `what` in `namespace`.
    pub async fn jsonpath_in(&self, namespace: &str, what: &str, path: &str) -> String {
        let template = format!("jsonpath={path}");
        self.ok(&["get", what, "-n", namespace, "-o", &template])
            .await
    }

    /// Polls [`Kubectl::jsonpath_in`] until it prints `want`.
    pub async fn wait_jsonpath_in(&self, namespace: &str, what: &str, path: &str, want: &str) {
        let template = format!("jsonpath={path}");
        self.wait_for(&["get", what, "-n", namespace, "-o", &template], want)
            .await
    }

    /// Polls [`Kubectl::jsonpath`] until it prints `want`.
    pub async fn wait_jsonpath(&self, what: &str, path: &str, want: &str) {
        let template = format!("jsonpath={path}");
        self.wait_for(&["get", what, "-o", &template], want).await
    }

    /// Polls until `what`'s Degraded condition gives `reason`.
    pub async fn wait_degraded(&self, what: &str, reason: &str) {
        self.wait_jsonpath(what, &condition("Degraded", "reason"), reason)
            .await
    }

    /// Polls until the kubeconfig exists and `kubectl get <what>` succeeds (`what` may hold
    /// several words, like `-n shop configmap/settings`).
    pub async fn wait_exists(&self, what: &str) {
        let patience = Patience::start();
        let get = get(what);
        // Errors are expected until a served example has written its kubeconfig and CRDs.
        while !(self.kubeconfig().exists() && self.run(&get, None).await.status.success()) {
            patience.pause(|| format!("{what} never appeared")).await;
        }
    }

    /// Polls until `kubectl get <what>` answers NotFound.
    pub async fn wait_gone(&self, what: &str) {
        let patience = Patience::start();
        let get = get(what);
        loop {
            let out = self.run(&get, None).await;
            if String::from_utf8_lossy(&out.stderr).contains("NotFound") {
                return;
            }
            patience.pause(|| format!("{what} still exists")).await;
        }
    }

    /// Whether `kubectl get <what>` finds it; any failure but NotFound fails the test.
    pub async fn exists(&self, what: &str) -> bool {
        let out = self.run(&["get", what], None).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("NotFound"),
            "kubectl get {what} failed:\n{stderr}"
        );
        out.status.success()
    }

    /// `kubectl wait --for=<until> <what>`, which must succeed within a minute.
    pub async fn wait_until(&self, what: &str, until: &str) {
        let until = format!("--for={until}");
        self.ok(&["wait", &until, what, "--timeout=60s"]).await;
    }

    /// `kubectl patch <what> --type=merge` with the JSON `patch`.
    pub async fn patch(&self, what: &str, patch: &str) {
        let patch = format!("-p={patch}");
        self.ok(&["patch", what, "--type=merge", &patch]).await;
    }

    /// Creates namespace `name` enforcing, and warning about, the `restricted` Pod Security
    /// level, as a hardened cluster labels its application namespaces.
    pub async fn restricted_namespace(&self, name: &str) {
        let namespace = format!(
            "apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
"
        );
        self.apply(&namespace).await;
    }

    /// Waits until `what` in `namespace` is Ready, then returns the Pods there (`pod/<name>`).
    pub async fn ready_with_pods(&self, namespace: &str, what: &str) -> Vec<String> {
        self.wait_jsonpath_in(namespace, what, &condition("Ready", "status"), "True")
            .await;
        let pods = self
            .ok(&["get", "pods", "-n", namespace, "-o", "name"])
            .await;
        pods.lines().map(str::to_owned).collect()
    }

    /// `kubectl patch <what> --type=merge` with the JSON `patch`, which must be refused; returns
    /// stderr.
    pub async fn patch_refused(&self, what: &str, patch: &str) -> String {
        let patch = format!("-p={patch}");
        let out = self
            .run(&["patch", what, "--type=merge", &patch], None)
            .await;
        assert!(!out.status.success(), "{what} accepted {patch}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Waits for the operator to create StatefulSet `name`, then has the workload simulation
    /// settle it unready until [`Kubectl::release`].
    pub async fn hold_unready(&self, name: &str) {
        let what = format!("statefulset/{name}");
        self.wait_exists(&what).await;
        self.ok(&["annotate", &what, "envtest.opkit.dev/never-ready=true"])
            .await;
        self.wait_jsonpath(&what, "{.status.replicas}", "1").await;
    }

    /// Lets the StatefulSet [`Kubectl::hold_unready`] held become ready.
    pub async fn release(&self, name: &str) {
        let what = format!("statefulset/{name}");
        self.ok(&["annotate", &what, "envtest.opkit.dev/never-ready-"])
            .await;
    }
}

/// Operators running in-process against their own embedded API server, driven through kubectl.
pub struct Demo {
    pub env: TestEnv,
    kubectl: Kubectl,
    running: Option<opkit::Running>,
    /// Webhook servers the operators need (conversion), stopped with the demo.
    webhooks: Vec<opkit::webhook::WebhookServer>,
}

impl std::ops::Deref for Demo {
    type Target = Kubectl;

    fn deref(&self) -> &Kubectl {
        &self.kubectl
    }
}

impl Demo {
    /// Runs the controllers `manager` adds against `env`, whose CRDs are installed, as the
    /// ServiceAccount of `app` under the RBAC `app` prints (see [`operator_client`]).
    pub async fn start(
        env: TestEnv,
        app: &opkit::App,
        manager: impl FnOnce(opkit::Manager) -> opkit::Manager,
    ) -> Demo {
        let kubectl = Kubectl::new(&env);
        let client = operator_client(&env, app).await;
        let running = Some(manager(opkit::Manager::new(client)).start());
        Demo {
            env,
            kubectl,
            running,
            webhooks: Vec::new(),
        }
    }

    /// Keeps `server` running as long as the demo.
    pub fn serving(mut self, server: opkit::webhook::WebhookServer) -> Demo {
        self.webhooks.push(server);
        self
    }

    pub fn client(&self) -> kube::Client {
        self.env.client()
    }

    /// The running operators.
    pub fn running(&self) -> &opkit::Running {
        self.running.as_ref().expect("the operators run")
    }

    /// Waits until the running operators completed `n` successful reconciles of `controller`.
    pub async fn reconciled(&self, controller: &str, n: u64) {
        reconciled(self.running(), controller, n).await;
    }

    /// Stops the operators, waiting for in-flight reconciles.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Installs the CRD of a kind with several versions and serves its conversion webhook on a
/// loopback port, with the CRD pointed at it.
pub async fn serve_versions<H: opkit::versions::Version>(
    env: &TestEnv,
    versions: opkit::versions::Versions<H>,
) -> opkit::webhook::WebhookServer {
    let unreachable = opkit::webhook::Endpoint::Url("https://127.0.0.1:1".into());
    let crd = versions
        .crd(&unreachable, None)
        .expect("the versions assemble");
    let yaml = opkit::manifests::to_yaml(&[crd]).expect("the CRD renders");
    env.install_crd_yaml(&yaml).await.expect("the CRD installs");
    opkit::webhook::Webhooks::new("versions")
        .conversion(versions)
        .start_local(&env.client())
        .await
        .expect("the conversion webhook starts")
        .expect("a conversion webhook is served")
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
        let kubeconfig = kubectl.kubeconfig();
        let cli = <opkit::app::Cli as clap::Parser>::parse_from([
            std::ffi::OsStr::new("operator"),
            "--write-kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
        ]);
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
        self.kubectl.wait_exists(what).await;
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
