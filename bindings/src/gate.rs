//! The gate every call from authsync's threads into foreign code passes: it counts the
//! calls running, and once [`stop_foreign_calls`] has run it lets none through.
//!
//! Why: a Python interpreter that is exiting kills any thread that wants the GIL, and
//! the forced unwind through Rust frames aborts the process (see bindings/README.md).
//! The Python package's `atexit` hook closes the live clients, then calls
//! [`stop_foreign_calls`]: after it, no authsync thread enters Python again, and it
//! waits for the ones inside to come back. This decides nothing about sync: a listener
//! skipped, a provider that gives no token, a transport that cannot connect are what
//! the driver already handles.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

struct State {
    closed: bool,
    running: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    closed: false,
    running: 0,
});
static IDLE: Condvar = Condvar::new();

/// A foreign call in progress; dropping it ends it.
#[must_use]
pub(crate) struct ForeignCall(());

impl Drop for ForeignCall {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        state.running = state.running.saturating_sub(1);
        if state.running == 0 {
            IDLE.notify_all();
        }
    }
}

/// Starts a foreign call; `None` once foreign calls are stopped.
pub(crate) fn enter() -> Option<ForeignCall> {
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    if state.closed {
        return None;
    }
    state.running += 1;
    Some(ForeignCall(()))
}

/// A foreign object (listener, provider, transport) held by authsync's threads. Its
/// last drop tells the foreign side to release it, which is a call into foreign code
/// too: once foreign calls are stopped, it is leaked instead (the process is ending).
pub(crate) struct Foreign<T: ?Sized>(Option<Arc<T>>);

impl<T: ?Sized> Foreign<T> {
    pub(crate) fn new(object: Arc<T>) -> Self {
        Self(Some(object))
    }

    /// The object (`None` only while it is being dropped).
    pub(crate) fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T: ?Sized> Drop for Foreign<T> {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            match enter() {
                Some(_call) => drop(object),
                None => std::mem::forget(object),
            }
        }
    }
}

/// Stops every later call from authsync's threads into foreign code (listeners,
/// token providers, transports) in this process, then waits at most `timeout_ms` for
/// the calls still running to return. Returns whether none is left running.
///
/// For the end of the process: the Python package calls it from `atexit` after
/// closing its clients. Afterwards listeners are skipped, providers give no token and
/// transports fail to connect, for every client, for good.
#[uniffi::export]
pub fn stop_foreign_calls(timeout_ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    state.closed = true;
    while state.running > 0 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        state = IDLE
            .wait_timeout(state, remaining)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    true
}

/// How many calls into foreign code are running now (for tests and diagnostics).
#[uniffi::export]
pub fn foreign_calls_running() -> u64 {
    let running = STATE.lock().unwrap_or_else(PoisonError::into_inner).running;
    u64::try_from(running).unwrap_or(u64::MAX)
}
