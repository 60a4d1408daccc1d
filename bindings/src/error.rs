//! The errors foreign code sees: [`AuthsyncError`] for the client's calls (typed
//! exceptions in Python, `AuthsyncException` in Kotlin, `AuthsyncError` in Swift), and
//! [`TransportError`] for an app's [`crate::Transport`] to raise.
//!
//! Both are translations of the driver's errors, one variant per case an app handles
//! differently; the texts are the driver's own (they never contain a token, T3).

use authsync_blocking::{Error, StartError, TransportFailure};
use authsync_core::AuthDetailsError;

/// A call the client refused, a client that could not start, or a foreign callback
/// that failed.
///
/// Every variant carries `reason`, the driver's explanation; [`AuthsyncError::message`]
/// gives the whole sentence.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum AuthsyncError {
    /// The configuration is invalid (C1): an empty app id, a bad endpoint, a value out
    /// of range. The client did not start.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The state directory cannot be used: in use by another client, unreadable,
    /// damaged beyond recovery, or holding another seed. The client did not start.
    #[error("state directory unavailable: {reason}")]
    StateDirectory {
        /// What is wrong.
        reason: String,
    },
    /// The client could not start for another reason (no randomness, no thread).
    #[error("cannot start: {reason}")]
    StartFailed {
        /// What failed.
        reason: String,
    },
    /// An invalid event (V2): empty or long name, attributes that are not a JSON
    /// object of at most 32 KiB. Nothing was queued.
    #[error("invalid event: {reason}")]
    InvalidEvent {
        /// What is wrong.
        reason: String,
    },
    /// An empty or over-long identifier. Nothing changed.
    #[error("invalid identifier: {reason}")]
    InvalidIdentifier {
        /// What is wrong.
        reason: String,
    },
    /// A malformed token (T1). Nothing was stored.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// What is wrong (never the token itself).
        reason: String,
    },
    /// `pass_authentication_details` with JWT disabled in the test environment with
    /// the integration validator on (V1): the original SDK's debug-build crash.
    #[error("{reason}")]
    JwtDisabled {
        /// The integration error.
        reason: String,
    },
    /// The call took effect, but storage failed (D4): the change is kept in memory and
    /// written once storage works again.
    #[error("{reason}")]
    NotStored {
        /// The driver's explanation.
        reason: String,
        /// The first record not stored.
        from_lsn: u64,
    },
    /// No workspace of the client has this app id (W1).
    #[error("{reason}")]
    UnknownWorkspace {
        /// The driver's explanation.
        reason: String,
    },
    /// A workspace with this app id runs already in the client (W1).
    #[error("{reason}")]
    DuplicateWorkspace {
        /// The driver's explanation.
        reason: String,
    },
    /// The client was shut down or closed.
    #[error("{reason}")]
    ShutDown {
        /// The driver's explanation.
        reason: String,
    },
    /// A foreign listener or token provider raised something it does not declare
    /// (Python: any exception). authsync logs it and goes on.
    #[error("a foreign callback failed: {reason}")]
    Callback {
        /// The foreign error, as the binding describes it (Python: its `repr`).
        reason: String,
    },
    /// An error this version of the bindings does not know yet.
    #[error("{reason}")]
    Other {
        /// The driver's explanation.
        reason: String,
    },
}

#[uniffi::export]
impl AuthsyncError {
    /// The whole sentence, as Rust's `Display` gives it. (Python's `str()` of a UniFFI
    /// error lists its fields instead; the package's `__init__` makes `str()` this.)
    pub fn message(&self) -> String {
        self.to_string()
    }
}

// Without this, a foreign listener or provider that raises an undeclared exception
// would make the generated code panic on the driver's thread.
impl From<uniffi::UnexpectedUniFFICallbackError> for AuthsyncError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Callback {
            reason: error.reason,
        }
    }
}

impl From<Error> for AuthsyncError {
    fn from(error: Error) -> Self {
        let reason = error.to_string();
        match error {
            Error::Event(_) => Self::InvalidEvent { reason },
            Error::Identify(_) => Self::InvalidIdentifier { reason },
            Error::AuthDetails(AuthDetailsError::JwtDisabled) => Self::JwtDisabled { reason },
            Error::AuthDetails(
                AuthDetailsError::EmptyIdentifier | AuthDetailsError::IdentifierTooLong { .. },
            ) => Self::InvalidIdentifier { reason },
            Error::AuthDetails(_) => Self::InvalidToken { reason },
            Error::NotStored { from_lsn } => Self::NotStored { reason, from_lsn },
            Error::ShutDown => Self::ShutDown { reason },
            Error::UnknownWorkspace(_) => Self::UnknownWorkspace { reason },
            _ => Self::Other { reason },
        }
    }
}

impl From<StartError> for AuthsyncError {
    fn from(error: StartError) -> Self {
        let reason = error.to_string();
        match error {
            StartError::Config(_) => Self::InvalidConfig { reason },
            StartError::Store(_) | StartError::Restore(_) | StartError::SeedMismatch { .. } => {
                Self::StateDirectory { reason }
            }
            StartError::DuplicateWorkspace(_) => Self::DuplicateWorkspace { reason },
            _ => Self::StartFailed { reason },
        }
    }
}

/// How an app's [`crate::Transport`] failed without an answer. Raise it from
/// `send` (Python: `raise TransportError.Connect(reason="...")`); authsync retries
/// with backoff (A4). Anything else raised counts as [`TransportError::Unexpected`].
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// No connection could be made (DNS, refused, unreachable, offline).
    #[error("no connection: {reason}")]
    Connect {
        /// The platform's description.
        reason: String,
    },
    /// No answer in time.
    #[error("timed out: {reason}")]
    Timeout {
        /// The platform's description.
        reason: String,
    },
    /// The connection broke before a whole answer arrived.
    #[error("connection reset: {reason}")]
    Reset {
        /// The platform's description.
        reason: String,
    },
    /// The transport raised something else, or returned something that is not a
    /// response; it counts as a broken connection.
    #[error("the transport failed: {reason}")]
    Unexpected {
        /// The foreign error, as the binding describes it.
        reason: String,
    },
}

#[uniffi::export]
impl TransportError {
    /// The whole sentence.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unexpected {
            reason: error.reason,
        }
    }
}

impl From<&TransportError> for TransportFailure {
    fn from(error: &TransportError) -> Self {
        match error {
            TransportError::Connect { .. } => Self::Connect,
            TransportError::Timeout { .. } => Self::Timeout,
            TransportError::Reset { .. } | TransportError::Unexpected { .. } => Self::Reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_keep_their_text_and_get_their_own_variant() {
        let shut = AuthsyncError::from(Error::ShutDown);
        assert!(matches!(shut, AuthsyncError::ShutDown { .. }));
        assert_eq!(shut.message(), "the client was shut down");
        let jwt = AuthsyncError::from(Error::AuthDetails(AuthDetailsError::JwtDisabled));
        assert!(matches!(jwt, AuthsyncError::JwtDisabled { .. }));
        let id = AuthsyncError::from(Error::AuthDetails(AuthDetailsError::EmptyIdentifier));
        assert!(matches!(id, AuthsyncError::InvalidIdentifier { .. }));
        let stored = AuthsyncError::from(Error::NotStored { from_lsn: 7 });
        assert!(matches!(
            stored,
            AuthsyncError::NotStored { from_lsn: 7, .. }
        ));
    }

    #[test]
    fn transport_errors_map_to_the_driver_failures() {
        let reason = String::new;
        assert_eq!(
            TransportFailure::from(&TransportError::Connect { reason: reason() }),
            TransportFailure::Connect
        );
        assert_eq!(
            TransportFailure::from(&TransportError::Timeout { reason: reason() }),
            TransportFailure::Timeout
        );
        assert_eq!(
            TransportFailure::from(&TransportError::Unexpected { reason: reason() }),
            TransportFailure::Reset
        );
    }
}
