//! The authsync reference ingestion server: wire protocol v1 of section 4 of the rules document, with
//! real JWT verification, for end-to-end tests, demos, and app teams who want to check
//! that their backend mints tokens the protocol accepts.
//!
//! - [`RefServer::start`] serves `POST /v1/report` on its own thread; [`RefServer::admin`]
//!   gives an [`Admin`] handle to read the request log and accepted events, queue
//!   [`Fault`]s, change the [`ServerConfig`] and reset.
//! - [`keys`] holds the checked-in TEST keys and [`mint`] signs tokens with them.
//! - [`cli::run_cli`] is the command line of the `authsync-refserver` binary, reused by
//!   `authsync serve`.
//!
//! Checks, in order: route (404, 405) → body limit (413) → `Content-Type`, body and
//! `X-App-Id`/`Idempotency-Key` agreement (400) → authentication (401 with a JWT code,
//! see [`jwt_check`]) → dedupe on (app id, batch id) (200, `duplicate: true`, first
//! count) → accept (200).
//!
//! ```
//! use authsync_refserver::keys;
//! use authsync_refserver::mint::{mint, Claims, MintOptions};
//! use authsync_refserver::{Clock, Fault, RefServer, ServerConfig};
//!
//! let server = RefServer::start(
//!     ServerConfig::default()
//!         .with_test_keys()
//!         .clock(Clock::Fixed(1_700_000_000)),
//! )
//! .unwrap();
//! let token = mint(
//!     &keys::rsa_a(),
//!     &Claims::for_subject("user-1").exp(1_700_000_600),
//!     &MintOptions::default(),
//! )
//! .unwrap();
//! // ... point a client at server.url() with `Authorization: Bearer {token}` ...
//! server.admin().push_fault(Fault::status(503));
//! assert_eq!(server.admin().pending_faults().len(), 1);
//! # let _ = token;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod admin_http;
pub mod cli;
pub mod config;
mod dedupe;
pub mod faults;
pub mod jwt_check;
pub mod keys;
pub mod mint;
mod records;
mod report;
mod server;
mod state;
pub mod verify_key;
pub mod wire;

pub use admin::Admin;
pub use config::{Clock, Enforcement, ServerConfig};
pub use faults::{AfterAccept, Fault, FaultResponse, RetryAfter};
pub use jwt_check::{JwtErrorCode, JwtFailure, VerifiedToken};
pub use records::{AcceptedBatch, AcceptedEvent, LoggedRequest, LoggedResponse, Stats};
pub use server::{RefServer, SHUTDOWN_GRACE, StartError};
pub use verify_key::{Alg, KeyError, KeyKind, VerifyKey};
pub use wire::{User, UserKind};
