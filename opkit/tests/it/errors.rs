//! Point 6 and 11: error classification, backoff growth and reset, no hot loop, panics.

use std::time::Duration;

use kube::api::{Patch, PatchParams};

use crate::fixture::*;

fn gaps(attempts: &[std::time::Instant]) -> Vec<Duration> {
    attempts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test]
async fn transient_errors_back_off_exponentially_and_success_resets() {
    let mut h = Harness::start().await;
    let mut s = spec(1);
    s.fail = Some("transient".into());
    h.create("flaky", s).await;
    eventually("five attempts", || async {
        (h.probe.attempts().len() >= 5).then_some(())
    })
    .await;
    let g = gaps(&h.probe.attempts());
    // 100 ms doubling, no jitter: the n-th wait is at least 100 ms * 2^(n-1).
    for (i, gap) in g.iter().take(4).enumerate() {
        let expected = Duration::from_millis(100 * (1 << i));
        assert!(
            *gap >= expected,
            "gap {i} was {gap:?}, expected at least {expected:?}: {g:?}"
        );
    }
    let api = h.widgets();
    let w = api.get("flaky").await.expect("get");
    let degraded = condition(&w, "Degraded").expect("Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "TransientError")
    );
    assert!(
        h.metrics()
            .contains("opkit_backoff_delay_seconds_count{controller=\"widget\"}")
    );

    let heal = serde_json::json!({"spec": {"fail": null}});
    api.patch("flaky", &PatchParams::default(), &Patch::Merge(&heal))
        .await
        .expect("heal");
    let healed = ready(&h, "flaky").await;
    assert!(!is_true(&healed, "Degraded"));

    let n = h.probe.attempts().len();
    let again = serde_json::json!({"spec": {"fail": "transient"}});
    api.patch("flaky", &PatchParams::default(), &Patch::Merge(&again))
        .await
        .expect("fail again");
    eventually("two more attempts", || async {
        (h.probe.attempts().len() >= n + 2).then_some(())
    })
    .await;
    let attempts = h.probe.attempts();
    let first_retry = attempts[n + 1] - attempts[n];
    assert!(
        first_retry < Duration::from_millis(1600),
        "backoff was not reset: {first_retry:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn permanent_errors_report_and_do_not_hot_loop() {
    let mut h = Harness::start().await;
    let mut s = spec(1);
    s.fail = Some("permanent".into());
    h.create("broken", s).await;
    let api = h.widgets();
    let w = eventually("Degraded=True InvalidSpec", || {
        let api = api.clone();
        async move {
            let w = api.get("broken").await.ok()?;
            condition(&w, "Degraded")
                .filter(|c| c.status == "True" && c.reason == "InvalidSpec")?;
            Some(w)
        }
    })
    .await;
    let ready = condition(&w, "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.message.as_str()),
        ("False", "invalid spec: size must be even")
    );
    // A widget failing transiently retries on the same backoff; once it retried three times, a
    // permanent error retried with backoff would have been retried too.
    let attempts = h.probe.reconciles_of("broken");
    let mut flaky = spec(1);
    flaky.fail = Some("transient".into());
    h.create("flaky", flaky).await;
    eventually("three retries of the transient failure", || async {
        (h.probe.reconciles_of("flaky") >= 4).then_some(())
    })
    .await;
    assert_eq!(
        h.probe.reconciles_of("broken"),
        attempts,
        "a permanent error was retried"
    );
    h.stop().await;
}

#[tokio::test]
async fn server_errors_are_transient_and_retried_until_they_pass() {
    let mut h = Harness::start().await;
    h.env.faults().fail(
        "patch",
        "configmaps",
        1.0,
        opkit_envtest::Fault::InternalError,
    );
    h.create("unlucky", spec(1)).await;
    let api = h.widgets();
    eventually("Degraded=True ServerError", || {
        let api = api.clone();
        async move {
            let w = api.get("unlucky").await.ok()?;
            condition(&w, "Degraded")
                .filter(|c| c.status == "True" && c.reason == "ServerError")?;
            Some(())
        }
    })
    .await;
    h.env.faults().clear();
    ready(&h, "unlucky").await;
    h.stop().await;
}

#[tokio::test]
async fn conflicts_are_retried_quietly_and_reported_only_when_they_persist() {
    let mut h = Harness::start().await;
    h.env
        .faults()
        .fail("patch", "configmaps", 1.0, opkit_envtest::Fault::Conflict);
    h.create("contended", spec(1)).await;
    eventually("two failed attempts", || async {
        (h.probe.attempts().len() >= 2).then_some(())
    })
    .await;
    let w = h.widgets().get("contended").await.expect("get");
    assert!(
        condition(&w, "Degraded").is_none_or(|c| c.status != "True"),
        "Degraded after two conflicts: {:?}",
        w.status
    );
    let api = h.widgets();
    eventually("Degraded=True Conflict once conflicts persist", || {
        let api = api.clone();
        async move {
            let w = api.get("contended").await.ok()?;
            condition(&w, "Degraded").filter(|c| c.status == "True" && c.reason == "Conflict")?;
            Some(())
        }
    })
    .await;
    h.env.faults().clear();
    ready(&h, "contended").await;
    h.stop().await;
}

#[tokio::test]
async fn a_panic_is_caught_counted_and_retried_without_harming_others() {
    let mut h = Harness::start().await;
    let mut s = spec(1);
    s.fail = Some("panic".into());
    h.create("boom", s).await;
    h.create("fine", spec(1)).await;
    ready(&h, "fine").await;
    let api = h.widgets();
    eventually("Degraded=True Panicked", || {
        let api = api.clone();
        async move {
            let w = api.get("boom").await.ok()?;
            condition(&w, "Degraded").filter(|c| c.status == "True" && c.reason == "Panicked")?;
            Some(())
        }
    })
    .await;
    eventually("the panic to be retried", || async {
        (h.probe.attempts().len() >= 4).then_some(())
    })
    .await;
    let metrics = h.metrics();
    assert!(
        metrics.contains("opkit_reconcile_panics_total{controller=\"widget\"}"),
        "{metrics}"
    );
    let heal = serde_json::json!({"spec": {"fail": null}});
    api.patch("boom", &PatchParams::default(), &Patch::Merge(&heal))
        .await
        .expect("heal");
    ready(&h, "boom").await;
    h.stop().await;
}
