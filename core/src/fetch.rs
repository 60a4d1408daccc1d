//! Token fetches (R2): when the client asks the app's token provider for a token, one
//! fetch at a time per identifier, and how long it waits for an answer.
//!
//! This module keeps the flights and their deadlines; what an answer means (a token
//! the app superseded, a user who is gone, the rejected token) is the client's
//! decision, next to the other token rules.

use std::collections::BTreeMap;
use std::fmt;

use crate::error_code::ErrorCode;
use crate::token::Token;

/// Identifies one token fetch, so that its answer can be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FetchId(pub u64);

impl fmt::Display for FetchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fetch #{}", self.0)
    }
}

/// A request for a token, from [`crate::Step::FetchToken`]: ask the provider for a
/// token for `identifier`, and hand its answer to
/// [`crate::Client::handle_token_answer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFetch {
    /// Matches the answer to the fetch.
    pub id: FetchId,
    /// The identifier that needs a token.
    pub identifier: String,
    /// Why: the notice's code (`TOKEN_NOT_AVAILABLE`, `TOKEN_EXPIRING`, a 401's code).
    pub code: ErrorCode,
    /// The workspace's app id.
    pub app_id: String,
    /// How long the provider may take; past it the fetch is cancelled
    /// ([`crate::Step::CancelFetch`]) and counts as giving no token.
    pub timeout_ms: u64,
}

/// What a token provider answered.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenAnswer {
    /// A token for the identifier.
    Token(String),
    /// The provider has no token now.
    NoToken,
    /// The provider failed (a command that failed, a closure that panicked), in words
    /// that hold no token.
    Failed(String),
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(token) => {
                let prefix: String = token.chars().take(crate::token::SHOWN_PREFIX).collect();
                write!(f, "Token({prefix}…)")
            }
            Self::NoToken => f.write_str("NoToken"),
            Self::Failed(why) => f.debug_tuple("Failed").field(why).finish(),
        }
    }
}

/// Why a token fetch gave nothing usable (R2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchFailure {
    /// The provider had no token.
    NoToken,
    /// The provider failed, for this reason.
    Failed(String),
    /// The provider did not answer within its timeout; it was cancelled.
    TimedOut,
    /// The provider's token is malformed (T1), for this reason.
    Malformed(String),
    /// The provider gave the token the server rejected (A2).
    Rejected,
    /// The provider gave the token already in use.
    Unchanged,
    /// The app passed a token for the identifier while the fetch ran; the app's is
    /// kept.
    Superseded,
    /// The user logged out and has nothing left to send.
    UserGone,
    /// The client was closed while the fetch ran.
    Closed,
}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoToken => f.write_str("the provider gave no token"),
            Self::Failed(why) => write!(f, "the provider failed: {why}"),
            Self::TimedOut => f.write_str("the provider did not answer in time and was stopped"),
            Self::Malformed(why) => write!(f, "the provider's token was refused: {why}"),
            Self::Rejected => f.write_str("the provider gave the token the server rejected"),
            Self::Unchanged => f.write_str("the provider gave the token already in use"),
            Self::Superseded => {
                f.write_str("the app passed a token meanwhile; the provider's was not used")
            }
            Self::UserGone => f.write_str("the user logged out meanwhile; the token was not used"),
            Self::Closed => f.write_str("the client closed before the provider answered"),
        }
    }
}

/// One fetch running.
#[derive(Clone, Debug)]
pub(crate) struct Flight {
    pub(crate) id: FetchId,
    pub(crate) deadline_mono_ms: u64,
    /// The identifier's newest token when the fetch began, to tell whether the app
    /// passed another meanwhile.
    pub(crate) token_at_start: Option<Token>,
}

/// The fetches running, one per identifier.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fetches {
    /// `None`: no provider.
    timeout_ms: Option<u64>,
    running: BTreeMap<String, Flight>,
    next_id: u64,
}

impl Fetches {
    pub(crate) fn new(timeout_ms: Option<u64>) -> Self {
        Self {
            timeout_ms,
            running: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Starts a fetch for `identifier` unless there is no provider or one runs for it
    /// already (single flight).
    pub(crate) fn begin(
        &mut self,
        identifier: &str,
        code: &ErrorCode,
        app_id: &str,
        now_mono_ms: u64,
        token_at_start: Option<Token>,
    ) -> Option<TokenFetch> {
        let timeout_ms = self.timeout_ms?;
        if self.running.contains_key(identifier) {
            return None;
        }
        let id = FetchId(self.next_id);
        self.next_id += 1;
        self.running.insert(
            identifier.to_owned(),
            Flight {
                id,
                deadline_mono_ms: now_mono_ms.saturating_add(timeout_ms),
                token_at_start,
            },
        );
        Some(TokenFetch {
            id,
            identifier: identifier.to_owned(),
            code: code.clone(),
            app_id: app_id.to_owned(),
            timeout_ms,
        })
    }

    /// Ends the fetch `id`: its identifier and flight, or `None` when it is not running.
    pub(crate) fn end(&mut self, id: FetchId) -> Option<(String, Flight)> {
        let identifier = self
            .running
            .iter()
            .find(|(_, flight)| flight.id == id)
            .map(|(identifier, _)| identifier.clone())?;
        let flight = self.running.remove(&identifier)?;
        Some((identifier, flight))
    }

    /// Ends every fetch whose deadline has passed.
    pub(crate) fn end_expired(&mut self, now_mono_ms: u64) -> Vec<(String, Flight)> {
        if self.running.is_empty() {
            // Every input asks: most often with no fetch running at all.
            return Vec::new();
        }
        let expired: Vec<String> = self
            .running
            .iter()
            .filter(|(_, flight)| flight.deadline_mono_ms <= now_mono_ms)
            .map(|(identifier, _)| identifier.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|identifier| self.running.remove_entry(&identifier))
            .collect()
    }

    /// Ends every fetch (the client closes).
    pub(crate) fn end_all(&mut self) -> Vec<(String, Flight)> {
        std::mem::take(&mut self.running).into_iter().collect()
    }

    /// The earliest deadline of a running fetch, monotonic.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.running.values().map(|f| f.deadline_mono_ms).min()
    }

    /// How many fetches run.
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r2_one_fetch_at_a_time_per_identifier_with_a_deadline() {
        let mut fetches = Fetches::new(Some(30_000));
        let code = ErrorCode::TokenNotAvailable;
        let first = fetches.begin("alice", &code, "app", 100, None).unwrap();
        assert_eq!(first.timeout_ms, 30_000);
        assert!(fetches.begin("alice", &code, "app", 200, None).is_none());
        let bob = fetches.begin("bob", &code, "app", 300, None).unwrap();
        assert_ne!(first.id, bob.id);
        assert_eq!(fetches.next_deadline(), Some(30_100));
        assert!(fetches.end_expired(30_099).is_empty());
        let expired = fetches.end_expired(30_100);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, "alice");
        assert!(fetches.end(first.id).is_none(), "already ended");
        assert_eq!(
            fetches.end(bob.id).map(|(id, _)| id).as_deref(),
            Some("bob")
        );
        assert_eq!(fetches.running(), 0);
    }

    #[test]
    fn r2_no_provider_no_fetch() {
        let mut fetches = Fetches::new(None);
        assert!(
            fetches
                .begin("alice", &ErrorCode::Unknown, "app", 0, None)
                .is_none()
        );
    }

    #[test]
    fn t3_an_answer_shows_a_prefix_of_its_token_only() {
        let answer = TokenAnswer::Token("eyJhbGciOiJSUzI1NiJ9.payload.signature".into());
        let shown = format!("{answer:?}");
        assert!(!shown.contains("payload"), "{shown}");
    }
}
