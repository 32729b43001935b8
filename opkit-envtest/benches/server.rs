//! Throughput, latency and memory figures of the embedded API server.
//!
//! Run with `cargo bench -p opkit-envtest --bench server` (add `-- --quick`
//! for a smoke run with fewer objects). The figures go to `docs/performance.md`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, PostParams,
};
use opkit_envtest::TestEnv;
use serde_json::json;

/// Requests in flight at once from the one client, as a busy controller has.
const IN_FLIGHT: usize = 32;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (objects, gets, starts) = if quick {
        (1_000, 2_000, 5)
    } else {
        (10_000, 20_000, 20)
    };

    let mut start_times = Vec::new();
    for _ in 0..starts {
        let began = Instant::now();
        let env = TestEnv::start().await?;
        env.client().apiserver_version().await?;
        start_times.push(began.elapsed());
    }
    start_times.sort();

    let env = TestEnv::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let payload = "x".repeat(2_000);
    // The store's cost per object is the growth between the two halves, so one-off costs of
    // the first requests (connection buffers, allocator arenas) do not count as the objects'.
    let rss_start = resident_bytes();
    let half = objects / 2;
    let mut create_time = create(&api, &payload, 0..half).await?;
    let rss_half = resident_bytes();
    create_time += create(&api, &payload, half..objects).await?;
    let rss_after = resident_bytes();

    let began = Instant::now();
    stream::iter(0..gets)
        .map(|i| {
            let api = api.clone();
            async move { api.get(&format!("cm-{}", i % objects)).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let get_time = began.elapsed();

    let mut list_times = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        list_times.push(began.elapsed());
        assert_eq!(list.items.len(), objects, "list returned every object");
    }
    list_times.sort();

    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| start to serving (median of {starts}) | {} | ≤ 50 ms |",
        ms(start_times[start_times.len() / 2])
    );
    println!(
        "| start to serving (worst of {starts}) | {} | |",
        ms(start_times[start_times.len() - 1])
    );
    println!(
        "| creates/s ({objects} ConfigMaps of 2 KB, {IN_FLIGHT} in flight) | {:.0} | ≥ 5,000 |",
        objects as f64 / create_time.as_secs_f64()
    );
    println!(
        "| gets/s ({gets} gets, {IN_FLIGHT} in flight) | {:.0} | ≥ 10,000 |",
        gets as f64 / get_time.as_secs_f64()
    );
    println!(
        "| list {objects} objects (median of 5) | {} | ≤ 100 ms at 10,000 |",
        ms(list_times[2])
    );
    let plain = custom_resource_creates(objects, false).await?;
    let with_rules = custom_resource_creates(objects, true).await?;
    for (what, run) in [
        ("no CEL rules", &plain),
        ("5 CEL rules on the CRD", &with_rules),
    ] {
        println!(
            "| creates/s ({objects} custom resources, {what}) | {:.0} | |",
            objects as f64 / run.wall.as_secs_f64()
        );
        if let Some(cpu) = run.cpu {
            println!(
                "| CPU time per create ({what}, client and server) | {:.1} µs | |",
                cpu.as_secs_f64() * 1e6 / objects as f64
            );
        }
    }
    println!(
        "| slowdown of creates from the 5 CEL rules, by throughput | {:.2}× | ≤ 2× |",
        with_rules.wall.as_secs_f64() / plain.wall.as_secs_f64()
    );
    if let (Some(with), Some(without)) = (with_rules.cpu, plain.cpu) {
        println!(
            "| slowdown of creates from the 5 CEL rules, by CPU time | {:.2}× | ≤ 2× |",
            with.as_secs_f64() / without.as_secs_f64()
        );
    }
    if let (Some(start), Some(half_way), Some(after)) = (rss_start, rss_half, rss_after) {
        let per_object =
            |from: u64, count: usize| after.saturating_sub(from) as f64 / count as f64 / 1024.0;
        println!(
            "| resident memory per stored 2 KB object (second half) | {:.2} KB | ≤ 4 KB |",
            per_object(half_way, objects - half)
        );
        println!(
            "| resident memory per stored 2 KB object (whole run) | {:.2} KB | |",
            per_object(start, objects)
        );
    }
    Ok(())
}

/// Creates the ConfigMaps `cm-<i>` for `range`, 2 KB each; returns the time it took.
async fn create(
    api: &Api<ConfigMap>,
    payload: &str,
    range: std::ops::Range<usize>,
) -> Result<Duration, kube::Error> {
    let began = Instant::now();
    stream::iter(range)
        .map(|i| {
            let api = api.clone();
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(format!("cm-{i}")),
                    ..Default::default()
                },
                data: Some([("payload".to_string(), payload.to_string())].into()),
                ..Default::default()
            };
            async move { api.create(&PostParams::default(), &cm).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(began.elapsed())
}

/// The five rules the CEL figure puts on the CRD: a cross-field rule, a
/// regex, a list comprehension, a membership test and one on the root.
const RULES: &str = r#"
        x-kubernetes-validations:
        - {rule: "self.metadata.name.size() <= 63", message: "name too long"}
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.minReplicas <= self.maxReplicas", fieldPath: ".minReplicas"}
            - {rule: "!has(self.tier) || self.tier in ['small', 'large']"}
            properties:
              image:
                type: string
                maxLength: 256
                x-kubernetes-validations:
                - {rule: "self.matches('^[a-z0-9./:-]+$')"}
              ports:
                type: array
                maxItems: 16
                items: {type: integer}
                x-kubernetes-validations:
                - {rule: "self.all(p, p > 0 && p < 65536)"}"#;

const PLAIN: &str = r#"
        properties:
          spec:
            type: object
            properties:
              image: {type: string, maxLength: 256}
              ports: {type: array, maxItems: 16, items: {type: integer}}"#;

/// The time a run of creates took: wall-clock, and the process's CPU time
/// (which a busy machine disturbs less).
struct Took {
    wall: Duration,
    cpu: Option<Duration>,
}

/// Creates `objects` Apps in a fresh server, their CRD with or without the
/// five rules.
async fn custom_resource_creates(
    objects: usize,
    rules: bool,
) -> Result<Took, Box<dyn std::error::Error>> {
    let env = TestEnv::start().await?;
    let schema = if rules { RULES } else { PLAIN };
    env.install_crd_yaml(&format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: apps.bench.example}}
spec:
  group: bench.example
  scope: Namespaced
  names: {{plural: apps, singular: app, kind: App}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object{schema}
              minReplicas: {{type: integer}}
              maxReplicas: {{type: integer}}
              tier: {{type: string, maxLength: 10}}
"#
    ))
    .await?;
    let gvk = GroupVersionKind::gvk("bench.example", "v1", "App");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "apps");
    let api: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &resource);
    let began = Instant::now();
    let cpu_before = cpu_time();
    stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            let mut app = DynamicObject::new(&format!("app-{i}"), &resource);
            app.data = json!({"spec": {"image": "registry.example/app:1.0", "ports": [80, 443],
                "minReplicas": 1, "maxReplicas": 3, "tier": "small"}});
            async move { api.create(&PostParams::default(), &app).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    Ok(Took {
        wall: began.elapsed(),
        cpu,
    })
}

/// The process's user and system CPU time, from `/proc` (Linux only).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in clock ticks of 1/100 s.
    Some(Duration::from_millis(ticks * 10))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The process's resident set size, from `/proc` (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
