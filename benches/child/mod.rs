//! The operator process: one operator (opkit's or the baseline) against the server at a URL.
//!
//! It prints `idle <rss> <heap>` (its resident set and heap in use before the operator starts),
//! then `reconciles <n> <heap> <label writes>` every 100 ms, and runs until killed or until its
//! output is closed. A replica under leader election also prints `leading` the moment it
//! acquires the Lease and `first-reconcile <microseconds>` when its first reconcile after that
//! completes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::baseline;
use crate::probe;
use opkit_examples::webapp::types::WebApp;

/// Which operator the process runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The WebApp example on opkit.
    Opkit,
    /// The hand-written kube-rs controller.
    Baseline,
    /// The WebApp example as one replica of a shard ring.
    Sharded { identity: String },
    /// The WebApp example as one replica under leader election; `warm`: a warm standby.
    Elected { identity: String, warm: bool },
}

/// The ring of the sharded replicas.
pub const RING: &str = "webapp-operator";

/// The Lease timing of the sharded and elected replicas: short, so failovers take seconds.
pub const LEASE_DURATION: Duration = Duration::from_secs(4);
const RENEW_DEADLINE: Duration = Duration::from_secs(3);
pub const RETRY_PERIOD: Duration = Duration::from_millis(250);

impl Operator {
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Opkit => "opkit",
            Operator::Baseline => "baseline",
            Operator::Sharded { .. } => "opkit-sharded",
            Operator::Elected { .. } => "opkit-elected",
        }
    }

    /// The command-line arguments naming this operator.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![self.name().to_owned()];
        match self {
            Operator::Opkit | Operator::Baseline => {}
            Operator::Sharded { identity } => args.push(identity.clone()),
            Operator::Elected { identity, warm } => {
                args.push(identity.clone());
                args.push(if *warm { "warm" } else { "cold" }.to_owned());
            }
        }
        args
    }

    /// Parses what [`Operator::args`] wrote (after the URL).
    pub fn parse(name: &str, rest: &[String]) -> Option<Operator> {
        match (name, rest) {
            ("opkit", _) => Some(Operator::Opkit),
            ("baseline", _) => Some(Operator::Baseline),
            ("opkit-sharded", [identity, ..]) => Some(Operator::Sharded {
                identity: identity.clone(),
            }),
            ("opkit-elected", [identity, warm, ..]) => Some(Operator::Elected {
                identity: identity.clone(),
                warm: warm == "warm",
            }),
            _ => None,
        }
    }
}

/// Runs `operator` against `url` until the process is killed.
pub fn run(operator: Operator, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
        writeln!(
            std::io::stdout(),
            "idle {} {}",
            probe::status_bytes(std::process::id(), "VmRSS")?,
            probe::heap_in_use()
        )?;
        let counted = Arc::new(AtomicU64::new(0));
        let elected = matches!(operator, Operator::Elected { .. });
        let manager = || opkit::Manager::new(client.clone()).operator::<WebApp>();
        let running = match operator {
            Operator::Baseline => {
                tokio::spawn(baseline::run(client.clone(), counted.clone()));
                None
            }
            Operator::Opkit => Some(manager().start()),
            Operator::Sharded { identity } => {
                let sharding = opkit::Sharding::new(RING)
                    .namespace("default")
                    .identity(identity)
                    .lease_duration(LEASE_DURATION)
                    .renew_deadline(RENEW_DEADLINE)
                    .retry_period(RETRY_PERIOD);
                Some(manager().sharded(sharding).start())
            }
            Operator::Elected { identity, warm } => {
                let election = opkit::LeaderElection::new("webapp-operator-lock")
                    .namespace("default")
                    .identity(identity)
                    .lease_duration(LEASE_DURATION)
                    .renew_deadline(RENEW_DEADLINE)
                    .retry_period(RETRY_PERIOD);
                Some(
                    manager()
                        .leader_election(election)
                        .warm_standby(warm)
                        .start(),
                )
            }
        };
        let counts = || match &running {
            Some(running) => {
                let text = running.metrics().encode();
                (
                    sum(&text, "controller_runtime_reconcile_total{"),
                    sum(&text, "opkit_shard_label_writes_total{"),
                )
            }
            None => (counted.load(Ordering::Relaxed), 0),
        };
        if let Some(running) = running.as_ref().filter(|_| elected) {
            announce_takeover(running, &counts).await?;
        }
        // The bench process reads our output; once it is gone, so is the reason to run.
        loop {
            let (reconciled, labels) = counts();
            let line = format!("reconciles {reconciled} {} {labels}", probe::heap_in_use());
            if writeln!(std::io::stdout(), "{line}").is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
}

/// Prints `leading` once this replica leads and `first-reconcile <µs>` once a reconcile
/// completed after that, polling every millisecond.
async fn announce_takeover(
    running: &opkit::Running,
    counts: &impl Fn() -> (u64, u64),
) -> Result<(), Box<dyn std::error::Error>> {
    while !running.is_leader() {
        writeln!(std::io::stdout(), "standby {}", probe::heap_in_use())?;
        for _ in 0..100 {
            if running.is_leader() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let leading = Instant::now();
    let before = counts().0;
    writeln!(std::io::stdout(), "leading")?;
    while counts().0 == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writeln!(
        std::io::stdout(),
        "first-reconcile {}",
        leading.elapsed().as_micros()
    )?;
    Ok(())
}

/// The sum of one metric over its labels.
fn sum(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
