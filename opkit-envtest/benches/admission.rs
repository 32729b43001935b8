//! What admission webhooks cost a write: the round trip of one webhook call
//! (creates through `kube::Client` with and without a validating webhook), and
//! 1,000 objects created through the real kubectl with a mutating and a
//! validating webhook, against the same without webhooks.
//!
//! `cargo bench -p opkit-envtest --bench admission` (`-- --quick`: 200 objects).

#[path = "../tests/it/webhook_server.rs"]
#[allow(dead_code)]
mod webhook_server;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use opkit_envtest::TestEnv;
use serde_json::json;
use std::time::{Duration, Instant};
use webhook_server::{Answer, WebhookServer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn configmap(name: &str) -> Result<ConfigMap, BoxError> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"key": "value"},
    }))?)
}

/// Sequential creates: the time of each.
async fn creates(env: &TestEnv, prefix: &str, n: usize) -> Result<Vec<Duration>, BoxError> {
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let object = configmap(&format!("{prefix}-{i}"))?;
        let began = Instant::now();
        api.create(&PostParams::default(), &object).await?;
        times.push(began.elapsed());
    }
    times.sort();
    Ok(times)
}

async fn install(
    env: &TestEnv,
    validating: &WebhookServer,
    mutating: &WebhookServer,
) -> Result<(), BoxError> {
    let v: Api<ValidatingWebhookConfiguration> = Api::all(env.client());
    let config = validating.configuration(
        "ValidatingWebhookConfiguration",
        "validate",
        "",
        "v1",
        "configmaps",
    );
    v.create(&PostParams::default(), &serde_json::from_value(config)?)
        .await?;
    let m: Api<MutatingWebhookConfiguration> = Api::all(env.client());
    let config = mutating.configuration(
        "MutatingWebhookConfiguration",
        "mutate",
        "",
        "v1",
        "configmaps",
    );
    m.create(&PostParams::default(), &serde_json::from_value(config)?)
        .await?;
    Ok(())
}

/// `kubectl create -f` of `n` ConfigMaps in one multi-document file; the wall time.
async fn kubectl_creates(env: &TestEnv, prefix: &str, n: usize) -> Result<Duration, BoxError> {
    let kubectl = opkit_envtest::tools::Kubectl::new(env)?;
    let manifest: String = (0..n)
        .map(|i| {
            format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {prefix}-{i}\n  labels: {{app: bench}}\ndata:\n  key: value\n")
        })
        .collect();
    let began = Instant::now();
    let output = kubectl.run(&["create", "-f", "-"], Some(&manifest)).await?;
    let elapsed = began.elapsed();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr.lines().next().unwrap_or("kubectl failed").into());
    }
    Ok(elapsed)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 200 } else { 1000 };
    let env = TestEnv::builder().without_simulation().build().await?;
    let plain = creates(&env, "plain", n).await?;
    let validating = WebhookServer::start(Answer::Allow).await;
    let mutating = WebhookServer::start(Answer::Patch(json!([
        {"op": "add", "path": "/metadata/labels/admitted", "value": "yes"}
    ])))
    .await;
    install(&env, &validating, &mutating).await?;
    let admitted = creates(&env, "admitted", n).await?;
    let median = |t: &[Duration]| t[t.len() / 2];
    let p99 = |t: &[Duration]| t[t.len() * 99 / 100];
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| create, no webhook (median of {n}) | {} | |",
        ms(median(&plain))
    );
    println!(
        "| create through a mutating and a validating webhook (median of {n}) | {} | |",
        ms(median(&admitted))
    );
    println!(
        "| admission round trip, per webhook (median difference / 2) | {} | ≤ 2 ms |",
        ms(median(&admitted).saturating_sub(median(&plain)) / 2)
    );
    println!(
        "| create through both webhooks, p99 | {} | |",
        ms(p99(&admitted))
    );
    println!(
        "| TLS connections the webhooks accepted for {} calls | {} | |",
        2 * n,
        validating
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            + mutating
                .connections
                .load(std::sync::atomic::Ordering::SeqCst)
    );

    let bare = TestEnv::builder().without_simulation().build().await?;
    let without = kubectl_creates(&bare, "kubectl", n).await?;
    let with = kubectl_creates(&env, "kubectl", n).await?;
    println!(
        "| {n} ConfigMaps through `kubectl create -f`, no webhooks | {:.2} s | |",
        without.as_secs_f64()
    );
    println!(
        "| {n} ConfigMaps through `kubectl create -f`, mutating and validating webhooks | {:.2} s | |",
        with.as_secs_f64()
    );
    Ok(())
}
