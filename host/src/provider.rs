//! Token providers (R2): what a driver calls to get a new token when the listener is
//! told about an authentication problem, at most once at a time per identifier.
//!
//! The gate only does the bookkeeping; each driver runs providers its own way (a
//! thread, a task) and passes the result in as `pass_authentication_details`.

use std::collections::BTreeSet;

use authsync_core::{AuthDetailsError, AuthNotice, ErrorCode, Outcome};

/// What a provider is asked for: a token for this identifier, because of this code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The identifier that needs a token.
    pub identifier: String,
    /// Why: the notice's code (`TOKEN_NOT_AVAILABLE`, `TOKEN_EXPIRING`, a 401's code).
    pub code: ErrorCode,
    /// The workspace's app id.
    pub app_id: String,
}

impl TokenRequest {
    /// The request a notice calls for; `None` for notices without an identifier
    /// (anonymous data, JWT disabled), for which no token can be passed.
    #[must_use]
    pub fn for_notice(notice: &AuthNotice) -> Option<Self> {
        Some(Self {
            identifier: notice.identifier.clone()?,
            code: notice.code.clone(),
            app_id: notice.app_id.clone(),
        })
    }
}

/// Single flight per identifier: a second request for an identifier whose provider is
/// still running is not started (the running one will answer it).
///
/// ```
/// use authsync_host::provider::SingleFlight;
/// let mut gate = SingleFlight::default();
/// assert!(gate.try_begin("alice"));
/// assert!(!gate.try_begin("alice"));
/// assert!(gate.try_begin("bob"));
/// gate.end("alice");
/// assert!(gate.try_begin("alice"));
/// assert_eq!(gate.running(), 2);
/// ```
#[derive(Debug, Default)]
pub struct SingleFlight {
    running: BTreeSet<String>,
}

impl SingleFlight {
    /// Marks `identifier` as running; `false` if it already was.
    pub fn try_begin(&mut self, identifier: &str) -> bool {
        self.running.insert(identifier.to_owned())
    }

    /// Marks `identifier`'s provider call as finished.
    pub fn end(&mut self, identifier: &str) {
        self.running.remove(identifier);
    }

    /// How many provider calls are running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

/// What a provider answered: a token, nothing, or a panic.
pub type ProviderAnswer = Result<Option<String>, ()>;

/// Passes a provider's token in with `pass`, and says why nothing usable came of the
/// answer, if so (for the observers' `ProviderFailed`). Nothing is passed once the
/// workspace is stopping.
///
/// ```
/// use authsync_host::provider::pass_answer;
/// let passed = pass_answer(Ok(Some("a.b.c".into())), false, |token| {
///     assert_eq!(token, "a.b.c");
///     Ok(authsync_core::Outcome::Applied)
/// });
/// assert_eq!(passed, None);
/// assert_eq!(pass_answer(Ok(None), false, |_| unreachable!()).as_deref(), Some("the provider gave no token"));
/// ```
pub fn pass_answer(
    answer: ProviderAnswer,
    stopping: bool,
    pass: impl FnOnce(&str) -> Result<Outcome, AuthDetailsError>,
) -> Option<String> {
    match answer {
        Ok(Some(_)) if stopping => None,
        Ok(Some(token)) => pass(&token)
            .err()
            .map(|refused| format!("the provider's token was refused: {refused}")),
        Ok(None) => Some("the provider gave no token".to_owned()),
        Err(()) => Some("the provider panicked".to_owned()),
    }
}
