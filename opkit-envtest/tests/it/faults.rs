//! Deterministic fault injection.

use crate::support::{configmap, configmaps, env, status};
use futures::StreamExt;
use kube::api::{ListParams, PostParams, WatchParams};
use opkit_envtest::Fault;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_error_rate_of_one_fails_every_matching_request() {
    let env = env().await;
    env.faults()
        .fail("create", "configmaps", 1.0, Fault::InternalError);
    let api = configmaps(&env, "default");
    let err = status(
        api.create(&PostParams::default(), &configmap("f"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 500);
    assert_eq!(err.reason, "InternalError");
    assert!(api.list(&ListParams::default()).await.is_ok());
    env.faults().clear();
    api.create(&PostParams::default(), &configmap("f"))
        .await
        .unwrap();
    assert_eq!(env.stats().count_code("create", "configmaps", 500), 1);
}

#[tokio::test]
async fn injected_conflicts_look_like_real_ones() {
    let env = env().await;
    env.faults().fail("*", "configmaps", 1.0, Fault::Conflict);
    let err = status(
        configmaps(&env, "default")
            .create(&PostParams::default(), &configmap("c"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    let err = status(configmaps(&env, "default").get("named").await.unwrap_err());
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"named\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

async fn outcomes(seed: u64) -> Vec<bool> {
    let env = env().await;
    env.faults()
        .seed(seed)
        .fail("get", "configmaps", 0.5, Fault::Conflict);
    let api = configmaps(&env, "default");
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(api.get_opt("x").await.is_ok());
    }
    results
}

#[tokio::test]
async fn the_same_seed_gives_the_same_failures() {
    let a = outcomes(42).await;
    let b = outcomes(42).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|ok| *ok) && a.iter().any(|ok| !*ok), "{a:?}");
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let env = env().await;
    env.faults().fail(
        "list",
        "configmaps",
        1.0,
        Fault::TooManyRequests {
            retry_after_seconds: 7,
        },
    );
    // kube::Client retries 429 by default; this one shows the raw answer.
    let mut config = env.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(Vec::new())
        .unwrap();
    let response = client.send(request.map(Into::into)).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
}

#[tokio::test]
async fn latency_delays_matching_requests() {
    let env = env().await;
    env.faults()
        .latency("get", "configmaps", Duration::from_millis(300));
    let api = configmaps(&env, "default");
    let started = Instant::now();
    let _ = api.get_opt("slow").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn cutting_watches_ends_open_streams() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.faults().cut_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends promptly");
    assert!(end.is_none());
}
