//! The in-process admin handle: inspect what the server saw, script faults, change
//! the configuration, reset. The HTTP routes of `admin_http` call the same methods.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Clock, ServerConfig};
use crate::faults::Fault;
use crate::records::{AcceptedBatch, AcceptedEvent, LoggedRequest, Stats};
use crate::state::Shared;

/// A cheap, cloneable handle on a running server's state (see [`crate::RefServer::admin`]).
#[derive(Clone)]
pub struct Admin {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Every non-admin request so far, oldest first, with its answer.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Every accepted event, in acceptance order (duplicates are not stored again).
    pub fn accepted_events(&self) -> Vec<AcceptedEvent> {
        self.shared.lock().events.clone()
    }

    /// Every accepted batch, in acceptance order.
    pub fn accepted_batches(&self) -> Vec<AcceptedBatch> {
        self.shared.lock().batches.clone()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Accepted events of one app id.
    pub fn accepted_count(&self, app_id: &str) -> usize {
        self.shared
            .lock()
            .stats
            .accepted_by_app
            .get(app_id)
            .copied()
            .unwrap_or(0)
    }

    /// Accepted events, all app ids.
    pub fn total_accepted(&self) -> usize {
        self.shared.lock().stats.accepted_events
    }

    /// Requests answered `duplicate: true`.
    pub fn duplicate_count(&self) -> usize {
        self.shared.lock().stats.duplicates
    }

    /// Queues a fault for the next request to `/v1/report` after those already queued.
    pub fn push_fault(&self, fault: impl Into<Fault>) {
        let fault = fault.into();
        self.shared.update(|state| state.faults.push_back(fault));
    }

    /// Queues several faults, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let faults: Vec<Fault> = faults.into_iter().collect();
        self.shared.update(|state| state.faults.extend(faults));
    }

    /// The faults still waiting, next first.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.iter().cloned().collect()
    }

    /// Drops the waiting faults.
    pub fn clear_faults(&self) {
        self.shared.update(|state| state.faults.clear());
    }

    /// The current configuration.
    pub fn config(&self) -> ServerConfig {
        self.shared.config()
    }

    /// Replaces the configuration (`bind` is ignored: the listener stays where it is).
    /// Requests that arrive afterwards use it.
    pub fn set_config(&self, config: ServerConfig) {
        self.shared.update(|state| {
            let bind = state.config.bind;
            state.config = config;
            state.config.bind = bind;
        });
    }

    /// Changes the configuration in place (`bind` changes are ignored).
    pub fn update_config(&self, change: impl FnOnce(&mut ServerConfig)) {
        self.shared.update(|state| {
            let bind = state.config.bind;
            change(&mut state.config);
            state.config.bind = bind;
        });
    }

    /// Sets the clock of the time checks.
    pub fn set_clock(&self, clock: Clock) {
        self.update_config(|config| config.clock = clock);
    }

    /// Forgets the request log, accepted batches and events, the dedupe store, the
    /// counters and the waiting faults. The configuration stays.
    pub fn reset(&self) {
        self.shared.update(crate::state::State::reset);
    }

    /// Waits until at least `count` requests are logged; false on timeout.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| state.log.len() >= count)
    }

    /// Waits until at least `count` events are accepted; false on timeout.
    pub fn wait_for_accepted(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| state.stats.accepted_events >= count)
    }

    /// Asks the server to stop (as `POST /admin/shutdown` does); returns at once.
    pub fn request_shutdown(&self) {
        self.shared.request_shutdown();
    }
}
