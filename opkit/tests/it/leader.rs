//! Leader election: of several managers on one API server exactly one reconciles; a released or
//! unreachable leader is replaced within the lease duration, and a leader cut off from the API
//! server stops before anyone else starts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use opkit::k8s::*;
use opkit::prelude::*;
use opkit::{LeaderElection, Manager};
use opkit_envtest::TestEnv;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixture::{Spy, Widget, eventually, spec, widget_controller};

pub const LEASE: &str = "widget-operator-lock";
pub const LEASE_DURATION: Duration = Duration::from_secs(5);

/// Short periods so that failover happens in seconds.
pub fn election(identity: &str) -> LeaderElection {
    LeaderElection::new(LEASE)
        .identity(identity)
        .lease_duration(LEASE_DURATION)
        .renew_deadline(Duration::from_secs(3))
        .retry_period(Duration::from_millis(500))
}

/// One operator replica: its own probe, a manager with leader election.
pub struct Replica {
    pub identity: String,
    pub probe: Arc<Spy>,
    pub running: Option<opkit::Running>,
}

impl Replica {
    pub fn start(client: Client, identity: &str) -> Replica {
        Self::start_with(client, identity, |m| m)
    }

    pub fn start_with(
        client: Client,
        identity: &str,
        adjust: impl FnOnce(Manager) -> Manager,
    ) -> Replica {
        let probe = Arc::new(Spy::default());
        let manager = Manager::new(client)
            .controller(widget_controller(&probe))
            .leader_election(election(identity));
        Replica {
            identity: identity.to_owned(),
            probe,
            running: Some(adjust(manager).start()),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.is_leader())
    }

    pub fn metrics(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.metrics().encode())
            .unwrap_or_default()
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

pub async fn holder(env: &TestEnv) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client(), "default");
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn setup() -> TestEnv {
    let env = TestEnv::start().await.expect("embedded API server starts");
    env.install_crd::<Widget>().await.expect("CRD installs");
    env
}

async fn leader_of<'a>(replicas: &'a [&'a Replica]) -> &'a Replica {
    eventually("a leader", || async {
        let leading: Vec<&&Replica> = replicas.iter().filter(|r| r.is_leader()).collect();
        (leading.len() == 1).then(|| *leading[0])
    })
    .await
}

async fn create(env: &TestEnv, name: &str) {
    let widgets: Api<Widget> = Api::namespaced(env.client(), "default");
    widgets
        .create(&Default::default(), &Widget::new(name, spec(1)))
        .await
        .expect("widget is created");
}

async fn config_map(env: &TestEnv, name: &str) {
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let name = format!("{name}-config");
    eventually(&format!("ConfigMap {name}"), || {
        let config_maps = config_maps.clone();
        let name = name.clone();
        async move { config_maps.get_opt(&name).await.ok().flatten() }
    })
    .await;
}

#[tokio::test]
async fn of_two_replicas_exactly_one_reconciles() {
    let env = setup().await;
    let mut a = Replica::start(env.client(), "replica-a");
    let mut b = Replica::start(env.client(), "replica-b");
    let replicas = [&a, &b];
    let leader = leader_of(&replicas).await;
    let standby = if leader.identity == a.identity {
        &b
    } else {
        &a
    };
    assert_eq!(
        holder(&env).await.as_deref(),
        Some(leader.identity.as_str())
    );

    for name in ["one", "two", "three"] {
        create(&env, name).await;
    }
    for name in ["one", "two", "three"] {
        config_map(&env, name).await;
    }
    assert!(leader.probe.reconciles() >= 3);
    assert_eq!(standby.probe.reconciles(), 0, "the standby reconciled");
    assert!(!standby.is_leader());
    let gauge = format!("leader_election_master_status{{name=\"{LEASE}\"}}");
    assert!(leader.metrics().contains(&format!("{gauge} 1")));
    assert!(standby.metrics().contains(&format!("{gauge} 0")));

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_released_lease_is_taken_over_within_the_lease_duration() {
    let env = setup().await;
    let mut a = Replica::start(env.client(), "replica-a");
    eventually("replica-a to lead", || async {
        a.is_leader().then_some(())
    })
    .await;
    let mut b = Replica::start(env.client(), "replica-b");
    create(&env, "before").await;
    config_map(&env, "before").await;
    assert_eq!(b.probe.reconciles(), 0);

    a.stop().await;
    let released = Instant::now();
    assert_eq!(
        holder(&env).await,
        None,
        "a graceful shutdown releases the lease"
    );
    eventually("replica-b to lead", || async {
        b.is_leader().then_some(())
    })
    .await;
    assert!(
        released.elapsed() < LEASE_DURATION,
        "took over after {:?}",
        released.elapsed()
    );
    assert_eq!(holder(&env).await.as_deref(), Some("replica-b"));

    create(&env, "after").await;
    config_map(&env, "after").await;
    assert!(b.probe.reconciles() >= 1, "the new leader reconciles");
    b.stop().await;
}

/// A TCP forwarder to the API server that can be cut: open connections are closed and new ones
/// are accepted but never answered, as behind a network partition.
pub struct Partition {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Partition {
    pub async fn to(target: SocketAddr) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the forwarder binds");
        let addr = listener.local_addr().expect("the forwarder has an address");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let cut = cut.clone();
            let connections = connections.clone();
            async move {
                let mut held = Vec::new();
                while let Ok((inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        held.push(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(target).await {
                            let (inbound, outbound) = (Arc::new(inbound), Arc::new(outbound));
                            tokio::join!(
                                pump(inbound.clone(), outbound.clone()),
                                pump(outbound, inbound)
                            );
                        }
                    });
                    if let Ok(mut open) = connections.lock() {
                        open.push(task);
                    }
                }
            }
        });
        Partition {
            addr,
            cut,
            connections,
            accept,
        }
    }

    /// A client with `config`'s credentials whose every request goes through the forwarder.
    pub fn client(&self, mut config: kube::Config) -> Client {
        config.cluster_url = format!("https://{}", self.addr)
            .parse()
            .expect("the forwarder URL parses");
        Client::try_from(config).expect("a client for the forwarder")
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Ok(mut open) = self.connections.lock() {
            for task in open.drain(..) {
                task.abort();
            }
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies bytes from `from` to `to` until either side closes.
async fn pump(from: Arc<TcpStream>, to: Arc<TcpStream>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match read_some(&from, &mut buf).await {
            Some(0) | None => return,
            Some(n) => n,
        };
        if !write_all(&to, &buf[..n]).await {
            return;
        }
    }
}

/// Reads what is available; `Some(0)` at the end of the stream, `None` on an error.
pub async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> Option<usize> {
    loop {
        stream.readable().await.ok()?;
        match stream.try_read(buf) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
}

/// Writes all of `bytes`; false on an error.
pub async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return false;
        }
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return false,
        }
    }
    true
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test]
async fn a_partitioned_leader_stops_before_the_standby_takes_over() {
    let env = setup().await;
    let partition = Partition::to(env.addr()).await;
    let mut a = Replica::start(partition.client(env.config()), "replica-a");
    eventually("replica-a to lead", || async {
        a.is_leader().then_some(())
    })
    .await;
    let mut b = Replica::start(env.client(), "replica-b");
    create(&env, "before").await;
    config_map(&env, "before").await;

    partition.cut();
    let cut = Instant::now();
    // Sample both replicas: never both leading, and a stops before b starts.
    let mut a_stopped = None;
    let b_started = loop {
        let (a_leads, b_leads) = (a.is_leader(), b.is_leader());
        assert!(!(a_leads && b_leads), "two leaders at once");
        if !a_leads && a_stopped.is_none() {
            a_stopped = Some(cut.elapsed());
        }
        if b_leads {
            break cut.elapsed();
        }
        assert!(cut.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let a_stopped = a_stopped.expect("replica-a stopped leading");
    assert!(
        a_stopped <= b_started,
        "a stopped at {a_stopped:?}, b started at {b_started:?}"
    );
    assert!(
        b_started < LEASE_DURATION * 3,
        "the standby took {b_started:?} to take over"
    );
    let gauge = format!("leader_election_master_status{{name=\"{LEASE}\"}} 0");
    assert!(a.metrics().contains(&gauge));

    // Healed, the old leader stands by: what is created now is b's alone.
    partition.heal();
    let before = a.probe.reconciles();
    create(&env, "after").await;
    config_map(&env, "after").await;
    // A replica that is not leading has no controllers: its term ended when it stopped leading.
    assert!(!a.is_leader());
    assert_eq!(a.probe.reconciles(), before, "the old leader reconciled");
    assert_eq!(holder(&env).await.as_deref(), Some("replica-b"));

    b.stop().await;
    a.stop().await;
}

#[test]
fn timing_that_cannot_be_safe_is_refused() {
    let bad = election("x").renew_deadline(LEASE_DURATION);
    assert!(bad.validate().is_err());
    let tight = election("x").retry_period(Duration::from_secs(3));
    assert!(tight.validate().is_err());
    assert!(election("x").validate().is_ok());
}
