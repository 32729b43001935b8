//! Deterministic fault injection: error rates and latency per verb and
//! resource, cutting open watch streams, forcing 410 Gone.
//!
//! Draws come from one RNG seeded by [`Faults::seed`], so a test that makes
//! the same requests in the same order sees the same failures.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The error a failing request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 InternalError.
    InternalError,
    /// 503 ServiceUnavailable with `Retry-After: 1`.
    ServiceUnavailable,
    /// 429 TooManyRequests with this `Retry-After` in seconds.
    TooManyRequests {
        /// Seconds for the `Retry-After` header.
        retry_after_seconds: u32,
    },
    /// 409 Conflict, as if the object had been modified concurrently.
    Conflict,
}

#[derive(Clone, Debug)]
struct Rule {
    verb: String,
    resource: String,
    rate: f64,
    fault: Fault,
}

#[derive(Clone, Debug)]
struct Delay {
    verb: String,
    resource: String,
    delay: Duration,
}

struct Config {
    rng: StdRng,
    rules: Vec<Rule>,
    delays: Vec<Delay>,
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

/// A handle on the server's fault injection, from
/// [`TestEnv::faults`](crate::TestEnv::faults). Setters chain; `"*"` matches
/// any verb or resource.
///
/// ```no_run
/// # async fn demo() -> Result<(), opkit_envtest::Error> {
/// use opkit_envtest::Fault;
/// let env = opkit_envtest::TestEnv::start().await?;
/// env.faults()
///     .seed(7)
///     .fail("create", "deployments", 0.5, Fault::ServiceUnavailable)
///     .latency("*", "*", std::time::Duration::from_millis(5));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Faults {
    config: Arc<Mutex<Config>>,
    cut: Arc<watch::Sender<u64>>,
    store: Arc<Store>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = self.lock();
        f.debug_struct("Faults")
            .field("rules", &config.rules)
            .field("delays", &config.delays)
            .finish()
    }
}

impl Faults {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        let (cut, _) = watch::channel(0);
        Faults {
            config: Arc::new(Mutex::new(Config {
                rng: StdRng::seed_from_u64(0),
                rules: Vec::new(),
                delays: Vec::new(),
            })),
            cut: Arc::new(cut),
            store,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reseeds the random draws.
    pub fn seed(&self, seed: u64) -> &Self {
        self.lock().rng = StdRng::seed_from_u64(seed);
        self
    }

    /// Fails a fraction `rate` (0.0 to 1.0) of `verb` requests on `resource` with `fault`.
    pub fn fail(&self, verb: &str, resource: &str, rate: f64, fault: Fault) -> &Self {
        self.lock().rules.push(Rule {
            verb: verb.to_string(),
            resource: resource.to_string(),
            rate: rate.clamp(0.0, 1.0),
            fault,
        });
        self
    }

    /// Delays every `verb` request on `resource` by `delay`.
    pub fn latency(&self, verb: &str, resource: &str, delay: Duration) -> &Self {
        self.lock().delays.push(Delay {
            verb: verb.to_string(),
            resource: resource.to_string(),
            delay,
        });
        self
    }

    /// Removes every error rule and delay.
    pub fn clear(&self) -> &Self {
        let mut config = self.lock();
        config.rules.clear();
        config.delays.clear();
        self
    }

    /// Closes every open watch stream now (clients see the stream end and re-watch).
    pub fn cut_watches(&self) -> &Self {
        self.cut.send_modify(|n| *n += 1);
        self
    }

    /// Forces 410 Gone: drops the watch history and cuts open watches, so
    /// clients resuming from their last resourceVersion must relist.
    pub fn force_gone(&self) -> &Self {
        self.store.compact();
        self.cut_watches()
    }

    pub(crate) fn watch_cuts(&self) -> watch::Receiver<u64> {
        self.cut.subscribe()
    }

    /// The delay and the fault, if any, for one request.
    pub(crate) fn draw(&self, verb: &str, resource: &str) -> (Duration, Option<Fault>) {
        let mut config = self.lock();
        let delay = config
            .delays
            .iter()
            .filter(|d| matches(&d.verb, verb) && matches(&d.resource, resource))
            .map(|d| d.delay)
            .sum();
        let rules: Vec<Rule> = config
            .rules
            .iter()
            .filter(|r| matches(&r.verb, verb) && matches(&r.resource, resource))
            .cloned()
            .collect();
        for rule in rules {
            if config.rng.random_bool(rule.rate) {
                return (delay, Some(rule.fault));
            }
        }
        (delay, None)
    }
}

impl Fault {
    /// The Status a request on `info` (object `name`, if any) fails with.
    pub(crate) fn error(self, info: &ResourceInfo, name: Option<&str>) -> ApiError {
        match self {
            Fault::InternalError => ApiError::internal("injected fault"),
            Fault::ServiceUnavailable => ApiError::service_unavailable(),
            Fault::TooManyRequests {
                retry_after_seconds,
            } => ApiError::too_many_requests(retry_after_seconds),
            Fault::Conflict => ApiError::conflict(info, name.unwrap_or("")),
        }
    }
}
