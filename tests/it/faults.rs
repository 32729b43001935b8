//! The fault suite: an operator on the embedded server while the server misbehaves (requests
//! failing with 500/503/429/409, watch streams cut, 410 Gone, the operator killed mid-flight, a
//! leader failover). Every case ends converged: one ConfigMap and one Service per live Site, none
//! for a deleted one, every deleted Site's cleanup run, every finalizer removed. A dependent that
//! keeps failing is retried within the backoff's bounds. Seeds are fixed; `docs/reliability.md`
//! lists the figures of a run (`-- --nocapture` prints them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kube::api::{DeleteParams, ListParams, PostParams};
use opkit::Backoff;
use opkit::k8s::*;
use opkit::prelude::*;
use opkit::{LeaderElection, Manager};
use opkit_envtest::{Fault, TestEnv};
use rand::{Rng, SeedableRng};

#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "faults.example.com",
    version = "v1",
    kind = "Site",
    namespaced,
    status = "SiteStatus"
)]
#[operator(owns(ConfigMap, Service), finalizer = "faults.example.com/cleanup")]
pub struct SiteSpec {
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

const LABEL: &str = "faults.example.com/site";
const FINALIZER: &str = "faults.example.com/cleanup";
/// How long a case may take to converge before it fails; a liveness bound, not a speed target.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// What the operator did, per Site name; shared by every replica and restart of one case.
#[derive(Debug, Default)]
struct Ledger {
    reconciles: Mutex<HashMap<String, Vec<Instant>>>,
    cleanups: Mutex<HashMap<String, u32>>,
}

impl Ledger {
    fn reconciled(&self, name: &str) {
        lock(&self.reconciles)
            .entry(name.to_owned())
            .or_default()
            .push(Instant::now());
    }

    fn cleaned(&self, name: &str) {
        *lock(&self.cleanups).entry(name.to_owned()).or_default() += 1;
    }

    fn reconciles_between(&self, name: &str, from: Instant, to: Instant) -> usize {
        lock(&self.reconciles).get(name).map_or(0, |at| {
            at.iter().filter(|t| **t >= from && **t < to).count()
        })
    }

    fn was_reconciled(&self, name: &str) -> bool {
        lock(&self.reconciles).contains_key(name)
    }

    fn cleanups(&self) -> HashMap<String, u32> {
        lock(&self.cleanups).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reconcile<Arc<Ledger>> for Site {
    async fn reconcile(&self, ctx: &Context<Self, Arc<Ledger>>) -> opkit::Result<Action> {
        ctx.data().reconciled(&self.name_any());
        ctx.ensure(SiteConfigMap(self)).await?;
        ctx.ensure(SiteService(self)).await?;
        ctx.status()
            .ready(true, "Configured", "the ConfigMap and the Service exist");
        Ok(Action::done())
    }

    async fn cleanup(&self, ctx: &Context<Self, Arc<Ledger>>) -> opkit::Result<()> {
        ctx.data().cleaned(&self.name_any());
        Ok(())
    }
}

fn metadata(site: &Site) -> ObjectMeta {
    ObjectMeta {
        name: Some(site.name_any()),
        labels: Some([(LABEL.to_owned(), site.name_any())].into()),
        ..Default::default()
    }
}

struct SiteConfigMap<'a>(&'a Site);

impl Ensure for SiteConfigMap<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: metadata(self.0),
            data: Some([("message".to_owned(), self.0.spec.message.clone())].into()),
            ..Default::default()
        }
    }
}

struct SiteService<'a>(&'a Site);

impl Ensure for SiteService<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        Service {
            metadata: metadata(self.0),
            spec: Some(ServiceSpec {
                selector: Some([(LABEL.to_owned(), self.0.name_any())].into()),
                ports: Some(vec![ServicePort {
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Retries after 50 ms, doubling up to 1 s, so that cases converge in seconds.
fn fast_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_secs(1),
        ..Backoff::default()
    }
}

fn manager(client: Client, ledger: &Arc<Ledger>) -> Manager {
    Manager::new(client).controller(Site::controller(ledger.clone()).backoff(fast_backoff()))
}

async fn start_env() -> TestEnv {
    let env = TestEnv::start().await.expect("embedded API server starts");
    env.install_crd::<Site>().await.expect("CRD installs");
    env
}

fn name(i: usize) -> String {
    format!("site-{i:03}")
}

/// Runs `request` until it succeeds: the test's own requests meet the injected faults too.
async fn retry<T, F, Fut>(what: &str, mut request: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        match request().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(Instant::now() < deadline, "{what} kept failing: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn create(client: &Client, names: impl IntoIterator<Item = String>) {
    let sites: Api<Site> = Api::namespaced(client.clone(), "default");
    for name in names {
        let site = Site::new(
            &name,
            SiteSpec {
                message: format!("hello from {name}"),
            },
        );
        retry("create", || async {
            match sites.create(&PostParams::default(), &site).await {
                Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(()),
                other => other.map(drop),
            }
        })
        .await;
    }
}

async fn delete(client: &Client, names: impl IntoIterator<Item = String>) {
    let sites: Api<Site> = Api::namespaced(client.clone(), "default");
    for name in names {
        retry("delete", || async {
            match sites.delete(&name, &DeleteParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                other => other.map(drop),
            }
        })
        .await;
    }
}

/// What a converged case looked like.
#[derive(Debug)]
struct Converged {
    live: usize,
    deleted: usize,
    /// Deleted Sites that had been reconciled (and so needed their cleanup).
    deleted_reconciled: usize,
    cleanups: u32,
    took: Duration,
}

/// Waits until the cluster holds exactly the `live` Sites, each Ready with its finalizer and one
/// ConfigMap and one Service it controls, no dependent of any other Site, and each `deleted` Site
/// cleaned up (and no live one).
async fn converged(
    client: &Client,
    ledger: &Ledger,
    live: &BTreeSet<String>,
    deleted: &BTreeSet<String>,
) -> Converged {
    let began = Instant::now();
    loop {
        let problem = match check(client, ledger, live, deleted).await {
            Ok(cleanups) => {
                return Converged {
                    live: live.len(),
                    deleted: deleted.len(),
                    deleted_reconciled: deleted.iter().filter(|n| ledger.was_reconciled(n)).count(),
                    cleanups,
                    took: began.elapsed(),
                };
            }
            Err(problem) => problem,
        };
        assert!(
            began.elapsed() < CONVERGE_WITHIN,
            "not converged after {CONVERGE_WITHIN:?}: {problem}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn check(
    client: &Client,
    ledger: &Ledger,
    live: &BTreeSet<String>,
    deleted: &BTreeSet<String>,
) -> Result<u32, String> {
    let everything = ListParams::default();
    let sites: Api<Site> = Api::all(client.clone());
    let sites = retry("list sites", || sites.list(&everything)).await;
    let mut uids = BTreeMap::new();
    for site in &sites.items {
        let name = site.name_any();
        if !live.contains(&name) {
            return Err(format!(
                "{name} still exists (finalizers {:?})",
                site.finalizers()
            ));
        }
        if !site.finalizers().iter().any(|f| f == FINALIZER) {
            return Err(format!("{name} has no finalizer"));
        }
        let ready = site.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.observed_generation == site.metadata.generation
            })
        });
        if !ready {
            return Err(format!("{name} is not Ready"));
        }
        uids.insert(name, site.uid().unwrap_or_default());
    }
    if uids.len() != live.len() {
        return Err(format!("{} of {} Sites exist", uids.len(), live.len()));
    }
    let selector = ListParams::default().labels(LABEL);
    let config_maps: Api<ConfigMap> = Api::all(client.clone());
    let config_maps = retry("list configmaps", || config_maps.list(&selector)).await;
    let services: Api<Service> = Api::all(client.clone());
    let services = retry("list services", || services.list(&selector)).await;
    let dependents = config_maps
        .items
        .iter()
        .map(|c| ("ConfigMap", &c.metadata))
        .chain(services.items.iter().map(|s| ("Service", &s.metadata)));
    let mut per_site: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (kind, meta) in dependents {
        let owner = meta
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Site");
        let Some(owner) = owner else {
            return Err(format!("{kind} {:?} has no controlling Site", meta.name));
        };
        if uids.get(&owner.name) != Some(&owner.uid) {
            return Err(format!(
                "{kind} {:?} is an orphan of {}",
                meta.name, owner.name
            ));
        }
        *per_site.entry((kind, owner.name.clone())).or_default() += 1;
    }
    for name in live {
        for kind in ["ConfigMap", "Service"] {
            let n = per_site.get(&(kind, name.clone())).copied().unwrap_or(0);
            if n != 1 {
                return Err(format!("{name} has {n} {kind}s"));
            }
        }
    }
    let cleanups = ledger.cleanups();
    // A Site deleted before the operator added its finalizer was never reconciled and has
    // nothing to clean up; every other one must have been cleaned up.
    if let Some(name) = deleted
        .iter()
        .find(|n| ledger.was_reconciled(n) && !cleanups.contains_key(*n))
    {
        return Err(format!("the cleanup of {name} did not run"));
    }
    if let Some(name) = live.iter().find(|n| cleanups.contains_key(*n)) {
        panic!("{name} was cleaned up but never deleted");
    }
    Ok(cleanups.values().sum())
}

fn report(case: &str, seed: Option<u64>, env: &TestEnv, converged: &Converged) {
    let stats = env.stats();
    let failed: u64 = [409, 429, 500, 503].iter().map(|c| stats.code(*c)).sum();
    println!(
        "{case}: seed {seed:?}, {} live and {} deleted Sites ({} of them reconciled before deletion) converged in {:.1} s; {} requests, {failed} answered 409/429/500/503, {} cleanups",
        converged.live,
        converged.deleted,
        converged.deleted_reconciled,
        converged.took.as_secs_f64(),
        stats.total(),
        converged.cleanups,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_of_requests_fail_and_the_operator_converges() {
    const SEED: u64 = 1001;
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    env.faults()
        .seed(SEED)
        .fail("*", "*", 0.025, Fault::InternalError)
        .fail("*", "*", 0.025, Fault::ServiceUnavailable)
        .fail(
            "*",
            "*",
            0.025,
            Fault::TooManyRequests {
                retry_after_seconds: 1,
            },
        )
        .fail("*", "*", 0.025, Fault::Conflict);
    let running = manager(env.client(), &ledger).start();
    let client = env.client();
    create(&client, (0..30).map(name)).await;
    delete(&client, (0..10).map(name)).await;
    let live: BTreeSet<String> = (10..30).map(name).collect();
    let deleted: BTreeSet<String> = (0..10).map(name).collect();
    let done = converged(&client, &ledger, &live, &deleted).await;
    let stats = env.stats();
    for code in [409, 429, 500, 503] {
        assert!(stats.code(code) > 0, "no request was answered with {code}");
    }
    report("10% failing requests", Some(SEED), &env, &done);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_cut_every_two_seconds_lose_nothing() {
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    let running = manager(env.client(), &ledger).start();
    let faults = env.faults().clone();
    let cutter = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            faults.cut_watches();
        }
    });
    let client = env.client();
    for batch in 0..3 {
        create(&client, (batch * 10..batch * 10 + 10).map(name)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    delete(&client, (0..30).step_by(3).map(name)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let deleted: BTreeSet<String> = (0..30).step_by(3).map(name).collect();
    let live: BTreeSet<String> = (0..30).map(name).filter(|n| !deleted.contains(n)).collect();
    let done = converged(&client, &ledger, &live, &deleted).await;
    cutter.abort();
    let watches = env.stats().count("watch", "sites");
    assert!(watches >= 3, "the Site watch was opened {watches} times");
    report("watch streams cut every 2 s", None, &env, &done);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_410_gone_makes_the_operator_relist_and_converge() {
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    let running = manager(env.client(), &ledger).start();
    let client = env.client();
    create(&client, (0..10).map(name)).await;
    let first: BTreeSet<String> = (0..10).map(name).collect();
    converged(&client, &ledger, &first, &BTreeSet::new()).await;
    let lists_before = env.stats().count("list", "sites");
    env.faults().force_gone();
    create(&client, (10..20).map(name)).await;
    delete(&client, (0..5).map(name)).await;
    env.faults().force_gone();
    delete(&client, (15..20).map(name)).await;
    let deleted: BTreeSet<String> = (0..5).chain(15..20).map(name).collect();
    let live: BTreeSet<String> = (5..15).map(name).collect();
    let done = converged(&client, &ledger, &live, &deleted).await;
    let relists = env.stats().count("list", "sites") - lists_before;
    assert!(
        relists >= 1,
        "the operator never relisted the Sites after 410 Gone"
    );
    assert!(
        done.deleted_reconciled >= 5,
        "the Sites converged before the first 410 were not all cleaned up"
    );
    report("forced 410 Gone, twice", None, &env, &done);
    running.shutdown().await;
}

/// An operator on a runtime of its own, so that killing it drops every task mid-await.
struct Killable {
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<opkit::Running>,
}

impl Killable {
    fn start(env: &TestEnv, ledger: &Arc<Ledger>, adjust: impl FnOnce(Manager) -> Manager) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("operator runtime");
        let running = {
            let _inside = runtime.enter();
            // The client's connections belong to this runtime and die with it.
            let client = Client::try_from(env.config()).expect("client");
            adjust(manager(client, ledger)).start()
        };
        Killable {
            runtime: Some(runtime),
            running: Some(running),
        }
    }

    fn is_leader(&self) -> bool {
        self.running.as_ref().is_some_and(opkit::Running::is_leader)
    }

    /// Stops the runtime without letting anything finish, as a SIGKILL would.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.running = None;
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_mid_flight_four_times_converges() {
    const SEED: u64 = 42;
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    let client = env.client();
    let mut operator = Killable::start(&env, &ledger, |m| m);
    let mut deleted = BTreeSet::new();
    for round in 0..4 {
        create(&client, (round * 10..round * 10 + 10).map(name)).await;
        if round > 0 {
            let gone: Vec<String> = ((round - 1) * 10..(round - 1) * 10 + 4).map(name).collect();
            delete(&client, gone.clone()).await;
            deleted.extend(gone);
        }
        let alive_for = Duration::from_millis(rng.random_range(100..600));
        tokio::time::sleep(alive_for).await;
        operator.kill();
        operator = Killable::start(&env, &ledger, |m| m);
    }
    let live: BTreeSet<String> = (0..40).map(name).filter(|n| !deleted.contains(n)).collect();
    let done = converged(&client, &ledger, &live, &deleted).await;
    report("operator killed 4 times", Some(SEED), &env, &done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_the_new_leader_converges() {
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    let client = env.client();
    let election = |identity: &str| {
        LeaderElection::new("site-operator-lock")
            .identity(identity)
            .lease_duration(Duration::from_secs(3))
            .renew_deadline(Duration::from_secs(2))
            .retry_period(Duration::from_millis(250))
    };
    let mut first = Killable::start(&env, &ledger, |m| m.leader_election(election("first")));
    let mut second = Killable::start(&env, &ledger, |m| m.leader_election(election("second")));
    let began = Instant::now();
    while !first.is_leader() && !second.is_leader() {
        assert!(
            began.elapsed() < CONVERGE_WITHIN,
            "no replica became leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leader, follower) = if first.is_leader() {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    create(&client, (0..20).map(name)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.kill();
    let killed = Instant::now();
    delete(&client, (0..5).map(name)).await;
    create(&client, (20..30).map(name)).await;
    while !follower.is_leader() {
        assert!(
            killed.elapsed() < CONVERGE_WITHIN,
            "the follower never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed.elapsed();
    let deleted: BTreeSet<String> = (0..5).map(name).collect();
    let live: BTreeSet<String> = (5..30).map(name).collect();
    let done = converged(&client, &ledger, &live, &deleted).await;
    println!(
        "leader failover: the follower took over {:.1} s after the leader was killed",
        takeover.as_secs_f64()
    );
    report("leader killed, follower takes over", None, &env, &done);
}

/// How many attempts `backoff` allows in `window` after a first failure at its start, jitter
/// included: retries at delays 1, 1+2, 1+2+4, ... base units, each up to `1 + jitter` longer.
fn attempts_within(backoff: &Backoff, window: Duration) -> usize {
    let mut elapsed = Duration::ZERO;
    let mut attempts = 1;
    for failures in 1.. {
        elapsed += backoff.delay_without_jitter(failures);
        if elapsed > window {
            break;
        }
        attempts += 1;
    }
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_that_keeps_failing_is_retried_within_the_backoff() {
    const SITES: usize = 5;
    const WINDOW: Duration = Duration::from_secs(4);
    let env = start_env().await;
    let ledger = Arc::new(Ledger::default());
    let running = manager(env.client(), &ledger).start();
    let client = env.client();
    // Services are created by server-side apply: a PATCH.
    env.faults()
        .seed(7)
        .fail("patch", "services", 1.0, Fault::InternalError);
    create(&client, (0..SITES).map(name)).await;
    let from = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let to = Instant::now();
    let failed_applies = env.stats().count_code("patch", "services", 500);
    env.faults().clear();
    // The first failure may come just before the window opens; one attempt more is allowed.
    let bound = attempts_within(&fast_backoff(), WINDOW) + 1;
    let mut counts = Vec::new();
    for i in 0..SITES {
        let n = ledger.reconciles_between(&name(i), from, to);
        assert!(
            n <= bound,
            "{} was reconciled {n} times in {WINDOW:?}; the backoff allows {bound}",
            name(i)
        );
        assert!(
            n >= 3,
            "{} was retried only {n} times in {WINDOW:?}",
            name(i)
        );
        counts.push(n);
    }
    assert!(
        failed_applies <= (SITES * (bound + 1)) as u64,
        "{failed_applies} failed Service applies for {SITES} Sites"
    );
    let live: BTreeSet<String> = (0..SITES).map(name).collect();
    let done = converged(&client, &ledger, &live, &BTreeSet::new()).await;
    println!(
        "failing dependent: reconciles per Site in {WINDOW:?}: {counts:?} (backoff bound {bound}); {failed_applies} failed Service applies; converged {:.1} s after the fault cleared",
        done.took.as_secs_f64()
    );
    running.shutdown().await;
}
