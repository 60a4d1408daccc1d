//! What the core hands its host: work to perform ([`Step`], [`WriteJob`]) and what
//! happened ([`Event`]), kept apart so that a host matches every kind of work it must
//! do and passes events on.
//!
//! Nothing here decides anything; the types only carry what the client decided.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use crate::error_code::ErrorCode;
use crate::fetch::{FetchFailure, FetchId, TokenFetch};
use crate::owner::Owner;
use crate::record::DropReason;
use crate::recovery::RecoveryReport;
use crate::storage::{CompactJob, StorageFailure, SyncJob};
use crate::token::Token;

/// Identifies one request in flight, so its response can be matched (A7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Work for the host, from [`crate::Client::poll_step`]: perform it and report the
/// result with the matching `handle_*` input. Every variant is work a host may not
/// skip, so match them all.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Step {
    /// Send this request, then report [`crate::Client::handle_response`] or
    /// [`crate::Client::handle_transport_failure`] (S2: at most one is in flight).
    /// Boxed: a request is several times the size of the other steps.
    Send(Box<Request>),
    /// Ask the token provider for a token (R2), then report
    /// [`crate::Client::handle_token_answer`]. Several may run at once, one per
    /// identifier.
    FetchToken(TokenFetch),
    /// The fetch ran past its timeout or is no longer wanted: stop it (a command is
    /// killed with every process it started). Its answer, if one still comes, is
    /// refused.
    CancelFetch(FetchId),
    /// Force the journal's appends to the disk, then report
    /// [`crate::Client::handle_synced`].
    Sync(SyncJob),
    /// Write a snapshot of the whole state and drop the journal segments it covers,
    /// then report [`crate::Client::handle_compacted`]. Appends go on meanwhile, into
    /// the segment the job names.
    Compact(CompactJob),
    /// After [`crate::Client::handle_close`]: nothing is left to do; everything
    /// written is on the disk when `clean` is true. The host marks its store closed
    /// cleanly (if so) and ends.
    Finish {
        /// Whether every record was stored and synced.
        clean: bool,
    },
}

/// What happened, from [`crate::Client::poll_event`], in the order it happened. Hand
/// [`Event::Notice`] to the app's authentication listeners (LS1: one at a time, in
/// order) and every event to observers of the sync timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An authentication notice for the app's listeners (A2, S5, R1).
    Notice(Box<AuthNotice>),
    /// The server acknowledged a batch (A1).
    Acked(AckNotice),
    /// Events were dropped, with the reason (D1).
    Dropped(DropNotice),
    /// The authentication-failure counter reached its maximum: nothing is sent until
    /// the next session start (A3). Emitted when the lockout begins.
    LockedOut,
    /// A request left for the server.
    Sent {
        /// The batch it carries.
        batch_id: String,
        /// Whose events.
        owner: Owner,
        /// How many events.
        events: usize,
        /// The first characters of the token it carries, if any (T3).
        token_prefix: Option<String>,
    },
    /// The server answered a request.
    Answered {
        /// The batch it answered.
        batch_id: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for a human reader (at most 200 characters).
        summary: String,
    },
    /// A request failed without an answer (A4).
    TransportFailed {
        /// The batch it carried.
        batch_id: String,
        /// How it failed.
        failure: TransportFailure,
    },
    /// A token fetch gave no token that could be used (R2).
    TokenFetchFailed {
        /// The identifier it was for.
        identifier: String,
        /// Why.
        reason: FetchFailure,
    },
    /// Storage failed, recovered, or found damage (D4, D5).
    Storage(StorageNotice),
}

/// What the store went through (D4, D5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageNotice {
    /// A write or sync failed: from record `from_lsn` on, changes are kept in memory
    /// only; the store is rewritten whole once writes succeed again, and until then no
    /// request that depends on them leaves.
    Failed {
        /// What failed.
        failure: StorageFailure,
        /// The first record not stored.
        from_lsn: u64,
    },
    /// A rewrite of the whole state succeeded after a failure: everything is stored
    /// again.
    Resumed,
    /// A compaction failed; the journal is intact and it is tried again later.
    CompactionFailed {
        /// What failed.
        failure: StorageFailure,
    },
    /// What opening the store found: damage, and what was lost with it.
    Recovered(Box<RecoveryReport>),
}

impl fmt::Display for StorageNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { failure, from_lsn } => write!(
                f,
                "storage failed ({failure}); changes from record {from_lsn} on are kept in memory until writes succeed again"
            ),
            Self::Resumed => f.write_str("storage works again; everything is stored"),
            Self::CompactionFailed { failure } => {
                write!(
                    f,
                    "compaction failed ({failure}); the journal is intact, it is tried again later"
                )
            }
            Self::Recovered(report) => report.fmt(f),
        }
    }
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
    /// # use authsync_core::{Client, Config, Now, Step};
    /// # let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// # let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// # client.handle_flush(Now::new(0, 0));
    /// # let Some(Step::Send(request)) = client.poll_step() else { panic!() };
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

/// An authentication notice for the app's listener, with what the original SDK's
/// listener shows: code, message, the token used, the identifier and the app id.
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
    /// The identifier the notice is about: the owner's, whenever the owner is
    /// identified (with JWT disabled too); `None` for anonymous data (A2).
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
    /// A provider's token came after the app passed one for the same identifier; the
    /// app's is newer (R2).
    Superseded,
    /// A provider's token came for a user who logged out and has nothing left to send
    /// (R2).
    UserGone,
    /// A provider's answer was not a token authsync can use (T1, R2).
    NoUsableToken,
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
    /// A token fetch reaches its timeout (R2).
    TokenFetchTimeout,
    /// Appends are due to be synced (D2, the fsync policy).
    Sync,
    /// Storage is tried again after a failure (D4).
    StorageRetry,
}

impl fmt::Display for WakeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FlushInterval => "flush interval",
            Self::Backoff => "backoff",
            Self::RefreshAhead => "refresh-ahead",
            Self::TokenFetchTimeout => "token fetch timeout",
            Self::Sync => "sync",
            Self::StorageRetry => "storage retry",
        })
    }
}

/// What is left to send, for a host that waits until the client is idle (the `settle`
/// of `authsync run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOutlook {
    /// Whether a request is in flight.
    pub in_flight: bool,
    /// When, with no further input, the next request would be sent (monotonic ms):
    /// now, when a backoff or flush interval runs out, or `None` when nothing can go
    /// (queue empty, or all that is left waits for a token, a session start, the end
    /// of a lockout, or storage that works again).
    pub next_send_mono_ms: Option<u64>,
    /// How many token fetches are running (R2).
    pub fetches: usize,
    /// Whether changes wait to be written, or events to be emitted.
    pub unfinished: bool,
}

impl SendOutlook {
    /// Whether nothing more can happen before the monotonic instant `horizon_mono_ms`
    /// without a new input: no request in flight, no token fetch running, nothing
    /// left to write or emit, and no request due before the horizon. A host adds what
    /// it holds itself (a step it is performing).
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// assert!(client.outlook().is_settled(0));
    /// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// // The open batch goes when its flush interval (20 s) runs out.
    /// assert!(client.outlook().is_settled(19_999));
    /// assert!(!client.outlook().is_settled(20_000));
    /// ```
    #[must_use]
    pub fn is_settled(&self, horizon_mono_ms: u64) -> bool {
        !self.in_flight
            && self.fetches == 0
            && !self.unfinished
            && self.next_send_mono_ms.is_none_or(|at| at > horizon_mono_ms)
    }
}
