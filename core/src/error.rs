//! Typed errors for every call the core refuses.
//!
//! A refused call changes nothing: no state, no action. Messages never contain a
//! token (T3).

use thiserror::Error;

use crate::output::RequestId;

/// An invalid [`crate::Config`] (C1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The app id is empty.
    #[error("app id must not be empty")]
    EmptyAppId,
    /// The app id cannot be sent as an HTTP header value.
    #[error("app id must be visible ASCII without spaces")]
    InvalidAppId,
    /// The endpoint is not an `http`/`https` base URL.
    #[error("endpoint {endpoint:?} is invalid: {why}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A numeric field is out of range.
    #[error("{field} must be {requirement}")]
    OutOfRange {
        /// The field's name in [`crate::Config`].
        field: &'static str,
        /// Its allowed range.
        requirement: &'static str,
    },
}

/// A token that is not a JWS compact string (T1). The token itself is never included.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty.
    #[error("token is empty")]
    Empty,
    /// The token is longer than 8 KiB.
    #[error("token is {len} bytes, more than the 8 KiB allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The token has a character that is not visible ASCII.
    #[error("token has characters other than visible ASCII")]
    NotVisibleAscii,
    /// The token is not three non-empty base64url segments.
    #[error("token is not three base64url segments separated by dots")]
    NotJws,
    /// The payload segment is not base64url-encoded JSON (only when reading `exp`).
    #[error("token payload is not base64url-encoded JSON")]
    UnreadablePayload,
}

/// A refused `pass_authentication_details` call (T1, V1). Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthDetailsError {
    /// JWT is disabled and the integration validator is on in the test environment
    /// (V1): the original SDK's debug-build crash, as an error.
    #[error(
        "integration error: pass_authentication_details called with JWT disabled; enable JWT in the config or remove the call"
    )]
    JwtDisabled,
    /// The identifier is empty.
    #[error("identifier must not be empty")]
    EmptyIdentifier,
    /// The identifier is longer than [`crate::MAX_IDENTIFIER_BYTES`].
    #[error(
        "identifier is {len} bytes, more than the {} allowed",
        crate::MAX_IDENTIFIER_BYTES
    )]
    IdentifierTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The token is malformed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A refused `identify` call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentifyError {
    /// The identifier is empty.
    #[error("identifier must not be empty")]
    EmptyIdentifier,
    /// The identifier is longer than [`crate::MAX_IDENTIFIER_BYTES`].
    #[error(
        "identifier is {len} bytes, more than the {} allowed",
        crate::MAX_IDENTIFIER_BYTES
    )]
    IdentifierTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// An invalid event (V2). Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The name is empty.
    #[error("event name must not be empty")]
    EmptyName,
    /// The name is longer than 256 bytes.
    #[error("event name is {len} bytes, more than the 256 allowed")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The attributes do not serialize to a JSON object.
    #[error("event attributes must be a JSON object")]
    AttributesNotObject,
    /// The attributes encode to more than 32 KiB.
    #[error("event attributes are {len} bytes encoded, more than the 32 KiB allowed")]
    AttributesTooLarge {
        /// Their encoded length in bytes.
        len: usize,
    },
    /// The attributes could not be serialized to JSON.
    #[error("event attributes cannot be encoded as JSON: {0}")]
    AttributesUnencodable(String),
}

/// A response or failure for a request that is not in flight (A7). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("request {0} is not in flight")]
pub struct UnknownRequest(pub RequestId);

/// A result for a job that is not out (a write, sync, compaction or token fetch
/// already confirmed or ended, R2e). Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("no such job is out")]
pub struct UnknownJob;

/// Persisted state that cannot be restored. The files are left as they are.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The snapshot bytes are damaged or of an unknown version.
    #[error("snapshot is unreadable: {0}")]
    Snapshot(String),
    /// There is neither a snapshot nor a first record that creates the install.
    #[error("persisted state has no snapshot and does not start with the install record")]
    MissingGenesis,
    /// The persisted state belongs to another app id.
    #[error("persisted state belongs to app id {persisted:?}, not {configured:?}")]
    AppIdMismatch {
        /// App id in the persisted state.
        persisted: String,
        /// App id in the configuration.
        configured: String,
    },
    /// A record is missing between the snapshot and the journal, or inside the journal.
    #[error("journal gap: expected record {expected}, found {found}")]
    Gap {
        /// The sequence number that should come next.
        expected: u64,
        /// The one that came.
        found: u64,
    },
    /// A record does not fit the state it is applied to.
    #[error("record {lsn} does not apply: {why}")]
    Inconsistent {
        /// The record's sequence number.
        lsn: u64,
        /// Why it does not apply.
        why: &'static str,
    },
}
