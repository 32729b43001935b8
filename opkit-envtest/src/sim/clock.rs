//! Where the simulation reads the time.

use jiff::Timestamp;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the simulation reads the time, for CronJob schedules and status timestamps.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to, so tests can make CronJobs due.
///
/// ```
/// use opkit_envtest::sim::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
/// let clock = ManualClock::new(start);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().to_string(), "2030-01-01T00:01:30Z");
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let span = jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX);
        *now = now.saturating_add(span).unwrap_or(*now);
    }

    /// Sets the clock.
    pub fn set(&self, at: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rfc3339;

    #[test]
    fn manual_clock_moves_when_told() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap_or_default();
        let clock = ManualClock::new(at("2030-01-01T00:00:00Z"));
        clock.advance(Duration::from_secs(61));
        assert_eq!(rfc3339(clock.now()), "2030-01-01T00:01:01Z");
        clock.set(at("2031-01-01T00:00:00Z"));
        assert_eq!(rfc3339(clock.now()), "2031-01-01T00:00:00Z");
    }
}
