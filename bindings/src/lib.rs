//! `authsync-bindings`: authsync for Swift, Kotlin and Python, through UniFFI.
//!
//! The blocking driver (`authsync-blocking`) with foreign types: an
//! [`AuthsyncClient`] started from a [`ClientConfig`], with an optional
//! [`AuthenticationListener`], [`TokenProvider`] and [`Transport`] implemented in the
//! app's language. The transport is the platform's own HTTP stack (URLSession,
//! OkHttp, urllib...); without one the driver's built-in client sends.
//!
//! This crate has no rule and no loop of its own: it converts types and forwards
//! calls. Every decision is the core's, every thread the driver's. The one thing it
//! adds is the gate in front of foreign calls ([`stop_foreign_calls`]), so that an
//! exiting interpreter is never entered from a driver thread.
//!
//! Generate the bindings with `bindings/generate` (Kotlin, Swift) and
//! `bindings/python/build` (Python); see bindings/README.md.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The namespace, not the library's name: the generated module is `authsync.py`, the
// Kotlin package `uniffi.authsync`, the Swift file `authsync.swift`.
uniffi::setup_scaffolding!("authsync");

mod callbacks;
mod client;
mod config;
mod error;
mod gate;

pub use callbacks::{
    AuthNotice, AuthenticationListener, Cancellation, HttpRequest, HttpResponse, TokenProvider,
    TokenRequest, Transport,
};
pub use client::{AuthsyncClient, IgnoredReason, Outcome, PendingReport, Totals};
pub use config::{ClientConfig, Environment};
pub use error::{AuthsyncError, TransportError};
pub use gate::{foreign_calls_running, stop_foreign_calls};
