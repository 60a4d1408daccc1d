//! The handles an app holds: [`Client`] (all workspaces, the default one first) and
//! [`Workspace`] (one of them). Cheap to clone, usable from any task or thread.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authsync_core::{AuthNotice, Event, Outcome, Owner, PreparedEvent, Totals, TrackReceipt};
use authsync_host::{
    Error, JwtAuthenticationDetails, Named, PendingReport, StartError, Workspaces,
};
use serde::Serialize;
use smol::channel::Receiver;

use crate::provider::WorkspaceOptions;
use crate::workspace::{Driver, Shared};

/// One workspace (W1): its own core, state directory, listeners and tasks.
///
/// Inputs are `async`: they run the core step at once and resolve when its records are
/// written. Once an input's future has been polled, the input is accepted: dropping
/// the future does not undo it, and its records are still written.
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

    /// Tracks an event for the current user (V2).
    ///
    /// # Errors
    /// [`Error::Event`] for an invalid event (nothing queued), [`Error::NotStored`],
    /// [`Error::ShutDown`].
    pub async fn track<A: Serialize + ?Sized>(
        &self,
        name: &str,
        attrs: &A,
    ) -> Result<TrackReceipt, Error> {
        // Encoded before the driver's lock is taken: serializing `attrs` is most of a
        // track, and the driver thread needs that lock to send.
        let event = PreparedEvent::new(name, attrs)?;
        self.shared
            .input(|core, now| core.handle_track_prepared(now, &event))
            .await
    }

    /// Identifies the current user (U2).
    ///
    /// # Errors
    /// [`Error::Identify`] for an empty or over-long identifier.
    pub async fn identify(&self, identifier: &str) -> Result<Outcome, Error> {
        Ok(self
            .shared
            .input(|core, now| core.handle_identify(now, identifier))
            .await??)
    }

    /// Passes a token for an identifier (T1, T2, V1): the original SDK's `passAuthenticationDetails`.
    ///
    /// # Errors
    /// [`Error::AuthDetails`] for a malformed token or V1 misuse in `Test`.
    pub async fn pass_authentication_details(
        &self,
        details: &JwtAuthenticationDetails,
    ) -> Result<Outcome, Error> {
        Ok(self
            .shared
            .input(|core, now| {
                core.handle_authentication_details(now, &details.token, &details.identifier)
            })
            .await??)
    }

    /// Registers an authentication listener (called in order, one at a time, on the
    /// workspace's worker task; one that panics is logged and skipped).
    pub fn register_authentication_listener(
        &self,
        listener: impl Fn(&AuthNotice) + Send + Sync + 'static,
    ) {
        self.shared
            .with(|engine| engine.listeners_mut().register(Arc::new(listener)));
    }

    /// The notices as a stream, for callers who prefer
    /// `while let Some(notice) = notices.next().await`. Each call gives a stream of its
    /// own that hears every notice from then on.
    #[must_use]
    pub fn notices(&self) -> Receiver<AuthNotice> {
        let (sender, receiver) = smol::channel::unbounded();
        self.register_authentication_listener(move |notice: &AuthNotice| {
            let _ = sender.try_send(notice.clone());
        });
        receiver
    }

    /// Registers an observer of the sync timeline.
    pub fn add_observer(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.shared
            .with(|engine| engine.listeners_mut().observe(Arc::new(observer)));
    }

    /// Logs the identified user out (L1–L5).
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub async fn logout(&self) -> Result<Outcome, Error> {
        self.shared.input(|core, now| core.handle_logout(now)).await
    }

    /// Starts a session (SS1).
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub async fn session_start(&self) -> Result<(), Error> {
        self.shared
            .input(|core, now| core.handle_session_start(now))
            .await
    }

    /// Seals the open batch so that it goes as soon as the rules allow.
    ///
    /// # Errors
    /// [`Error::NotStored`], [`Error::ShutDown`].
    pub async fn flush(&self) -> Result<(), Error> {
        self.shared.input(|core, now| core.handle_flush(now)).await
    }

    /// Flushes, then waits until nothing more can be sent within `timeout`.
    ///
    /// # Errors
    /// As [`Workspace::flush`].
    pub async fn flush_and_wait(&self, timeout: Duration) -> Result<PendingReport, Error> {
        self.flush().await.or_else(Error::taken)?;
        Ok(self.shared.wait_settled(timeout).await)
    }

    /// Waits until nothing more can be sent within `timeout`, without flushing.
    pub async fn wait_settled(&self, timeout: Duration) -> PendingReport {
        self.shared.wait_settled(timeout).await
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

    async fn shutdown(&self, deadline: Instant) -> PendingReport {
        let _ = self.flush().await;
        let report = self
            .shared
            .wait_settled(deadline.saturating_duration_since(Instant::now()))
            .await;
        self.shared.stop(deadline).await;
        report
    }
}

/// The app's handle: a default workspace and any others added (W1). Methods without a
/// workspace act on the default one. When the last clone is dropped, the workspaces
/// stop after their current request and their drivers finish.
///
/// ```
/// use std::time::Duration;
/// use authsync_async::{Client, Config, JwtAuthenticationDetails, WorkspaceOptions};
/// # use authsync_refserver::{RefServer, ServerConfig, keys, mint::{mint, Claims, MintOptions}};
/// # let server = RefServer::start(ServerConfig::new().with_test_keys().access_log(false))?;
/// # let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64 + 600;
/// # let token_from_your_backend = mint(&keys::rsa_a(), &Claims::for_subject("user-42").exp(exp), &MintOptions::new())?;
///
/// smol::block_on(async {
///     let config = Config::new("app-123", server.url()).with_jwt(true);
///     let (client, driver) = Client::start(WorkspaceOptions::new(config)).await?;
///     smol::spawn(driver).detach();
///     let _ = client.identify("user-42").await?;
///     let details = JwtAuthenticationDetails::new(token_from_your_backend, "user-42");
///     let _ = client.pass_authentication_details(&details).await?;
///     client.track("purchase", &serde_json::json!({"sku": "A1"})).await?;
///     let reports = client.shutdown(Duration::from_secs(5)).await;
///     assert_eq!(reports[0].1.pending_events, 0);
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
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
    /// Starts a client with its default workspace: opens and restores its state off the
    /// executor. Returns the client and the workspace's [`Driver`], which must be
    /// spawned (or awaited) for anything to be sent.
    ///
    /// # Errors
    /// [`StartError`] when the configuration is invalid or the state cannot be opened.
    pub async fn start(default: WorkspaceOptions) -> Result<(Self, Driver), StartError> {
        let (shared, driver) = Shared::start(default).await?;
        let client = Self {
            workspaces: Arc::new(Workspaces::new(Workspace { shared })),
        };
        Ok((client, driver))
    }

    /// Starts a client and spawns its driver on smol's global executor.
    ///
    /// # Errors
    /// As [`Client::start`].
    pub async fn spawn(default: WorkspaceOptions) -> Result<Self, StartError> {
        let (client, driver) = Self::start(default).await?;
        smol::spawn(driver).detach();
        Ok(client)
    }

    /// Adds a workspace, named by its app id; returns it and its [`Driver`].
    ///
    /// # Errors
    /// [`StartError::DuplicateWorkspace`], or as [`Client::start`].
    pub async fn add_workspace(
        &self,
        options: WorkspaceOptions,
    ) -> Result<(Workspace, Driver), StartError> {
        let app_id = options.app_id().to_owned();
        if self.workspaces.get(&app_id).is_ok() {
            return Err(StartError::DuplicateWorkspace(app_id));
        }
        // Started off the registry's lock (opening is async); `add` checks again.
        let (shared, driver) = Shared::start(options).await?;
        let workspace = self.workspaces.add(&app_id, || Ok(Workspace { shared }))?;
        Ok((workspace, driver))
    }

    /// The app ids of the client's workspaces, the default one first.
    #[must_use]
    pub fn workspace_ids(&self) -> Vec<String> {
        self.workspaces.ids()
    }

    /// The workspace with this app id.
    ///
    /// # Errors
    /// [`Error::UnknownWorkspace`].
    pub fn workspace(&self, app_id: &str) -> Result<Workspace, Error> {
        self.workspaces.get(app_id)
    }

    /// Stops every workspace after its current request (waiting at most `timeout`),
    /// without flushing: what is pending stays in the state directories.
    pub async fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for workspace in self.workspaces.all() {
            workspace.shared.stop(deadline).await;
        }
    }

    /// Flushes every workspace, waits until each has sent what it can (at most until
    /// `timeout` from now), stops them and syncs the journals.
    pub async fn shutdown(&self, timeout: Duration) -> Vec<(String, PendingReport)> {
        let deadline = Instant::now() + timeout;
        let mut reports = Vec::new();
        for workspace in self.workspaces.all() {
            let report = workspace.shutdown(deadline).await;
            reports.push((workspace.app_id().to_owned(), report));
        }
        reports
    }
}
