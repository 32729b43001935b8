//! Prometheus metrics for every controller of a process.
//!
//! Names follow controller-runtime where the meaning is the same, so dashboards written for Go
//! operators work unchanged: `controller_runtime_reconcile_total{controller,result}`,
//! `controller_runtime_reconcile_errors_total{controller}`,
//! `controller_runtime_reconcile_time_seconds{controller}`,
//! `controller_runtime_active_workers{controller}` and
//! `controller_runtime_max_concurrent_reconciles{controller}`. opkit adds its own under `opkit_`:
//! dependent writes by kind and operation, failed reconciles by reason (`Forbidden` when the
//! operator's RBAC lacks a rule), time from creation to first Ready, finalizer cleanups, backoff
//! delays and caught panics. No label ever names an object, so cardinality stays bounded.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn long_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

/// The result label of `controller_runtime_reconcile_total`.
///
/// ```
/// assert_eq!(opkit::metrics::ReconcileResult::Error.as_str(), "error");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Succeeded, next run at the requested interval.
    Success,
    /// Succeeded and asked to run again soon.
    Requeue,
    /// Failed (including caught panics).
    Error,
}

impl ReconcileResult {
    /// The label value controller-runtime uses.
    ///
    /// ```
    /// assert_eq!(opkit::metrics::ReconcileResult::Requeue.as_str(), "requeue_after");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Requeue => "requeue_after",
            Self::Error => "error",
        }
    }
}

/// The metrics registry of a process and the families opkit records into.
///
/// Cheap to clone; every clone records into the same registry.
///
/// ```
/// let metrics = opkit::Metrics::new();
/// metrics.record_reconcile("webapp", opkit::metrics::ReconcileResult::Success, std::time::Duration::from_millis(3));
/// let text = metrics.encode();
/// assert!(text.contains("controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 1"));
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: std::sync::Mutex<Registry>,
    reconcile_total: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    reconcile_failures: Family<Labels, Counter>,
    watch_errors: Family<Labels, Counter>,
    reconcile_time: HistogramFamily,
    active_workers: Family<Labels, Gauge>,
    max_concurrent: Family<Labels, Gauge>,
    dependent_writes: Family<Labels, Counter>,
    time_to_ready: HistogramFamily,
    finalizer_cleanups: Family<Labels, Counter>,
    backoff_delay: HistogramFamily,
    panics: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every opkit family registered (families appear once they have a value).
    ///
    /// ```
    /// let metrics = opkit::Metrics::new();
    /// metrics.set_max_concurrent("webapp", 4);
    /// let text = metrics.encode();
    /// assert!(text.contains("# TYPE controller_runtime_max_concurrent_reconciles gauge"));
    /// ```
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<Labels, Counter>::default();
        let reconcile_errors = Family::<Labels, Counter>::default();
        let reconcile_failures = Family::<Labels, Counter>::default();
        let watch_errors = Family::<Labels, Counter>::default();
        let reconcile_time = HistogramFamily::new_with_constructor(reconcile_buckets as fn() -> _);
        let active_workers = Family::<Labels, Gauge>::default();
        let max_concurrent = Family::<Labels, Gauge>::default();
        let dependent_writes = Family::<Labels, Counter>::default();
        let time_to_ready = HistogramFamily::new_with_constructor(long_buckets as fn() -> _);
        let finalizer_cleanups = Family::<Labels, Counter>::default();
        let backoff_delay = HistogramFamily::new_with_constructor(long_buckets as fn() -> _);
        let panics = Family::<Labels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "opkit_reconcile_failures",
            "Failed reconciles per controller by reason (Forbidden, Conflict, InvalidSpec, ...)",
            reconcile_failures.clone(),
        );
        registry.register(
            "opkit_watch_errors",
            "Failed lists and watches per controller, watched kind and reason (Forbidden when RBAC lacks list or watch)",
            watch_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller (0: unbounded)",
            max_concurrent.clone(),
        );
        registry.register(
            "opkit_dependent_writes",
            "Writes to dependent objects by kind and operation",
            dependent_writes.clone(),
        );
        registry.register(
            "opkit_time_to_first_ready_seconds",
            "Time from a primary's creation to its first Ready=True condition",
            time_to_ready.clone(),
        );
        registry.register(
            "opkit_finalizer_cleanups",
            "Finalizer cleanups run, by result",
            finalizer_cleanups.clone(),
        );
        registry.register(
            "opkit_backoff_delay_seconds",
            "Delays chosen before retrying a failed reconcile",
            backoff_delay.clone(),
        );
        registry.register(
            "opkit_reconcile_panics",
            "Panics caught in reconcile or cleanup",
            panics.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: std::sync::Mutex::new(registry),
                reconcile_total,
                reconcile_errors,
                reconcile_failures,
                watch_errors,
                reconcile_time,
                active_workers,
                max_concurrent,
                dependent_writes,
                time_to_ready,
                finalizer_cleanups,
                backoff_delay,
                panics,
            }),
        }
    }

    /// The registry in the Prometheus/OpenMetrics text exposition format.
    ///
    /// ```
    /// assert!(opkit::Metrics::new().encode().ends_with("# EOF\n"));
    /// ```
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    /// Runs `f` with the registry so an operator can register its own metrics beside opkit's.
    ///
    /// ```
    /// use prometheus_client::metrics::counter::Counter;
    /// let metrics = opkit::Metrics::new();
    /// let deployed: Counter = Counter::default();
    /// metrics.with_registry(|r| r.register("webapps_deployed", "WebApps deployed", deployed.clone()));
    /// deployed.inc();
    /// assert!(metrics.encode().contains("webapps_deployed_total 1"));
    /// ```
    pub fn with_registry<T>(
        &self,
        f: impl FnOnce(&mut prometheus_client::registry::Registry) -> T,
    ) -> T {
        let mut registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f(&mut registry)
    }

    /// Records one finished reconcile.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = opkit::Metrics::new();
    /// m.record_reconcile("webapp", opkit::metrics::ReconcileResult::Error, Duration::from_millis(5));
    /// assert!(m.encode().contains("controller_runtime_reconcile_errors_total{controller=\"webapp\"} 1"));
    /// ```
    pub fn record_reconcile(&self, controller: &str, result: ReconcileResult, took: Duration) {
        let c = controller.to_owned();
        self.inner
            .reconcile_total
            .get_or_create(&vec![
                ("controller", c.clone()),
                ("result", result.as_str().to_owned()),
            ])
            .inc();
        if result == ReconcileResult::Error {
            self.inner
                .reconcile_errors
                .get_or_create(&vec![("controller", c.clone())])
                .inc();
        }
        self.inner
            .reconcile_time
            .get_or_create(&vec![("controller", c)])
            .observe(took.as_secs_f64());
    }

    /// Records the reason of a failed reconcile (the reason its `Degraded` condition and Warning
    /// event carry).
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_failure("webapp", "Forbidden");
    /// assert!(m.encode().contains("opkit_reconcile_failures_total{controller=\"webapp\",reason=\"Forbidden\"} 1"));
    /// ```
    pub fn record_failure(&self, controller: &str, reason: &str) {
        self.inner
            .reconcile_failures
            .get_or_create(&vec![
                ("controller", controller.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// Records a failed list or watch of `kind` by `controller` (retried with backoff).
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_watch_error("webapp", "Service", "Forbidden");
    /// assert!(m.encode().contains("opkit_watch_errors_total{controller=\"webapp\",kind=\"Service\",reason=\"Forbidden\"} 1"));
    /// ```
    pub fn record_watch_error(&self, controller: &str, kind: &str, reason: &str) {
        self.inner
            .watch_errors
            .get_or_create(&vec![
                ("controller", controller.to_owned()),
                ("kind", kind.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// Sets the configured concurrency of a controller (0 means unbounded).
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.set_max_concurrent("webapp", 4);
    /// assert!(m.encode().contains("controller_runtime_max_concurrent_reconciles{controller=\"webapp\"} 4"));
    /// ```
    pub fn set_max_concurrent(&self, controller: &str, max: u16) {
        self.inner
            .max_concurrent
            .get_or_create(&vec![("controller", controller.to_owned())])
            .set(i64::from(max));
    }

    /// Marks one worker busy until the returned guard is dropped.
    ///
    /// ```
    /// let metrics = opkit::Metrics::new();
    /// let guard = metrics.worker_started("webapp");
    /// assert!(metrics.encode().contains("controller_runtime_active_workers{controller=\"webapp\"} 1"));
    /// drop(guard);
    /// assert!(metrics.encode().contains("controller_runtime_active_workers{controller=\"webapp\"} 0"));
    /// ```
    pub fn worker_started(&self, controller: &str) -> WorkerGuard {
        let gauge = self
            .inner
            .active_workers
            .get_or_create(&vec![("controller", controller.to_owned())])
            .clone();
        gauge.inc();
        WorkerGuard { gauge }
    }

    /// Records a write to a dependent (`operation`: `create`, `update` or `delete`).
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_dependent_write("webapp", "Service", "update");
    /// assert!(m.encode().contains("opkit_dependent_writes_total{controller=\"webapp\",kind=\"Service\",operation=\"update\"} 1"));
    /// ```
    pub fn record_dependent_write(&self, controller: &str, kind: &str, operation: &str) {
        self.inner
            .dependent_writes
            .get_or_create(&vec![
                ("controller", controller.to_owned()),
                ("kind", kind.to_owned()),
                ("operation", operation.to_owned()),
            ])
            .inc();
    }

    /// Records the time from a primary's creation to its first Ready.
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_time_to_ready("webapp", std::time::Duration::from_secs(4));
    /// assert!(m.encode().contains("opkit_time_to_first_ready_seconds_count{controller=\"webapp\"} 1"));
    /// ```
    pub fn record_time_to_ready(&self, controller: &str, took: Duration) {
        self.inner
            .time_to_ready
            .get_or_create(&vec![("controller", controller.to_owned())])
            .observe(took.as_secs_f64());
    }

    /// Records a finalizer cleanup (`succeeded` false when it failed and will be retried).
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_cleanup("webapp", false);
    /// assert!(m.encode().contains("opkit_finalizer_cleanups_total{controller=\"webapp\",result=\"error\"} 1"));
    /// ```
    pub fn record_cleanup(&self, controller: &str, succeeded: bool) {
        let result = if succeeded { "success" } else { "error" };
        self.inner
            .finalizer_cleanups
            .get_or_create(&vec![
                ("controller", controller.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    /// Records a delay chosen before retrying a failed reconcile.
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_backoff("webapp", std::time::Duration::from_secs(2));
    /// assert!(m.encode().contains("opkit_backoff_delay_seconds_sum{controller=\"webapp\"} 2.0"));
    /// ```
    pub fn record_backoff(&self, controller: &str, delay: Duration) {
        self.inner
            .backoff_delay
            .get_or_create(&vec![("controller", controller.to_owned())])
            .observe(delay.as_secs_f64());
    }

    /// Records a panic caught in a reconcile or cleanup.
    ///
    /// ```
    /// let m = opkit::Metrics::new();
    /// m.record_panic("webapp");
    /// assert!(m.encode().contains("opkit_reconcile_panics_total{controller=\"webapp\"} 1"));
    /// ```
    pub fn record_panic(&self, controller: &str) {
        self.inner
            .panics
            .get_or_create(&vec![("controller", controller.to_owned())])
            .inc();
    }
}

/// Keeps `controller_runtime_active_workers` incremented while alive.
///
/// ```
/// let metrics = opkit::Metrics::new();
/// let _busy = metrics.worker_started("webapp");
/// ```
#[derive(Debug)]
pub struct WorkerGuard {
    gauge: Gauge,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_controller_runtime_names() {
        let m = Metrics::new();
        m.set_max_concurrent("webapp", 4);
        m.record_reconcile("webapp", ReconcileResult::Error, Duration::from_millis(20));
        m.record_reconcile(
            "webapp",
            ReconcileResult::Success,
            Duration::from_millis(20),
        );
        m.record_dependent_write("webapp", "Deployment", "create");
        m.record_cleanup("webapp", true);
        m.record_backoff("webapp", Duration::from_secs(2));
        m.record_time_to_ready("webapp", Duration::from_secs(3));
        m.record_panic("webapp");
        let text = m.encode();
        for needle in [
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"error\"} 1",
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"webapp\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"webapp\"} 2",
            "controller_runtime_max_concurrent_reconciles{controller=\"webapp\"} 4",
            "opkit_dependent_writes_total{controller=\"webapp\",kind=\"Deployment\",operation=\"create\"} 1",
            "opkit_finalizer_cleanups_total{controller=\"webapp\",result=\"success\"} 1",
            "opkit_backoff_delay_seconds_count{controller=\"webapp\"} 1",
            "opkit_time_to_first_ready_seconds_count{controller=\"webapp\"} 1",
            "opkit_reconcile_panics_total{controller=\"webapp\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
