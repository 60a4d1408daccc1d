//! The state shared by the server's connections and the admin handle.
//!
//! One mutex guards it all, held only for short, non-blocking updates (never across
//! an await or a signature check); a condition variable wakes tests waiting for
//! requests.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::dedupe::Dedupe;
use crate::faults::Fault;
use crate::records::{AcceptedBatch, AcceptedEvent, LoggedRequest, Stats};

/// Everything mutable.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: ServerConfig,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) batches: Vec<AcceptedBatch>,
    pub(crate) events: Vec<AcceptedEvent>,
    pub(crate) dedupe: Dedupe,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) stats: Stats,
}

impl State {
    /// Forgets recorded data, the dedupe store and pending faults; keeps the config.
    pub(crate) fn reset(&mut self) {
        self.log.clear();
        self.batches.clear();
        self.events.clear();
        self.dedupe.clear();
        self.faults.clear();
        self.stats = Stats::default();
    }
}

/// The state plus the signals around it.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Wakes the accept loop to stop.
    pub(crate) shutdown: Notify,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig) -> Self {
        Self {
            state: Mutex::new(State {
                config,
                log: Vec::new(),
                batches: Vec::new(),
                events: Vec::new(),
                dedupe: Dedupe::default(),
                faults: VecDeque::new(),
                stats: Stats::default(),
            }),
            changed: Condvar::new(),
            shutdown: Notify::new(),
        }
    }

    /// Locks the state. A panic elsewhere while it was held leaves plain data behind,
    /// still consistent enough for a test server, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks, changes, and wakes the waiters.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let result = f(&mut self.lock());
        self.changed.notify_all();
        result
    }

    /// Blocks until `done` holds or `timeout` passes; returns whether it holds.
    pub(crate) fn wait_until(
        &self,
        timeout: std::time::Duration,
        mut done: impl FnMut(&State) -> bool,
    ) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |state| !done(state))
            .unwrap_or_else(PoisonError::into_inner);
        done(&guard)
    }

    pub(crate) fn config(&self) -> ServerConfig {
        self.lock().config.clone()
    }

    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        self.update(|state| {
            let fault = state.faults.pop_front();
            if fault.is_some() {
                state.stats.faults_applied += 1;
            }
            fault
        })
    }

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.notify_one();
    }
}
