//! The drivers' errors: the core's typed refusals, plus what files, threads and tasks
//! add. Both drivers return these, so an app can switch drivers without new matches.

use authsync_core::{AuthDetailsError, ConfigError, EventError, IdentifyError, RestoreError};
use thiserror::Error;

use crate::store::StoreError;

/// A workspace that could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state directory cannot be opened (in use, unreadable, damaged).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state directory holds a history that cannot be restored.
    #[error("state directory cannot be restored: {0}")]
    Restore(#[from] RestoreError),
    /// The operating system gave no randomness for a new install's seed.
    #[error("no randomness for a new install's seed: {0}")]
    Seed(String),
    /// The state directory holds an install with another seed than the one required.
    #[error("state directory holds an install with seed {persisted}, not the {requested} required")]
    SeedMismatch {
        /// The install's seed.
        persisted: u64,
        /// The seed the options required.
        requested: u64,
    },
    /// A workspace with this app id already runs in this client.
    #[error("a workspace for app id {0:?} already runs in this client")]
    DuplicateWorkspace(String),
    /// The driver thread could not be started.
    #[error("cannot start the driver: {0}")]
    Thread(#[from] std::io::Error),
}

/// A call the client refused, or could not make durable.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid event (V2); nothing was queued.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An invalid identifier; nothing changed.
    #[error(transparent)]
    Identify(#[from] IdentifyError),
    /// A malformed token, or V1 misuse in `Test`; nothing was stored.
    #[error(transparent)]
    AuthDetails(#[from] AuthDetailsError),
    /// The call took effect, but storage failed (D4): its change, and every change
    /// since record `from_lsn`, is kept in memory only, and written (with a rewrite
    /// of the whole state) once writes succeed again; requests that depend on it wait
    /// until then. A process that ends before then loses it.
    #[error(
        "taken, but not stored: storage failed, so this change is kept in memory and written once storage works again (records from {from_lsn} on)"
    )]
    NotStored {
        /// The first record not stored.
        from_lsn: u64,
    },
    /// No workspace has this app id.
    #[error("no workspace with app id {0:?}")]
    UnknownWorkspace(String),
    /// The client was shut down.
    #[error("the client was shut down")]
    ShutDown,
}

impl Error {
    /// `Ok` when the call took effect though its change is not stored yet
    /// ([`Error::NotStored`]): a caller that goes on to wait for the workspace to
    /// settle waits all the same; any other error stays.
    ///
    /// ```
    /// use authsync_host::Error;
    /// assert!(Error::NotStored { from_lsn: 3 }.taken().is_ok());
    /// assert!(Error::ShutDown.taken().is_err());
    /// ```
    ///
    /// # Errors
    /// Every error but [`Error::NotStored`].
    pub fn taken(self) -> Result<(), Self> {
        match self {
            Self::NotStored { .. } => Ok(()),
            other => Err(other),
        }
    }
}
