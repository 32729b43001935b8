//! `/healthz`, `/readyz` and `/metrics` over HTTP, `/metrics` over HTTPS for the callers the API
//! server authenticates and authorizes, and the graceful shutdown: in-flight reconciles drained
//! within the deadline, the Lease released.

use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::ClusterRole;
use opkit::k8s::ServiceAccount;
use opkit::prelude::*;
use opkit_envtest::{Fault, TestEnv};
use tokio::net::{TcpListener, TcpStream};

use crate::fixture::{Widget, WidgetSpec, eventually, is_true, spec};
use crate::leader::{Replica, holder, read_some, write_all};

/// One HTTP/1.1 GET; the status code and the whole response.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("the endpoint accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    assert!(
        write_all(&stream, request.as_bytes()).await,
        "the request is sent"
    );
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(n) = read_some(&stream, &mut buf).await.filter(|n| *n > 0) {
        bytes.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port")
}

async fn setup() -> TestEnv {
    let env = TestEnv::start().await.expect("embedded API server starts");
    env.install_crd::<Widget>().await.expect("CRD installs");
    env
}

async fn endpoints(client: Client, identity: &str) -> Replica {
    let probes = loopback().await;
    let metrics = loopback().await;
    Replica::start_with(client, identity, |m| {
        m.health_probes(probes).metrics_endpoint(metrics)
    })
}

#[tokio::test]
async fn readiness_waits_for_the_caches_and_the_api_server() {
    let env = setup().await;
    // No list of widgets succeeds: the primary cache cannot sync.
    env.faults()
        .fail("list", "widgets", 1.0, Fault::InternalError);
    let mut replica = endpoints(env.client(), "replica-a").await;
    let running = replica.running.as_ref().expect("running");
    let probes = running.health_probe_address().expect("probes are served");
    eventually("the replica to lead", || async {
        running.is_leader().then_some(())
    })
    .await;

    let (status, body) = get(probes, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(probes, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("caches have not synced"), "{body}");
    assert!(!running.is_synced());

    env.faults().clear();
    running.wait_synced().await;
    eventually("/readyz to answer 200", || async {
        (get(probes, "/readyz").await.0 == 200).then_some(())
    })
    .await;

    // Synced caches are not enough: the API server must answer too.
    env.faults()
        .fail("list", "widgets", 1.0, Fault::InternalError);
    let (status, body) = get(probes, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("API server did not answer"), "{body}");
    env.faults().clear();
    assert_eq!(get(probes, "/readyz").await.0, 200);
    assert_eq!(get(probes, "/nothing").await.0, 404);
    replica.stop().await;
}

#[tokio::test]
async fn a_standby_is_ready_and_serves_its_metrics() {
    let env = setup().await;
    let mut leader = endpoints(env.client(), "replica-a").await;
    eventually("replica-a to lead", || async {
        leader.is_leader().then_some(())
    })
    .await;
    let mut standby = endpoints(env.client(), "replica-b").await;
    let running = standby.running.as_ref().expect("running");
    let probes = running.health_probe_address().expect("probes are served");
    let metrics = running.metrics_address().expect("metrics are served");
    eventually("the standby to be ready", || async {
        (get(probes, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(!running.is_leader());

    let (status, body) = get(metrics, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{body}"
    );
    assert!(body.contains("leader_election_master_status{name=\"widget-operator-lock\"} 0"));
    assert!(body.trim_end().ends_with("# EOF"));

    let leader_metrics = leader
        .running
        .as_ref()
        .and_then(|r| r.metrics_address())
        .expect("the leader serves metrics");
    let (_, body) = get(leader_metrics, "/metrics").await;
    assert!(body.contains("leader_election_master_status{name=\"widget-operator-lock\"} 1"));
    assert!(body.contains("controller_runtime_max_concurrent_reconciles{controller=\"widget\"}"));

    standby.stop().await;
    leader.stop().await;
}

/// Creates a Widget whose reconcile takes `ms` and waits until `replica` is running it.
async fn reconciling_slowly(env: &TestEnv, replica: &Replica, name: &str, ms: u64) -> Api<Widget> {
    let widgets: Api<Widget> = Api::namespaced(env.client(), "default");
    widgets
        .create(&Default::default(), &Widget::new(name, slow(ms)))
        .await
        .expect("widget is created");
    eventually("the reconcile to be in flight", || async {
        (replica.probe.in_flight() == 1).then_some(())
    })
    .await;
    widgets
}

fn slow(ms: u64) -> WidgetSpec {
    WidgetSpec {
        delay_ms: Some(ms),
        ..spec(1)
    }
}

#[tokio::test]
async fn shutdown_drains_the_in_flight_reconcile_and_releases_the_lease() {
    let env = setup().await;
    let mut replica = endpoints(env.client(), "replica-a").await;
    let running = replica.running.take().expect("running");
    let probes = running.health_probe_address().expect("probes are served");
    let widgets = reconciling_slowly(&env, &replica, "slow", 1500).await;

    let shutdown = tokio::spawn(running.shutdown());
    eventually("/readyz to answer 503 while draining", || async {
        (get(probes, "/readyz").await.0 == 503).then_some(())
    })
    .await;
    shutdown.await.expect("shutdown completes");

    assert_eq!(replica.probe.in_flight(), 0, "the reconcile was cut short");
    let widget = widgets.get("slow").await.expect("widget exists");
    assert!(
        is_true(&widget, "Ready"),
        "the drained reconcile wrote its status"
    );
    assert_eq!(holder(&env).await, None, "the lease is released");
    assert!(
        TcpStream::connect(probes).await.is_err(),
        "the endpoint stopped"
    );
}

#[tokio::test]
async fn shutdown_cancels_reconciles_that_outlast_the_deadline() {
    let env = setup().await;
    let mut replica = Replica::start_with(env.client(), "replica-a", |m| {
        m.shutdown_timeout(Duration::from_millis(200))
    });
    let running = replica.running.take().expect("running");
    reconciling_slowly(&env, &replica, "stuck", 60_000).await;

    let started = Instant::now();
    running.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "shutdown waited {:?} for a reconcile of a minute",
        started.elapsed()
    );
    assert_eq!(
        replica.probe.in_flight(),
        1,
        "the reconcile was cancelled mid-way"
    );
    assert_eq!(holder(&env).await, None, "the lease is released");
}

/// A TokenRequest token for the ServiceAccount `namespace/name`, created with its Namespace.
async fn service_account_token(env: &TestEnv, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
    );
    opkit::manifests::apply_yaml(&env.client(), "tests", &yaml)
        .await
        .expect("the ServiceAccount applies");
    let request = TokenRequest {
        spec: TokenRequestSpec::default(),
        ..Default::default()
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), namespace);
    let answer: TokenRequest = accounts
        .create_subresource("token", name, &Default::default(), &request)
        .await
        .expect("a token");
    answer.status.map(|s| s.token).unwrap_or_default()
}

#[tokio::test]
async fn secure_metrics_answer_only_the_callers_rbac_allows_to_read_them() {
    let env = setup().await;
    // The operator runs as its ServiceAccount under exactly the RBAC `rbac` prints for it.
    let app = opkit::App::new("widget-operator");
    let rbac = app.rbac_yaml("ops").expect("RBAC renders");
    service_account_token(&env, "ops", "widget-operator").await;
    opkit::manifests::apply_yaml(&env.client(), "tests", &rbac)
        .await
        .expect("the RBAC applies");
    let operator = env
        .service_account_client("ops", "widget-operator")
        .expect("the operator's client");
    let certificates = opkit::webhook::Certificates::self_signed(&["localhost"]).expect("certs");
    let running = opkit::Manager::new(operator)
        .secure_metrics_endpoint(loopback().await, &certificates)
        .expect("a TLS configuration")
        .start();
    let addr = running.metrics_address().expect("metrics are served");
    let ca = certificates.ca_pem();
    let scrape = |headers: String| async move {
        crate::webhook::https(addr, ca, &headers, "GET", "/metrics", b"").await
    };
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");

    let (status, body) = scrape(String::new()).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.ends_with("\r\n\r\nUnauthorized\n"), "{body}");
    assert!(
        body.contains("content-type: text/plain; charset=utf-8"),
        "{body}"
    );
    let (status, body) = scrape(bearer("not-a-token")).await;
    assert_eq!(status, 401, "{body}");

    let nosy = service_account_token(&env, "monitoring", "nosy").await;
    let (status, body) = scrape(bearer(&nosy)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.ends_with("Authorization denied for user system:serviceaccount:monitoring:nosy\n"),
        "{body}"
    );

    let prometheus = service_account_token(&env, "monitoring", "prometheus").await;
    let binding = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: prometheus-reads-widget-operator-metrics
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: widget-operator-metrics-reader
subjects:
- kind: ServiceAccount
  name: prometheus
  namespace: monitoring
";
    opkit::manifests::apply_yaml(&env.client(), "tests", binding)
        .await
        .expect("the binding applies");
    let (status, body) = scrape(bearer(&prometheus)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    // The answers are reused, as controller-runtime reuses them: no review for the next scrape.
    let reviewed = env.stats();
    assert!(reviewed.count("create", "tokenreviews") > 0, "{reviewed:?}");
    assert!(
        reviewed.count("create", "subjectaccessreviews") > 0,
        "{reviewed:?}"
    );
    env.reset_stats();
    assert_eq!(scrape(bearer(&prometheus)).await.0, 200);
    let stats = env.stats();
    assert_eq!(
        (
            stats.count("create", "tokenreviews"),
            stats.count("create", "subjectaccessreviews")
        ),
        (0, 0),
        "{stats:?}"
    );

    // Without its review rules the operator cannot tell who asks a new token: 500, as
    // controller-runtime answers.
    let newcomer = service_account_token(&env, "monitoring", "newcomer").await;
    let roles: Api<ClusterRole> = Api::all(env.client());
    let mut role = roles.get("widget-operator").await.expect("the ClusterRole");
    role.rules = Some(Vec::new());
    roles
        .replace("widget-operator", &Default::default(), &role)
        .await
        .expect("the rules are removed");
    let (status, body) = scrape(bearer(&newcomer)).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.ends_with("Authentication failed\n"), "{body}");
    running.shutdown().await;
}
