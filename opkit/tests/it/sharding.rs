//! Sharding, the priority queue and warm standbys, with several managers on one API server:
//! three replicas split the objects about evenly; a replica cut off from the server loses its
//! objects to the others within the lease duration and gets its share back when it returns,
//! every move handed over so that no object is ever reconciled by two replicas at once; a change
//! is reconciled before a relisted herd; a warm standby takes over without listing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::Patch;
use opkit::k8s::*;
use opkit::prelude::*;
use opkit::{LeaderElection, Manager, Sharding};
use opkit_envtest::TestEnv;

use crate::fixture::{eventually, fast_backoff};
use crate::leader::Partition;

/// A primary with one ConfigMap holding its size.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "test.opkit.dev", version = "v1", kind = "Item", namespaced)]
pub struct ItemSpec {
    pub size: i32,
}

/// One reconcile: which replica ran it, of which object and generation, from when to when.
#[derive(Clone, Debug)]
struct Span {
    replica: String,
    item: String,
    generation: i64,
    start: Instant,
    end: Instant,
}

/// What every replica's reconciles record into.
#[derive(Clone, Default)]
struct Log {
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Log {
    fn spans(&self) -> Vec<Span> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A replica's data: its name and the shared log; `hold`: how long each reconcile takes.
struct Replica {
    name: String,
    log: Log,
    hold: Duration,
}

struct ItemConfig<'a>(&'a Item);

impl Ensure for ItemConfig<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.0.name_any()),
                ..Default::default()
            },
            data: Some([("size".to_string(), self.0.spec.size.to_string())].into()),
            ..Default::default()
        }
    }
}

impl Reconcile<Replica> for Item {
    async fn reconcile(&self, ctx: &Context<Self, Replica>) -> opkit::Result<Action> {
        let start = Instant::now();
        // Long enough that two replicas reconciling one object at once would overlap.
        tokio::time::sleep(ctx.data().hold).await;
        ctx.ensure(ItemConfig(self)).await?;
        let span = Span {
            replica: ctx.data().name.clone(),
            item: self.name_any(),
            generation: self.metadata.generation.unwrap_or_default(),
            start,
            end: Instant::now(),
        };
        if let Ok(mut spans) = ctx.data().log.spans.lock() {
            spans.push(span);
        }
        Ok(Action::done())
    }
}

fn controller(name: &str, log: &Log, hold: Duration) -> opkit::Controller<Item, Replica> {
    let replica = Replica {
        name: name.to_owned(),
        log: log.clone(),
        hold,
    };
    opkit::Controller::<Item, _>::new("items", replica)
        .owns::<ConfigMap>()
        .with_crd(Item::crd())
        .backoff(fast_backoff())
}

const RING: &str = "items";
const LEASE: Duration = Duration::from_secs(4);

fn sharding(identity: &str) -> Sharding {
    Sharding::new(RING)
        .namespace("default")
        .identity(identity)
        .lease_duration(LEASE)
        .renew_deadline(Duration::from_secs(3))
        .retry_period(Duration::from_millis(500))
}

fn sharded(client: Client, name: &str, log: &Log) -> opkit::Running {
    Manager::new(client)
        .controller(controller(name, log, Duration::from_millis(20)))
        .sharded(sharding(name))
        .start()
}

async fn setup() -> TestEnv {
    let env = TestEnv::start().await.expect("embedded API server starts");
    env.install_crd::<Item>().await.expect("CRD installs");
    env
}

fn name(i: usize) -> String {
    format!("item-{i:03}")
}

async fn create_items(env: &TestEnv, n: usize) {
    let items: Api<Item> = Api::namespaced(env.client(), "default");
    for i in 0..n {
        items
            .create(
                &Default::default(),
                &Item::new(&name(i), ItemSpec { size: 1 }),
            )
            .await
            .expect("item is created");
    }
}

/// Every item's shard label (its owner's term), once every item has one and none is draining.
async fn settled_owners(env: &TestEnv, n: usize) -> BTreeMap<String, String> {
    let items: Api<Item> = Api::namespaced(env.client(), "default");
    let label = opkit::shard::shard_label(RING);
    let drain = opkit::shard::drain_label(RING);
    eventually("every item assigned", || {
        let items = items.clone();
        let (label, drain) = (label.clone(), drain.clone());
        async move {
            let list = items.list(&Default::default()).await.ok()?;
            let owners: BTreeMap<String, String> = list
                .items
                .iter()
                .filter(|i| !i.labels().contains_key(&drain))
                .filter_map(|i| Some((i.name_any(), i.labels().get(&label)?.clone())))
                .collect();
            (owners.len() == n).then_some(owners)
        }
    })
    .await
}

/// How many items each replica (identity) owns.
fn shares(owners: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut shares = BTreeMap::new();
    for term in owners.values() {
        let identity = term.split('.').next().unwrap_or_default().to_owned();
        *shares.entry(identity).or_default() += 1;
    }
    shares
}

/// Fails if one item was ever reconciled by two reconciles at once, anywhere.
fn assert_no_overlap(spans: &[Span]) {
    let mut by_item: HashMap<&str, Vec<&Span>> = HashMap::new();
    for span in spans {
        by_item.entry(&span.item).or_default().push(span);
    }
    for (item, mut spans) in by_item {
        spans.sort_by_key(|s| s.start);
        for pair in spans.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "{item} was reconciled by {} and {} at once",
                pair[0].replica,
                pair[1].replica
            );
        }
    }
}

/// Waits until every item's ConfigMap holds its current size and carries its owner's label,
/// and no ConfigMap is left without its item.
async fn converged(env: &TestEnv) {
    let items: Api<Item> = Api::namespaced(env.client(), "default");
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let label = opkit::shard::shard_label(RING);
    eventually("dependents to converge", || {
        let (items, config_maps, label) = (items.clone(), config_maps.clone(), label.clone());
        async move {
            let items = items.list(&Default::default()).await.ok()?.items;
            let maps = config_maps.list(&Default::default()).await.ok()?.items;
            let maps: HashMap<String, &ConfigMap> = maps
                .iter()
                .filter(|m| m.name_any() != "kube-root-ca.crt")
                .map(|m| (m.name_any(), m))
                .collect();
            let matched = items.iter().all(|item| {
                let owner = item.labels().get(&label).and_then(|t| t.split('.').next());
                maps.get(&item.name_any()).is_some_and(|m| {
                    m.data.as_ref().and_then(|d| d.get("size")) == Some(&item.spec.size.to_string())
                        && m.labels().get(&label).map(String::as_str) == owner
                })
            });
            (matched && maps.len() == items.len()).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn three_replicas_split_the_objects_and_move_them_without_overlap() {
    const N: usize = 240;
    let env = setup().await;
    let log = Log::default();
    let partition = Partition::to(env.addr()).await;
    let mut replicas = vec![
        ("replica-a", sharded(env.client(), "replica-a", &log)),
        ("replica-b", sharded(env.client(), "replica-b", &log)),
    ];
    // Replica c, to be cut off later, starts once the sharder is elsewhere.
    eventually("a sharder", || async {
        replicas.iter().any(|(_, r)| r.is_sharder()).then_some(())
    })
    .await;
    replicas.push((
        "replica-c",
        sharded(partition.client(env.config()), "replica-c", &log),
    ));
    eventually("every replica to be a member", || async {
        replicas.iter().all(|(_, r)| r.is_leader()).then_some(())
    })
    .await;
    create_items(&env, N).await;
    let owners = settled_owners(&env, N).await;
    let split = shares(&owners);
    assert_eq!(split.len(), 3, "{split:?}");
    for (replica, share) in &split {
        assert!(
            share * 5 >= N / 3 * 4 && share * 5 <= N / 3 * 6,
            "{replica} owns {share} of {N}: {split:?}"
        );
    }
    converged(&env).await;

    // Changes keep coming while replicas leave and return.
    let changing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let items: Api<Item> = Api::namespaced(env.client(), "default");
        let changing = changing.clone();
        async move {
            let mut round = 0;
            while changing.load(Ordering::SeqCst) {
                round += 1;
                let patch = serde_json::json!({"spec": {"size": round}});
                let target = name((round * 7) as usize % N);
                // Conflicts with the operators' writes are expected; the next round goes on.
                let _ = items
                    .patch(&target, &Default::default(), &Patch::Merge(&patch))
                    .await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });

    // Replica c is cut off from the server, as if its node died.
    partition.cut();
    let cut = Instant::now();
    let owners = eventually("replica-c's items moved", || async {
        let owners = settled_owners(&env, N).await;
        (!shares(&owners).contains_key("replica-c")).then_some(owners)
    })
    .await;
    let moved = cut.elapsed();
    assert!(
        moved <= LEASE + Duration::from_secs(2),
        "replica-c's items were without a replica for {moved:?}"
    );
    assert!(!replicas[2].1.is_leader(), "replica-c stopped reconciling");
    assert_eq!(shares(&owners).len(), 2);

    // Back, it is a new member and gets a share again, each item handed over.
    partition.heal();
    eventually("replica-c to get items again", || async {
        let split = shares(&settled_owners(&env, N).await);
        split
            .get("replica-c")
            .is_some_and(|share| share * 5 >= N / 3 * 4)
            .then_some(split)
    })
    .await;
    changing.store(false, Ordering::SeqCst);
    writer.await.expect("the writer ends");
    converged(&env).await;

    let spans = log.spans();
    assert_no_overlap(&spans);
    let c_after: usize = spans
        .iter()
        .filter(|s| s.replica == "replica-c" && s.start > cut + moved)
        .count();
    assert!(c_after > 0, "replica-c reconciles its new share");
    for (_, running) in replicas.drain(..) {
        running.shutdown().await;
    }
}

#[tokio::test]
async fn a_change_is_reconciled_before_the_relisted_herd() {
    const N: usize = 80;
    let env = setup().await;
    create_items(&env, N).await;
    let log = Log::default();
    // One reconcile at a time, each 25 ms: the herd of 80 takes two seconds.
    let running = Manager::new(env.client())
        .controller(controller("replica", &log, Duration::from_millis(25)).concurrency(1))
        .start();
    eventually("the herd to start", || async {
        (!log.spans().is_empty()).then_some(())
    })
    .await;
    let changed = name(N - 1);
    let items: Api<Item> = Api::namespaced(env.client(), "default");
    items
        .patch(
            &changed,
            &Default::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"size": 5}})),
        )
        .await
        .expect("the change is written");
    let before_change = eventually("the change to be reconciled", || async {
        let spans = log.spans();
        let at = spans
            .iter()
            .position(|s| s.item == changed && s.generation == 2)?;
        Some(spans[..at].iter().filter(|s| s.item != changed).count())
    })
    .await;
    assert!(
        before_change < N / 2,
        "the change waited for {before_change} of the {N} relisted items"
    );
    eventually("the whole herd", || async {
        (log.spans().len() > N).then_some(())
    })
    .await;
    running.shutdown().await;
}

/// Lists of Items the server answered.
fn item_lists(env: &TestEnv) -> u64 {
    env.stats()
        .iter()
        .filter(|(verb, resource, _, _)| *verb == "list" && *resource == "items")
        .map(|(_, _, _, count)| count)
        .sum()
}

async fn takeover(warm: bool) -> u64 {
    let env = setup().await;
    create_items(&env, 20).await;
    let log = Log::default();
    let elected = |name: &str| {
        Manager::new(env.client())
            .controller(controller(name, &log, Duration::ZERO))
            .leader_election(
                LeaderElection::new("items-lock")
                    .namespace("default")
                    .identity(name)
                    .lease_duration(LEASE)
                    .renew_deadline(Duration::from_secs(3))
                    .retry_period(Duration::from_millis(200)),
            )
            .warm_standby(warm)
            .start()
    };
    let a = elected("replica-a");
    eventually("replica-a to lead", || async {
        a.is_leader().then_some(())
    })
    .await;
    let b = elected("replica-b");
    converged(&env).await;
    // The standby's watch is up once the server counts its list (warm) or right away (cold).
    let lists = if warm { 2 } else { 1 };
    eventually("the standby's list", || async {
        (item_lists(&env) >= lists).then_some(())
    })
    .await;
    env.reset_stats();
    a.shutdown().await;
    eventually("replica-b to lead", || async {
        b.is_leader().then_some(())
    })
    .await;
    let items: Api<Item> = Api::namespaced(env.client(), "default");
    items
        .create(
            &Default::default(),
            &Item::new("after", ItemSpec { size: 2 }),
        )
        .await
        .expect("item is created");
    // Waiting on the log, not on the API: every list counted is the operator's.
    eventually("the new leader to reconcile", || async {
        log.spans()
            .iter()
            .any(|s| s.replica == "replica-b" && s.item == "after")
            .then_some(())
    })
    .await;
    let after = item_lists(&env);
    b.shutdown().await;
    after
}

#[tokio::test]
async fn a_warm_standby_takes_over_without_listing_and_a_cold_one_lists() {
    assert_eq!(
        takeover(true).await,
        0,
        "the warm standby listed after acquiring"
    );
    assert!(takeover(false).await >= 1, "the cold standby did not list");
}
