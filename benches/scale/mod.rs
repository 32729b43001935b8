//! How opkit scales out: the WebApp operator sharded across replicas, a change during a relist,
//! and a failover from a warm or a cold standby.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use opkit_examples::webapp::types::WebApp;

use crate::child::{LEASE_DURATION, Operator, RETRY_PERIOD, RING};
use crate::{
    BoxError, OperatorProcess, Options, Seen, Tracker, create_webapps, name, operator_requests,
    scale_webapps, seconds, settle, write_count, writes_by_resource, writes_per_webapp,
};

fn replica(i: usize) -> String {
    format!("replica-{i}")
}

/// The identity a term label (`<identity>.<n>`) names.
fn identity(term: &str) -> &str {
    term.split('.').next().unwrap_or(term)
}

/// How many WebApps each replica owns, and whether all are assigned with none moving.
fn shares(seen: &HashMap<String, Seen>) -> (BTreeMap<String, usize>, bool) {
    let mut shares = BTreeMap::new();
    for s in seen.values() {
        if let Some(term) = &s.shard {
            *shares.entry(identity(term).to_owned()).or_default() += 1;
        }
    }
    let settled = seen.values().all(|s| s.shard.is_some() && !s.draining);
    (shares, settled)
}

/// Waits until every replica in `identities` holds its membership Lease.
async fn members(
    env: &opkit_envtest::TestEnv,
    identities: &[String],
    deadline: Duration,
) -> Result<(), BoxError> {
    let leases: Api<Lease> = Api::namespaced(env.client(), "default");
    let began = Instant::now();
    loop {
        let mut held = 0;
        for identity in identities {
            let lease = leases.get_opt(&format!("{RING}-{identity}")).await?;
            if lease.and_then(|l| l.spec?.holder_identity).as_deref() == Some(identity) {
                held += 1;
            }
        }
        if held == identities.len() {
            return Ok(());
        }
        if began.elapsed() > deadline {
            return Err(format!("{held} of {} replicas joined the ring", identities.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` WebApps on `replicas` sharded replicas: per-replica CPU and memory, writes, time until
/// Ready; then a replica joins (rebalancing) and is killed (its WebApps move back).
pub async fn sharded(n: usize, replicas: usize, options: &Options) -> Result<(), BoxError> {
    let env = options.env(n).await?;
    let apps: Api<WebApp> = Api::namespaced(env.client(), "default");
    let tracker = Tracker::start(apps.clone());
    let deadline = options.deadline(n);
    let identities: Vec<String> = (0..replicas).map(replica).collect();
    let mut processes = Vec::new();
    for identity in &identities {
        let operator = Operator::Sharded {
            identity: identity.clone(),
        };
        processes.push(OperatorProcess::spawn(&operator, &env.url())?);
    }
    members(&env, &identities, deadline).await?;
    env.reset_stats();
    let driver_before = tracker.requests();
    let cpu_before: Vec<Duration> = processes
        .iter()
        .map(|p| p.cpu())
        .collect::<Result<_, _>>()?;
    let began = Instant::now();
    create_webapps(&apps, 0..n).await?;
    let all: Vec<String> = (0..n).map(name).collect();
    let ready = async {
        tracker.wait_ready(&all, 2, deadline).await?;
        let ready_time = began.elapsed();
        settle(&processes, n as u64, deadline).await?;
        Ok::<_, BoxError>(ready_time)
    };
    let ready_time = match ready.await {
        Ok(t) => t,
        Err(error) => {
            println!("\n{n} WebApps on {replicas} sharded replicas: {error}");
            print_replicas(&identities, &processes, &cpu_before, &tracker)?;
            processes.into_iter().for_each(OperatorProcess::kill);
            return Ok(());
        }
    };
    eprintln!("{n} WebApps on {replicas} replicas: all Ready after {ready_time:?}");
    let stats = env.stats();
    let requests = operator_requests(
        &stats,
        &tracker.requests().since(&driver_before),
        n as u64,
        0,
    );
    let label_writes: u64 = processes.iter().map(OperatorProcess::label_writes).sum();
    let by_resource = writes_by_resource(&stats, n as u64);
    // Membership and sharder Leases are renewed every retry period, however many WebApps.
    let lease_writes: u64 = by_resource
        .iter()
        .filter(|((_, resource), _)| resource == "leases")
        .map(|(_, count)| count)
        .sum();
    let writes = write_count(&requests).saturating_sub(label_writes + lease_writes);
    println!(
        "\n### {n} WebApps on {replicas} sharded replica{}\n",
        if replicas == 1 { "" } else { "s" }
    );
    print_replicas(&identities, &processes, &cpu_before, &tracker)?;
    let per = |v: u64| v as f64 / n as f64;
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| time until all Ready | {} |", seconds(ready_time));
    let total_cpu: Duration = processes
        .iter()
        .zip(&cpu_before)
        .map(|(p, before)| p.cpu().map(|c| c - *before))
        .sum::<Result<_, _>>()?;
    println!(
        "| operator CPU time, all replicas (create to settled) | {} |",
        seconds(total_cpu)
    );
    println!(
        "| writes per new WebApp, label writes and Lease renewals apart | {:.2} |",
        per(writes)
    );
    println!("| label writes per new WebApp | {:.2} |", per(label_writes));
    println!(
        "| Lease renewals until settled (all replicas, every {} each) | {lease_writes} |",
        seconds(RETRY_PERIOD)
    );
    let by_resource = writes_per_webapp(&by_resource, n);

    // A replica joins: the ring rebalances, each moved WebApp handed over.
    let joining = replica(replicas);
    let labels_before = label_writes;
    let reconciles_before: u64 = processes.iter().map(OperatorProcess::reconciles).sum();
    processes.push(OperatorProcess::spawn(
        &Operator::Sharded {
            identity: joining.clone(),
        },
        &env.url(),
    )?);
    let fair = n / (replicas + 1);
    let joined = tracker
        .wait(&format!("{joining} to take its share"), deadline, |seen| {
            let (shares, settled) = shares(seen);
            settled && shares.get(&joining).is_some_and(|s| *s * 10 >= fair * 8)
        })
        .await;
    match joined {
        Ok(took) => {
            let moved = shares(&tracker.snapshot())
                .0
                .get(&joining)
                .copied()
                .unwrap_or(0);
            let labels: u64 = processes
                .iter()
                .map(OperatorProcess::label_writes)
                .sum::<u64>()
                - labels_before;
            settle(&processes, reconciles_before + moved as u64, deadline).await?;
            println!(
                "| a replica joins: rebalanced (every moved WebApp handed over and relabelled) | {} |",
                seconds(took)
            );
            println!("| a replica joins: WebApps moved | {moved} |");
            println!(
                "| a replica joins: label writes per moved WebApp | {:.2} |",
                labels as f64 / moved.max(1) as f64
            );
        }
        Err(error) => println!("| a replica joins | {error} |"),
    }

    // That replica is killed: its WebApps move as soon as its Lease expires.
    let killed = processes.pop().ok_or("no replica to kill")?;
    killed.kill();
    let left = tracker
        .wait(&format!("{joining}'s WebApps to move"), deadline, |seen| {
            let (shares, settled) = shares(seen);
            settled && !shares.contains_key(&joining)
        })
        .await;
    match left {
        Ok(took) => println!(
            "| a replica is killed: its WebApps owned again (lease {}) | {} |",
            seconds(LEASE_DURATION),
            seconds(took)
        ),
        Err(error) => println!("| a replica is killed | {error} |"),
    }
    println!("\nWrites per new WebApp, label writes and Lease renewals included: {by_resource}");
    processes.into_iter().for_each(OperatorProcess::kill);
    Ok(())
}

/// Per replica: WebApps owned, reconciles, CPU, peak RSS and heap.
fn print_replicas(
    identities: &[String],
    processes: &[OperatorProcess],
    cpu_before: &[Duration],
    tracker: &Tracker,
) -> Result<(), BoxError> {
    let (shares, _) = shares(&tracker.snapshot());
    println!(
        "| replica | WebApps owned | reconciles | CPU time (create to settled) | peak RSS above idle | heap above idle | heap per owned WebApp |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((identity, process), before) in identities.iter().zip(processes).zip(cpu_before) {
        let owned = shares.get(identity).copied().unwrap_or(0);
        let heap = process.heap_above_idle();
        println!(
            "| {identity} | {owned} | {} | {} | {:.1} MB | {:.1} MB | {:.2} KB |",
            process.reconciles(),
            seconds(process.cpu()? - *before),
            process.peak_rss_above_idle()? as f64 / 1024.0 / 1024.0,
            heap as f64 / 1024.0 / 1024.0,
            heap as f64 / 1024.0 / owned.max(1) as f64,
        );
    }
    Ok(())
}

/// One spec change while the operator relists `n` converged WebApps: how long until it is
/// reconciled, and how much of the relist ran before it.
pub async fn priority(n: usize, options: &Options) -> Result<(), BoxError> {
    println!("\n### A change during a relist of {n} WebApps\n");
    println!(
        "| operator | change reconciled after | relisted WebApps reconciled before it | relist (start to settled) |"
    );
    println!("|---|---|---|---|");
    for operator in [Operator::Opkit, Operator::Baseline] {
        if options.only.is_some_and(|o| o != operator.name()) {
            continue;
        }
        let env = options.env(n).await?;
        let apps: Api<WebApp> = Api::namespaced(env.client(), "default");
        let tracker = Tracker::start(apps.clone());
        let deadline = options.deadline(n);
        let process = OperatorProcess::spawn(&operator, &env.url())?;
        create_webapps(&apps, 0..n).await?;
        let all: Vec<String> = (0..n).map(name).collect();
        tracker.wait_ready(&all, 2, deadline).await?;
        process.settle(n as u64, deadline).await?;
        process.kill();

        let began = Instant::now();
        let process = OperatorProcess::spawn(&operator, &env.url())?;
        // The relist has started once the first reconciles are reported (every 100 ms).
        while process.reconciles() == 0 {
            if began.elapsed() > deadline {
                return Err("the restarted operator did not reconcile".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let changed = name(n - 1);
        let patched = Instant::now();
        scale_webapps(&apps, std::slice::from_ref(&changed), 3).await?;
        let result = tracker
            .wait_observed(&changed, 2, deadline)
            .await
            .map(|_| patched.elapsed());
        let before = process.reconciles();
        let relist = process.settle(n as u64, deadline).await;
        let reconciled = match result {
            Ok(took) => format!("{:.0} ms", took.as_secs_f64() * 1000.0),
            Err(error) => error.to_string(),
        };
        let relisted = match relist {
            Ok(()) => seconds(began.elapsed().saturating_sub(crate::SETTLE)),
            Err(error) => error.to_string(),
        };
        println!(
            "| {} | {reconciled} | about {before} of {n} | {relisted} |",
            operator.name()
        );
        process.kill();
    }
    Ok(())
}

/// The leader killed while `n` WebApps are converged: how long until the standby leads and
/// until its first reconcile, warm and cold.
pub async fn failover(n: usize, options: &Options) -> Result<(), BoxError> {
    println!(
        "\n### Failover with {n} WebApps (lease {})\n",
        seconds(LEASE_DURATION)
    );
    println!(
        "| standby | leader killed → Lease acquired | Lease acquired → first reconcile | leader killed → first reconcile |"
    );
    println!("|---|---|---|---|");
    for warm in [true, false] {
        let env = options.env(n).await?;
        let apps: Api<WebApp> = Api::namespaced(env.client(), "default");
        let tracker = Tracker::start(apps.clone());
        let deadline = options.deadline(n);
        let elected = |identity: &str| Operator::Elected {
            identity: identity.to_owned(),
            warm,
        };
        let leader = OperatorProcess::spawn(&elected("replica-a"), &env.url())?;
        // It leads before the standby starts; with no WebApps yet it has nothing to reconcile.
        let lead_deadline = Instant::now() + deadline;
        while leader.leading().is_none() {
            if Instant::now() > lead_deadline {
                return Err("the first replica did not acquire the Lease".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let standby = OperatorProcess::spawn(&elected("replica-b"), &env.url())?;
        create_webapps(&apps, 0..n).await?;
        let all: Vec<String> = (0..n).map(name).collect();
        tracker.wait_ready(&all, 2, deadline).await?;
        leader.settle(n as u64, deadline).await?;
        // A warm standby has listed everything once its heap stops growing.
        let mut last = (standby.heap(), Instant::now());
        while last.1.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if standby.heap() != last.0 {
                last = (standby.heap(), Instant::now());
            }
        }
        leader.kill();
        let killed = Instant::now();
        while standby.takeover().is_none() {
            if killed.elapsed() > deadline {
                return Err("the standby did not take over".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (leading, first) = standby.takeover().ok_or("no takeover")?;
        let acquired = leading.saturating_duration_since(killed);
        println!(
            "| {} | {} | {:.0} ms | {} |",
            if warm { "warm" } else { "cold" },
            seconds(acquired),
            first.as_secs_f64() * 1000.0,
            seconds(acquired + first),
        );
        standby.kill();
    }
    Ok(())
}
