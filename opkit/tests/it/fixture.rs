//! A small operator exercising every opkit feature, and what it takes to run it on an embedded server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opkit::k8s::*;
use opkit::prelude::*;
use opkit_envtest::TestEnv;

pub const FINALIZER: &str = "test.opkit.dev/cleanup";

/// A Widget owns a ConfigMap holding its size. `fail` makes reconcile fail ("transient",
/// "permanent", "panic"); `expose: false` disables the ConfigMap; `configNamespace` puts it into
/// another namespace (owner labels instead of an owner reference).
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "test.opkit.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
#[operator(
    owns(ConfigMap),
    watches(Secret = crate::fixture::widgets_named_by_secret),
    index(size = crate::fixture::size_key),
    finalizer = "test.opkit.dev/cleanup",
    requeue = "1h"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    pub size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
    #[serde(default = "yes")]
    pub expose: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The `size` index: widgets by their size.
pub fn size_key(w: &Widget) -> Vec<String> {
    vec![w.spec.size.to_string()]
}

/// A Secret labelled `widget: NAME` concerns the widget NAME in its namespace.
pub fn widgets_named_by_secret(
    secret: &Secret,
    widgets: &opkit::index::Primaries<Widget>,
) -> Vec<opkit::ObjectRef<Widget>> {
    let name = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("widget"));
    widgets
        .state()
        .iter()
        .filter(|w| Some(&w.name_any()) == name && w.namespace() == secret.metadata.namespace)
        .map(|w| opkit::ObjectRef::from_obj(&**w))
        .collect()
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// What the test observes of the operator from the inside.
#[derive(Debug, Default)]
pub struct Spy {
    pub reconciles: AtomicUsize,
    pub attempts: Mutex<Vec<Instant>>,
    pub cleanups: AtomicUsize,
    pub block_cleanup: AtomicBool,
    /// When set, a cleanup signals `cleanup_entered` and waits for `cleanup_release`.
    pub gate_cleanup: AtomicBool,
    pub cleanup_entered: tokio::sync::Notify,
    pub cleanup_release: tokio::sync::Notify,
    pub finalizer_missing: AtomicBool,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Names of the widgets of the same size, as the `size` index saw them at the last reconcile.
    pub same_size: Mutex<Vec<String>>,
    /// Reconciles by widget name.
    pub per_widget: Mutex<std::collections::HashMap<String, usize>>,
}

impl Spy {
    pub fn reconciles(&self) -> usize {
        self.reconciles.load(Ordering::SeqCst)
    }

    /// Reconciles of the widget `name` so far.
    pub fn reconciles_of(&self, name: &str) -> usize {
        self.per_widget
            .lock()
            .map(|m| m.get(name).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Reconciles running right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn attempts(&self) -> Vec<Instant> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

struct WidgetConfig<'a>(&'a Widget);

impl Ensure for WidgetConfig<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("{}-config", self.0.name_any())),
                namespace: self.0.spec.config_namespace.clone(),
                ..Default::default()
            },
            data: Some([("size".to_string(), self.0.spec.size.to_string())].into()),
            ..Default::default()
        }
    }

    fn enabled(&self) -> bool {
        self.0.spec.expose
    }
}

impl Reconcile<Arc<Spy>> for Widget {
    async fn reconcile(&self, ctx: &Context<Self, Arc<Spy>>) -> opkit::Result<Action> {
        let probe = ctx.data();
        probe.reconciles.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut counts) = probe.per_widget.lock() {
            *counts.entry(self.name_any()).or_default() += 1;
        }
        if let Ok(mut attempts) = probe.attempts.lock() {
            attempts.push(Instant::now());
        }
        if !self.finalizers().iter().any(|f| f == FINALIZER) {
            probe.finalizer_missing.store(true, Ordering::SeqCst);
        }
        if let Some(ms) = self.spec.delay_ms {
            let now = probe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            probe.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            probe.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let same: Vec<String> = ctx
            .index("size", &self.spec.size.to_string())
            .iter()
            .map(|w| w.name_any())
            .collect();
        if let Ok(mut slot) = probe.same_size.lock() {
            *slot = same;
        }
        match self.spec.fail.as_deref() {
            Some("transient") => {
                return Err(opkit::Error::transient("the backend is not reachable yet"));
            }
            Some("permanent") => return Err(opkit::Error::invalid_spec("size must be even")),
            Some("panic") => panic!("widget reconcile panicked on purpose"),
            _ => {}
        }
        let config = ctx.ensure(WidgetConfig(self)).await?;
        let ready = config.get().is_some() || !self.spec.expose;
        ctx.status()
            .phase(if ready { "Running" } else { "Pending" })
            .ready(ready, "ConfigWritten", format!("size {}", self.spec.size));
        Ok(Action::done())
    }

    async fn cleanup(&self, ctx: &Context<Self, Arc<Spy>>) -> opkit::Result<()> {
        let probe = ctx.data();
        probe.cleanups.fetch_add(1, Ordering::SeqCst);
        if probe.gate_cleanup.load(Ordering::SeqCst) {
            probe.cleanup_entered.notify_one();
            probe.cleanup_release.notified().await;
        }
        if probe.block_cleanup.load(Ordering::SeqCst) {
            return Err(opkit::Error::transient(
                "the external resource is still in use",
            ));
        }
        Ok(())
    }
}

/// The Widget controller as the tests run it: the probe as its data, a fast backoff.
pub type WidgetController = opkit::Controller<Widget, Arc<Spy>>;

/// The Widget controller reporting into `probe`, with a backoff fast enough for tests.
pub fn widget_controller(probe: &Arc<Spy>) -> WidgetController {
    Widget::controller(probe.clone()).backoff(fast_backoff())
}

/// An embedded server with the Widget CRD installed and the operator running.
pub struct Harness {
    pub env: TestEnv,
    pub probe: Arc<Spy>,
    pub running: Option<opkit::Running>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|d| d).await
    }

    pub async fn start_with(adjust: impl FnOnce(WidgetController) -> WidgetController) -> Harness {
        Self::launch(adjust, |m| m).await
    }

    /// The operator with `clock` for the times it writes.
    pub async fn start_with_clock(clock: Arc<opkit::clock::ManualClock>) -> Harness {
        Self::launch(|c| c, move |m| m.clock(clock)).await
    }

    async fn launch(
        adjust: impl FnOnce(WidgetController) -> WidgetController,
        manager: impl FnOnce(opkit::Manager) -> opkit::Manager,
    ) -> Harness {
        let env = TestEnv::start().await.expect("embedded API server starts");
        env.install_crd::<Widget>().await.expect("CRD installs");
        let probe = Arc::new(Spy::default());
        let running = manager(opkit::Manager::new(env.client()))
            .controller(adjust(widget_controller(&probe)))
            .start();
        Harness {
            env,
            probe,
            running: Some(running),
        }
    }

    pub fn widgets(&self) -> Api<Widget> {
        Api::namespaced(self.env.client(), "default")
    }

    pub fn config_maps(&self, ns: &str) -> Api<ConfigMap> {
        Api::namespaced(self.env.client(), ns)
    }

    pub fn metrics(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.metrics().encode())
            .unwrap_or_default()
    }

    pub async fn create(&self, name: &str, spec: WidgetSpec) -> Widget {
        self.widgets()
            .create(&Default::default(), &Widget::new(name, spec))
            .await
            .expect("widget is created")
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

pub fn spec(size: i32) -> WidgetSpec {
    WidgetSpec {
        size,
        fail: None,
        expose: true,
        config_namespace: None,
        delay_ms: None,
    }
}

pub fn fast_backoff() -> opkit::Backoff {
    opkit::Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
        jitter: 0.0,
        permanent_retry: Duration::from_secs(3600),
    }
}

/// Polls `check` until it returns `Some`, failing the test after 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn condition<'a>(w: &'a Widget, type_: &str) -> Option<&'a Condition> {
    w.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_true(w: &Widget, type_: &str) -> bool {
    condition(w, type_).is_some_and(|c| c.status == "True")
}

/// The widget every barrier goes through.
pub const BARRIER: &str = "barrier";

impl Harness {
    /// A barrier through the primaries' watch: changes the spec of the widget [`BARRIER`] (created
    /// on first use) and waits until its reconcile of that spec wrote its status. Every widget event
    /// the server sent before has then been seen by the controller.
    pub async fn barrier(&self) {
        let api = self.widgets();
        match api.get_opt(BARRIER).await.ok().flatten() {
            None => {
                self.create(BARRIER, spec(1)).await;
            }
            Some(widget) => {
                // The delay changes nothing the reconcile writes but the status, so a barrier
                // leaves the dependents' write counts alone.
                let delay = 1 - widget.spec.delay_ms.unwrap_or(0).min(1);
                let patch = serde_json::json!({"spec": {"delayMs": delay}});
                api.patch(
                    BARRIER,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await
                .expect("barrier widget patched");
            }
        }
        ready(self, BARRIER).await;
    }

    /// Waits until the widget `name` is reconciled no more: its reconcile count does not move
    /// across a whole [`Harness::barrier`]. Returns the count.
    pub async fn quiet(&self, name: &str) -> usize {
        loop {
            let before = self.probe.reconciles_of(name);
            self.barrier().await;
            if self.probe.reconciles_of(name) == before {
                return before;
            }
        }
    }
}

/// Waits until the widget has Ready=True for its current generation.
pub async fn ready(h: &Harness, name: &str) -> Widget {
    let api = h.widgets();
    eventually(&format!("{name} to be Ready"), || {
        let api = api.clone();
        async move {
            let w = api.get(name).await.ok()?;
            let observed = condition(&w, "Ready")?.observed_generation;
            (is_true(&w, "Ready") && observed == w.metadata.generation).then_some(w)
        }
    })
    .await
}

/// A cluster-scoped primary without a finalizer, owning a ConfigMap in `namespace`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "test.opkit.dev",
    version = "v1",
    kind = "Gadget",
    status = "GadgetStatus"
)]
#[operator(owns(ConfigMap))]
pub struct GadgetSpec {
    pub namespace: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct GadgetStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

struct GadgetConfig<'a>(&'a Gadget);

impl Ensure for GadgetConfig<'_> {
    type Object = ConfigMap;

    fn desired(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("gadget-{}", self.0.name_any())),
                namespace: Some(self.0.spec.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

impl Reconcile for Gadget {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        ctx.ensure(GadgetConfig(self)).await?;
        ctx.status()
            .ready(true, "Configured", "the ConfigMap exists");
        Ok(Action::done())
    }
}

/// Successful reconciles `running` counted (after their status write).
pub fn succeeded(running: &opkit::Running) -> u64 {
    let text = running.metrics().encode();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(
                "controller_runtime_reconcile_total{controller=\"widget\",result=\"success\"} ",
            )
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
