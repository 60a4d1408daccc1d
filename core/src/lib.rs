//! `authsync-core`: the pure, deterministic state machine of authsync.
//!
//! authsync collects an app's analytics events and syncs them in batches to an
//! ingestion server; the data of identified users is authenticated with a JWT that the
//! app's own backend signs. This crate holds every rule of the contract (SPEC.md,
//! section 3) and nothing that does I/O: it reads no clock, no randomness, no
//! environment, and touches no file or socket. Drivers (`authsync-blocking`,
//! `authsync-async`) move bytes, time and files around it.
//!
//! Start with [`Client`]: its documentation lists the inputs, the outputs, and the loop
//! a driver runs.
//!
//! # Where the rules live
//!
//! | rules | module |
//! |---|---|
//! | C1 | `config` |
//! | U1, DT1 | `seeded` (ids and jitter from the seed) |
//! | T1, T3, R1 (`exp` reading) | `token` |
//! | V2, S3 (event shape) | `event` |
//! | S1, S3, A5, D3 (cutting batches) | `batch` |
//! | section 4 | `wire`, `http_date` |
//! | A4 (wait computation) | `backoff` |
//! | D2 (what survives, how it is encoded) | `state`, `record` |
//! | every decision: U2, T2, S1–S6, A1–A7, SS1, L1–L5, V1, D1, D3, R1 | `client` |
//!
//! # Determinism
//!
//! Maps are `BTreeMap`s (a `HashMap`'s order comes from process randomness), ids and
//! jitter are functions of the seed and durable counters, and time is an argument.
//! Replaying the same inputs gives byte-identical actions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod action;
mod backoff;
mod batch;
mod client;
mod config;
mod error;
mod error_code;
mod event;
mod http_date;
mod owner;
mod queue;
mod record;
mod seeded;
mod state;
mod time;
mod token;
mod wire;

pub use action::{
    AckNotice, Action, AuthNotice, DropNotice, IgnoredBecause, Outcome, Request, RequestId,
    SendOutlook, TransportFailure, WakeReason, Wakeup,
};
pub use client::{Client, TrackReceipt};
pub use config::{Config, Environment};
pub use error::{
    AuthDetailsError, ConfigError, EventError, IdentifyError, RestoreError, TokenError,
    UnknownRequest,
};
pub use error_code::ErrorCode;
pub use event::{MAX_ATTRIBUTES_BYTES, MAX_EVENT_NAME_BYTES, PreparedEvent};
pub use owner::{MAX_IDENTIFIER_BYTES, Owner};
pub use record::{
    DamageKind, DropReason, FORMAT_VERSION, FRAME_HEADER_BYTES, JournalDamage, JournalReader,
    Record, Snapshot, SnapshotVerifier,
};
pub use state::Totals;
pub use time::Now;
pub use token::{MAX_TOKEN_BYTES, Token, unverified_expiry};
