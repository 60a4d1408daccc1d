//! `authsync-host`: what every authsync host needs on std around the core, and that
//! holds no rule: for the authors of drivers and bindings (`authsync-blocking`,
//! `authsync-async`, `authsync-bindings` are built on it).
//!
//! - [`Engine`]: a workspace's core, store, clock and listeners, opened together, and
//!   the loop every driver runs, written once: [`Engine::next_work`] hands out
//!   [`Work`] (events to tell, a request to send, a token to fetch, a storage task),
//!   each of whose results goes back through one method; [`Engine::report`] says when
//!   the workspace is settled. A driver only chooses how to wait and where to run
//!   things (threads, tasks);
//! - [`HttpTransport`]: how requests are sent ([`UreqTransport`], or the app's own);
//! - [`StateDir`]: the durable store on a [`FileSystem`] ([`OsFileSystem`], with the
//!   state directory's checks; [`SimulatedDisk`], where any operation can fail and the
//!   machine can lose power);
//! - [`Listeners`]: listener and observer calls, one at a time (LS1);
//! - [`WorkspaceOptions`], [`Error`], [`StartError`], [`PendingReport`],
//!   [`JwtAuthenticationDetails`], [`HttpOptions`], [`TokenRequest`]: the vocabulary
//!   drivers share, so that an app can switch drivers without new matches.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clock;
mod details;
mod disk;
mod engine;
mod error;
mod fs;
mod listeners;
mod options;
mod provider;
mod registry;
mod store;
mod transport;
pub mod vocabulary;
mod work;

pub use clock::{Clock, ManualClock, SystemClock};
pub use details::{HttpOptions, JwtAuthenticationDetails, failure_of_io};
pub use disk::{Fault, Operation, SimulatedDisk};
pub use engine::{DriverParts, Engine, News, PendingReport};
pub use error::{Error, StartError};
pub use fs::{Directory, FileSystem, OsFileSystem, StoreFile};
pub use listeners::{Listener, Listeners, Observer};
pub use options::{DEFAULT_TOKEN_TIMEOUT, WorkspaceOptions};
pub use provider::{Cancellation, TokenRequest};
pub use registry::{Named, Workspaces};
pub use store::{StateDir, StoreError, failure};
pub use transport::{HttpTransport, UreqTransport};
pub use work::{StorageDone, StorageTask, Work, answer_of};

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
