//! opkit against a hand-written kube-rs controller at scale, on the embedded API server.
//!
//! `cargo bench --bench operators` runs 1,000 and 10,000 WebApps; `-- --quick` runs 200 and
//! `-- --size N` runs N; `-- --only opkit` (or `baseline`) measures one operator, leaving the
//! other's column empty (for iterating on one side).
//! For each size and each operator: a fresh server with the same options, the operator in a
//! child process of this binary (its CPU time and peak resident set read from `/proc`), N
//! WebApps created at once until all are Ready, a resync of the converged set (the operator
//! restarted: a fresh list, every WebApp reconciled), then a spec change on 10% of them.
//! The figures go to `docs/performance.md`.

mod baseline;
mod child;
mod probe;

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
use opkit_envtest::{Stats, TestEnv};
use serde_json::json;

use child::Operator;
use opkit_examples::webapp::types::{Image, Scale, WebApp, WebAppSpec};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests in flight at once when the benchmark creates or changes WebApps.
const IN_FLIGHT: usize = 32;
/// How long the reconcile count must stay still for an operator to count as settled.
const SETTLE: Duration = Duration::from_secs(1);
/// How long a phase may take before the operator is reported as not converging.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
const VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--operator-process") {
        let operator = args.get(i + 1).and_then(|n| Operator::parse(n));
        let url = args.get(i + 2);
        return match (operator, url) {
            (Some(operator), Some(url)) => {
                child::run(operator, url).map_err(|e| e.to_string().into())
            }
            _ => Err("usage: --operator-process opkit|baseline URL".into()),
        };
    }
    let size = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let sizes: Vec<usize> = match size {
        Some(n) => vec![n],
        None if args.iter().any(|a| a == "--quick") => vec![200],
        None => vec![1_000, 10_000],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| args.get(i + 1).and_then(|n| Operator::parse(n)))
        .map(|o| o.ok_or("usage: --only opkit|baseline"))
        .transpose()?;
    let runs = |operator| only.is_none_or(|o| o == operator);
    runtime.block_on(async {
        for n in sizes {
            let mut figures = [Figures::default(), Figures::default()];
            for (slot, operator) in [Operator::Opkit, Operator::Baseline]
                .into_iter()
                .enumerate()
            {
                if runs(operator) {
                    figures[slot] = measure(operator, n).await?;
                }
            }
            print_table(n, &figures[0], &figures[1]);
        }
        Ok(())
    })
}

/// The figures of one operator at one size.
#[derive(Debug, Default)]
struct Figures {
    ready_time: Duration,
    create_requests: BTreeMap<&'static str, u64>,
    create_writes: u64,
    create_cpu: Duration,
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
    /// Why the spec-change phase did not finish, if it did not.
    change_failed: Option<String>,
}

async fn measure(operator: Operator, n: usize) -> Result<Figures, BoxError> {
    // The operator processes reach the server by URL alone.
    let env = TestEnv::builder()
        .plain_http()
        .watch_history(200_000)
        .build()
        .await?;
    env.install_crd::<WebApp>().await?;
    let apps: Api<WebApp> = Api::namespaced(env.client(), "default");
    let tracker = Tracker::start(apps.clone());
    let mut figures = Figures::default();

    let process = OperatorProcess::spawn(operator, &env.url())?;
    let cpu_before = process.cpu()?;
    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let apps = apps.clone();
            async move { apps.create(&PostParams::default(), &webapp(i)).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let all: Vec<String> = (0..n).map(name).collect();
    tracker.wait_ready(&all, 2).await?;
    eprintln!("{} {n}: all Ready", operator.name());
    figures.ready_time = began.elapsed();
    process.settle(n as u64).await?;
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    figures.create_requests = operator_requests(&stats, &driver, n as u64, 0);
    figures.create_writes = figures
        .create_requests
        .iter()
        .filter(|(v, _)| opkit_envtest::WRITE_VERBS.contains(v))
        .map(|(_, c)| c)
        .sum();
    figures.create_cpu = process.cpu()? - cpu_before;
    for (verb, resource, _, count) in stats.iter() {
        if opkit_envtest::WRITE_VERBS.contains(&verb) {
            *figures
                .create_writes_by_resource
                .entry((verb.to_owned(), resource.to_owned()))
                .or_default() += count;
        }
    }
    if let Some(own) = figures
        .create_writes_by_resource
        .get_mut(&("create".to_owned(), "webapps".to_owned()))
    {
        *own = own.saturating_sub(n as u64);
    }
    figures.peak_rss_above_idle = process.peak_rss()?.saturating_sub(process.idle_rss);
    figures.settled_rss_above_idle = process.rss()?.saturating_sub(process.idle_rss);
    figures.settled_heap_above_idle = process.heap().saturating_sub(process.idle_heap);
    process.kill();

    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    let process = OperatorProcess::spawn(operator, &env.url())?;
    process.settle(n as u64).await?;
    eprintln!("{} {n}: resynced", operator.name());
    figures.resync_time = began.elapsed().saturating_sub(SETTLE);
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    let requests = operator_requests(&stats, &driver, 0, 0);
    figures.resync_requests = requests.values().sum();
    figures.resync_writes = write_count(&requests);
    figures.resync_cpu = process.cpu()?;

    let changed: Vec<String> = (0..n).step_by(10).map(name).collect();
    figures.changed = changed.len();
    let cpu_before = process.cpu()?;
    let reconciles_before = process.reconciles();
    env.reset_stats();
    let driver_before = tracker.requests();
    let began = Instant::now();
    stream::iter(changed.clone())
        .map(|name| {
            let apps = apps.clone();
            let patch = json!({"spec": {"scale": {"replicas": 3}}});
            async move {
                apps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    if let Err(error) = tracker.wait_ready(&changed, 3).await {
        figures.change_failed = Some(error.to_string());
        process.kill();
        return Ok(figures);
    }
    eprintln!("{} {n}: changed WebApps Ready", operator.name());
    figures.change_time = began.elapsed();
    process
        .settle(reconciles_before + changed.len() as u64)
        .await
        .unwrap_or_else(|error| figures.change_failed = Some(error.to_string()));
    let stats = env.stats();
    let driver = tracker.requests().since(&driver_before);
    let requests = operator_requests(&stats, &driver, 0, changed.len() as u64);
    figures.change_writes = write_count(&requests);
    figures.change_cpu = process.cpu()? - cpu_before;
    process.kill();
    Ok(figures)
}

fn name(i: usize) -> String {
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
fn operator_requests(
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

fn write_count(requests: &BTreeMap<&'static str, u64>) -> u64 {
    requests
        .iter()
        .filter(|(v, _)| opkit_envtest::WRITE_VERBS.contains(v))
        .map(|(_, c)| c)
        .sum()
}

/// One operator running in a child process of this binary.
struct OperatorProcess {
    child: Child,
    idle_rss: u64,
    idle_heap: u64,
    reconciles: Arc<AtomicU64>,
    heap: Arc<AtomicU64>,
}

impl OperatorProcess {
    fn spawn(operator: Operator, url: &str) -> Result<OperatorProcess, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--operator-process", operator.name(), url])
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
            .and_then(|l| two_numbers(l.strip_prefix("idle ")?))
            .ok_or("the operator process did not report its idle memory")?;
        let reconciles = Arc::new(AtomicU64::new(0));
        let heap = Arc::new(AtomicU64::new(idle_heap));
        let (counter, in_use) = (reconciles.clone(), heap.clone());
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some((n, bytes)) = line.strip_prefix("reconciles ").and_then(two_numbers) {
                    counter.store(n, Ordering::Relaxed);
                    in_use.store(bytes, Ordering::Relaxed);
                }
            }
        });
        Ok(OperatorProcess {
            child,
            idle_rss,
            idle_heap,
            reconciles,
            heap,
        })
    }

    /// The operator's heap in use, as it last reported it (every 100 ms).
    fn heap(&self) -> u64 {
        self.heap.load(Ordering::Relaxed)
    }

    fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    fn cpu(&self) -> std::io::Result<Duration> {
        probe::cpu_time(self.child.id())
    }

    fn peak_rss(&self) -> std::io::Result<u64> {
        probe::status_bytes(self.child.id(), "VmHWM")
    }

    fn rss(&self) -> std::io::Result<u64> {
        probe::status_bytes(self.child.id(), "VmRSS")
    }

    /// Waits until at least `at_least` reconciles ran and none ran for [`SETTLE`].
    async fn settle(&self, at_least: u64) -> Result<(), BoxError> {
        let began = Instant::now();
        let mut last = (self.reconciles(), Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.reconciles();
            if now != last.0 {
                last = (now, Instant::now());
            } else if now >= at_least && last.1.elapsed() >= SETTLE {
                return Ok(());
            }
            if began.elapsed() > PHASE_LIMIT {
                return Err(format!("the operator did not settle ({now} reconciles)").into());
            }
        }
    }

    fn kill(mut self) {
        // Killing a child that already exited fails harmlessly; reaping it cannot block then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `"<a> <b>"` as two numbers.
fn two_numbers(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The benchmark's own requests, to subtract from the server's counts.
#[derive(Clone, Copy, Debug, Default)]
struct DriverRequests {
    lists: u64,
    watches: u64,
}

impl DriverRequests {
    fn since(self, before: &DriverRequests) -> DriverRequests {
        DriverRequests {
            lists: self.lists - before.lists,
            watches: self.watches - before.watches,
        }
    }
}

/// Which WebApps are Ready, from one list and watch of the benchmark's own.
struct Tracker {
    ready: Arc<Mutex<HashMap<String, Option<i32>>>>,
    lists: Arc<AtomicU64>,
    watches: Arc<AtomicU64>,
}

impl Tracker {
    fn start(apps: Api<WebApp>) -> Tracker {
        let tracker = Tracker {
            ready: Arc::default(),
            lists: Arc::default(),
            watches: Arc::default(),
        };
        let (ready, lists, watches) = (
            tracker.ready.clone(),
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
                    record(&ready, app);
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
                                record(&ready, &app);
                            }
                            Ok(WatchEvent::Deleted(app)) => {
                                version = app.resource_version().unwrap_or_default();
                                lock(&ready).remove(&app.name_any());
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

    fn requests(&self) -> DriverRequests {
        DriverRequests {
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
        }
    }

    /// Waits until every WebApp in `names` is Running with `replicas` ready pods for its
    /// current generation.
    async fn wait_ready(&self, names: &[String], replicas: i32) -> Result<(), BoxError> {
        let began = Instant::now();
        loop {
            let done = {
                let ready = lock(&self.ready);
                names
                    .iter()
                    .all(|n| ready.get(n).copied().flatten() == Some(replicas))
            };
            if done {
                return Ok(());
            }
            if began.elapsed() > PHASE_LIMIT {
                return Err(format!("not all of {} WebApps became Ready", names.len()).into());
            }
            if began.elapsed().as_millis() % 10_000 < 20 {
                let ready = lock(&self.ready);
                let n = names
                    .iter()
                    .filter(|n| ready.get(*n).copied().flatten() == Some(replicas))
                    .count();
                eprintln!(
                    "{n} of {} Ready after {:?}; tracker lists {}",
                    names.len(),
                    began.elapsed(),
                    self.lists.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records the ready replica count of a Running WebApp whose status is current, `None` otherwise.
fn record(ready: &Mutex<HashMap<String, Option<i32>>>, app: &WebApp) {
    let current = app.status.as_ref().filter(|s| {
        s.phase.as_deref() == Some("Running")
            && s.observed_generation == app.meta().generation
            && s.ready_replicas == app.spec.scale.replicas
    });
    lock(ready).insert(app.name_any(), current.map(|s| s.ready_replicas));
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        if a == 0.0 { "=".into() } else { "∞".into() }
    } else {
        format!("{:.2}×", a / b)
    }
}

fn print_table(n: usize, opkit: &Figures, baseline: &Figures) {
    let per = |v: u64, d: usize| v as f64 / d.max(1) as f64;
    println!("\n### {n} WebApps\n");
    println!("| figure | opkit | baseline | opkit / baseline |");
    println!("|---|---|---|---|");
    let row = |figure: String, a: String, b: String, r: String| {
        println!("| {figure} | {a} | {b} | {r} |");
    };
    row(
        "time until all Ready".into(),
        seconds(opkit.ready_time),
        seconds(baseline.ready_time),
        ratio(
            opkit.ready_time.as_secs_f64(),
            baseline.ready_time.as_secs_f64(),
        ),
    );
    row(
        "operator CPU time (create to settled)".into(),
        seconds(opkit.create_cpu),
        seconds(baseline.create_cpu),
        ratio(
            opkit.create_cpu.as_secs_f64(),
            baseline.create_cpu.as_secs_f64(),
        ),
    );
    for verb in VERBS {
        let a = opkit.create_requests.get(verb).copied().unwrap_or(0);
        let b = baseline.create_requests.get(verb).copied().unwrap_or(0);
        row(
            format!("requests: {verb}"),
            a.to_string(),
            b.to_string(),
            ratio(a as f64, b as f64),
        );
    }
    let (a, b) = (per(opkit.create_writes, n), per(baseline.create_writes, n));
    row(
        "writes per new WebApp".into(),
        format!("{a:.2}"),
        format!("{b:.2}"),
        ratio(a, b),
    );
    let kb = |f: &Figures| f.peak_rss_above_idle as f64 / 1024.0;
    row(
        "peak RSS above idle".into(),
        format!("{:.1} MB", kb(opkit) / 1024.0),
        format!("{:.1} MB", kb(baseline) / 1024.0),
        ratio(kb(opkit), kb(baseline)),
    );
    let per_webapp = |figure: &str, bytes: fn(&Figures) -> u64| {
        let kb = |f: &Figures| bytes(f) as f64 / 1024.0;
        row(
            figure.into(),
            format!("{:.2} KB", kb(opkit) / n as f64),
            format!("{:.2} KB", kb(baseline) / n as f64),
            ratio(kb(opkit), kb(baseline)),
        );
    };
    per_webapp("peak RSS above idle per WebApp", |f| f.peak_rss_above_idle);
    per_webapp("RSS above idle once settled, per WebApp", |f| {
        f.settled_rss_above_idle
    });
    per_webapp("heap in use above idle once settled, per WebApp", |f| {
        f.settled_heap_above_idle
    });
    row(
        "resync: requests".into(),
        opkit.resync_requests.to_string(),
        baseline.resync_requests.to_string(),
        ratio(
            opkit.resync_requests as f64,
            baseline.resync_requests as f64,
        ),
    );
    row(
        "resync: writes".into(),
        opkit.resync_writes.to_string(),
        baseline.resync_writes.to_string(),
        ratio(opkit.resync_writes as f64, baseline.resync_writes as f64),
    );
    row(
        "resync: time (start to settled)".into(),
        seconds(opkit.resync_time),
        seconds(baseline.resync_time),
        ratio(
            opkit.resync_time.as_secs_f64(),
            baseline.resync_time.as_secs_f64(),
        ),
    );
    row(
        "resync: CPU time (with start-up)".into(),
        seconds(opkit.resync_cpu),
        seconds(baseline.resync_cpu),
        ratio(
            opkit.resync_cpu.as_secs_f64(),
            baseline.resync_cpu.as_secs_f64(),
        ),
    );
    let (a, b) = (
        per(opkit.change_writes, opkit.changed),
        per(baseline.change_writes, baseline.changed),
    );
    row(
        format!(
            "spec change on {}: writes per changed WebApp",
            opkit.changed
        ),
        format!("{a:.2}"),
        format!("{b:.2}"),
        ratio(a, b),
    );
    row(
        "spec change: time until Ready".into(),
        seconds(opkit.change_time),
        seconds(baseline.change_time),
        ratio(
            opkit.change_time.as_secs_f64(),
            baseline.change_time.as_secs_f64(),
        ),
    );
    row(
        "spec change: CPU time".into(),
        seconds(opkit.change_cpu),
        seconds(baseline.change_cpu),
        ratio(
            opkit.change_cpu.as_secs_f64(),
            baseline.change_cpu.as_secs_f64(),
        ),
    );
    for (operator, figures) in [("opkit", opkit), ("baseline", baseline)] {
        if let Some(error) = &figures.change_failed {
            println!("\nSpec change, {operator}: {error} within {PHASE_LIMIT:?}");
        }
        let writes: Vec<String> = figures
            .create_writes_by_resource
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|((verb, resource), c)| format!("{verb} {resource} {:.2}", per(*c, n)))
            .collect();
        println!("\nWrites per new WebApp, {operator}: {}", writes.join(", "));
    }
}
