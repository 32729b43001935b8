//! The clock behind the times opkit writes (conditions' `lastTransitionTime`) and measures
//! (time to first Ready), replaceable so tests can move time instead of sleeping.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
///
/// ```
/// use opkit::clock::{Clock, ManualClock};
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(jiff::SignedDuration::from_secs(90));
/// assert_eq!(clock.now().to_string(), "2026-01-01T00:01:30Z");
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock: the default.
///
/// ```
/// use opkit::clock::{Clock, SystemClock};
/// assert!(SystemClock.now() > jiff::Timestamp::UNIX_EPOCH);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to; give it to
/// [`Manager::clock`](crate::Manager::clock) in tests.
///
/// ```
/// use opkit::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(jiff::Timestamp::UNIX_EPOCH);
/// assert_eq!(clock.now(), jiff::Timestamp::UNIX_EPOCH);
/// clock.set("2030-05-01T12:00:00Z".parse().unwrap());
/// assert_eq!(clock.now().to_string(), "2030-05-01T12:00:00Z");
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    ///
    /// ```
    /// let clock = opkit::clock::ManualClock::new(jiff::Timestamp::UNIX_EPOCH);
    /// # let _ = clock;
    /// ```
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock by `by` (saturating at the ends of the representable range).
    ///
    /// ```
    /// use opkit::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new(jiff::Timestamp::UNIX_EPOCH);
    /// clock.advance(jiff::SignedDuration::from_secs(1));
    /// assert_eq!(clock.now().as_second(), 1);
    /// ```
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.saturating_add(by).unwrap_or(*now);
    }

    /// Sets the clock to `to`.
    ///
    /// ```
    /// use opkit::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new(jiff::Timestamp::UNIX_EPOCH);
    /// clock.set(jiff::Timestamp::from_second(60).unwrap());
    /// assert_eq!(clock.now().as_second(), 60);
    /// ```
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parses a flag's duration such as `15s`, `1m30s` or `500ms`.
#[cfg(feature = "cli")]
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let parsed: SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration such as 15s or 1m30s: {e}"))?;
    std::time::Duration::try_from(parsed).map_err(|_| format!("{s:?} is negative"))
}
