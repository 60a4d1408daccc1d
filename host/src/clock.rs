//! The real clocks, read by drivers and handed to the core as [`Now`].
//!
//! The monotonic part counts milliseconds from the clock's creation; the wall part is
//! the system clock. A wall clock set before 1970 reads as 0 rather than failing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_core::Now;

/// Reads both clocks.
///
/// ```
/// let clock = authsync_host::SystemClock::new();
/// let now = clock.now();
/// assert!(now.unix_ms > 1_600_000_000_000);
/// assert!(clock.instant_at(now.mono_ms) <= std::time::Instant::now());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemClock {
    /// A clock whose monotonic milliseconds start now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// The current time for the core.
    #[must_use]
    pub fn now(&self) -> Now {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, saturating_ms);
        Now::new(saturating_ms(self.origin.elapsed()), unix_ms)
    }

    /// The `Instant` at which the monotonic clock reads `mono_ms`, for sleeping until a
    /// core deadline.
    #[must_use]
    pub fn instant_at(&self, mono_ms: u64) -> Instant {
        self.origin
            .checked_add(Duration::from_millis(mono_ms))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
    }
}

fn saturating_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
