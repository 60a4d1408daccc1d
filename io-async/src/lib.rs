//! `authsync-async`: authsync for async Rust, on smol.
//!
//! Each workspace runs as a small set of tasks on an executor of its own, driven by one
//! future, its [`Driver`]: a writer that appends the core's records to the state
//! directory off the executor, a sender that talks HTTP/1.1 with hyper over smol
//! sockets (rustls for `https://`), a timer that sleeps until the core's next
//! deadline, and a teller that calls listeners and observers in order and runs token
//! providers. No thread per workspace, no busy polling, and no rule of SPEC.md: every
//! decision is `authsync-core`'s.
//!
//! # Running it
//!
//! [`Client::start`] returns the client and the [`Driver`]. Spawn the driver on any
//! executor: `smol::spawn`, `smol::Executor`, `async_global_executor`, tokio's
//! `spawn` — it only needs an `async-io` reactor for its sockets and timers, which
//! `async-io` starts by itself. [`Client::spawn`] does it on smol's global executor.
//!
//! ```no_run
//! use authsync_async::{Client, WorkspaceOptions};
//! use authsync_core::Config;
//!
//! smol::block_on(async {
//!     let options = WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com"))
//!         .state_dir("/var/lib/myapp/authsync")
//!         .token_provider(authsync_async::provider(|request| async move {
//!             my_backend_token_for(&request.identifier).await
//!         }));
//!     let client = Client::spawn(options).await?;
//!     client.track("app_open", &serde_json::json!({})).await?;
//!     let notices = client.notices();
//!     while let Ok(notice) = notices.recv().await {
//!         eprintln!("{} for {:?}", notice.code, notice.identifier);
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # async fn my_backend_token_for(_: &str) -> Option<String> { None }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The API is the blocking driver's, with `async` inputs; see `authsync-blocking` for
//! its mapping to the seed SDK.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod provider;
mod transport;
mod workspace;

pub use authsync_core::{
    AuthNotice, Config, Environment, ErrorCode, IgnoredBecause, Outcome, Owner, Totals,
    TrackReceipt,
};
pub use authsync_host::details::{HttpOptions, JwtAuthenticationDetails};
pub use authsync_host::error::{Error, StartError};
pub use authsync_host::events::SyncEvent;
pub use authsync_host::pending::PendingReport;
pub use authsync_host::provider::TokenRequest;
pub use authsync_host::store::{FsyncPolicy, StoreOptions};
pub use client::{Client, Workspace};
pub use provider::{TokenFuture, TokenProvider, WorkspaceOptions, provider};
pub use workspace::Driver;

/// A token's `exp` claim (Unix seconds), read without verifying it.
///
/// # Errors
/// When the string is not a JWS compact token with a JSON payload.
pub fn token_expiry(token: &str) -> Result<Option<u64>, authsync_core::TokenError> {
    authsync_core::unverified_expiry(token)
}
