//! `/healthz`, `/readyz` and `/metrics` over HTTP, and the graceful shutdown: in-flight
//! reconciles drained within the deadline, the Lease released.

use std::time::{Duration, Instant};

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
