//! When a workspace has nothing more to send, and what it reports then.
//!
//! The predicate is the drivers' `settle`: the core says what could still be sent and
//! when (`Client::outlook`); the driver adds what it still holds (work not yet done,
//! a request or a token provider still running).

use authsync_core::{Client as Core, Totals};

/// What a workspace still had to send when a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingReport {
    /// Events neither acknowledged nor dropped.
    pub pending_events: u64,
    /// Whether a request was still in flight.
    pub in_flight: bool,
    /// Whether everything that could be sent in the time given was sent: what is left
    /// (if anything) waits for a token, a session start, or a backoff past the deadline.
    pub settled: bool,
    /// The install's running totals.
    pub totals: Totals,
}

impl PendingReport {
    /// The report for `core`.
    #[must_use]
    pub fn of(core: &Core, settled: bool) -> Self {
        let totals = core.totals();
        Self {
            pending_events: totals.pending(),
            in_flight: core.outlook().in_flight,
            settled,
            totals,
        }
    }
}

/// Whether nothing more can be sent before the monotonic instant `horizon_mono_ms`:
/// the driver holds no work (`driver_idle`: nothing queued, nothing being sent or
/// told, no token provider running) and the core has no request in flight and none
/// due before the horizon.
#[must_use]
pub fn is_settled(core: &Core, driver_idle: bool, horizon_mono_ms: u64) -> bool {
    let outlook = core.outlook();
    driver_idle
        && !outlook.in_flight
        && outlook
            .next_send_mono_ms
            .is_none_or(|at| at > horizon_mono_ms)
}
