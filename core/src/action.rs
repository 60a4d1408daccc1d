//! What the core asks of its driver, and what its calls report back.
//!
//! The driver drains [`Action`]s after every input, in order, and carries them out:
//! write [`Action::Persist`] records, send [`Action::Send`] requests, hand notices to the
//! app. Nothing here decides anything; the types only carry what was decided.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use crate::error_code::ErrorCode;
use crate::owner::Owner;
use crate::record::{DropReason, Record};
use crate::token::Token;

/// Identifies one request in flight, so its response can be matched (A7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One thing for the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Append this record to the journal before acting on anything after it (D2).
    Persist(Record),
    /// Send this request, then report its response or its failure (S2: at most one
    /// is in flight). Boxed: actions move through a queue on every track, and a
    /// request is five times the size of the others.
    Send(Box<Request>),
    /// Tell the app's authentication listener (A2, S5, R1). Listeners are called in
    /// order, one at a time (LS1).
    Notify(Box<AuthNotice>),
    /// Events were dropped, with the reason (D1).
    Dropped(DropNotice),
    /// The server acknowledged a batch (A1).
    Acked(AckNotice),
    /// The authentication-failure counter reached its maximum: nothing is sent until
    /// the next session start (A3). Reported when the lockout begins.
    LockedOut,
}

/// A request of wire protocol v1: `POST {endpoint}/v1/report` with its headers and the
/// batch's body (always the same bytes for the same batch, S3).
///
/// `Debug` shows the `Authorization` header as sensitive, never the token (T3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Matches the response to this request.
    pub id: RequestId,
    /// The batch's id, also sent as `Idempotency-Key`.
    pub batch_id: String,
    /// Whose events these are.
    pub owner: Owner,
    /// How many events the body holds.
    pub events: usize,
    /// `POST`.
    pub method: Method,
    /// `{endpoint}/v1/report`.
    pub uri: Uri,
    /// `Content-Type`, `X-App-Id`, `Idempotency-Key`, and `Authorization` per S4.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Bytes,
}

impl Request {
    /// The request as an [`http::Request`], for HTTP clients that take one.
    ///
    /// ```
    /// # use authsync_core::{Client, Config, Now, Action};
    /// # let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// # let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// # client.handle_flush(Now::new(0, 0));
    /// # let request = std::iter::from_fn(|| client.poll_action())
    /// #     .find_map(|a| if let Action::Send(r) = a { Some(r) } else { None }).unwrap();
    /// let http_request: http::Request<bytes::Bytes> = request.to_http();
    /// assert_eq!(http_request.uri().path(), "/v1/report");
    /// ```
    #[must_use]
    pub fn to_http(&self) -> http::Request<Bytes> {
        let mut request = http::Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// An authentication notice for the app's listener, with what the seed's listener
/// shows: code, message, the token used, the identifier and the app id.
///
/// `Debug` shows only a prefix of the token (T3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthNotice {
    /// Why.
    pub code: ErrorCode,
    /// The server's message, or the core's explanation for client-side codes.
    pub message: String,
    /// The token the failed request carried, or the expiring token; `None` when no
    /// token was involved.
    pub token: Option<Token>,
    /// The identifier the notice is about; `None` for anonymous data and with JWT
    /// disabled.
    pub identifier: Option<String>,
    /// The workspace's app id.
    pub app_id: String,
}

/// Events dropped, and why (D1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropNotice {
    /// Why they were dropped.
    pub reason: DropReason,
    /// How many events.
    pub events: u64,
    /// Whose events they were.
    pub owner: Owner,
}

/// A batch the server acknowledged (A1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckNotice {
    /// The batch's id.
    pub batch_id: String,
    /// How many events it held.
    pub events: usize,
    /// Whether the server said it had seen this batch already (a retry after a lost
    /// response).
    pub duplicate: bool,
}

/// Whether a call changed anything. Ignored calls are not errors: the spec says they
/// change nothing, and this says so.
#[must_use = "an ignored call changed nothing; check why"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call took effect.
    Applied,
    /// The call changed nothing, for this reason.
    Ignored(IgnoredBecause),
}

/// Why a call changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredBecause {
    /// A token was passed with JWT disabled in `Live` or with the validator off (V1).
    JwtDisabled,
    /// Logout while anonymous (L5).
    AlreadyAnonymous,
    /// Identify with the current user's id (U2).
    AlreadyIdentified,
    /// The token is the identifier's current token already (T2).
    SameToken,
    /// The token is the one the server rejected (A2).
    RejectedToken,
}

/// How a request failed without a response (A4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// No connection could be made.
    Connect,
    /// No response in time.
    Timeout,
    /// The connection broke before a whole response arrived.
    Reset,
}

/// What the core will wait for next, and why (DT2); the reason makes a stuck timer a
/// one-line read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    /// Monotonic milliseconds at which to call [`crate::Client::handle_timeout`].
    pub at_mono_ms: u64,
    /// What is due then.
    pub reason: WakeReason,
}

/// What a [`Wakeup`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WakeReason {
    /// The open batch's flush interval runs out (S1).
    FlushInterval,
    /// A backoff runs out and a batch can be retried (A4).
    Backoff,
    /// A token enters its refresh-ahead window (R1).
    RefreshAhead,
}

impl fmt::Display for WakeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FlushInterval => "flush interval",
            Self::Backoff => "backoff",
            Self::RefreshAhead => "refresh-ahead",
        })
    }
}

/// What is left to send, for a driver that waits until the core is idle (the
/// `settle` of `authsync run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOutlook {
    /// Whether a request is in flight.
    pub in_flight: bool,
    /// When, with no further input, the next request would be sent (monotonic ms):
    /// now, when a backoff or flush interval runs out, or `None` when nothing can go
    /// (queue empty, or all that is left waits for a token, a session start or the
    /// end of a lockout).
    pub next_send_mono_ms: Option<u64>,
}
