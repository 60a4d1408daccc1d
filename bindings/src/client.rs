//! [`AuthsyncClient`]: the blocking driver's `Client` (its default workspace), with
//! foreign types. Every method forwards to the driver; nothing is decided here.

use std::sync::Arc;
use std::time::Duration;

use authsync_blocking::{
    Client, IgnoredBecause, JwtAuthenticationDetails, Workspace, WorkspaceOptions,
};

use crate::callbacks::{self, AuthenticationListener, ForeignTransport, TokenProvider, Transport};
use crate::config::ClientConfig;
use crate::error::AuthsyncError;

/// Running totals of the install (D1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Totals {
    /// Events accepted by `track`.
    pub tracked: u64,
    /// Events in batches the server acknowledged.
    pub acked: u64,
    /// Events dropped (too large, rejected, a logged-out user's data...).
    pub dropped: u64,
    /// Events neither acknowledged nor dropped.
    pub pending: u64,
}

impl From<authsync_blocking::Totals> for Totals {
    fn from(totals: authsync_blocking::Totals) -> Self {
        Self {
            tracked: totals.tracked,
            acked: totals.acked,
            dropped: totals.dropped,
            pending: totals.pending(),
        }
    }
}

/// What was still pending after a wait or a shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
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

impl From<authsync_blocking::PendingReport> for PendingReport {
    fn from(report: authsync_blocking::PendingReport) -> Self {
        Self {
            pending_events: report.pending_events,
            in_flight: report.in_flight,
            settled: report.settled,
            totals: report.totals.into(),
        }
    }
}

/// Why a call changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum IgnoredReason {
    /// A token passed with JWT disabled, in `Live` or with the validator off (V1).
    JwtDisabled,
    /// Logout while anonymous (L5).
    AlreadyAnonymous,
    /// Identify with the current user's id (U2).
    AlreadyIdentified,
    /// The token is the identifier's current token already (T2).
    SameToken,
    /// The token is the one the server rejected (A2).
    RejectedToken,
    /// A reason this version of the bindings does not know yet.
    Other,
}

/// What a call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Outcome {
    /// The call took effect.
    Applied,
    /// The call changed nothing.
    Ignored {
        /// Why.
        reason: IgnoredReason,
    },
}

impl From<authsync_blocking::Outcome> for Outcome {
    fn from(outcome: authsync_blocking::Outcome) -> Self {
        let reason = match outcome {
            authsync_blocking::Outcome::Applied => return Self::Applied,
            authsync_blocking::Outcome::Ignored(reason) => reason,
        };
        Self::Ignored {
            reason: match reason {
                IgnoredBecause::JwtDisabled => IgnoredReason::JwtDisabled,
                IgnoredBecause::AlreadyAnonymous => IgnoredReason::AlreadyAnonymous,
                IgnoredBecause::AlreadyIdentified => IgnoredReason::AlreadyIdentified,
                IgnoredBecause::SameToken => IgnoredReason::SameToken,
                IgnoredBecause::RejectedToken => IgnoredReason::RejectedToken,
                _ => IgnoredReason::Other,
            },
        }
    }
}

/// An authsync client, addressed at one of its workspaces (W1): its own threads send
/// the app's events in batches to the ingestion server, authenticating identified
/// users' batches with the JWT the app's backend signs. Every method may be called
/// from any thread; inputs return once their records are written.
///
/// The constructor gives the handle of the default workspace; `add_workspace` and
/// `workspace(app_id)` give handles of others, as the original SDK's `workspaceId`
/// arguments do. Inputs and getters act on the handle's workspace; `shutdown` and
/// `close` end the whole client, every workspace.
///
/// End it with `shutdown` (sends what it can first) or `close` (keeps what is pending
/// in the state directory for the next start). A client whose handles are all
/// garbage-collected closes without waiting.
#[derive(Debug, uniffi::Object)]
pub struct AuthsyncClient {
    client: Client,
    workspace: Workspace,
}

/// The options for `config` with the app's callbacks.
fn options_with(
    config: ClientConfig,
    listener: Option<Arc<dyn AuthenticationListener>>,
    token_provider: Option<Arc<dyn TokenProvider>>,
    transport: Option<Arc<dyn Transport>>,
) -> WorkspaceOptions {
    let mut options = config.options();
    if let Some(listener) = listener {
        options = options.authentication_listener(callbacks::listener(listener));
    }
    if let Some(provider) = token_provider {
        options = options.token_provider(callbacks::provider(provider));
    }
    if let Some(transport) = transport {
        options = options.http_transport(Arc::new(ForeignTransport::new(transport)));
    }
    options
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[uniffi::export]
impl AuthsyncClient {
    /// Starts a client: opens (or creates) its state, restores it, and starts its
    /// threads. `listener` hears every notice from the start; `token_provider` is asked
    /// for tokens (R2); `transport` sends the requests instead of the built-in HTTP
    /// client.
    ///
    /// # Errors
    /// [`AuthsyncError::InvalidConfig`], [`AuthsyncError::StateDirectory`],
    /// [`AuthsyncError::StartFailed`].
    #[uniffi::constructor(default(listener = None, token_provider = None, transport = None))]
    pub fn new(
        config: ClientConfig,
        listener: Option<Arc<dyn AuthenticationListener>>,
        token_provider: Option<Arc<dyn TokenProvider>>,
        transport: Option<Arc<dyn Transport>>,
    ) -> Result<Arc<Self>, AuthsyncError> {
        let client = Client::start(options_with(config, listener, token_provider, transport))?;
        let workspace = (*client).clone();
        Ok(Arc::new(Self { client, workspace }))
    }

    /// Adds a workspace to the client, named by its config's app id, with callbacks
    /// of its own; returns its handle.
    ///
    /// # Errors
    /// [`AuthsyncError::DuplicateWorkspace`], or as the constructor.
    #[uniffi::method(default(listener = None, token_provider = None, transport = None))]
    pub fn add_workspace(
        &self,
        config: ClientConfig,
        listener: Option<Arc<dyn AuthenticationListener>>,
        token_provider: Option<Arc<dyn TokenProvider>>,
        transport: Option<Arc<dyn Transport>>,
    ) -> Result<Arc<Self>, AuthsyncError> {
        let options = options_with(config, listener, token_provider, transport);
        let workspace = self.client.add_workspace(options)?;
        Ok(Arc::new(Self {
            client: self.client.clone(),
            workspace,
        }))
    }

    /// The handle of the client's workspace with this app id (the default one's
    /// included).
    ///
    /// # Errors
    /// [`AuthsyncError::UnknownWorkspace`].
    pub fn workspace(&self, app_id: String) -> Result<Arc<Self>, AuthsyncError> {
        Ok(Arc::new(Self {
            client: self.client.clone(),
            workspace: self.client.workspace(&app_id)?,
        }))
    }

    /// The app ids of the client's workspaces, the default one first.
    pub fn workspace_ids(&self) -> Vec<String> {
        self.client.workspace_ids()
    }

    /// The app id of the handle's workspace.
    pub fn app_id(&self) -> String {
        self.workspace.app_id().to_owned()
    }

    /// Tracks an event for the current user; `attrs_json` is a JSON object of at most
    /// 32 KiB (V2). Returns the event's sequence number.
    ///
    /// # Errors
    /// [`AuthsyncError::InvalidEvent`] (nothing queued), [`AuthsyncError::NotStored`],
    /// [`AuthsyncError::ShutDown`].
    #[uniffi::method(default(attrs_json = "{}"))]
    pub fn track(&self, name: String, attrs_json: String) -> Result<u64, AuthsyncError> {
        let attrs: serde_json::Value =
            serde_json::from_str(&attrs_json).map_err(|e| AuthsyncError::InvalidEvent {
                reason: format!("event attributes are not JSON: {e}"),
            })?;
        Ok(self.workspace.track(&name, &attrs)?.seq)
    }

    /// Identifies the current user (U2).
    ///
    /// # Errors
    /// [`AuthsyncError::InvalidIdentifier`], [`AuthsyncError::NotStored`],
    /// [`AuthsyncError::ShutDown`].
    pub fn identify(&self, identifier: String) -> Result<Outcome, AuthsyncError> {
        Ok(self.workspace.identify(&identifier)?.into())
    }

    /// Passes a token for an identifier (T1, T2, V1): the original SDK's
    /// `passAuthenticationDetails`.
    ///
    /// # Errors
    /// [`AuthsyncError::InvalidToken`], [`AuthsyncError::InvalidIdentifier`],
    /// [`AuthsyncError::JwtDisabled`], [`AuthsyncError::NotStored`],
    /// [`AuthsyncError::ShutDown`].
    pub fn pass_authentication_details(
        &self,
        token: String,
        identifier: String,
    ) -> Result<Outcome, AuthsyncError> {
        let details = JwtAuthenticationDetails::new(token, identifier);
        Ok(self.workspace.pass_authentication_details(&details)?.into())
    }

    /// Adds an authentication listener after those already registered.
    pub fn register_authentication_listener(&self, listener: Arc<dyn AuthenticationListener>) {
        self.workspace
            .register_authentication_listener(callbacks::listener(listener));
    }

    /// Logs the identified user out (L1-L5).
    ///
    /// # Errors
    /// [`AuthsyncError::NotStored`], [`AuthsyncError::ShutDown`].
    pub fn logout(&self) -> Result<Outcome, AuthsyncError> {
        Ok(self.workspace.logout()?.into())
    }

    /// Starts a session (SS1): lifts a lockout, sends what waited for a session.
    ///
    /// # Errors
    /// [`AuthsyncError::NotStored`], [`AuthsyncError::ShutDown`].
    pub fn session_start(&self) -> Result<(), AuthsyncError> {
        Ok(self.workspace.session_start()?)
    }

    /// Seals the open batch so that it goes as soon as the rules allow; returns at once.
    ///
    /// # Errors
    /// [`AuthsyncError::NotStored`], [`AuthsyncError::ShutDown`].
    pub fn flush(&self) -> Result<(), AuthsyncError> {
        Ok(self.workspace.flush()?)
    }

    /// Flushes, then waits at most `timeout_ms` until nothing more can be sent, and
    /// reports what is still pending.
    ///
    /// # Errors
    /// [`AuthsyncError::ShutDown`].
    pub fn flush_and_wait(&self, timeout_ms: u64) -> Result<PendingReport, AuthsyncError> {
        Ok(self.workspace.flush_and_wait(millis(timeout_ms))?.into())
    }

    /// What is pending right now.
    pub fn pending(&self) -> PendingReport {
        self.workspace.pending().into()
    }

    /// Flushes every workspace, waits at most `timeout_ms` (in all) for what can be
    /// sent, stops the threads and syncs the state. Reports what the handle's
    /// workspace still had pending (kept in the state directory for the next start).
    /// Later inputs raise `ShutDown`; getters answer.
    pub fn shutdown(&self, timeout_ms: u64) -> PendingReport {
        let app_id = self.workspace.app_id();
        self.client
            .shutdown(millis(timeout_ms))
            .into_iter()
            .find(|(id, _)| id == app_id)
            .map_or_else(
                || self.workspace.pending().into(),
                |(_, report)| report.into(),
            )
    }

    /// Closes every workspace without flushing: no new request, token fetches
    /// stopped, the state synced, waiting at most `timeout_ms` for a request in
    /// flight. What is pending stays in the state directory for the next start.
    /// Later inputs raise `ShutDown`.
    /// The Python package calls it for every live client at interpreter exit.
    #[uniffi::method(default(timeout_ms = 5000))]
    pub fn close(&self, timeout_ms: u64) {
        self.client.close(millis(timeout_ms));
    }

    /// Running totals of the install (D1).
    pub fn totals(&self) -> Totals {
        self.workspace.totals().into()
    }

    /// The identified current user; `None` when the current user is anonymous.
    pub fn current_identifier(&self) -> Option<String> {
        self.workspace
            .current_user()
            .identifier()
            .map(str::to_owned)
    }

    /// Whether a lockout holds (A3): nothing is sent until the next session start.
    pub fn is_locked_out(&self) -> bool {
        self.workspace.is_locked_out()
    }

    /// The install's seed (U1).
    pub fn seed(&self) -> u64 {
        self.workspace.seed()
    }
}
