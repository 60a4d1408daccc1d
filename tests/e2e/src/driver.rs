//! What the suites need of a driver, whatever its threading.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use authsync_blocking::{AuthNotice, Event, TokenRequest};
use authsync_core::{Config, Outcome, Totals};

/// A token provider for the suites.
pub type Provider = Arc<dyn Fn(&TokenRequest) -> Option<String> + Send + Sync>;

/// How a suite starts a workspace.
#[derive(Clone)]
pub struct Options {
    /// The core's configuration.
    pub config: Config,
    /// Where the state lives; `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// The seed of a new install.
    pub seed: u64,
    /// A token provider (R2).
    pub provider: Option<Provider>,
    /// Register a listener that panics before the recording one (LS1).
    pub panicking_listener: bool,
}

impl Options {
    /// In memory, seed 7, no provider.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state_dir: None,
            seed: 7,
            provider: None,
            panicking_listener: false,
        }
    }

    /// Keeps the state in `dir`.
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Uses `provider`.
    #[must_use]
    pub fn provider(
        mut self,
        provider: impl Fn(&TokenRequest) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }
}

/// What the listener heard and the observer saw, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    notices: Arc<Mutex<Vec<AuthNotice>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// Records a notice (the listener).
    pub fn hear(&self, notice: &AuthNotice) {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notice.clone());
    }

    /// Records an event (the observer).
    pub fn see(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
    }

    /// The codes heard so far.
    #[must_use]
    pub fn codes(&self) -> Vec<String> {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|n| n.code.to_string())
            .collect()
    }

    /// The notices heard so far.
    #[must_use]
    pub fn notices(&self) -> Vec<AuthNotice> {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events seen so far.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a wait for the workspace to settle found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    /// Whether nothing more could be sent.
    pub settled: bool,
    /// Events still pending.
    pub pending: u64,
}

/// A driver, as the suites see it: one workspace's handle.
pub trait Driver: Sized + Send + Sync + 'static {
    /// Starts a client with `options` as its default workspace.
    ///
    /// # Errors
    /// The driver's start error, as text.
    fn start(options: Options, recorder: Recorder) -> Result<Self, String>;
    /// Adds a workspace to the same client.
    ///
    /// # Errors
    /// The driver's start error, as text.
    fn add_workspace(&self, options: Options, recorder: Recorder) -> Result<Self, String>;
    /// `track`; returns the event's seq.
    ///
    /// # Errors
    /// The driver's refusal, as text.
    fn track(&self, name: &str, attrs: &serde_json::Value) -> Result<u64, String>;
    /// `identify`.
    ///
    /// # Errors
    /// The driver's refusal, as text.
    fn identify(&self, id: &str) -> Result<(), String>;
    /// `pass_authentication_details`.
    ///
    /// # Errors
    /// The driver's refusal, as text.
    fn pass_token(&self, token: &str, identifier: &str) -> Result<Outcome, String>;
    /// `logout`.
    ///
    /// # Errors
    /// The driver's refusal, as text.
    fn logout(&self) -> Result<(), String>;
    /// `session_start`.
    ///
    /// # Errors
    /// The driver's refusal, as text.
    fn session_start(&self) -> Result<(), String>;
    /// Flushes and waits until nothing more can be sent within `timeout`.
    fn flush_and_wait(&self, timeout: Duration) -> Settled;
    /// The install's totals.
    fn totals(&self) -> Totals;
    /// Whether a lockout holds.
    fn is_locked_out(&self) -> bool;
    /// Stops the client without flushing (a process that ends).
    fn close(&self);
}
