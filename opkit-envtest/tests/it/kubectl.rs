//! The real kubectl v1.35 against the embedded server, for every command the
//! guide uses: each test checks kubectl's output and exit code, and what the
//! server stored, read back through `kube::Client`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, LogParams, Patch, PatchParams};
use opkit_envtest::{TestEnv, tools};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// A WebApp CRD as an operator author writes it by hand.
const WEBAPP_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: webapps.example.com
spec:
  group: example.com
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas:
                type: integer
                minimum: 1
                maximum: 10
              image:
                type: string
              port:
                type: integer
                default: 8080
            required:
            - replicas
            - image
  scope: Namespaced
  names:
    plural: webapps
    singular: webapp
    kind: WebApp
"#;

/// A CRD with short names, a category and printer columns.
const BACKUP_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backups.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: backups
    singular: backup
    kind: Backup
    shortNames: [bk]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Schedule
      type: string
      jsonPath: .spec.schedule
    - name: Keep
      type: integer
      jsonPath: .spec.keep
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              schedule: {type: string}
              keep: {type: integer}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"#;

/// What one kubectl invocation printed.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "kubectl failed\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn failed(self) -> Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "kubectl should have failed\nstdout: {}",
            self.stdout
        );
        self
    }

    pub(crate) fn stdout_has(&self, text: &str) {
        assert!(self.stdout.contains(text), "{}", self.stdout);
    }

    pub(crate) fn stderr_has(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }
}

/// A kubectl started in the background, already watching what it waits for.
struct Waiting(tokio::task::JoinHandle<std::io::Result<Output>>);

impl Waiting {
    /// Its stdout, once it has exited successfully.
    async fn succeeded(self) -> String {
        let output = self.0.await.expect("joined").expect("kubectl ran");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// A server and the real kubectl configured for it.
pub(crate) struct Kubectl {
    pub(crate) env: TestEnv,
    kubectl: tools::Kubectl,
}

impl Kubectl {
    pub(crate) async fn start() -> Self {
        let env = TestEnv::start().await.expect("the server starts");
        let kubectl = tools::Kubectl::new(&env).expect("kubectl is available");
        Self { env, kubectl }
    }

    fn command(&self, args: &[&str]) -> Command {
        self.kubectl.command(args)
    }

    /// Runs kubectl off the async runtime, which keeps serving meanwhile.
    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    /// Runs kubectl, which must succeed and print just `stdout`.
    async fn run_expecting(&self, args: &[&str], stdout: impl AsRef<str>) {
        let run = self.run(args).await.ok();
        assert_eq!(run.stdout.trim(), stdout.as_ref());
    }

    /// Runs kubectl with `stdin` as its standard input (`apply -f -`).
    pub(crate) async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let output = self
            .kubectl
            .run(args, Some(stdin))
            .await
            .expect("kubectl runs");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Writes a manifest into the test's directory and returns its path.
    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.kubectl.dir().join(name);
        std::fs::write(&path, contents).expect("the manifest is written");
        path.to_string_lossy().into_owned()
    }

    /// Starts a long-running kubectl whose stdout lines arrive on a channel.
    fn stream(&self, args: &[&str]) -> (Child, mpsc::UnboundedReceiver<String>) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    /// `kubectl create -f` of a ConfigMap with the given data.
    async fn create_configmap(&self, name: &str, data: &[(&str, &str)]) {
        let mut manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
        if !data.is_empty() {
            manifest.push_str("data:\n");
        }
        for (key, value) in data {
            manifest.push_str(&format!("  {key}: \"{value}\"\n"));
        }
        let path = self.file(&format!("{name}.yaml"), &manifest);
        self.run_expecting(
            &["create", "-f", &path],
            format!("configmap/{name} created"),
        )
        .await;
    }

    async fn install_webapp_crd(&self) {
        let crd = self.file("webapp-crd.yaml", WEBAPP_CRD);
        self.run_expecting(
            &["apply", "-f", &crd],
            "customresourcedefinition.apiextensions.k8s.io/webapps.example.com created",
        )
        .await;
        self.wait("condition=Established", "crd/webapps.example.com", "30s")
            .await
            .ok();
    }

    /// Writes the `DEPLOYMENT` manifest, applies it and returns its path.
    async fn apply_deployment(&self) -> String {
        let manifest = self.file("web.yaml", DEPLOYMENT);
        self.run(&["apply", "-f", &manifest]).await.ok();
        manifest
    }

    /// `kubectl wait --for=<what> <target>`.
    async fn wait(&self, what: &str, target: &str, timeout: &str) -> Run {
        let what = format!("--for={what}");
        let timeout = format!("--timeout={timeout}");
        self.run(&["wait", &what, target, &timeout]).await
    }

    /// Starts `kubectl wait --for=<what> <target>` and returns once it
    /// watches `resource`, so a change made next is one it sees happen.
    async fn wait_in_background(&self, what: &str, target: &str, resource: &str) -> Waiting {
        let watches = self.env.stats().count("watch", resource);
        let what = format!("--for={what}");
        let mut command = self.command(&["wait", &what, target, "--timeout=60s"]);
        let waiting = tokio::task::spawn_blocking(move || command.output());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.env.stats().count("watch", resource) <= watches {
            assert!(
                tokio::time::Instant::now() < deadline,
                "kubectl did not watch {resource} within 30s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Waiting(waiting)
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.env.client(), "default")
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.env.client(), "default")
    }

    pub(crate) fn dynamic(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
    ) -> Api<DynamicObject> {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        Api::namespaced_with(self.env.client(), "default", &resource)
    }
}

/// Reads lines until one satisfies `want`, failing after a generous delay.
async fn line_matching(
    rx: &mut mpsc::UnboundedReceiver<String>,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) if want(&line) => return line,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("kubectl exited before printing the expected line"),
            Err(_) => panic!("no matching line from kubectl within 30s"),
        }
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn data<'a>(cm: &'a ConfigMap, key: &str) -> Option<&'a str> {
    cm.data.as_ref()?.get(key).map(String::as_str)
}

fn containers(deployment: Deployment) -> Vec<Container> {
    deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default()
}

async fn absent<K>(api: &Api<K>, name: &str) -> bool
where
    K: Clone + DeserializeOwned + Debug,
{
    api.get_opt(name).await.expect("reachable").is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_creates_then_is_unchanged_then_merges_by_key() {
    let k = Kubectl::start().await;
    let manifest = k.file("web.yaml", DEPLOYMENT);
    k.run_expecting(&["apply", "-f", &manifest], "deployment.apps/web created")
        .await;
    k.run_expecting(&["apply", "-f", &manifest], "deployment.apps/web unchanged")
        .await;

    // A change to one container is a strategic merge patch keyed by name.
    let changed = k.file("web.yaml", &DEPLOYMENT.replace("nginx:1.27", "nginx:1.28"));
    let third = k.run(&["apply", "-f", &changed]).await.ok();
    assert_eq!(third.stdout.trim(), "deployment.apps/web configured");
    assert!(!third.stderr.contains("warning"), "{}", third.stderr);

    let deployments = k.deployments();
    let web = deployments
        .get("web")
        .await
        .expect("the deployment is stored");
    let annotations = web.metadata.annotations.clone().unwrap_or_default();
    assert!(annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    let images: Vec<(String, Option<String>)> = containers(web)
        .into_iter()
        .map(|c| (c.name, c.image))
        .collect();
    assert_eq!(
        images,
        vec![
            ("nginx".to_string(), Some("nginx:1.28".to_string())),
            ("sidecar".to_string(), Some("busybox:1.36".to_string())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_get_in_every_output_format() {
    let k = Kubectl::start().await;
    k.create_configmap("settings", &[("mode", "fast"), ("level", "3")])
        .await;

    let table = k.run(&["get", "configmaps"]).await.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(words(lines[0]), ["NAME", "DATA", "AGE"]);
    let row = lines
        .iter()
        .find(|l| l.starts_with("settings "))
        .expect("a row for the configmap");
    assert_eq!(&words(row)[..2], ["settings", "2"]);
    // The singular name and the short name reach the same resource.
    let single = k.run(&["get", "cm", "settings", "--no-headers"]).await.ok();
    assert_eq!(&words(&single.stdout)[..2], ["settings", "2"]);

    let yaml = k
        .run(&["get", "configmap", "settings", "-o", "yaml"])
        .await
        .ok();
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml.stdout).expect("YAML output");
    assert_eq!(parsed["data"]["mode"], "fast");
    assert_eq!(parsed["kind"], "ConfigMap");

    let json = k
        .run(&["get", "configmap/settings", "-o", "json"])
        .await
        .ok();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON output");
    assert_eq!(parsed["data"]["level"], "3");

    let path = k
        .run(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ])
        .await
        .ok();
    assert_eq!(path.stdout, "fast");

    let stored = k.configmaps();
    let cm = stored.get("settings").await.expect("stored");
    assert_eq!(
        cm.metadata.resource_version.as_deref(),
        parsed["metadata"]["resourceVersion"].as_str()
    );

    let missing = k.run(&["get", "configmap", "nope"]).await.failed();
    missing.stderr_has(r#"configmaps "nope" not found"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_crd_from_the_guide_validates_defaults_and_describes() {
    let k = Kubectl::start().await;
    k.install_webapp_crd().await;

    let crds = k.run(&["get", "crd", "webapps.example.com"]).await.ok();
    assert_eq!(
        words(crds.stdout.lines().next().unwrap_or_default()),
        ["NAME", "CREATED", "AT"]
    );

    let app = k.file(
        "my-webapp.yaml",
        "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: my-webapp\nspec:\n  replicas: 3\n  image: nginx:1.21\n",
    );
    k.run_expecting(
        &["apply", "-f", &app],
        "webapp.example.com/my-webapp created",
    )
    .await;
    k.run_expecting(
        &["apply", "-f", &app],
        "webapp.example.com/my-webapp unchanged",
    )
    .await;

    let list = k.run(&["get", "webapps"]).await.ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(words(lines[0]), ["NAME", "AGE"]);
    assert_eq!(words(lines[1])[0], "my-webapp");
    k.run(&["get", "webapp", "my-webapp"]).await.ok();

    let webapps = k.dynamic("example.com", "v1", "WebApp", "webapps");
    let stored = webapps.get("my-webapp").await.expect("stored");
    assert_eq!(
        stored.data["spec"]["port"], 8080,
        "the schema default is applied"
    );

    let described = k.run(&["describe", "webapp", "my-webapp"]).await.ok();
    described.stdout_has("Name:");
    described.stdout_has("my-webapp");
    described.stdout_has("Replicas:  3");

    let invalid = k.file(
        "invalid.yaml",
        "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: broken\nspec:\n  replicas: 0\n  image: nginx\n",
    );
    let refused = k.run(&["apply", "-f", &invalid]).await.failed();
    refused.stderr_has(
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
        );
    assert!(absent(&webapps, "broken").await);

    let resources = k
        .run(&["api-resources", "--api-group=example.com"])
        .await
        .ok();
    let row = resources
        .stdout
        .lines()
        .find(|l| l.starts_with("webapps "))
        .expect("webapps is discoverable");
    assert_eq!(words(row), ["webapps", "example.com/v1", "true", "WebApp"]);

    let explained = k.run(&["explain", "webapp.spec"]).await.ok();
    explained.stdout_has("KIND:       WebApp");
    explained.stdout_has("replicas\t<integer> -required-");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_columns_short_names_and_categories() {
    let k = Kubectl::start().await;
    let crd = k.file("backup-crd.yaml", BACKUP_CRD);
    k.run(&["apply", "-f", &crd]).await.ok();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/backups.example.com",
    ])
    .await
    .ok();
    let backup = k.file(
        "nightly.yaml",
        "apiVersion: example.com/v1\nkind: Backup\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  keep: 7\n",
    );
    k.run(&["apply", "-f", &backup]).await.ok();
    let backups = k.dynamic("example.com", "v1", "Backup", "backups");
    backups
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .expect("the status is patched");

    let table = k.run(&["get", "bk"]).await.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "SCHEDULE", "KEEP", "READY", "AGE"]
    );
    let row = words(lines[1]);
    assert_eq!(&row[..8], ["nightly", "0", "3", "*", "*", "*", "7", "True"]);

    k.apply_deployment().await;
    let all = k.run(&["get", "all", "-o", "name"]).await.ok();
    let names: Vec<&str> = all.stdout.lines().collect();
    assert!(names.contains(&"deployment.apps/web"), "{names:?}");
    assert!(names.contains(&"backup.example.com/nightly"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_with_strategic_merge_json_merge_and_json_patch() {
    let k = Kubectl::start().await;
    k.apply_deployment().await;
    let deployments = k.deployments();

    k.run_expecting(&[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#,
        ], "deployment.apps/web patched").await;
    let web = deployments.get("web").await.expect("stored");
    let containers = containers(web);
    assert_eq!(containers.len(), 2, "merged by name, not replaced");
    assert_eq!(containers[1].image.as_deref(), Some("busybox:1.37"));

    k.run(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":5}}"#,
    ])
    .await
    .ok();
    let web = deployments.get("web").await.expect("stored");
    assert_eq!(web.spec.as_ref().and_then(|s| s.replicas), Some(5));

    k.run(&[
        "patch",
        "deployment/web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"remove","path":"/spec/template/spec/containers/1"}]"#,
    ])
    .await
    .ok();
    let web = deployments.get("web").await.expect("stored");
    let spec = web.spec.expect("spec");
    assert_eq!(spec.replicas, Some(4));
    assert_eq!(spec.template.spec.map(|s| s.containers.len()), Some(1));

    let bad = k
        .run(&[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/nope"}]"#,
        ])
        .await
        .failed();
    assert!(!bad.stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_until_forced() {
    let k = Kubectl::start().await;
    let mine = k.file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  owner: kubectl\n",
    );
    k.run_expecting(
        &["apply", "--server-side", "-f", &mine],
        "configmap/shared serverside-applied",
    )
    .await;

    let theirs = k.file(
        "cm-other.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  owner: other\n",
    );
    let conflict = k
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &theirs,
        ])
        .await
        .failed();
    conflict.stderr_has("conflict");
    conflict.stderr_has(".data.owner");

    let configmaps = k.configmaps();
    let unchanged = configmaps.get("shared").await.expect("stored");
    assert_eq!(data(&unchanged, "owner"), Some("kubectl"));

    k.run(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &theirs,
    ])
    .await
    .ok();
    let forced = configmaps.get("shared").await.expect("stored");
    assert_eq!(data(&forced, "owner"), Some("other"));
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"other".to_string()), "{managers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_with_a_stale_object_is_a_conflict() {
    let k = Kubectl::start().await;
    k.create_configmap("config", &[("a", "1")]).await;
    let stale = k
        .run(&["get", "configmap", "config", "-o", "yaml"])
        .await
        .ok();
    let stale_path = k.file("stale.yaml", &stale.stdout.replace("a: \"1\"", "a: \"2\""));

    let configmaps = k.configmaps();
    configmaps
        .patch(
            "config",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"b": "meanwhile"}})),
        )
        .await
        .expect("a concurrent write");

    let refused = k.run(&["replace", "-f", &stale_path]).await.failed();
    refused.stderr_has(
        "the object has been modified; please apply your changes to the latest version and try again",
    );
    let current = configmaps.get("config").await.expect("stored");
    assert_eq!(data(&current, "a"), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_wait_for_delete() {
    let k = Kubectl::start().await;
    k.create_configmap("gone", &[]).await;
    k.run_expecting(
        &["delete", "configmap", "gone"],
        r#"configmap "gone" deleted from default namespace"#,
    )
    .await;
    let configmaps = k.configmaps();
    assert!(absent(&configmaps, "gone").await);

    // A finalizer holds the object until it is removed; wait sees it go.
    let held = k.file(
        "held.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    k.run(&["apply", "-f", &held]).await.ok();
    k.run(&["delete", "configmap", "held", "--wait=false"])
        .await
        .ok();
    let marked = configmaps.get("held").await.expect("still stored");
    assert!(marked.metadata.deletion_timestamp.is_some());

    let waiting = k
        .wait_in_background("delete", "configmap/held", "configmaps")
        .await;
    configmaps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("the finalizer is removed");
    assert_eq!(waiting.succeeded().await, "configmap/held condition met");
    assert!(absent(&configmaps, "held").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_and_jsonpath_on_a_simulated_deployment() {
    let k = Kubectl::start().await;
    k.apply_deployment().await;
    let available = k
        .wait("condition=Available", "deployment/web", "60s")
        .await
        .ok();
    assert_eq!(available.stdout.trim(), "deployment.apps/web condition met");
    // As on a cluster, Available means the pods already run.
    k.run_expecting(
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.phase} {.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ],
        "Running Running True True",
    )
    .await;
    let ready = k
        .wait(
            "jsonpath={.status.readyReplicas}=2",
            "deployment/web",
            "60s",
        )
        .await
        .ok();
    assert_eq!(ready.stdout.trim(), "deployment.apps/web condition met");

    let table = k.run(&["get", "deployments"]).await.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&words(lines[1])[..4], ["web", "2/2", "2", "2"]);
    let wide = k
        .run(&["get", "deployment", "web", "-o", "wide", "--no-headers"])
        .await
        .ok();
    wide.stdout_has("nginx,sidecar");
    wide.stdout_has("app=web");

    let described = k.run(&["describe", "deployment", "web"]).await.ok();
    described.stdout_has("Replicas:");
    described.stdout_has("nginx:1.27");

    let timeout = k
        .wait("jsonpath={.status.readyReplicas}=7", "deployment/web", "1s")
        .await
        .failed();
    timeout.stderr_has("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_simulated_pods_are_empty_and_exec_is_refused_clearly() {
    let k = Kubectl::start().await;
    k.apply_deployment().await;
    k.wait("condition=Available", "deployment/web", "60s")
        .await
        .ok();
    // Simulated containers write nothing; kubectl picks the first container as on a cluster.
    let logs = k.run(&["logs", "deployment/web"]).await.ok();
    assert_eq!(logs.stdout, "");
    logs.stderr_has("Defaulted container \"nginx\" out of: nginx, sidecar");
    k.run_expecting(&["logs", "deployment/web", "-c", "sidecar", "-f"], "")
        .await;
    k.run_expecting(&["logs", "-l", "app=web", "--all-containers"], "")
        .await;

    let pods: Api<Pod> = Api::namespaced(k.env.client(), "default");
    let list = pods.list(&Default::default()).await.expect("pods");
    let pod = list.items[0].metadata.name.clone().expect("a name");
    let refused = |params: LogParams| {
        let pods = pods.clone();
        let pod = pod.clone();
        async move {
            match pods.logs(&pod, &params).await {
                Err(kube::Error::Api(status)) => (status.code, status.message),
                other => panic!("expected a Status error, got {other:?}"),
            }
        }
    };
    assert_eq!(
        refused(LogParams::default()).await,
        (
            400,
            format!(
                "a container name must be specified for pod {pod}, choose one of: [nginx sidecar]"
            )
        )
    );
    let unknown = LogParams {
        container: Some("nope".into()),
        ..LogParams::default()
    };
    assert_eq!(
        refused(unknown).await,
        (400, format!("container nope is not valid for pod {pod}"))
    );

    let exec = k
        .run(&["exec", &pod, "-c", "nginx", "--", "true"])
        .await
        .failed();
    exec.stderr_has("exec is not served by opkit-envtest: its simulated pods run no processes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_a_cluster_keeps_fixed_are_refused_as_there() {
    let k = Kubectl::start().await;
    k.apply_deployment().await;
    let moved = k
        .run(&[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#,
        ])
        .await
        .failed();
    moved.stderr_has("spec.selector: Invalid value:");
    moved.stderr_has("field is immutable");
    k.run(&["create", "service", "clusterip", "db", "--tcp=5432"])
        .await
        .ok();
    let statefulset = r#"{"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "postgres", "image": "postgres:16"}]}}}}"#;
    k.run_with_stdin(&["apply", "-f", "-"], statefulset)
        .await
        .ok();
    k.run(&["scale", "statefulset", "db", "--replicas=2"])
        .await
        .ok();
    let renamed = k
        .run(&[
            "patch",
            "statefulset",
            "db",
            "--type=merge",
            "-p",
            r#"{"spec":{"serviceName":"other"}}"#,
        ])
        .await
        .failed();
    renamed.stderr_has(
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
    k.run_expecting(
        &[
            "get",
            "statefulset",
            "db",
            "-o",
            "jsonpath={.spec.serviceName} {.spec.replicas}",
        ],
        "db 2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_rows_as_objects_change() {
    let k = Kubectl::start().await;
    k.create_configmap("first", &[]).await;
    let (mut child, mut lines) = k.stream(&["get", "configmaps", "--watch"]);
    let header = line_matching(&mut lines, |l| l.starts_with("NAME")).await;
    assert_eq!(words(&header), ["NAME", "DATA", "AGE"]);
    line_matching(&mut lines, |l| l.starts_with("first ")).await;

    let configmaps = k.configmaps();
    let second: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "second"},
        "data": {"k": "v"},
    }))
    .expect("a configmap");
    configmaps
        .create(&Default::default(), &second)
        .await
        .expect("created");
    let row = line_matching(&mut lines, |l| l.starts_with("second ")).await;
    assert_eq!(&words(&row)[..2], ["second", "1"]);

    child.kill().expect("kubectl is stopped");
    child.wait().expect("kubectl is reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_and_explain_for_built_ins() {
    let k = Kubectl::start().await;
    let resources = k.run(&["api-resources"]).await.ok();
    let lines: Vec<&str> = resources.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let deployments = lines
        .iter()
        .find(|l| l.starts_with("deployments "))
        .expect("deployments");
    assert_eq!(
        words(deployments),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    let all = k
        .run(&["api-resources", "--categories=all", "-o", "name"])
        .await
        .ok();
    assert!(all.stdout.lines().any(|l| l == "deployments.apps"));
    assert!(!all.stdout.lines().any(|l| l == "configmaps"));

    let explained = k.run(&["explain", "deployment.spec.replicas"]).await.ok();
    explained.stdout_has("FIELD: replicas <integer>");
    explained.stdout_has("Number of desired pods");
    let ports = k.run(&["explain", "pods.spec.containers.ports"]).await.ok();
    ports.stdout_has("containerPort\t<integer> -required-");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_select() {
    let k = Kubectl::start().await;
    k.create_configmap("tagged", &[]).await;
    k.create_configmap("plain", &[]).await;
    k.run_expecting(
        &["label", "configmap", "tagged", "env=prod"],
        "configmap/tagged labeled",
    )
    .await;
    k.run_expecting(
        &["get", "configmaps", "-l", "env=prod", "-o", "name"],
        "configmap/tagged",
    )
    .await;
    let shown = k
        .run(&[
            "get",
            "configmaps",
            "tagged",
            "--show-labels",
            "--no-headers",
        ])
        .await
        .ok();
    shown.stdout_has("env=prod");

    let configmaps = k.configmaps();
    let tagged = configmaps.get("tagged").await.expect("stored");
    assert_eq!(
        tagged
            .metadata
            .labels
            .unwrap_or_default()
            .get("env")
            .map(String::as_str),
        Some("prod")
    );
    let overwrite = k
        .run(&["label", "configmap", "tagged", "env=dev"])
        .await
        .failed();
    overwrite.stderr_has("--overwrite");
    k.run(&["label", "configmap", "tagged", "env-"]).await.ok();
    let untagged = configmaps.get("tagged").await.expect("stored");
    assert!(
        !untagged
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("env")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_a_generator() {
    let k = Kubectl::start().await;
    k.run_expecting(
        &["create", "configmap", "literal", "--from-literal=mode=fast"],
        "configmap/literal created",
    )
    .await;
    let configmaps = k.configmaps();
    let cm = configmaps.get("literal").await.expect("stored");
    assert_eq!(data(&cm, "mode"), Some("fast"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_can_i_whoami_and_acting_as_others() {
    let k = Kubectl::start().await;
    k.run_expecting(&["auth", "can-i", "delete", "nodes"], "yes")
        .await;
    let whoami = k
        .run(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .await
        .ok();
    assert_eq!(whoami.stdout, "admin");
    k.run_expecting(
        &["create", "serviceaccount", "robot"],
        "serviceaccount/robot created",
    )
    .await;
    let robot = "system:serviceaccount:default:robot";
    let denied = k
        .run(&["auth", "can-i", "list", "configmaps", "--as", robot])
        .await;
    assert_eq!((denied.code, denied.stdout.trim()), (Some(1), "no"));
    let refused = k.run(&["get", "configmaps", "--as", robot]).await.failed();
    assert_eq!(
        refused.stderr.trim(),
        format!(
            "Error from server (Forbidden): configmaps is forbidden: User \"{robot}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        )
    );
    k.run_expecting(
        &[
            "create",
            "rolebinding",
            "robot-view",
            "--clusterrole=view",
            "--serviceaccount=default:robot",
        ],
        "rolebinding.rbac.authorization.k8s.io/robot-view created",
    )
    .await;
    k.run_expecting(
        &["auth", "can-i", "list", "configmaps", "--as", robot],
        "yes",
    )
    .await;
    let secrets = k
        .run(&["auth", "can-i", "get", "secrets", "--as", robot])
        .await;
    assert_eq!(secrets.stdout.trim(), "no");
    // Groups given with --as-group take part in the decision.
    k.run_expecting(
        &[
            "auth",
            "can-i",
            "create",
            "pods",
            "--as",
            "jane",
            "--as-group",
            "system:masters",
        ],
        "yes",
    )
    .await;
    let list = k
        .run(&["auth", "can-i", "--list", "--as", robot])
        .await
        .ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| words(l).first() == Some(&"configmaps") && l.contains("[get list watch]")),
        "{}",
        list.stdout
    );
    // A token the server issued for the account authenticates as it.
    let token = k
        .run(&["create", "token", "robot", "--duration=15m"])
        .await
        .ok();
    let reviews: Api<TokenReview> = Api::all(k.env.client());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.stdout.trim().to_string()),
            audiences: None,
        },
        ..TokenReview::default()
    };
    let reviewed = reviews
        .create(&Default::default(), &review)
        .await
        .expect("reviewed");
    let user = reviewed
        .status
        .and_then(|s| s.user)
        .and_then(|u| u.username);
    assert_eq!(user.as_deref(), Some(robot));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_print_each_cause_once() {
    let k = Kubectl::start().await;
    k.install_webapp_crd().await;
    let invalid = k.file(
        "invalid.yaml",
        "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: broken\nspec:\n  replicas: 11\n",
    );
    let refused = k.run(&["apply", "-f", &invalid]).await.failed();
    assert_eq!(
        refused.stderr.trim(),
        "The WebApp \"broken\" is invalid: \n\
         * spec.image: Required value\n\
         * spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_a_recorder_show_in_get_and_describe() {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder};

    let k = Kubectl::start().await;
    k.create_configmap("watched", &[]).await;
    let configmaps = k.configmaps();
    let cm = configmaps.get("watched").await.expect("stored");
    let recorder = Recorder::new(k.env.client(), "demo-controller".into());
    recorder
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "Drifted".into(),
                note: Some("configuration changed outside the operator".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &cm.object_ref(&()),
        )
        .await
        .expect("the event is published");

    let events = k.run(&["get", "events"]).await.ok();
    let lines: Vec<&str> = events.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let row = lines
        .iter()
        .find(|l| l.contains("Drifted"))
        .expect("a row for the event");
    assert_eq!(
        &words(row)[1..],
        [
            "Warning",
            "Drifted",
            "configmap/watched",
            "configuration",
            "changed",
            "outside",
            "the",
            "operator"
        ]
    );
    let new_api = k
        .run(&["get", "events.events.k8s.io", "-o", "wide"])
        .await
        .ok();
    new_api.stdout_has("demo-controller");

    let described = k.run(&["describe", "configmap", "watched"]).await.ok();
    described.stdout_has("Drifted");
    described.stdout_has("configuration changed outside the operator");
}

/// The commands of the guide's first part, in its order: cluster-info, a
/// directory of manifests, `apply -f -` from a here-document, `api-resources`,
/// `patch --type=merge`, `wait` on a custom resource, `get all -l`, `delete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_webapp_walkthrough() {
    let k = Kubectl::start().await;
    let info = k.run(&["cluster-info"]).await.ok();
    info.stdout_has(&format!(
        "Kubernetes control plane is running at {}",
        k.env.url()
    ));
    let version = k.run(&["version"]).await.ok();
    version.stdout_has("Server Version: v1.35");

    let bases = k.kubectl.dir().join("crd-bases");
    std::fs::create_dir_all(&bases).expect("a manifest directory");
    std::fs::write(bases.join("webapps.yaml"), WEBAPP_CRD).expect("written");
    std::fs::write(bases.join("backups.yaml"), BACKUP_CRD).expect("written");
    let applied = k.run(&["apply", "-f", &bases.to_string_lossy()]).await.ok();
    assert_eq!(
        applied.stdout.lines().collect::<Vec<_>>(),
        [
            "customresourcedefinition.apiextensions.k8s.io/backups.example.com created",
            "customresourcedefinition.apiextensions.k8s.io/webapps.example.com created",
        ]
    );
    k.run(&["wait", "--for=condition=Established", "crd", "--all"])
        .await
        .ok();
    let resources = k.run(&["api-resources"]).await.ok();
    assert_eq!(
        resources
            .stdout
            .lines()
            .filter(|l| l.contains("webapp"))
            .count(),
        1
    );

    let created = k
        .run_with_stdin(
            &["apply", "-f", "-"],
            "apiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: test-app\n  labels:\n    platform: demo\nspec:\n  replicas: 2\n  image: nginx:alpine\n  port: 80\n",
        )
        .await
        .ok();
    assert_eq!(created.stdout.trim(), "webapp.example.com/test-app created");

    k.run_expecting(
        &[
            "patch",
            "webapp",
            "test-app",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
        "webapp.example.com/test-app patched",
    )
    .await;
    let webapps = k.dynamic("example.com", "v1", "WebApp", "webapps");
    let stored = webapps.get("test-app").await.expect("stored");
    assert_eq!(stored.data["spec"]["replicas"], 3);
    assert_eq!(stored.data["spec"]["port"], 80);

    // An operator would report readiness; the test plays its part. The
    // guide's WebApp schema has no status, so a Backup stands in.
    k.run_with_stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Backup\nmetadata:\n  name: nightly\nspec:\n  keep: 3\n",
    )
    .await
    .ok();
    let waiting = k
        .wait_in_background("condition=Ready", "backup/nightly", "backups")
        .await;
    k.dynamic("example.com", "v1", "Backup", "backups")
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}
            })),
        )
        .await
        .expect("the status is written");
    assert_eq!(
        waiting.succeeded().await,
        "backup.example.com/nightly condition met"
    );

    k.run_expecting(
        &["get", "all,webapps", "-l", "platform=demo", "-o", "name"],
        "webapp.example.com/test-app",
    )
    .await;

    k.run_expecting(
        &["delete", "webapp", "test-app"],
        r#"webapp.example.com "test-app" deleted from default namespace"#,
    )
    .await;
    assert!(absent(&webapps, "test-app").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_rollout_diff_and_server_dry_run() {
    let k = Kubectl::start().await;
    let manifest = k.apply_deployment().await;
    let deployments = k.deployments();

    k.run_expecting(
        &["scale", "deployment/web", "--replicas=3"],
        "deployment.apps/web scaled",
    )
    .await;
    let web = deployments.get("web").await.expect("stored");
    assert_eq!(web.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let rollout = k
        .run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    rollout.stdout_has(r#"deployment "web" successfully rolled out"#);

    // The manifest says 2 replicas: diff shows it, exit code 1 means "differs".
    let diff = k.run(&["diff", "-f", &manifest]).await;
    assert_eq!(diff.code, Some(1), "{}", diff.stderr);
    diff.stdout_has("-  replicas: 3");
    diff.stdout_has("+  replicas: 2");

    let before = deployments.get("web").await.expect("stored");
    k.run_expecting(
        &["apply", "--dry-run=server", "-f", &manifest],
        "deployment.apps/web configured (server dry run)",
    )
    .await;
    let other = k.file(
        "other.yaml",
        &DEPLOYMENT.replace("name: web\n", "name: other\n"),
    );
    k.run(&["create", "--dry-run=server", "-f", &other])
        .await
        .ok();
    let after = deployments.get("web").await.expect("stored");
    assert_eq!(after.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(absent(&deployments, "other").await);
}

/// What `kubectl get -o json` writes for several objects.
const CONFIGMAP_LIST: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"a": "1"}},
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}, "data": {"b": "2"}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_crds_with_their_objects_validate_on_a_fresh_server() {
    let k = Kubectl::start().await;
    // Client-side validation of a List reads /openapi/v2 as protobuf.
    let list = k.file("list.json", CONFIGMAP_LIST);
    k.run_expecting(
        &["create", "-f", &list],
        "configmap/one created\nconfigmap/two created",
    )
    .await;
    assert_eq!(
        data(&k.configmaps().get("two").await.unwrap(), "b"),
        Some("2")
    );
    // The first apply of a CRD with an object of it creates the CRD, then cannot map the
    // kind yet, as on a cluster; the second creates the object.
    let both = k.file(
        "webapp.yaml",
        &format!(
            "{WEBAPP_CRD}---\napiVersion: example.com/v1\nkind: WebApp\nmetadata:\n  name: first\nspec:\n  replicas: 1\n  image: nginx\n"
        ),
    );
    let first = k.run(&["apply", "-f", &both]).await.failed();
    first.stdout_has("customresourcedefinition.apiextensions.k8s.io/webapps.example.com created");
    first.stderr_has("no matches for kind \"WebApp\" in version \"example.com/v1\"");
    let second = k.run(&["apply", "-f", &both]).await.ok();
    second.stdout_has("webapp.example.com/first created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_and_uninstalls_a_chart() {
    let k = Kubectl::start().await;
    let chart = k.kubectl.dir().join("chart");
    std::fs::create_dir_all(chart.join("templates")).expect("the chart directory");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .expect("Chart.yaml");
    std::fs::write(
        chart.join("templates/objects.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-settings\ndata:\n  key: value\n---\n{}",
            DEPLOYMENT.replace("name: web", "name: {{ .Release.Name }}-web")
        ),
    )
    .expect("the template");
    let helm = tools::helm().expect("helm is available");
    let run = |args: Vec<String>| {
        let mut command = Command::new(&helm);
        command
            .args(&args)
            .arg("--kubeconfig")
            .arg(k.kubectl.kubeconfig())
            .env("HOME", k.kubectl.dir())
            .env_remove("KUBECONFIG");
        tokio::task::spawn_blocking(move || command.output().expect("helm runs"))
    };
    let chart = chart.to_string_lossy().into_owned();
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let installed = run(args(&[
        "install",
        "demo",
        &chart,
        "--wait",
        "--timeout=60s",
    ]))
    .await
    .expect("joined");
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(
        k.configmaps()
            .get_opt("demo-settings")
            .await
            .unwrap()
            .is_some()
    );
    // helm 4 deletes with protobuf DeleteOptions.
    let uninstalled = run(args(&["uninstall", "demo", "--wait", "--timeout=60s"]))
        .await
        .expect("joined");
    assert!(
        uninstalled.status.success(),
        "{}",
        String::from_utf8_lossy(&uninstalled.stderr)
    );
    assert!(String::from_utf8_lossy(&uninstalled.stdout).contains("release \"demo\" uninstalled"));
    assert!(absent(&k.configmaps(), "demo-settings").await);
    assert!(absent(&k.deployments(), "demo-web").await);
}
