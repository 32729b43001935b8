//! opkit against a hand-written kube-rs controller at scale, on the embedded API server; and how
//! opkit scales out: sharded across replicas, a change during a relist, a failover.
//!
//! ```text
//! cargo bench --bench operators                     # 1,000 and 10,000 WebApps, opkit and baseline
//! cargo bench --bench operators -- --quick          # 200 WebApps
//! cargo bench --bench operators -- --size N         # one size (also for the runs below)
//! cargo bench --bench operators -- --only opkit     # one operator (the other column stays empty)
//! cargo bench --bench operators -- --shards N       # opkit on N sharded replicas
//! cargo bench --bench operators -- --priority       # one change's latency during a relist
//! cargo bench --bench operators -- --failover       # leader death to first reconcile, warm and cold
//! cargo bench --bench operators -- --deadline S     # seconds a phase may take (default: 60 + 0.04 per WebApp)
//! cargo bench --bench operators -- --pods           # simulate ReplicaSets and Pods as well
//! ```
//!
//! For each size and each operator: a fresh server with the same options, the operator in a
//! child process of this binary (its CPU time and peak resident set read from `/proc`), N
//! WebApps created at once until all are Ready, a resync of the converged set (the operator
//! restarted: a fresh list, every WebApp reconciled), then a spec change on 10% of them. A phase
//! that exceeds the deadline ends that operator's run; the figures of the phases it completed
//! are printed all the same. The figures go to `docs/performance.md`.

mod baseline;
mod child;
mod probe;
mod scale;

#[global_allocator]
static HEAP: probe::Counting = probe::Counting;

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use opkit_envtest::sim::Simulation;
use opkit_envtest::{Stats, TestEnv};
use serde_json::json;

use child::Operator;
use opkit_examples::webapp::types::{Image, Scale, WebApp, WebAppSpec};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests in flight at once when the benchmark creates or changes WebApps.
const IN_FLIGHT: usize = 32;
/// How long the reconcile count must stay still for an operator to count as settled.
const SETTLE: Duration = Duration::from_secs(1);
const VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct Options {
    sizes: Vec<usize>,
    only: Option<&'static str>,
    deadline: Option<Duration>,
    pods: bool,
    shards: Option<usize>,
    priority: bool,
    failover: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, BoxError> {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .map(|i| {
                    args.get(i + 1)
                        .cloned()
                        .ok_or(format!("{flag} needs a value"))
                })
                .transpose()
        };
        let number = |flag: &str| -> Result<Option<usize>, BoxError> {
            value(flag)?
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|e| format!("{flag} {v}: {e}").into())
                })
                .transpose()
        };
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let sizes = match number("--size")? {
            Some(n) => vec![n],
            None if has("--quick") => vec![200],
            None => vec![1_000, 10_000],
        };
        let only = match value("--only")?.as_deref() {
            None => None,
            Some("opkit") => Some("opkit"),
            Some("baseline") => Some("baseline"),
            Some(other) => return Err(format!("--only {other}: opkit or baseline").into()),
        };
        Ok(Options {
            sizes,
            only,
            deadline: number("--deadline")?.map(|s| Duration::from_secs(s as u64)),
            pods: has("--pods"),
            shards: number("--shards")?,
            priority: has("--priority"),
            failover: has("--failover"),
        })
    }

    /// How long one phase may take with `n` WebApps.
    pub fn deadline(&self, n: usize) -> Duration {
        self.deadline
            .unwrap_or(Duration::from_secs(60) + Duration::from_millis(40) * n as u32)
    }

    /// A fresh embedded server for `n` WebApps.
    pub async fn env(&self, n: usize) -> Result<TestEnv, BoxError> {
        // The operator processes reach the server by URL alone.
        let env = TestEnv::builder()
            .plain_http()
            .watch_history(200_000.max(20 * n))
            .simulation(Simulation::default().pods(self.pods))
            .build()
            .await?;
        env.install_crd::<WebApp>().await?;
        Ok(env)
    }
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--operator-process") {
        let operator = args
            .get(i + 1)
            .and_then(|n| Operator::parse(n, args.get(i + 3..).unwrap_or_default()));
        let url = args.get(i + 2);
        return match (operator, url) {
            (Some(operator), Some(url)) => {
                child::run(operator, url).map_err(|e| e.to_string().into())
            }
            _ => Err("usage: --operator-process OPERATOR URL [IDENTITY [warm|cold]]".into()),
        };
    }
    let options = Options::parse(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for &n in &options.sizes {
            if let Some(replicas) = options.shards {
                scale::sharded(n, replicas, &options).await?;
            } else if options.priority {
                scale::priority(n, &options).await?;
            } else if options.failover {
                scale::failover(n, &options).await?;
            } else {
                let mut figures = [Figures::default(), Figures::default()];
                for (slot, operator) in [Operator::Opkit, Operator::Baseline]
                    .into_iter()
                    .enumerate()
                {
                    if options.only.is_none_or(|o| o == operator.name()) {
                        figures[slot] = measure(&operator, n, &options).await?;
                    }
                }
                print_table(n, &figures[0], &figures[1], &options);
            }
        }
        Ok(())
    })
}

/// The phases of one operator's run, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    #[default]
    None,
    Created,
    Resynced,
    Changed,
}

/// The figures of one operator at one size.
#[derive(Debug, Default)]
struct Figures {
    /// The last phase completed.
    done: Phase,
    /// Why the next phase did not complete, if it did not.
    failed: Option<String>,
    ready_time: Duration,
    create_requests: BTreeMap<&'static str, u64>,
    create_writes: u64,
    create_cpu: Duration,
    /// CPU time of this process (the server, its simulated controllers, the benchmark's
    /// driver) from the first create until settled.
    server_cpu: Duration,
    /// Writes by (verb, resource) from creation to settled, the benchmark's own excluded.
    create_writes_by_resource: BTreeMap<(String, String), u64>,
    peak_rss_above_idle: u64,
    settled_rss_above_idle: u64,
    settled_heap_above_idle: u64,
    resync_writes: u64,
    resync_requests: u64,
    resync_time: Duration,
    resync_cpu: Duration,
    changed: usize,
    change_writes: u64,
    change_time: Duration,
    change_cpu: Duration,
}

/// Creates WebApps `range` at once, [`IN_FLIGHT`] requests at a time.
pub async fn create_webapps(
    apps: &Api<WebApp>,
    range: std::ops::Range<usize>,
) -> Result<(), BoxError> {
    stream::iter(range)
        .map(|i| {
            let apps = apps.clone();
            async move { apps.create(&PostParams::default(), &webapp(i)).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(())
}

/// Sets `replicas` on each WebApp of `names`.
pub async fn scale_webapps(
    apps: &Api<WebApp>,
    names: &[String],
    replicas: i32,
) -> Result<(), BoxError> {
    stream::iter(names.to_vec())
        .map(|name| {
            let apps = apps.clone();
            let patch = json!({"spec": {"scale": {"replicas": replicas}}});
            async move {
                apps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(())
}

async fn measure(operator: &Operator, n: usize, options: &Options) -> Result<Figures, BoxError> {
    let env = options.env(n).await?;
    let apps: Api<WebApp> = Api::namespaced(env.client(), "default");
    let tracker = Tracker::start(apps.clone());
    let deadline = options.deadline(n);
    let mut figures = Figures::default();

    let process = OperatorProcess::spawn(operator, &env.url())?;
    let cpu_before = process.cpu()?;
    let own_cpu = probe::cpu_time(std::process::id())?;
    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    create_webapps(&apps, 0..n).await?;
    let all: Vec<String> = (0..n).map(name).collect();
    let created = async {
        tracker.wait_ready(&all, 2, deadline).await?;
        figures.ready_time = began.elapsed();
        eprintln!("{} {n}: all Ready", operator.name());
        process.settle(n as u64, deadline).await
    };
    if let Err(error) = created.await {
        figures.failed = Some(format!("creating {n} WebApps: {error}"));
        process.kill();
        return Ok(figures);
    }
    figures.server_cpu = probe::cpu_time(std::process::id())? - own_cpu;
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    figures.create_requests = operator_requests(&stats, &driver, n as u64, 0);
    figures.create_writes = write_count(&figures.create_requests);
    figures.create_cpu = process.cpu()? - cpu_before;
    figures.create_writes_by_resource = writes_by_resource(&stats, n as u64);
    figures.peak_rss_above_idle = process.peak_rss()?.saturating_sub(process.idle_rss);
    figures.settled_rss_above_idle = process.rss()?.saturating_sub(process.idle_rss);
    figures.settled_heap_above_idle = process.heap().saturating_sub(process.idle_heap);
    figures.done = Phase::Created;
    process.kill();

    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    let process = OperatorProcess::spawn(operator, &env.url())?;
    if let Err(error) = process.settle(n as u64, deadline).await {
        figures.failed = Some(format!("resync: {error}"));
        process.kill();
        return Ok(figures);
    }
    eprintln!("{} {n}: resynced", operator.name());
    figures.resync_time = began.elapsed().saturating_sub(SETTLE);
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    let requests = operator_requests(&stats, &driver, 0, 0);
    figures.resync_requests = requests.values().sum();
    figures.resync_writes = write_count(&requests);
    figures.resync_cpu = process.cpu()?;
    figures.done = Phase::Resynced;

    let changed: Vec<String> = (0..n).step_by(10).map(name).collect();
    figures.changed = changed.len();
    let cpu_before = process.cpu()?;
    let reconciles_before = process.reconciles();
    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    scale_webapps(&apps, &changed, 3).await?;
    let change = async {
        tracker.wait_ready(&changed, 3, deadline).await?;
        figures.change_time = began.elapsed();
        eprintln!("{} {n}: changed WebApps Ready", operator.name());
        process
            .settle(reconciles_before + changed.len() as u64, deadline)
            .await
    };
    if let Err(error) = change.await {
        figures.failed = Some(format!("spec change: {error}"));
        process.kill();
        return Ok(figures);
    }
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    let requests = operator_requests(&stats, &driver, 0, changed.len() as u64);
    figures.change_writes = write_count(&requests);
    figures.change_cpu = process.cpu()? - cpu_before;
    figures.done = Phase::Changed;
    process.kill();
    Ok(figures)
}

/// The name of WebApp `i`.
pub fn name(i: usize) -> String {
    format!("webapp-{i:05}")
}

fn webapp(i: usize) -> WebApp {
    WebApp::new(
        &name(i),
        WebAppSpec {
            scale: Scale { replicas: 2 },
            image: Image::parse("nginx:alpine"),
            port: 8080,
            resources: None,
            security_context: None,
        },
    )
}

/// Requests by verb made by the operator: the server's counts less the benchmark's own
/// (`creates` and `patches` of WebApps, the tracker's list and watch).
pub fn operator_requests(
    stats: &Stats,
    driver: &DriverRequests,
    creates: u64,
    patches: u64,
) -> BTreeMap<&'static str, u64> {
    VERBS
        .iter()
        .map(|&verb| {
            let own = match verb {
                "create" => creates,
                "patch" => patches,
                "list" => driver.lists,
                "watch" => driver.watches,
                _ => 0,
            };
            (verb, stats.verb(verb).saturating_sub(own))
        })
        .collect()
}

/// Writes by (verb, resource) in `stats`, less the benchmark's own `creates` of WebApps.
pub fn writes_by_resource(stats: &Stats, creates: u64) -> BTreeMap<(String, String), u64> {
    let mut writes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (verb, resource, _, count) in stats.iter() {
        if opkit_envtest::WRITE_VERBS.contains(&verb) {
            *writes
                .entry((verb.to_owned(), resource.to_owned()))
                .or_default() += count;
        }
    }
    if let Some(own) = writes.get_mut(&("create".to_owned(), "webapps".to_owned())) {
        *own = own.saturating_sub(creates);
    }
    writes
}

/// `writes` per WebApp of `n`, as "verb resource count, …".
pub fn writes_per_webapp(writes: &BTreeMap<(String, String), u64>, n: usize) -> String {
    writes
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|((verb, resource), c)| {
            format!("{verb} {resource} {:.2}", *c as f64 / n.max(1) as f64)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn write_count(requests: &BTreeMap<&'static str, u64>) -> u64 {
    requests
        .iter()
        .filter(|(v, _)| opkit_envtest::WRITE_VERBS.contains(v))
        .map(|(_, c)| c)
        .sum()
}

/// What an operator process reported last.
#[derive(Default)]
struct Reports {
    reconciles: AtomicU64,
    heap: AtomicU64,
    label_writes: AtomicU64,
    /// When it printed `leading`.
    leading: Mutex<Option<Instant>>,
    /// How long after leading its first reconcile completed.
    first_reconcile: Mutex<Option<Duration>>,
}

/// One operator running in a child process of this binary.
pub struct OperatorProcess {
    child: Child,
    idle_rss: u64,
    idle_heap: u64,
    reports: Arc<Reports>,
}

impl OperatorProcess {
    pub fn spawn(operator: &Operator, url: &str) -> Result<OperatorProcess, BoxError> {
        let mut args = vec!["--operator-process".to_owned()];
        let mut named = operator.args();
        let rest = named.split_off(1);
        args.extend(named);
        args.push(url.to_owned());
        args.extend(rest);
        let mut child = Command::new(std::env::current_exe()?)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the operator process has no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (idle_rss, idle_heap) = lines
            .next()
            .transpose()?
            .and_then(|l| {
                numbers(l.strip_prefix("idle ")?)
                    .get(..2)
                    .map(|v| (v[0], v[1]))
            })
            .ok_or("the operator process did not report its idle memory")?;
        let reports = Arc::new(Reports::default());
        reports.heap.store(idle_heap, Ordering::Relaxed);
        let reported = reports.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                match (tag, &numbers(rest)[..]) {
                    ("reconciles", &[n, heap, labels]) => {
                        reported.reconciles.store(n, Ordering::Relaxed);
                        reported.heap.store(heap, Ordering::Relaxed);
                        reported.label_writes.store(labels, Ordering::Relaxed);
                    }
                    ("standby", &[heap]) => reported.heap.store(heap, Ordering::Relaxed),
                    ("leading", []) => *lock(&reported.leading) = Some(Instant::now()),
                    ("first-reconcile", &[micros]) => {
                        *lock(&reported.first_reconcile) = Some(Duration::from_micros(micros));
                    }
                    _ => {}
                }
            }
        });
        Ok(OperatorProcess {
            child,
            idle_rss,
            idle_heap,
            reports,
        })
    }

    /// The operator's heap in use, as it last reported it (every 100 ms).
    pub fn heap(&self) -> u64 {
        self.reports.heap.load(Ordering::Relaxed)
    }

    pub fn heap_above_idle(&self) -> u64 {
        self.heap().saturating_sub(self.idle_heap)
    }

    pub fn reconciles(&self) -> u64 {
        self.reports.reconciles.load(Ordering::Relaxed)
    }

    /// The shard label writes it made (sharded replicas).
    pub fn label_writes(&self) -> u64 {
        self.reports.label_writes.load(Ordering::Relaxed)
    }

    /// When it acquired the leader election Lease, once it reported that.
    pub fn leading(&self) -> Option<Instant> {
        *lock(&self.reports.leading)
    }

    /// When it acquired the leader election Lease, and how long after that its first reconcile
    /// completed, once it reported both.
    pub fn takeover(&self) -> Option<(Instant, Duration)> {
        Some((self.leading()?, (*lock(&self.reports.first_reconcile))?))
    }

    pub fn cpu(&self) -> std::io::Result<Duration> {
        probe::cpu_time(self.child.id())
    }

    pub fn peak_rss(&self) -> std::io::Result<u64> {
        probe::status_bytes(self.child.id(), "VmHWM")
    }

    pub fn peak_rss_above_idle(&self) -> std::io::Result<u64> {
        Ok(self.peak_rss()?.saturating_sub(self.idle_rss))
    }

    fn rss(&self) -> std::io::Result<u64> {
        probe::status_bytes(self.child.id(), "VmRSS")
    }

    /// Waits until at least `at_least` reconciles ran and none ran for [`SETTLE`].
    pub async fn settle(&self, at_least: u64, deadline: Duration) -> Result<(), BoxError> {
        settle(std::slice::from_ref(self), at_least, deadline).await
    }

    pub fn kill(mut self) {
        // Killing a child that already exited fails harmlessly; reaping it cannot block then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `processes` ran at least `at_least` reconciles together and none ran for
/// [`SETTLE`].
pub async fn settle(
    processes: &[OperatorProcess],
    at_least: u64,
    deadline: Duration,
) -> Result<(), BoxError> {
    let began = Instant::now();
    let total = || {
        processes
            .iter()
            .map(OperatorProcess::reconciles)
            .sum::<u64>()
    };
    let mut last = (total(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = total();
        if now != last.0 {
            last = (now, Instant::now());
        } else if now >= at_least && last.1.elapsed() >= SETTLE {
            return Ok(());
        }
        if began.elapsed() > deadline {
            return Err(format!(
                "the operator did not settle within {deadline:?} ({now} reconciles)"
            )
            .into());
        }
    }
}

/// The numbers of a line of space-separated numbers.
fn numbers(text: &str) -> Vec<u64> {
    text.split(' ').filter_map(|v| v.parse().ok()).collect()
}

/// The benchmark's own requests, to subtract from the server's counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverRequests {
    lists: u64,
    watches: u64,
}

impl DriverRequests {
    pub fn since(self, before: &DriverRequests) -> DriverRequests {
        DriverRequests {
            lists: self.lists - before.lists,
            watches: self.watches - before.watches,
        }
    }
}

/// One WebApp as the tracker last saw it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Ready replicas of a Running WebApp whose status is current.
    ready: Option<i32>,
    /// The generation its status reports.
    observed: Option<i64>,
    /// Its shard label.
    pub shard: Option<String>,
    /// Whether it carries the drain label.
    pub draining: bool,
}

/// Every WebApp as seen through one list and watch of the benchmark's own.
pub struct Tracker {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    lists: Arc<AtomicU64>,
    watches: Arc<AtomicU64>,
}

impl Tracker {
    pub fn start(apps: Api<WebApp>) -> Tracker {
        let tracker = Tracker {
            seen: Arc::default(),
            lists: Arc::default(),
            watches: Arc::default(),
        };
        let (seen, lists, watches) = (
            tracker.seen.clone(),
            tracker.lists.clone(),
            tracker.watches.clone(),
        );
        tokio::spawn(async move {
            loop {
                lists.fetch_add(1, Ordering::Relaxed);
                let Ok(list) = apps.list(&ListParams::default()).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                for app in &list.items {
                    record(&seen, app);
                }
                let mut version = list.metadata.resource_version.unwrap_or_default();
                loop {
                    watches.fetch_add(1, Ordering::Relaxed);
                    let Ok(events) = apps.watch(&WatchParams::default(), &version).await else {
                        break;
                    };
                    let mut events = std::pin::pin!(events);
                    let mut gone = false;
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(WatchEvent::Added(app) | WatchEvent::Modified(app)) => {
                                version = app.resource_version().unwrap_or_default();
                                record(&seen, &app);
                            }
                            Ok(WatchEvent::Deleted(app)) => {
                                version = app.resource_version().unwrap_or_default();
                                lock(&seen).remove(&app.name_any());
                            }
                            Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                            Ok(WatchEvent::Error(_)) | Err(_) => {
                                gone = true;
                                break;
                            }
                        }
                    }
                    if gone {
                        // A failing watch is relisted after a pause, not in a loop.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        });
        tracker
    }

    pub fn requests(&self) -> DriverRequests {
        DriverRequests {
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
        }
    }

    /// Every WebApp as last seen.
    pub fn snapshot(&self) -> HashMap<String, Seen> {
        lock(&self.seen).clone()
    }

    /// Waits until `done` holds for what the tracker sees, checking every 20 ms.
    pub async fn wait(
        &self,
        what: &str,
        deadline: Duration,
        mut done: impl FnMut(&HashMap<String, Seen>) -> bool,
    ) -> Result<Duration, BoxError> {
        let began = Instant::now();
        let mut reported = Instant::now();
        loop {
            if done(&lock(&self.seen)) {
                return Ok(began.elapsed());
            }
            if began.elapsed() > deadline {
                return Err(format!("{what}: not within {deadline:?}").into());
            }
            if reported.elapsed() > Duration::from_secs(10) {
                eprintln!("waiting for {what} ({:?})", began.elapsed());
                reported = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every WebApp in `names` is Running with `replicas` ready pods for its
    /// current generation.
    pub async fn wait_ready(
        &self,
        names: &[String],
        replicas: i32,
        deadline: Duration,
    ) -> Result<(), BoxError> {
        let what = format!("all of {} WebApps Ready", names.len());
        self.wait(&what, deadline, |seen| {
            names
                .iter()
                .all(|n| seen.get(n).and_then(|s| s.ready) == Some(replicas))
        })
        .await
        .map(|_| ())
    }

    /// Waits until the status of `name` reports generation `generation`; returns how long
    /// that took.
    pub async fn wait_observed(
        &self,
        name: &str,
        generation: i64,
        deadline: Duration,
    ) -> Result<Duration, BoxError> {
        self.wait(&format!("{name} reconciled"), deadline, |seen| {
            seen.get(name).and_then(|s| s.observed) >= Some(generation)
        })
        .await
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn record(seen: &Mutex<HashMap<String, Seen>>, app: &WebApp) {
    let status = app.status.as_ref();
    let ready = status
        .filter(|s| {
            s.phase.as_deref() == Some("Running")
                && s.observed_generation == app.meta().generation
                && s.ready_replicas == app.spec.scale.replicas
        })
        .map(|s| s.ready_replicas);
    let ring = opkit::shard::shard_label(child::RING);
    let drain = opkit::shard::drain_label(child::RING);
    let entry = Seen {
        ready,
        observed: status.and_then(|s| s.observed_generation),
        shard: app.labels().get(&ring).cloned(),
        draining: app.labels().contains_key(&drain),
    };
    lock(seen).insert(app.name_any(), entry);
}

pub fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        if a == 0.0 { "=".into() } else { "∞".into() }
    } else {
        format!("{:.2}×", a / b)
    }
}

fn print_table(n: usize, opkit: &Figures, baseline: &Figures, options: &Options) {
    let per = |v: u64, d: usize| v as f64 / d.max(1) as f64;
    println!("\n### {n} WebApps\n");
    println!("| figure | opkit | baseline | opkit / baseline |");
    println!("|---|---|---|---|");
    // A figure of a phase an operator did not complete is shown as "—".
    let row = |phase: Phase, figure: String, a: (f64, String), b: (f64, String)| {
        let show = |f: &Figures, v: &String| {
            if f.done >= phase {
                v.clone()
            } else {
                "—".into()
            }
        };
        let r = if opkit.done >= phase && baseline.done >= phase {
            ratio(a.0, b.0)
        } else {
            "—".into()
        };
        println!(
            "| {figure} | {} | {} | {r} |",
            show(opkit, &a.1),
            show(baseline, &b.1)
        );
    };
    let time = |d: Duration| (d.as_secs_f64(), seconds(d));
    let count = |c: u64| (c as f64, c.to_string());
    let created = Phase::Created;
    row(
        created,
        "time until all Ready".into(),
        time(opkit.ready_time),
        time(baseline.ready_time),
    );
    row(
        created,
        "operator CPU time (create to settled)".into(),
        time(opkit.create_cpu),
        time(baseline.create_cpu),
    );
    for verb in VERBS {
        let get = |f: &Figures| f.create_requests.get(verb).copied().unwrap_or(0);
        row(
            created,
            format!("requests: {verb}"),
            count(get(opkit)),
            count(get(baseline)),
        );
    }
    let writes = |f: &Figures| {
        let v = per(f.create_writes, n);
        (v, format!("{v:.2}"))
    };
    row(
        created,
        "writes per new WebApp".into(),
        writes(opkit),
        writes(baseline),
    );
    let mb = |bytes: u64| {
        let v = bytes as f64 / 1024.0 / 1024.0;
        (v, format!("{v:.1} MB"))
    };
    row(
        created,
        "peak RSS above idle".into(),
        mb(opkit.peak_rss_above_idle),
        mb(baseline.peak_rss_above_idle),
    );
    let kb = |bytes: u64| {
        let v = bytes as f64 / 1024.0 / n as f64;
        (v, format!("{v:.2} KB"))
    };
    row(
        created,
        "peak RSS above idle per WebApp".into(),
        kb(opkit.peak_rss_above_idle),
        kb(baseline.peak_rss_above_idle),
    );
    row(
        created,
        "RSS above idle once settled, per WebApp".into(),
        kb(opkit.settled_rss_above_idle),
        kb(baseline.settled_rss_above_idle),
    );
    row(
        created,
        "heap in use above idle once settled, per WebApp".into(),
        kb(opkit.settled_heap_above_idle),
        kb(baseline.settled_heap_above_idle),
    );
    let server = |f: &Figures| {
        let v = f.server_cpu.as_secs_f64() * 1000.0 / n as f64;
        (v, format!("{v:.2} ms"))
    };
    row(
        created,
        format!(
            "server, simulation{} and driver CPU per WebApp",
            if options.pods { " (with pods)" } else { "" }
        ),
        server(opkit),
        server(baseline),
    );
    let resynced = Phase::Resynced;
    row(
        resynced,
        "resync: requests".into(),
        count(opkit.resync_requests),
        count(baseline.resync_requests),
    );
    row(
        resynced,
        "resync: writes".into(),
        count(opkit.resync_writes),
        count(baseline.resync_writes),
    );
    row(
        resynced,
        "resync: time (start to settled)".into(),
        time(opkit.resync_time),
        time(baseline.resync_time),
    );
    row(
        resynced,
        "resync: CPU time (with start-up)".into(),
        time(opkit.resync_cpu),
        time(baseline.resync_cpu),
    );
    let changed = Phase::Changed;
    let change_writes = |f: &Figures| {
        let v = per(f.change_writes, f.changed);
        (v, format!("{v:.2}"))
    };
    row(
        changed,
        format!(
            "spec change on {}: writes per changed WebApp",
            n.div_ceil(10)
        ),
        change_writes(opkit),
        change_writes(baseline),
    );
    row(
        changed,
        "spec change: time until Ready".into(),
        time(opkit.change_time),
        time(baseline.change_time),
    );
    row(
        changed,
        "spec change: CPU time".into(),
        time(opkit.change_cpu),
        time(baseline.change_cpu),
    );
    for (operator, figures) in [("opkit", opkit), ("baseline", baseline)] {
        if let Some(error) = &figures.failed {
            println!("\nNot completed, {operator}: {error}");
        }
        if !figures.create_writes_by_resource.is_empty() {
            println!(
                "\nWrites per new WebApp, {operator}: {}",
                writes_per_webapp(&figures.create_writes_by_resource, n)
            );
        }
    }
}
