//! The abstract inputs that drive the model and the real core side by side.
//!
//! An [`Input`] is what a test chooses: "pass a new token for user 1", "answer the
//! request in flight with a 401 carrying `INVALID_SIGNATURE`". The model turns it into a
//! concrete [`Step`] (which token exactly, see [`crate::model::Model::resolve`]), and the
//! simulated driver ([`crate::sim`]) carries the step out on the real client. This module
//! only names the inputs and says what each one means on the wire; it decides nothing.

use arbitrary::Arbitrary;

/// One of the three identified users of the alphabet (`u0`, `u1`, `u2`).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum User {
    /// `u0`.
    U0,
    /// `u1`.
    U1,
    /// `u2`.
    U2,
}

impl User {
    /// Every user, in order.
    pub const ALL: [Self; 3] = [Self::U0, Self::U1, Self::U2];

    /// The identifier the app passes to the core.
    #[must_use]
    pub const fn identifier(self) -> &'static str {
        match self {
            Self::U0 => "u0",
            Self::U1 => "u1",
            Self::U2 => "u2",
        }
    }

    /// The user's position in [`User::ALL`], for per-user arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Self::U0 => 0,
            Self::U1 => 1,
            Self::U2 => 2,
        }
    }

    /// The user with this identifier, if it is one of the alphabet's.
    #[must_use]
    pub fn from_identifier(identifier: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.identifier() == identifier)
    }
}

/// Which token a `PassToken` input passes.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenChoice {
    /// A token never passed before, with an `exp` far in the future (a good token).
    Fresh,
    /// A token never passed before whose `exp` is already past: R1 warns about it, S6
    /// still sends it.
    Expired,
    /// The newest token already passed for the user (T2: passing it again is ignored).
    Again,
    /// The token the server last rejected for the user (A2: passing it again changes
    /// nothing).
    Rejected,
}

/// The code a 401 carries in its body (section 4), or a body without a readable code.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code401 {
    /// `DECRYPTION_FAILED`.
    DecryptionFailed,
    /// `HEADER_TYPE_INCOMPATIBLE`.
    HeaderTypeIncompatible,
    /// `TIME_CONSTRAINT_FAILURE`.
    TimeConstraintFailure,
    /// `PAYLOAD_CONTENT_MISSING`.
    PayloadContentMissing,
    /// `INVALID_SIGNATURE`.
    InvalidSignature,
    /// `IDENTIFIER_MISMATCH`.
    IdentifierMismatch,
    /// A server-sent `TOKEN_NOT_AVAILABLE` (a failure like any other, A2).
    TokenNotAvailable,
    /// `UNKNOWN`, as the server wrote it.
    Unknown,
    /// A body that is not the JSON of section 4: the code is `UNKNOWN` (A2, V3).
    Unreadable,
    /// A code this version does not know: kept as the server sent it (V3).
    Unlisted,
}

impl Code401 {
    /// Every kind of 401 body.
    pub const ALL: [Self; 10] = [
        Self::DecryptionFailed,
        Self::HeaderTypeIncompatible,
        Self::TimeConstraintFailure,
        Self::PayloadContentMissing,
        Self::InvalidSignature,
        Self::IdentifierMismatch,
        Self::TokenNotAvailable,
        Self::Unknown,
        Self::Unreadable,
        Self::Unlisted,
    ];

    /// The code the listener must be told.
    #[must_use]
    pub const fn expected_code(self) -> &'static str {
        match self {
            Self::DecryptionFailed => "DECRYPTION_FAILED",
            Self::HeaderTypeIncompatible => "HEADER_TYPE_INCOMPATIBLE",
            Self::TimeConstraintFailure => "TIME_CONSTRAINT_FAILURE",
            Self::PayloadContentMissing => "PAYLOAD_CONTENT_MISSING",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::IdentifierMismatch => "IDENTIFIER_MISMATCH",
            Self::TokenNotAvailable => "TOKEN_NOT_AVAILABLE",
            Self::Unknown | Self::Unreadable => "UNKNOWN",
            Self::Unlisted => "SHINY_NEW_CODE",
        }
    }

    /// The response body the simulated server sends.
    #[must_use]
    pub fn body(self) -> String {
        match self {
            Self::Unreadable => "<html>401 Unauthorized</html>".to_owned(),
            other => format!(
                r#"{{"error":{{"type":"jwt","code":"{}","message":"refused"}}}}"#,
                other.expected_code()
            ),
        }
    }
}

/// How the simulated server answers the request in flight.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// 200: acknowledged (A1).
    Ok,
    /// 401 with this body (A2).
    Unauthorized(Code401),
    /// 413: too large (A5).
    TooLarge,
    /// 400: permanently refused (A6).
    BadRequest,
    /// 503 with `Retry-After: 2` (A4).
    Unavailable,
    /// No response: the connection failed (A4).
    TransportFailure,
}

/// `Retry-After` of [`Reply::Unavailable`], in seconds.
pub const RETRY_AFTER_S: u64 = 2;

/// How much time passes.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wait {
    /// One second: less than every flush interval the tests configure; may or may not
    /// pass a running backoff (the model is told the backoff's length, see
    /// [`crate::model::Model::apply`]).
    Short,
    /// Two hours: past every flush interval, backoff cap and `Retry-After`.
    Long,
}

impl Wait {
    /// The milliseconds this wait lasts.
    #[must_use]
    pub const fn millis(self) -> u64 {
        match self {
            Self::Short => 1_000,
            Self::Long => 2 * 3_600_000,
        }
    }
}

/// One abstract input: what the app, the server or time does next.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Track an event for the current user.
    Track,
    /// Identify as this user (U2).
    Identify(User),
    /// Pass a token for this user (T1, T2).
    PassToken(User, TokenChoice),
    /// Start a session (SS1).
    SessionStart,
    /// Log out (L1–L5).
    Logout,
    /// Flush (S1).
    Flush,
    /// Answer the request in flight; with nothing in flight, the answer goes to a
    /// request id that is not in flight (A7).
    Reply(Reply),
    /// Answer a request id that is not in flight while one is (A7).
    StaleReply,
    /// Let time pass.
    Wait(Wait),
    /// Kill the process and restore the client from its snapshot and journal (D2).
    Restart,
    /// The token provider answers its fetch for this user (R2).
    Answer(User, AnswerChoice),
}

/// What a token provider answers (R2).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerChoice {
    /// A token never passed before.
    Fresh,
    /// The token the server last rejected for the user (R2c).
    Rejected,
    /// The user's newest token again.
    Same,
    /// No token.
    NoToken,
}

/// Which inputs a test draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breadth {
    /// Every input, every 401 code: for proptests and fuzzing.
    Full,
    /// The explorer's smaller alphabet: 401 codes behave alike except for the code told
    /// (two stand for all: a readable one and an unreadable body), and no stale replies
    /// (A7 changes nothing by definition). Keeps depth 10 within minutes.
    Compact,
}

/// The inputs that make sense in a state: answers only while a request is in flight,
/// `Again` and `Rejected` tokens only when the user has one, a provider's answer only
/// while it is asked.
///
/// `in_flight`, `has_token`, `has_rejected` and `fetching` describe the model's state
/// (see [`crate::model::Model::inputs`]).
#[must_use]
pub fn inputs(
    breadth: Breadth,
    in_flight: bool,
    has_token: impl Fn(User) -> bool,
    has_rejected: impl Fn(User) -> bool,
    fetching: impl Fn(User) -> bool,
) -> Vec<Input> {
    let mut all = vec![Input::Track];
    all.extend(User::ALL.map(Input::Identify));
    for user in User::ALL {
        all.push(Input::PassToken(user, TokenChoice::Fresh));
        all.push(Input::PassToken(user, TokenChoice::Expired));
        if has_token(user) {
            all.push(Input::PassToken(user, TokenChoice::Again));
        }
        if has_rejected(user) {
            all.push(Input::PassToken(user, TokenChoice::Rejected));
        }
    }
    all.extend([Input::SessionStart, Input::Logout, Input::Flush]);
    if in_flight {
        all.extend([
            Input::Reply(Reply::Ok),
            Input::Reply(Reply::TooLarge),
            Input::Reply(Reply::BadRequest),
            Input::Reply(Reply::Unavailable),
            Input::Reply(Reply::TransportFailure),
        ]);
        match breadth {
            Breadth::Full => {
                all.extend(Code401::ALL.map(|c| Input::Reply(Reply::Unauthorized(c))));
                all.push(Input::StaleReply);
            }
            Breadth::Compact => all.extend([
                Input::Reply(Reply::Unauthorized(Code401::InvalidSignature)),
                Input::Reply(Reply::Unauthorized(Code401::Unreadable)),
            ]),
        }
    }
    for user in User::ALL.into_iter().filter(|&u| fetching(u)) {
        all.push(Input::Answer(user, AnswerChoice::Fresh));
        all.push(Input::Answer(user, AnswerChoice::NoToken));
        if breadth == Breadth::Full {
            all.push(Input::Answer(user, AnswerChoice::Same));
            if has_rejected(user) {
                all.push(Input::Answer(user, AnswerChoice::Rejected));
            }
        }
    }
    all.extend([
        Input::Wait(Wait::Short),
        Input::Wait(Wait::Long),
        Input::Restart,
    ]);
    all
}

/// A token of the alphabet: the `serial`th token passed for `user`, with an `exp` far
/// in the future or already past. The simulated driver turns it into a JWS string
/// ([`crate::sim::token_string`]) and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenName {
    /// The user it is passed for (its `sub`).
    pub user: User,
    /// Tells the user's tokens apart, from 1.
    pub serial: u32,
    /// Whether its `exp` is already past (R1, S6).
    pub expired: bool,
}

impl TokenName {
    /// Its `exp`, in ms from the start of a simulation: a day before it when expired,
    /// ten years after it when good (never within the refresh-ahead window of a run).
    #[must_use]
    pub const fn exp_from_start_ms(self) -> i64 {
        let day_ms = 86_400_000;
        if self.expired {
            -day_ms
        } else {
            3_650 * day_ms
        }
    }
}

/// A concrete step: an [`Input`] with its token chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Track an event for the current user.
    Track,
    /// Identify as this user.
    Identify(User),
    /// Pass this token for its user.
    PassToken(TokenName),
    /// Start a session.
    SessionStart,
    /// Log out.
    Logout,
    /// Flush.
    Flush,
    /// Answer the request in flight (or, with none, a request id not in flight).
    Reply(Reply),
    /// Answer a request id that is not in flight.
    StaleReply,
    /// Let time pass.
    Wait(Wait),
    /// Kill the process and restore the client.
    Restart,
    /// The provider's answer to the fetch for this user: a token, or none (R2).
    Answer(User, Option<TokenName>),
}
