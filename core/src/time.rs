//! Time as plain integers.
//!
//! The core never reads a clock (DT1). Every input carries a [`Now`]: a monotonic part
//! for timers, and the wall clock for event stamps and the JWT `exp` claim. Both are
//! milliseconds so that tests and fuzzers can build any instant from an integer.
//!
//! This module owns the conversion between the two: timers are run in monotonic
//! terms, but timers that must survive a restart are persisted in wall-clock terms and
//! turned back into monotonic ones when the state is restored.

/// The current time, as the driver read it just before calling the core.
///
/// `mono_ms` is any monotonic millisecond count (its origin is the driver's choice;
/// it restarts with the process). `unix_ms` is the wall clock, in milliseconds since
/// the Unix epoch.
///
/// Time going backwards is tolerated: a monotonic value lower than one already seen is
/// treated as the one already seen, and nothing overflows.
///
/// ```
/// use authsync_core::Now;
/// let now = Now::new(1_000, 1_700_000_000_000);
/// assert_eq!(now.mono_ms, 1_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Now {
    /// Monotonic milliseconds; drives every timer.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch; stamps events, reads `exp`.
    pub unix_ms: u64,
}

impl Now {
    /// Builds a time from its two parts.
    #[must_use]
    pub const fn new(mono_ms: u64, unix_ms: u64) -> Self {
        Self { mono_ms, unix_ms }
    }

    /// The same instant moved forward by `ms` on both clocks (saturating), for tests
    /// and simulations.
    ///
    /// ```
    /// use authsync_core::Now;
    /// let later = Now::new(0, 1_000).plus_ms(500);
    /// assert_eq!(later, Now::new(500, 1_500));
    /// ```
    #[must_use]
    pub const fn plus_ms(self, ms: u64) -> Self {
        Self {
            mono_ms: self.mono_ms.saturating_add(ms),
            unix_ms: self.unix_ms.saturating_add(ms),
        }
    }
}

/// The latest time the core has seen; makes the monotonic clock never go back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    now: Now,
}

impl Clock {
    pub(crate) const fn new(now: Now) -> Self {
        Self { now }
    }

    /// Takes a new reading. A monotonic reading below the last one keeps the last one,
    /// so deadlines already computed stay meaningful.
    pub(crate) fn advance(&mut self, reading: Now) -> Now {
        self.now = Now {
            mono_ms: self.now.mono_ms.max(reading.mono_ms),
            unix_ms: reading.unix_ms,
        };
        self.now
    }

    pub(crate) const fn now(&self) -> Now {
        self.now
    }

    /// The monotonic instant at which the wall clock will read `unix_ms`, assuming both
    /// clocks advance together from now. Past wall instants map to now.
    pub(crate) const fn mono_at_unix(&self, unix_ms: u64) -> u64 {
        self.now
            .mono_ms
            .saturating_add(unix_ms.saturating_sub(self.now.unix_ms))
    }

    /// Like [`Clock::mono_at_unix`], but never further than `max_ms` from now: a wall
    /// deadline restored after the wall clock jumped back cannot stretch a wait past
    /// the longest wait the rule that set it allows.
    pub(crate) fn mono_at_unix_capped(&self, unix_ms: u64, max_ms: u64) -> u64 {
        let wait = unix_ms.saturating_sub(self.now.unix_ms).min(max_ms);
        self.now.mono_ms.saturating_add(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_back() {
        let mut clock = Clock::new(Now::new(100, 5_000));
        let now = clock.advance(Now::new(50, 4_000));
        assert_eq!(now, Now::new(100, 4_000));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut clock = Clock::new(Now::new(u64::MAX, u64::MAX));
        clock.advance(Now::new(0, 0));
        assert_eq!(clock.mono_at_unix(u64::MAX), u64::MAX);
        assert_eq!(
            Now::new(u64::MAX, u64::MAX).plus_ms(1),
            Now::new(u64::MAX, u64::MAX)
        );
    }
}
