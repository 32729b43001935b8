//! Request statistics by verb, resource and status code, readable from the
//! library ([`Stats`]) and in Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The verbs that change state.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// A snapshot of request counts, keyed by (verb, resource, HTTP code).
///
/// Verbs are the Kubernetes audit verbs (`get`, `list`, `watch`, `create`,
/// `update`, `patch`, `delete`, `deletecollection`); resources are plural
/// names, with the subresource after a slash (`deployments/status`).
/// Requests made by the server's own background controllers are not counted.
///
/// ```no_run
/// # async fn demo() -> Result<(), opkit_envtest::Error> {
/// let env = opkit_envtest::TestEnv::start().await?;
/// // ... run the operator until it has converged, then:
/// env.reset_stats();
/// // ... wait for a resync ...
/// assert_eq!(env.stats().writes(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    counts: BTreeMap<(String, String, u16), u64>,
}

impl Stats {
    /// Requests with this verb on this resource, any code.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests with this verb on this resource answered with `code`.
    pub fn count_code(&self, verb: &str, resource: &str, code: u16) -> u64 {
        self.counts
            .get(&(verb.to_string(), resource.to_string(), code))
            .copied()
            .unwrap_or(0)
    }

    /// Requests with this verb, any resource.
    pub fn verb(&self, verb: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered with this HTTP code.
    pub fn code(&self, code: u16) -> u64 {
        self.counts
            .iter()
            .filter(|((_, _, c), _)| *c == code)
            .map(|(_, n)| n)
            .sum()
    }

    /// create + update + patch + delete + deletecollection requests.
    pub fn writes(&self) -> u64 {
        WRITE_VERBS.iter().map(|v| self.verb(v)).sum()
    }

    /// Write requests on one resource.
    pub fn writes_on(&self, resource: &str) -> u64 {
        WRITE_VERBS.iter().map(|v| self.count(v, resource)).sum()
    }

    /// All counted requests.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Every (verb, resource, code) with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u16, u64)> {
        self.counts
            .iter()
            .map(|((v, r, c), n)| (v.as_str(), r.as_str(), *c, *n))
    }
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Recorder {
    pub fn record(&self, verb: &str, resource: &str, code: u16) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            counts: self
                .counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The counters in Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP opkit_envtest_requests_total API requests by verb, resource and code.\n# TYPE opkit_envtest_requests_total counter\n",
        );
        for (verb, resource, code, n) in self.snapshot().iter() {
            let _ = writeln!(
                out,
                "opkit_envtest_requests_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
            );
        }
        out
    }
}
