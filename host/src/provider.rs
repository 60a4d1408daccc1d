//! What a token provider is asked (R2), and how it learns that it should stop.
//!
//! When to ask, and what an answer means, is the core's (`Step::FetchToken`,
//! `Client::handle_token_answer`); a driver runs the provider its own way (a thread,
//! a task) and hands the answer back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use authsync_core::{ErrorCode, TokenFetch};

/// What a provider is asked for: a token for this identifier, because of this code.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The identifier that needs a token.
    pub identifier: String,
    /// Why: the notice's code (`TOKEN_NOT_AVAILABLE`, `TOKEN_EXPIRING`, a 401's code).
    pub code: ErrorCode,
    /// The workspace's app id.
    pub app_id: String,
    /// How long the provider may take before it is cancelled.
    pub timeout: Duration,
    /// Set when the fetch is no longer wanted (its timeout passed, the client
    /// closed): a provider that runs a command stops it.
    pub cancellation: Cancellation,
}

impl TokenRequest {
    /// The request for a fetch the core asked for.
    #[must_use]
    pub fn for_fetch(fetch: &TokenFetch) -> Self {
        Self {
            identifier: fetch.identifier.clone(),
            code: fetch.code.clone(),
            app_id: fetch.app_id.clone(),
            timeout: Duration::from_millis(fetch.timeout_ms),
            cancellation: Cancellation::default(),
        }
    }
}

/// A flag a provider can check, or wait on, to learn that its fetch was cancelled.
///
/// ```
/// use std::time::Duration;
/// use authsync_host::Cancellation;
/// let cancellation = Cancellation::default();
/// assert!(!cancellation.wait(Duration::from_millis(1)));
/// cancellation.cancel();
/// assert!(cancellation.is_cancelled());
/// assert!(cancellation.wait(Duration::from_secs(60)), "returns at once");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancellation {
    inner: Arc<(AtomicBool, Mutex<()>, Condvar)>,
}

impl Cancellation {
    /// Cancels the fetch.
    pub fn cancel(&self) {
        let (flag, lock, wake) = &*self.inner;
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        flag.store(true, Ordering::SeqCst);
        wake.notify_all();
    }

    /// Whether the fetch was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Waits at most `timeout` for a cancellation; whether it came.
    #[must_use]
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, lock, wake) = &*self.inner;
        let held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (_held, _) = wake
            .wait_timeout_while(held, timeout, |()| !flag.load(Ordering::SeqCst))
            .unwrap_or_else(PoisonError::into_inner);
        flag.load(Ordering::SeqCst)
    }
}
