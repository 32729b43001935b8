//! The tenant operator with the real kubectl: a controller on Namespace, a built-in,
//! cluster-scoped kind, with typed configuration. Label a namespace and it gets a default-deny
//! NetworkPolicy and a ResourceQuota; remove the label and they go; a converged operator writes
//! nothing on resync.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use opkit_examples::tenants::{TenantPolicy, controller};

use crate::support::{Demo, env, reconciled, succeeded};

async fn demo(policy: TenantPolicy) -> Demo {
    Demo::start(env().await, &opkit_examples::tenants::app(), |m| {
        m.controller(controller(policy).requeue(Duration::from_millis(300)))
    })
    .await
}

const SHOP: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    opkit.dev/tenant: shop-team
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_namespaces_get_a_policy_and_a_quota_until_the_label_goes() {
    let policy = TenantPolicy::parse("requests.cpu=2,pods=10").expect("a quota");
    let mut demo = demo(policy).await;
    demo.apply(SHOP).await;
    demo.ok(&["create", "namespace", "tools"]).await;
    demo.wait_exists("-n shop networkpolicy/default-deny-ingress")
        .await;
    pods_allowed(&demo, "10").await;
    let owner = demo
        .jsonpath_in(
            "shop",
            "resourcequota/tenant-quota",
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}",
        )
        .await;
    assert_eq!(owner, "Namespace/shop/true");
    let policy_types = demo
        .jsonpath_in(
            "shop",
            "networkpolicy/default-deny-ingress",
            "{.spec.policyTypes}",
        )
        .await;
    assert_eq!(policy_types, r#"["Ingress"]"#);
    // The plain namespace was reconciled (the controller lists every Namespace) and got nothing.
    reconciled_namespace(&demo, "tools").await;
    let in_tools = demo
        .ok(&[
            "get",
            "networkpolicies,resourcequotas",
            "-n",
            "tools",
            "-o",
            "name",
        ])
        .await;
    assert!(in_tools.trim().is_empty(), "{in_tools}");

    // Drift is put back.
    demo.ok(&[
        "patch",
        "resourcequota/tenant-quota",
        "-n",
        "shop",
        "--type=merge",
        r#"-p={"spec":{"hard":{"pods":"99"}}}"#,
    ])
    .await;
    pods_allowed(&demo, "10").await;

    // The label goes: so do the policy and the quota; it comes back: so do they.
    demo.ok(&["label", "namespace", "shop", "opkit.dev/tenant-"])
        .await;
    demo.wait_gone("-n shop resourcequota/tenant-quota").await;
    demo.wait_gone("-n shop networkpolicy/default-deny-ingress")
        .await;
    demo.ok(&["label", "namespace", "tools", "opkit.dev/tenant=tools-team"])
        .await;
    demo.wait_exists("-n tools resourcequota/tenant-quota")
        .await;

    // A deleted tenant namespace takes its objects along; nothing is recreated in it.
    demo.ok(&["delete", "namespace", "tools", "--wait=true"])
        .await;
    demo.wait_gone("namespace/tools").await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_tenant_operator_writes_nothing_on_resync() {
    let mut demo = demo(TenantPolicy::default()).await;
    demo.apply(SHOP).await;
    demo.wait_exists("-n shop resourcequota/tenant-quota").await;
    demo.wait_exists("-n shop networkpolicy/default-deny-ingress")
        .await;
    let running = demo.running();
    // One resync of every namespace after the writes, then count.
    let namespaces = demo
        .ok(&["get", "namespaces", "-o", "name"])
        .await
        .lines()
        .count() as u64;
    let settled = succeeded(running, "tenants") + namespaces;
    reconciled(running, "tenants", settled).await;
    demo.env.reset_stats();
    reconciled(running, "tenants", settled + 2 * namespaces).await;
    let stats = demo.env.stats();
    assert_eq!(stats.writes(), 0, "writes while converged: {stats:?}");
    assert_eq!(
        stats.verb("get"),
        0,
        "dependents are read from the caches: {stats:?}"
    );
    demo.stop().await;
}

/// Waits until the shop's quota allows `pods`.
async fn pods_allowed(demo: &Demo, pods: &str) {
    demo.wait_jsonpath_in(
        "shop",
        "resourcequota/tenant-quota",
        "{.spec.hard.pods}",
        pods,
    )
    .await;
}

/// Waits until the controller reconciled the namespace `name` at least once, seen from the
/// outside: its reconcile count rises past the namespaces that existed before it.
async fn reconciled_namespace(demo: &Demo, name: &str) {
    demo.wait_exists(&format!("namespace/{name}")).await;
    let running = demo.running();
    let now = succeeded(running, "tenants");
    // Every namespace is resynced every 300 ms: two more rounds include `name`.
    let namespaces = demo
        .ok(&["get", "namespaces", "-o", "name"])
        .await
        .lines()
        .count() as u64;
    reconciled(running, "tenants", now + 2 * namespaces).await;
}

/// The variable that turns this test binary into the operator of [`logs_have_no_colour_codes_in_a_pipe`].
const CHILD: &str = "OPKIT_TEST_TENANT_OPERATOR_KUBECONFIG";

#[test]
fn logs_have_no_colour_codes_in_a_pipe() {
    if let Ok(kubeconfig) = std::env::var(CHILD) {
        // The child: the tenant operator's binary, as `tenant-operator --cluster` runs it.
        // SAFETY: the child process is single-threaded here; nothing reads the environment yet.
        unsafe { std::env::set_var("KUBECONFIG", kubeconfig) };
        let cli = <opkit::app::Cli as clap::Parser>::parse_from([
            "tenant-operator",
            "--cluster",
            "--leader-elect=false",
            "--health-probe-bind-address",
            "0",
            "--metrics-bind-address",
            "0",
        ]);
        let _ = opkit_examples::tenants::app().run_with(cli);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let env = runtime.block_on(env());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig)
        .expect("kubeconfig written");
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "tenants::logs_have_no_colour_codes_in_a_pipe",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, &kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the operator starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let started = loop {
        match lines.next() {
            Some(Ok(line)) => {
                let running = line.contains("running") && line.contains("tenants");
                seen.push(line);
                if running {
                    break true;
                }
            }
            _ => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the operator never logged that it runs: {seen:#?}");
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a log written to a pipe: {seen:#?}"
    );
}
