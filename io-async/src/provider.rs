//! The async driver's token providers (R2) and its workspace options.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use authsync_host::TokenRequest;

/// The future a token provider returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A token provider: an async function asked for a new token when the listener hears
/// of an authentication problem for an identifier, at most once at a time per
/// identifier, on a task of its own. `None` means "no token now"; it is asked again on
/// the next notice. One that takes longer than the workspace's token timeout (30 s by
/// default) is dropped where it waits and counts as giving none.
pub type TokenProvider = Arc<dyn Fn(TokenRequest) -> TokenFuture + Send + Sync>;

/// How a workspace is started.
pub type WorkspaceOptions = authsync_host::WorkspaceOptions<TokenProvider>;

/// A token provider from an async closure, for [`WorkspaceOptions::token_provider`].
///
/// ```
/// use authsync_async::{Config, WorkspaceOptions, provider};
/// let options = WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com").with_jwt(true))
///     .token_provider(provider(|request| async move { my_backend_token_for(&request.identifier).await }));
/// # async fn my_backend_token_for(_: &str) -> Option<String> { None }
/// # let _ = options;
/// ```
pub fn provider<F, Fut>(provider: F) -> TokenProvider
where
    F: Fn(TokenRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(provider(request)))
}
