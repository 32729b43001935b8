//! Per-object exponential backoff with jitter.
//!
//! kube-runtime retries a failed reconcile after whatever the error policy returns but keeps no
//! per-object failure count. opkit keeps one: the n-th consecutive transient failure of an object
//! waits `base * 2^(n-1)` (1 s, 2 s, 4 s, ... by default), capped at `max` (5 min), plus a random
//! jitter of up to `jitter` of that delay so that many objects failing together do not retry in
//! lockstep. A success resets the count. Permanent errors do not back off: they wait for the next
//! spec change or for [`Backoff::permanent_retry`]; a forbidden request (HTTP 403, see
//! [`Error::is_forbidden`](crate::Error::is_forbidden)) is reported as permanent but backs off as a
//! transient one does, since a grant of the missing RBAC rule changes nothing on the object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// The retry policy of one controller.
///
/// ```
/// use std::time::Duration;
/// let backoff = opkit::Backoff::default();
/// assert_eq!(backoff.base, Duration::from_secs(1));
/// assert_eq!(backoff.max, Duration::from_secs(300));
/// assert_eq!(backoff.delay_without_jitter(1), Duration::from_secs(1));
/// assert_eq!(backoff.delay_without_jitter(3), Duration::from_secs(4));
/// assert_eq!(backoff.delay_without_jitter(30), Duration::from_secs(300));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound of the exponential delay (before jitter).
    pub max: Duration,
    /// Fraction of the delay added at random, `0.0..=1.0`.
    pub jitter: f64,
    /// How long a permanently failing object waits before it is looked at again when nothing changes.
    pub permanent_retry: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.1,
            permanent_retry: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay before retry after `failures` consecutive failures, jitter excluded.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fast = opkit::Backoff { base: Duration::from_millis(10), ..Default::default() };
    /// assert_eq!(fast.delay_without_jitter(2), Duration::from_millis(20));
    /// assert_eq!(fast.delay_without_jitter(0), Duration::ZERO);
    /// ```
    pub fn delay_without_jitter(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry after `failures` consecutive failures, with random jitter added.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = opkit::Backoff::default();
    /// let d = backoff.delay(2);
    /// assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2200));
    /// ```
    pub fn delay(&self, failures: u32) -> Duration {
        let delay = self.delay_without_jitter(failures);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || delay.is_zero() {
            return delay;
        }
        let extra = rand::rng().random_range(0.0..=jitter);
        delay + delay.mul_f64(extra)
    }
}

/// Consecutive failure counts per object, keyed by the object's uid or reference.
///
/// ```
/// let tracker = opkit::backoff::FailureTracker::default();
/// assert_eq!(tracker.record_failure("default/web"), 1);
/// assert_eq!(tracker.record_failure("default/web"), 2);
/// tracker.reset("default/web");
/// assert_eq!(tracker.failures("default/web"), 0);
/// ```
#[derive(Debug, Default)]
pub struct FailureTracker {
    counts: Mutex<HashMap<String, u32>>,
}

impl FailureTracker {
    /// Counts one more failure of `key` and returns the new count.
    ///
    /// ```
    /// let tracker = opkit::backoff::FailureTracker::default();
    /// assert_eq!(tracker.record_failure("uid-1"), 1);
    /// ```
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.to_owned()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` (after a success or once the object is gone).
    ///
    /// ```
    /// let tracker = opkit::backoff::FailureTracker::default();
    /// tracker.record_failure("uid-1");
    /// tracker.reset("uid-1");
    /// assert_eq!(tracker.failures("uid-1"), 0);
    /// ```
    pub fn reset(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// The current count of consecutive failures of `key`.
    ///
    /// ```
    /// let tracker = opkit::backoff::FailureTracker::default();
    /// assert_eq!(tracker.failures("never-failed"), 0);
    /// ```
    pub fn failures(&self, key: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_to_five_minutes() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=11)
            .map(|n| b.delay_without_jitter(n).as_secs())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.delay_without_jitter(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let b = Backoff::default();
        for n in 1..12 {
            let plain = b.delay_without_jitter(n);
            for _ in 0..50 {
                let d = b.delay(n);
                assert!(d >= plain && d <= plain.mul_f64(1.1) + Duration::from_nanos(1));
            }
        }
        let none = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(none.delay(4), Duration::from_secs(8));
    }

    #[test]
    fn tracker_counts_and_resets_per_object() {
        let t = FailureTracker::default();
        assert_eq!(t.record_failure("a"), 1);
        assert_eq!(t.record_failure("a"), 2);
        assert_eq!(t.record_failure("b"), 1);
        t.reset("a");
        assert_eq!(t.failures("a"), 0);
        assert_eq!(t.failures("b"), 1);
    }
}
