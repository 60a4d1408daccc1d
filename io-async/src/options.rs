//! How a workspace is started: the core's configuration plus what only a driver knows.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use authsync_core::{AuthNotice, Config};
use authsync_host::details::HttpOptions;
use authsync_host::events::{Observer, SyncEvent};
use authsync_host::listeners::{Listener, Listeners};
use authsync_host::provider::TokenRequest;
use authsync_host::store::StoreOptions;

/// The future a token provider returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A token provider (R2): an async function asked for a new token when the listener
/// hears of an authentication problem for an identifier, at most once at a time per
/// identifier. `None` means "no token now".
pub type TokenProvider = Arc<dyn Fn(TokenRequest) -> TokenFuture + Send + Sync>;

/// Everything needed to start one workspace (W1).
///
/// ```
/// use authsync_async::WorkspaceOptions;
/// use authsync_core::Config;
///
/// let options = WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com").with_jwt(true))
///     .state_dir("/tmp/authsync-async-doc")
///     .token_provider(|request| async move {
///         // Ask the app's backend for a token for `request.identifier`.
///         let _ = request;
///         None
///     });
/// assert_eq!(options.app_id(), "app-1");
/// ```
#[derive(Clone)]
pub struct WorkspaceOptions {
    pub(crate) config: Config,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) store: StoreOptions,
    pub(crate) seed: Option<u64>,
    pub(crate) http: HttpOptions,
    pub(crate) session_on_launch: bool,
    pub(crate) provider: Option<TokenProvider>,
    pub(crate) listeners: Listeners,
    pub(crate) observers: Vec<Observer>,
}

impl std::fmt::Debug for WorkspaceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceOptions")
            .field("config", &self.config)
            .field("state_dir", &self.state_dir)
            .field("store", &self.store)
            .field("http", &self.http)
            .field("session_on_launch", &self.session_on_launch)
            .field("provider", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

impl WorkspaceOptions {
    /// A workspace with `config`, kept in memory, its seed drawn from the OS.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state_dir: None,
            store: StoreOptions::default(),
            seed: None,
            http: HttpOptions::default(),
            session_on_launch: false,
            provider: None,
            listeners: Listeners::default(),
            observers: Vec::new(),
        }
    }

    /// The workspace's app id.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.config.app_id
    }

    /// Keeps the workspace's state in `dir` (D2).
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Journal sync and compaction policy.
    #[must_use]
    pub fn store_options(mut self, store: StoreOptions) -> Self {
        self.store = store;
        self
    }

    /// The seed of a new install; an existing state directory must hold the same.
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

    /// Starts a session when the workspace starts.
    #[must_use]
    pub fn session_on_launch(mut self, start: bool) -> Self {
        self.session_on_launch = start;
        self
    }

    /// The seed's `disableIntegrationValidator()` (V1).
    #[must_use]
    pub fn disable_integration_validator(mut self) -> Self {
        self.config.integration_validator = false;
        self
    }

    /// An async token provider (R2).
    #[must_use]
    pub fn token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn(TokenRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.provider = Some(Arc::new(move |request| Box::pin(provider(request))));
        self
    }

    /// A listener registered before the workspace starts.
    #[must_use]
    pub fn authentication_listener(
        mut self,
        listener: impl Fn(&AuthNotice) + Send + Sync + 'static,
    ) -> Self {
        let listener: Listener = Arc::new(listener);
        self.listeners.register(listener);
        self
    }

    /// An observer of the sync timeline.
    #[must_use]
    pub fn observer(mut self, observer: impl Fn(&SyncEvent) + Send + Sync + 'static) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }
}
