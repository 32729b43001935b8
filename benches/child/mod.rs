//! The operator process: one operator (opkit's or the baseline) against the server at a URL.
//!
//! It prints `idle <rss> <heap>` (its resident set and heap in use before the operator starts),
//! then `reconciles <n> <heap>` every 100 ms, and runs until killed or until its output is closed.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::baseline;
use crate::probe;
use opkit_examples::webapp::types::WebApp;

/// Which operator the process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The WebApp example on opkit.
    Opkit,
    /// The hand-written kube-rs controller.
    Baseline,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Opkit => "opkit",
            Operator::Baseline => "baseline",
        }
    }

    pub fn parse(name: &str) -> Option<Operator> {
        [Operator::Opkit, Operator::Baseline]
            .into_iter()
            .find(|o| o.name() == name)
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
        let reconciles: Box<dyn Fn() -> u64> = match operator {
            Operator::Opkit => {
                let running = opkit::Manager::new(client).operator::<WebApp>().start();
                Box::new(move || reconcile_total(&running.metrics().encode()))
            }
            Operator::Baseline => {
                tokio::spawn(baseline::run(client, counted.clone()));
                Box::new(move || counted.load(Ordering::Relaxed))
            }
        };
        // The bench process reads our output; once it is gone, so is the reason to run.
        while writeln!(
            std::io::stdout(),
            "reconciles {} {}",
            reconciles(),
            probe::heap_in_use()
        )
        .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
}

/// The sum of `controller_runtime_reconcile_total` over its labels.
fn reconcile_total(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
