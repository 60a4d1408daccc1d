//! The blocking driver's token providers (R2) and its workspace options.

use std::sync::Arc;

use authsync_host::TokenRequest;

/// A token provider: asked for a new token when the listener hears of an
/// authentication problem for an identifier, at most once at a time per identifier,
/// on a thread of its own. `None` means "no token now"; it is asked again on the next
/// notice. One that takes longer than the workspace's token timeout (30 s by default)
/// counts as giving none: its answer is not used, and `request.cancellation` tells
/// it to stop.
pub type TokenProvider = Arc<dyn Fn(&TokenRequest) -> Option<String> + Send + Sync>;

/// How a workspace is started.
pub type WorkspaceOptions = authsync_host::WorkspaceOptions<TokenProvider>;

/// A token provider from a closure, for [`WorkspaceOptions::token_provider`].
///
/// ```
/// use authsync_blocking::{Config, WorkspaceOptions, provider};
/// let options = WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com").with_jwt(true))
///     .token_provider(provider(|request| my_backend_token_for(&request.identifier)));
/// # fn my_backend_token_for(_: &str) -> Option<String> { None }
/// # let _ = options;
/// ```
pub fn provider(
    provider: impl Fn(&TokenRequest) -> Option<String> + Send + Sync + 'static,
) -> TokenProvider {
    Arc::new(provider)
}
