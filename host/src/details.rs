//! The original SDK's `MoEngageJwtAuthenticationDetails`, and the HTTP settings both drivers
//! take.

use std::fmt;
use std::time::Duration;

/// A JWT and the identifier it authenticates. `Debug` shows a prefix of the token only.
///
/// ```
/// let details = authsync_host::JwtAuthenticationDetails::new("eyJhbGciOi.payload.sig", "user-1");
/// assert!(!format!("{details:?}").contains("payload"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct JwtAuthenticationDetails {
    /// The JWS compact token signed by the app's backend.
    pub token: String,
    /// The user id the token is for (its `sub`).
    pub identifier: String,
}

impl JwtAuthenticationDetails {
    /// Details for `identifier`.
    pub fn new(token: impl Into<String>, identifier: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            identifier: identifier.into(),
        }
    }
}

impl fmt::Debug for JwtAuthenticationDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.token.chars().take(8).collect();
        f.debug_struct("JwtAuthenticationDetails")
            .field("token", &format_args!("{prefix}…"))
            .field("identifier", &self.identifier)
            .finish()
    }
}

/// HTTP behaviour of a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for each phase of a request (sending it, awaiting the answer,
    /// reading its body); the async driver applies it to the whole exchange.
    pub request_timeout: Duration,
    /// Response bytes read at most; the rest is ignored.
    pub max_response_bytes: u64,
}

impl Default for HttpOptions {
    /// 10 s to connect, 30 s per request, 64 KiB of response.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// How an I/O error ended a request: the classification both transports share.
#[must_use]
pub fn failure_of_io(error: &std::io::Error) -> authsync_core::TransportFailure {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::AddrNotAvailable
        | ErrorKind::NotFound
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable => authsync_core::TransportFailure::Connect,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => authsync_core::TransportFailure::Timeout,
        _ => authsync_core::TransportFailure::Reset,
    }
}
