//! From an empty directory to a tested, deployable operator, with the `cargo-opkit` binary: `new`,
//! `create api` (a kind owning a Deployment, a cluster-scoped one owning every other kind the
//! scaffold knows, one owning nothing), `create webhook`, then the project's own `cargo test`,
//! `cargo fmt --check`, `cargo opkit manifests` and `--check`, `cargo run` on its embedded API
//! server with the real kubectl, and the real kustomize and helm on its manifests.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::project::{cargo, ok, opkit, stdout, target, workspace};

/// The operator process, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_scaffolded_project_builds_tests_runs_and_ships_its_manifests() {
    let _one_project_at_a_time = super::project::exclusive();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let project = tmp.path().join("memcached-operator");
    let workspace = workspace();

    let started = Instant::now();
    ok(opkit(tmp.path())
        .args(["new", "memcached-operator", "--group", "cache"])
        .args(["--domain", "example.com", "--opkit-path"])
        .arg(&workspace));
    let created = ok(opkit(&project).args([
        "create",
        "api",
        "--version",
        "v1",
        "--kind",
        "Memcached",
        "--owns",
        "Deployment",
    ]));
    eprintln!("cargo opkit new + create api: {:.2?}", started.elapsed());
    assert!(
        stdout(&created).contains("wrote src/memcached/reconcile.rs"),
        "{}",
        stdout(&created)
    );
    ok(opkit(&project).args([
        "create",
        "api",
        "--version",
        "v1alpha1",
        "--kind",
        "Fleet",
        "--cluster",
        "--owns",
        "StatefulSet,DaemonSet,Job,CronJob,Service,ConfigMap,ServiceAccount,PersistentVolumeClaim",
    ]));
    ok(opkit(&project).args(["create", "api", "--version", "v1", "--kind", "Note"]));
    ok(opkit(&project).args([
        "create",
        "webhook",
        "--kind",
        "Memcached",
        "--validating",
        "--mutating",
    ]));
    ok(opkit(&project).args(["create", "webhook", "--kind", "Fleet", "--validating"]));
    ok(opkit(&project).args(["create", "webhook", "--kind", "Note", "--validating"]));

    // The same dependency versions as this workspace, resolved offline.
    std::fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock"))
        .expect("copies the lock file");
    super::project::formatted(&project);

    let started = Instant::now();
    let tested = ok(cargo(&project).args(["test", "--no-fail-fast"]));
    eprintln!("the project's cargo test: {:.2?}", started.elapsed());
    let report = stdout(&tested);
    for test in [
        "memcached::the_sample_memcached_becomes_ready ... ok",
        "fleet::the_sample_fleet_becomes_ready ... ok",
        "note::the_sample_note_becomes_ready ... ok",
        "memcached_validator::the_memcached_validator_refuses_with_its_reason ... ok",
        "memcached_mutator::the_memcached_mutator_labels_what_it_stores ... ok",
        "fleet_validator::the_fleet_validator_refuses_with_its_reason ... ok",
        "note_validator::the_note_validator_refuses_with_its_reason ... ok",
    ] {
        assert!(report.contains(test), "`{test}` is not in:\n{report}");
    }

    ok(opkit(&project).arg("manifests"));
    let checked = ok(opkit(&project).args(["manifests", "--check"]));
    assert_eq!(stdout(&checked), "The manifests are up to date.\n");
    for file in [
        "config/crd/bases/cache.example.com_memcacheds.yaml",
        "config/rbac/role.yaml",
        "config/webhook/manifests.yaml",
        "config/default/kustomization.yaml",
        "config/manager/manager.yaml",
        "charts/memcached-operator/Chart.yaml",
        "charts/memcached-operator/files/rules.yaml",
    ] {
        assert!(project.join(file).is_file(), "{file} was not written");
    }

    drift_is_caught(&project);
    kubectl_uses_cargo_run(&project);
    kustomize_and_helm_accept_the_manifests(&project);
}

/// A generated file edited by hand fails `--check` with a diff and the command that fixes it.
fn drift_is_caught(project: &Path) {
    let role = project.join("config/rbac/role.yaml");
    let generated = std::fs::read_to_string(&role).expect("reads the role");
    std::fs::write(&role, generated.replace("- deployments\n", "- '*'\n")).expect("edits the role");
    let drift = opkit(project)
        .args(["manifests", "--check"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&drift.stderr);
    assert!(!drift.status.success(), "--check passed a hand-edited role");
    assert!(
        stderr.contains("error: generated manifests are out of date; run `cargo opkit manifests`")
            && stderr.contains("--- config/rbac/role.yaml (checked in)")
            && stderr.contains("-  - '*'\n+  - deployments\n"),
        "{stderr}"
    );
    ok(opkit(project).arg("manifests"));
    assert_eq!(std::fs::read_to_string(&role).ok(), Some(generated));
}

/// `cargo run` (the binary `cargo test` built, run as cargo runs it, so the test can stop it)
/// starts the operator on its embedded API server and prints the kubeconfig export line;
/// kubectl then sees the sample become Ready, and `kubectl apply` takes the generated CRDs and
/// `cargo run -- crd | kubectl apply -f -`.
fn kubectl_uses_cargo_run(project: &Path) {
    let kubeconfig = project.join("kubeconfig");
    let binary = target().join("debug/memcached-operator");
    let mut child = Command::new(&binary)
        .arg("--write-kubeconfig")
        .arg(&kubeconfig)
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the operator starts");
    let output = child.stdout.take().expect("stdout is piped");
    let running = Running(child);
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = Vec::new();
    while !printed
        .iter()
        .any(|l: &String| l.starts_with("Applied Memcached default/memcached-sample"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => panic!(
                "`cargo run` did not apply its sample in time:\n{}",
                printed.join("\n")
            ),
        }
    }
    let export = format!("    export KUBECONFIG={}", kubeconfig.display());
    assert!(
        printed.contains(&export),
        "no `{export}` in:\n{}",
        printed.join("\n")
    );

    let kubectl_binary = opkit_envtest::tools::kubectl().expect("kubectl is available");
    let kubectl = |args: &[&str]| {
        ok(Command::new(&kubectl_binary)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .current_dir(project))
    };
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        "memcached/memcached-sample",
        "--timeout=60s",
    ]);
    let table = stdout(&kubectl(&["get", "memcacheds"]));
    assert!(
        table.starts_with("NAME") && table.contains("READY"),
        "{table}"
    );
    assert!(table.contains("memcached-sample   True"), "{table}");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "config/crd/bases",
    ]);

    // `cargo run -- crd | kubectl apply -f -`
    let crds = ok(Command::new(&binary).arg("crd").current_dir(project)).stdout;
    let mut apply = Command::new(&kubectl_binary)
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &kubeconfig)
        .current_dir(project)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    apply
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&crds)
        .expect("kubectl reads the CRDs");
    let applied = apply.wait_with_output().expect("kubectl runs");
    let report = stdout(&applied);
    assert!(
        applied.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    for plural in ["memcacheds", "fleets", "notes"] {
        let line =
            format!("customresourcedefinition.apiextensions.k8s.io/{plural}.cache.example.com ");
        assert!(report.contains(&line), "no `{line}` in:\n{report}");
    }
    drop(running);
}

/// kustomize builds every tree of `config/`, and helm lints and renders the chart.
fn kustomize_and_helm_accept_the_manifests(project: &Path) {
    let kubectl = opkit_envtest::tools::kubectl().expect("kubectl is available");
    let built = ok(Command::new(&kubectl)
        .args(["kustomize", "config/default"])
        .current_dir(project));
    let yaml = stdout(&built);
    for kind in [
        "kind: CustomResourceDefinition",
        "kind: Deployment",
        "kind: ValidatingWebhookConfiguration",
        "kind: MutatingWebhookConfiguration",
        "kind: Certificate",
        "kind: PrometheusRule",
    ] {
        assert!(
            yaml.contains(kind),
            "no {kind} in `kubectl kustomize config/default`"
        );
    }
    ok(Command::new(&kubectl)
        .args(["kustomize", "config/samples"])
        .current_dir(project));
    let helm = opkit_envtest::tools::helm().expect("helm is available");
    let chart = "charts/memcached-operator";
    ok(Command::new(&helm)
        .args(["lint", "--strict", chart])
        .current_dir(project));
    let rendered = ok(Command::new(&helm)
        .args(["template", "memcached-operator", chart, "--include-crds"])
        .current_dir(project));
    let yaml = stdout(&rendered);
    assert!(
        yaml.contains("kind: ValidatingWebhookConfiguration"),
        "{yaml}"
    );
    assert!(
        yaml.contains("--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs"),
        "{yaml}"
    );
}
