//! The cost of serving the WebApp in two versions.
//!
//! `cargo bench --bench versions` (`-- --quick` for fewer rounds) measures, in this process:
//! - one conversion round trip, `v1` to the hub `v2` and back (what the conversion webhook does
//!   for a `v1` client's read and write), with `Versions::convert`, without the webhook's HTTP;
//!   and the same for a `v2` object with a pull policy, which `v1` keeps in its annotation;
//! - a list of 1,000 WebApps on the embedded API server in `v1`, every object converted by the
//!   conversion webhook over HTTPS in one ConversionReview, against the same list in the
//!   storage version `v2`.
//!
//! The figures go to `docs/performance.md`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ListParams, PostParams};
use opkit::webhook::{Endpoint, Webhooks};
use opkit_examples::webapp::types::WebApp;
use opkit_examples::webapp::{v1, versions};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const OBJECTS: usize = 1_000;

fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 2_000 } else { 20_000 };
    let plain = round_trip(&webapp_v1(), "example.com/v2", "example.com/v1", rounds)?;
    let kept = round_trip(&webapp_v2(), "example.com/v1", "example.com/v2", rounds)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let lists = if quick { 3 } else { 9 };
    let (storage, converted) = runtime.block_on(list(lists))?;
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| conversion round trip v1 → v2 → v1 (median of {rounds}) | {:.1} µs |",
        micros(plain)
    );
    println!(
        "| conversion round trip v2 → v1 → v2, the pull policy kept in the annotation (median of {rounds}) | {:.1} µs |",
        micros(kept)
    );
    println!(
        "| list {OBJECTS} WebApps in v2, the storage version (median of {lists}) | {:.1} ms |",
        millis(storage)
    );
    println!(
        "| list {OBJECTS} WebApps in v1, converted by the webhook (median of {lists}) | {:.1} ms |",
        millis(converted)
    );
    println!(
        "| conversion cost per listed object | {:.1} µs |",
        micros(converted.saturating_sub(storage)) / OBJECTS as f64
    );
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// A `v1` WebApp as a client writes it, with the metadata the API server adds.
fn webapp_v1() -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "WebApp",
        "metadata": {
            "name": "shop", "namespace": "default", "uid": "6a1d5f2e-8c57-4bb1-9d7e-3f2c1b0a9e88",
            "resourceVersion": "1234", "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"managed-by": "webapp-operator", "version": "v1"},
        },
        "spec": {"replicas": 3, "image": "registry.example.com:5000/shop:2.1", "port": 8080},
        "status": {"phase": "Running", "readyReplicas": 3, "observedGeneration": 3, "conditions": []},
    })
}

/// A `v2` WebApp with a pull policy, which `v1` cannot hold.
fn webapp_v2() -> Value {
    let mut object = webapp_v1();
    object["apiVersion"] = json!("example.com/v2");
    object["spec"] = json!({
        "scale": {"replicas": 3},
        "image": {"repository": "registry.example.com:5000/shop", "tag": "2.1", "pullPolicy": "Always"},
        "port": 8080,
    });
    object
}

/// The median time of `object` to `there` and back to `back`, checking it comes back whole.
fn round_trip(
    object: &Value,
    there: &str,
    back: &str,
    rounds: usize,
) -> Result<Duration, BoxError> {
    let versions = versions();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let converted = versions.convert(vec![object.clone()], there)?;
        let returned = versions.convert(converted, back)?;
        samples.push(start.elapsed());
        if returned.first().map(|o| &o["spec"]) != Some(&object["spec"]) {
            return Err(format!("the round trip changed the object: {returned:?}").into());
        }
    }
    Ok(median(samples))
}

/// The median time to list the WebApps in `v2` and in `v1`, over `rounds` lists each.
async fn list(rounds: usize) -> Result<(Duration, Duration), BoxError> {
    let env = opkit_envtest::TestEnv::start().await?;
    let crd = versions().crd(&Endpoint::Url("https://127.0.0.1:1".into()), None)?;
    env.install_crd_yaml(&opkit::manifests::to_yaml(&[crd])?)
        .await?;
    let _webhook = Webhooks::new("webapp-operator")
        .conversion(versions())
        .start_local(&env.client())
        .await?;
    let stored: Api<WebApp> = Api::namespaced(env.client(), "default");
    let template: WebApp = serde_json::from_value(webapp_v2())?;
    stream::iter(0..OBJECTS)
        .map(|i| {
            let mut app = template.clone();
            app.metadata = kube::api::ObjectMeta {
                name: Some(format!("shop-{i:04}")),
                ..Default::default()
            };
            app.status = None;
            let stored = stored.clone();
            async move { stored.create(&PostParams::default(), &app).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let old: Api<v1::WebApp> = Api::namespaced(env.client(), "default");
    let mut in_v2 = Vec::new();
    let mut in_v1 = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let listed = stored.list(&ListParams::default()).await?;
        in_v2.push(start.elapsed());
        let start = Instant::now();
        let converted = old.list(&ListParams::default()).await?;
        in_v1.push(start.elapsed());
        if listed.items.len() != OBJECTS || converted.items.len() != OBJECTS {
            return Err("a list missed WebApps".into());
        }
    }
    Ok((median(in_v2), median(in_v1)))
}
