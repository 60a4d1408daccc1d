//! `authsync-model`: the core proved against an independent model of section 3 of the rules document.
//!
//! - [`model`]: the reference model, written from the rules document (docs/rules.md), plain `Vec`s and `match`es.
//! - [`alphabet`]: the abstract inputs (track, identify among 3 users, good / expired /
//!   repeated / rejected tokens, session start, logout, flush, every kind of answer to
//!   the request in flight, short and long waits, a process restart).
//! - [`sim`]: a simulated driver that carries an input out on the real
//!   [`authsync_core::Client`] with a simulated clock and keeps its journal.
//! - [`observe`]: the core's actions reduced to what the model predicts.
//! - [`invariants`]: the rules every state must satisfy, each a function returning a
//!   typed [`invariants::Violation`].
//! - [`scenario`]: [`scenario::Runner`] runs model and core side by side;
//!   [`run_scenario`] draws a whole run from fuzz bytes.
//! - [`explore`]: breadth-first exploration of every abstract state up to a depth.
//!
//! Which configuration each check uses is said where it is chosen:
//! [`model::Settings`] has the presets and why.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod alphabet;
pub mod explore;
pub mod invariants;
pub mod model;
pub mod observe;
pub mod scenario;
pub mod sim;
pub mod storage;

pub use scenario::run_scenario;
