//! The clocks an engine reads and hands to the core as [`Now`]: the real one, and one
//! that moves only when told, for tests of a host's loop.
//!
//! The monotonic part counts milliseconds from the clock's creation; the wall part is
//! the system clock. A wall clock set before 1970 reads as 0 rather than failing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_core::Now;

/// What an engine reads the time from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time for the core.
    fn now(&self) -> Now;
    /// The `Instant` at which the monotonic clock reads `mono_ms`, for a driver that
    /// sleeps until a core deadline.
    fn instant_at(&self, mono_ms: u64) -> Instant;
}

/// A clock that moves only when [`ManualClock::advance`] is called: a host's loop
/// driven by it is exact and repeats (the fault-injection tests run so).
///
/// ```
/// use authsync_host::{Clock, ManualClock};
/// let clock = ManualClock::new(authsync_core::Now::new(1_000, 1_700_000_000_000));
/// clock.advance(250);
/// assert_eq!(clock.now(), authsync_core::Now::new(1_250, 1_700_000_000_250));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    mono_ms: Arc<AtomicU64>,
    start: Now,
}

impl ManualClock {
    /// A clock that reads `start` until advanced.
    #[must_use]
    pub fn new(start: Now) -> Self {
        Self {
            mono_ms: Arc::new(AtomicU64::new(start.mono_ms)),
            start,
        }
    }

    /// Moves both clocks `ms` forward (every clone sees it).
    pub fn advance(&self, ms: u64) {
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Now {
        let mono_ms = self.mono_ms.load(Ordering::SeqCst);
        let elapsed = mono_ms.saturating_sub(self.start.mono_ms);
        Now::new(mono_ms, self.start.unix_ms.saturating_add(elapsed))
    }

    fn instant_at(&self, mono_ms: u64) -> Instant {
        let ahead = mono_ms.saturating_sub(self.mono_ms.load(Ordering::SeqCst));
        Instant::now() + Duration::from_millis(ahead.min(86_400_000))
    }
}

/// Reads both clocks.
///
/// ```
/// use authsync_host::{Clock, SystemClock};
/// let clock = SystemClock::new();
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
}

impl Clock for SystemClock {
    fn now(&self) -> Now {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, saturating_ms);
        Now::new(saturating_ms(self.origin.elapsed()), unix_ms)
    }

    fn instant_at(&self, mono_ms: u64) -> Instant {
        self.origin
            .checked_add(Duration::from_millis(mono_ms))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
    }
}

fn saturating_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
