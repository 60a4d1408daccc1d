//! The handles an app holds: [`Client`] (all workspaces, the default one first) and
//! [`Workspace`] (one of them). Both are cheap to clone and usable from any thread.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authsync_core::{AuthNotice, Event, Outcome, Owner, PreparedEvent, Totals, TrackReceipt};
use authsync_host::{
    Error, JwtAuthenticationDetails, Named, PendingReport, StartError, Workspaces,
};
use serde::Serialize;

use crate::provider::WorkspaceOptions;
use crate::workspace::Shared;

/// One workspace (W1): its own core, state directory, listeners and driver thread.
///
/// Every method may be called from any thread. Inputs return once the core has taken
/// them and their records are written, so a `track` that returned survives a crash.
#[derive(Clone)]
pub struct Workspace {
    shared: Arc<Shared>,
}

impl Named for Workspace {
    fn app_id(&self) -> &str {
        self.shared.app_id()
    }

    fn close_soon(&self) {
        self.shared.stop_soon();
    }
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Workspace({})", self.app_id())
    }
}

impl Workspace {
    /// The workspace's app id.
    #[must_use]
    pub fn app_id(&self) -> &str {
        self.shared.app_id()
    }

    /// Tracks an event for the current user (V2: `attrs` must serialize to a JSON object
    /// of at most 32 KiB).
    ///
    /// # Errors
    /// [`Error::Event`] for an invalid event (nothing queued), [`Error::NotStored`]
    /// when storage failed (the event is kept in memory, D4), [`Error::ShutDown`].
    pub fn track<A: Serialize + ?Sized>(
        &self,
        name: &str,
        attrs: &A,
    ) -> Result<TrackReceipt, Error> {
        // Encoded before the driver's lock is taken: serializing `attrs` is most of a
        // track, and the driver thread needs that lock to send.
        let event = PreparedEvent::new(name, attrs)?;
        self.shared
            .input(|core, now| core.handle_track_prepared(now, &event))
    }

    /// Identifies the current user (U2).
    ///
    /// # Errors
    /// [`Error::Identify`] for an empty or over-long identifier.
    pub fn identify(&self, identifier: &str) -> Result<Outcome, Error> {
        Ok(self
            .shared
            .input(|core, now| core.handle_identify(now, identifier))??)
    }

    /// Passes a token for an identifier (T1, T2, V1): the original SDK's `passAuthenticationDetails`.
    ///
    /// # Errors
    /// [`Error::AuthDetails`] for a malformed token, or for JWT disabled in `Test` with
    /// the validator on; nothing is stored.
    pub fn pass_authentication_details(
        &self,
        details: &JwtAuthenticationDetails,
    ) -> Result<Outcome, Error> {
        Ok(self.shared.input(|core, now| {
            core.handle_authentication_details(now, &details.token, &details.identifier)
        })??)
    }

    /// Registers an authentication listener (A2, S5, R1): the original SDK's
    /// `registerAuthenticationListener`. Listeners are called in registration order,
    /// one at a time, on the workspace's thread; one that panics is logged and skipped.
    pub fn register_authentication_listener(
        &self,
        listener: impl Fn(&AuthNotice) + Send + Sync + 'static,
    ) {
        self.shared
            .with(|engine| engine.listeners_mut().register(Arc::new(listener)));
    }

    /// Registers an observer of the sync timeline (sends, answers, notices, drops,
    /// storage trouble).
    pub fn add_observer(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.shared
            .with(|engine| engine.listeners_mut().observe(Arc::new(observer)));
    }

    /// Logs the identified user out (L1–L5).
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub fn logout(&self) -> Result<Outcome, Error> {
        self.shared.input(|core, now| core.handle_logout(now))
    }

    /// Starts a session (SS1).
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub fn session_start(&self) -> Result<(), Error> {
        self.shared
            .input(|core, now| core.handle_session_start(now))
    }

    /// Seals the open batch so that it goes as soon as the rules allow; returns at once.
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub fn flush(&self) -> Result<(), Error> {
        self.shared.input(|core, now| core.handle_flush(now))
    }

    /// Flushes, then waits until nothing more can be sent within `timeout` (what is
    /// left, if anything, waits for a token, a session start or a longer backoff), and
    /// reports what is still pending.
    ///
    /// # Errors
    /// As [`Workspace::flush`].
    pub fn flush_and_wait(&self, timeout: Duration) -> Result<PendingReport, Error> {
        self.flush().or_else(Error::taken)?;
        Ok(self.shared.wait_settled(timeout))
    }

    /// Waits like [`Workspace::flush_and_wait`] without flushing (the open batch keeps
    /// its flush interval).
    #[must_use]
    pub fn wait_settled(&self, timeout: Duration) -> PendingReport {
        self.shared.wait_settled(timeout)
    }

    /// What is pending right now.
    #[must_use]
    pub fn pending(&self) -> PendingReport {
        self.shared.with(|engine| engine.report(Instant::now()))
    }

    /// Running totals of the install (D1).
    #[must_use]
    pub fn totals(&self) -> Totals {
        self.shared.with(|engine| engine.client().totals())
    }

    /// The user new events belong to.
    #[must_use]
    pub fn current_user(&self) -> Owner {
        self.shared
            .with(|engine| engine.client().current_user().clone())
    }

    /// Whether a lockout holds (A3).
    #[must_use]
    pub fn is_locked_out(&self) -> bool {
        self.shared.with(|engine| engine.client().is_locked_out())
    }

    /// The install's seed (U1).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.shared.with(|engine| engine.client().seed())
    }

    fn shutdown(&self, deadline: Instant) -> PendingReport {
        let _ = self.flush();
        let report = self
            .shared
            .wait_settled(deadline.saturating_duration_since(Instant::now()));
        self.shared.stop(deadline);
        report
    }
}

/// The app's handle: a default workspace, and any others added (W1). Its methods are
/// the default workspace's, as the original SDK's are when no workspace id is given;
/// [`Client::workspace`] names another. Cheap to clone; `Send + Sync`. When the last
/// clone is dropped, every workspace closes after its current request.
///
/// ```
/// use std::time::Duration;
/// use authsync_blocking::{Client, Config, JwtAuthenticationDetails, WorkspaceOptions};
/// use serde_json::json;
/// # use authsync_refserver::{RefServer, ServerConfig, keys, mint::{mint, Claims, MintOptions}};
/// # let server = RefServer::start(ServerConfig::new().with_test_keys().access_log(false))?;
/// # let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64 + 600;
/// # let token_from_your_backend = mint(&keys::rsa_a(), &Claims::for_subject("user-42").exp(exp), &MintOptions::new())?;
/// # let state = tempfile::tempdir()?;
///
/// let config = Config::new("app-123", server.url()).with_jwt(true);
/// let client = Client::start(WorkspaceOptions::new(config).state_dir(state.path()))?;
/// client.register_authentication_listener(|error| {
///     eprintln!("auth error {} for {:?}: {}", error.code, error.identifier, error.message);
/// });
/// client.session_start()?;
/// let _ = client.identify("user-42")?;
/// let _ = client.pass_authentication_details(&JwtAuthenticationDetails::new(token_from_your_backend, "user-42"))?;
/// client.track("purchase", &json!({"sku": "A1", "price": 9.5}))?;
///
/// let reports = client.shutdown(Duration::from_secs(5));
/// assert_eq!(reports[0].1.pending_events, 0);
/// assert_eq!(client.totals().acked, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    workspaces: Arc<Workspaces<Workspace>>,
}

impl std::ops::Deref for Client {
    type Target = Workspace;

    /// The default workspace's methods are the client's.
    fn deref(&self) -> &Workspace {
        self.workspaces.default_workspace()
    }
}

impl Client {
    /// Starts a client with its default workspace: opens (or creates) its state,
    /// restores it, and starts its driver thread.
    ///
    /// # Errors
    /// [`StartError`] when the configuration is invalid or the state cannot be opened.
    pub fn start(default: WorkspaceOptions) -> Result<Self, StartError> {
        let default = Workspace {
            shared: Shared::start(default)?,
        };
        Ok(Self {
            workspaces: Arc::new(Workspaces::new(default)),
        })
    }

    /// Adds a workspace, named by its app id (W1).
    ///
    /// # Errors
    /// [`StartError::DuplicateWorkspace`] when one with that app id runs already, or as
    /// [`Client::start`].
    pub fn add_workspace(&self, options: WorkspaceOptions) -> Result<Workspace, StartError> {
        let app_id = options.app_id().to_owned();
        self.workspaces.add(&app_id, || {
            Ok(Workspace {
                shared: Shared::start(options)?,
            })
        })
    }

    /// The app ids of the client's workspaces, the default one first.
    #[must_use]
    pub fn workspace_ids(&self) -> Vec<String> {
        self.workspaces.ids()
    }

    /// The workspace with this app id (the original SDK's `workspaceId`); the default
    /// one for its own app id.
    ///
    /// # Errors
    /// [`Error::UnknownWorkspace`].
    pub fn workspace(&self, app_id: &str) -> Result<Workspace, Error> {
        self.workspaces.get(app_id)
    }

    /// Closes every workspace: no new request, token fetches stopped, the journals
    /// synced, waiting at most `timeout` for a request in flight; without flushing:
    /// what is pending stays in the state directories for the next start. Later inputs return
    /// [`Error::ShutDown`]; getters still answer.
    pub fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for workspace in self.workspaces.all() {
            workspace.shared.stop(deadline);
        }
    }

    /// Flushes every workspace, waits until each has sent what it can (at most until
    /// `timeout` from now, shared by all), stops the driver threads and syncs the
    /// journals. Reports what each workspace still had pending, default first.
    /// Later calls on any handle return [`Error::ShutDown`].
    #[must_use]
    pub fn shutdown(&self, timeout: Duration) -> Vec<(String, PendingReport)> {
        let deadline = Instant::now() + timeout;
        self.workspaces
            .all()
            .into_iter()
            .map(|workspace| (workspace.app_id().to_owned(), workspace.shutdown(deadline)))
            .collect()
    }
}
