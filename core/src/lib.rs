//! `authsync-core`: the pure, deterministic state machine of authsync, and the one
//! loop every host runs.
//!
//! authsync collects an app's analytics events and syncs them in batches to an
//! ingestion server; the data of identified users is authenticated with a JWT that the
//! app's own backend signs. This crate holds every rule of the project's rules document
//! (`docs/rules.md`) and every decision of the loop around them, and nothing that does
//! I/O: it reads no clock, no randomness, no environment, and touches no file or
//! socket. Hosts (`authsync-blocking`, `authsync-async`, the language bindings) move
//! bytes, time and files around it.
//!
//! Start with [`Client`]: its documentation lists the inputs, the outputs, and the loop
//! a host runs.
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
//! | D2, D4 (when records are written, synced, compacted; storage failure) | `storage` |
//! | D5 (recovery from damage) | `recovery` |
//! | R2 (token fetches: single flight, timeout) | `fetch` |
//! | every other decision: U2, T2, S1–S6, A1–A7, SS1, L1–L5, V1, D1, D3, R1, R2's races | `client` |
//!
//! # Determinism
//!
//! Maps are `BTreeMap`s (a `HashMap`'s order comes from process randomness), ids and
//! jitter are functions of the seed and durable counters, and time is an argument.
//! Replaying the same inputs gives byte-identical outputs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backoff;
mod batch;
mod client;
mod config;
mod error;
mod error_code;
mod event;
mod fetch;
mod http_date;
mod output;
mod owner;
mod queue;
mod record;
mod recovery;
mod seeded;
mod state;
mod storage;
mod time;
mod token;
mod wire;

pub use client::{Client, TrackReceipt, Unstored};
pub use config::{Config, Environment};
pub use error::{
    AuthDetailsError, ConfigError, EventError, IdentifyError, RestoreError, TokenError, UnknownJob,
    UnknownRequest,
};
pub use error_code::ErrorCode;
pub use event::{MAX_ATTRIBUTES_BYTES, MAX_EVENT_NAME_BYTES, PreparedEvent};
pub use fetch::{FetchFailure, FetchId, TokenAnswer, TokenFetch};
pub use output::{
    AckNotice, AuthNotice, DropNotice, Event, IgnoredBecause, Outcome, Request, RequestId,
    SendOutlook, Step, StorageNotice, TransportFailure, WakeReason, Wakeup,
};
pub use owner::{MAX_IDENTIFIER_BYTES, Owner};
pub use record::{Damage, DamageKind, DropReason, Snapshot, SnapshotVerifier};
pub use recovery::{PreviousRun, RecoveryReport, StoredSegment, StoredState};
pub use state::Totals;
pub use storage::{
    CompactId, CompactJob, FsyncPolicy, PendingWrite, Storage, StorageFailure, StorageFailureKind,
    StoragePolicy, SyncId, SyncJob, WriteId, WriteJob,
};
pub use time::Now;
pub use token::{MAX_TOKEN_BYTES, Token, unverified_expiry};
