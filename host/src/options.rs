//! How a workspace is started: the core's configuration plus what only a host knows
//! (where its state lives, how HTTP behaves, who provides tokens, who listens).
//!
//! One builder for every driver; `P` is the driver's token provider type (a closure for
//! the blocking driver, an async closure for the async one), made with the driver's
//! `provider` function.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authsync_core::{AuthNotice, Config, Event, StoragePolicy};

use crate::clock::{Clock, SystemClock};
use crate::details::HttpOptions;
use crate::fs::{FileSystem, OsFileSystem};
use crate::listeners::Listeners;
use crate::transport::HttpTransport;

/// How long a token provider may take by default (R2).
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything needed to start one workspace (W1).
///
/// ```
/// use authsync_core::Config;
/// use authsync_host::WorkspaceOptions;
///
/// let options: WorkspaceOptions<()> = WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com"))
///     .state_dir("/var/lib/myapp/authsync")
///     .session_on_launch(true)
///     .authentication_listener(|notice| eprintln!("{} for {:?}", notice.code, notice.identifier));
/// assert_eq!(options.app_id(), "app-1");
/// ```
#[derive(Clone)]
pub struct WorkspaceOptions<P> {
    /// The core's configuration.
    pub config: Config,
    /// Where the state lives; `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// Journal sync and compaction policy.
    pub storage: StoragePolicy,
    /// The file system the state directory is on.
    pub file_system: Arc<dyn FileSystem>,
    /// The seed a new install must use; `None`: the operating system's randomness.
    pub seed: Option<u64>,
    /// HTTP timeouts and limits.
    pub http: HttpOptions,
    /// The app's own HTTP stack; `None`: [`crate::UreqTransport`] with `http`.
    pub transport: Option<Arc<dyn HttpTransport>>,
    /// Whether to start a session when the workspace starts.
    pub session_on_launch: bool,
    /// The token provider (R2).
    pub provider: Option<P>,
    /// How long the provider may take before it counts as giving no token (R2).
    pub token_timeout: Duration,
    /// Listeners and observers registered before the start.
    pub listeners: Listeners,
    /// The clock the workspace reads ([`crate::SystemClock`]; a
    /// [`crate::ManualClock`] in tests of a host's loop).
    pub clock: Arc<dyn Clock>,
}

impl<P> std::fmt::Debug for WorkspaceOptions<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceOptions")
            .field("config", &self.config)
            .field("state_dir", &self.state_dir)
            .field("storage", &self.storage)
            .field("seed", &self.seed)
            .field("http", &self.http)
            .field("transport", &self.transport.is_some())
            .field("session_on_launch", &self.session_on_launch)
            .field("provider", &self.provider.is_some())
            .field("token_timeout", &self.token_timeout)
            .finish_non_exhaustive()
    }
}

impl<P> WorkspaceOptions<P> {
    /// A workspace with `config`, kept in memory, its seed drawn from the OS.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state_dir: None,
            storage: StoragePolicy::default(),
            file_system: Arc::new(OsFileSystem),
            seed: None,
            http: HttpOptions::default(),
            transport: None,
            session_on_launch: false,
            provider: None,
            token_timeout: DEFAULT_TOKEN_TIMEOUT,
            listeners: Listeners::default(),
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// The workspace's app id: its name among a client's workspaces.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.config.app_id
    }

    /// Keeps the workspace's state in `dir` (D2): created if missing, private to the
    /// user (D6).
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Journal sync and compaction policy.
    #[must_use]
    pub fn storage(mut self, storage: StoragePolicy) -> Self {
        self.storage = storage;
        self
    }

    /// The file system the state directory is on (default: the operating system's).
    #[must_use]
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = file_system;
        self
    }

    /// The seed of a new install (tests, reproducible runs). A state directory that
    /// already holds an install with another seed is refused
    /// ([`crate::StartError::SeedMismatch`]). Default: the OS's randomness.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// HTTP timeouts and limits.
    #[must_use]
    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// Sends the workspace's requests with `transport` (the app's own HTTP stack)
    /// instead of ureq; `http`'s limits are then the transport's to apply.
    #[must_use]
    pub fn http_transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Reads the time from `clock` instead of the system's.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts a session when the workspace starts (SS1 leaves it to the app; many apps
    /// start one per launch).
    #[must_use]
    pub fn session_on_launch(mut self, start: bool) -> Self {
        self.session_on_launch = start;
        self
    }

    /// The original SDK's `disableIntegrationValidator()`: misuse is ignored even in
    /// `Test` (V1).
    #[must_use]
    pub fn disable_integration_validator(mut self) -> Self {
        self.config.integration_validator = false;
        self
    }

    /// A token provider (R2), made with the driver's `provider` function.
    #[must_use]
    pub fn token_provider(mut self, provider: P) -> Self {
        self.provider = Some(provider);
        self
    }

    /// How long the token provider may take (default 30 s, R2).
    #[must_use]
    pub fn token_timeout(mut self, timeout: Duration) -> Self {
        self.token_timeout = timeout;
        self
    }

    /// A listener registered before the workspace starts, so it hears everything.
    #[must_use]
    pub fn authentication_listener(
        mut self,
        listener: impl Fn(&AuthNotice) + Send + Sync + 'static,
    ) -> Self {
        self.listeners.register(Arc::new(listener));
        self
    }

    /// An observer of the sync timeline, registered before the workspace starts.
    #[must_use]
    pub fn observer(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listeners.observe(Arc::new(observer));
        self
    }
}
