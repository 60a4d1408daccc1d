//! What every authsync driver needs around the core, and that holds no rule of
//! SPEC.md: the durable store of a workspace ([`store`]), the clocks that turn
//! `Instant`/`SystemTime` into the core's [`authsync_core::Now`] ([`clock`]), listener
//! dispatch that survives a panicking listener ([`listeners`], LS1), and the
//! single-flight bookkeeping of token providers ([`provider`], R2).
//!
//! The blocking and async drivers both build on this crate, so a journal written by
//! one is read by the other, and neither writes file handling twice.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod clock;
pub mod details;
pub mod error;
pub mod events;
pub mod install;
pub mod listeners;
pub mod options;
pub mod pending;
pub mod provider;
pub mod registry;
pub mod store;

/// A seed for a new install, from the operating system's randomness (U1).
///
/// ```
/// let a = authsync_host::os_seed().unwrap();
/// let b = authsync_host::os_seed().unwrap();
/// assert_ne!(a, b);
/// ```
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn os_seed() -> Result<u64, getrandom::Error> {
    getrandom::u64()
}
