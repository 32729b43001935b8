//! Point 7: metrics exposition.

use crate::fixture::*;

#[tokio::test]
async fn exposition_has_controller_runtime_and_opkit_families() {
    let mut h = Harness::start_with(|d| d.concurrency(3)).await;
    h.create("counted", spec(1)).await;
    ready(&h, "counted").await;
    let text = h.metrics();
    for needle in [
        "controller_runtime_reconcile_total{controller=\"widget\",result=\"success\"}",
        "controller_runtime_reconcile_time_seconds_bucket{",
        "controller_runtime_active_workers{controller=\"widget\"}",
        "controller_runtime_max_concurrent_reconciles{controller=\"widget\"} 3",
        "opkit_dependent_writes_total{controller=\"widget\",kind=\"ConfigMap\",operation=\"create\"} 1",
        "opkit_time_to_first_ready_seconds_count{controller=\"widget\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(
        !text.contains("counted"),
        "an object name leaked into a label:\n{text}"
    );
    h.stop().await;
}
