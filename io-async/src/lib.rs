//! `authsync-async`: authsync for async Rust, on smol.
//!
//! Each workspace runs as a small set of tasks on an executor of its own, driven by one
//! future, its [`Driver`]: a writer that appends the core's records to the state
//! directory off the executor, and a worker that calls listeners and observers in
//! order, sleeps until the core's next deadline, and starts a task for each step the
//! core hands out: a request, a token fetch, a sync or a compaction. Requests go
//! through the same [`HttpTransport`] as the blocking driver's (ureq, or the app's own
//! stack), on smol's blocking pool: one request at a time per workspace, as analytics
//! SDKs commonly upload from a background worker. No thread of its own, no busy
//! polling, and no decision: every rule, and every decision of the loop, is the
//! core's and `authsync-host`'s.
//!
//! # Running it
//!
//! [`Client::start`] returns the client and the [`Driver`]. Spawn the driver on any
//! executor: `smol::spawn`, `smol::Executor`, `async_global_executor`, tokio's
//! `spawn` — it only needs an `async-io` reactor for its sockets and timers, which
//! `async-io` starts by itself. [`Client::spawn`] does it on smol's global executor.
//!
//! ```no_run
//! use authsync_async::{Client, Config, WorkspaceOptions};
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
//! its mapping to the original SDK.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod provider;
mod workspace;

pub use authsync_host::vocabulary::*;
pub use client::{Client, Workspace};
pub use provider::{TokenFuture, TokenProvider, WorkspaceOptions, provider};
pub use workspace::Driver;

/// A token's `exp` claim (Unix seconds), read without verifying it.
///
/// # Errors
/// When the string is not a JWS compact token with a JSON payload.
pub fn token_expiry(token: &str) -> Result<Option<u64>, TokenError> {
    authsync_core::unverified_expiry(token)
}
