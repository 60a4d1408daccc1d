//! `authsync-blocking`: authsync for ordinary threaded Rust.
//!
//! A [`Client`] runs each workspace around the pure `authsync-core` state machine: a
//! driver thread that performs the core's steps (syncs, compactions, token fetches)
//! and calls the app's listeners, a thread that sends the core's requests with a
//! `ureq` agent, and the app's own threads, which write their own records before
//! returning. It decides nothing: every rule, and every decision of the loop, is the
//! core's.
//!
//! # The original SDK's API, in Rust
//!
//! | original SDK (iOS) | here |
//! |---|---|
//! | `MoEngageNetworkAuthorizationConfig(isJwtEnabled: true)` | `Config::with_jwt(true)` |
//! | `initializeDefaultTestInstance` / `…LiveInstance` | `Config::with_environment(Environment::Test / Live)` + [`Client::start`] |
//! | `disableIntegrationValidator()` | `WorkspaceOptions::disable_integration_validator` |
//! | `passAuthenticationDetails(details, workspaceId:)` | [`Workspace::pass_authentication_details`]: on the [`Client`] for the default workspace, on [`Client::workspace`] for another |
//! | `registerAuthenticationListener(listener, workspaceId:)` | [`Workspace::register_authentication_listener`], likewise |
//! | `MoEngageJwtAuthenticationError` (code, message, token, identifier, account) | [`AuthNotice`] |
//! | re-checking a token's expiry at launch | [`token_expiry`] |
//!
//! Beyond the seed: token providers ([`provider`], R2), observers of the sync
//! timeline ([`Workspace::add_observer`]), [`Workspace::flush_and_wait`] and
//! [`Client::shutdown`] that report what is still pending.
//!
//! ```no_run
//! use authsync_blocking::{Client, Config, WorkspaceOptions};
//!
//! let client = Client::start(
//!     WorkspaceOptions::new(Config::new("app-1", "https://ingest.example.com").with_jwt(true))
//!         .state_dir("/var/lib/myapp/authsync")
//!         .session_on_launch(true)
//!         .token_provider(authsync_blocking::provider(|request| my_backend_token_for(&request.identifier))),
//! )?;
//! client.identify("user-42")?;
//! client.track("app_open", &serde_json::json!({}))?;
//! # fn my_backend_token_for(_: &str) -> Option<String> { None }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod provider;
mod workspace;

pub use authsync_host::vocabulary::*;
pub use client::{Client, Workspace};
pub use provider::{TokenProvider, WorkspaceOptions, provider};

/// A token's `exp` claim (Unix seconds), read without verifying it: what the seed asks
/// an app to check at launch before deciding to fetch a new token.
///
/// ```
/// // payload {"sub":"u","exp":1700000000}
/// let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
/// assert_eq!(authsync_blocking::token_expiry(token).unwrap(), Some(1_700_000_000));
/// ```
///
/// # Errors
/// When the string is not a JWS compact token with a JSON payload.
pub fn token_expiry(token: &str) -> Result<Option<u64>, TokenError> {
    authsync_core::unverified_expiry(token)
}

/// The README's examples (the core's driver loop and this crate's API), compiled as
/// doctests so that they cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
