//! The reference model: section 3 of the rules document, written from the spec, small and slow on
//! purpose.
//!
//! State is plain `Vec`s and `Option`s; every input is one `match` arm that reads like
//! the rules it implements. It knows nothing of bytes, batch ids, request ids or the
//! core's types beyond the vocabulary of outcomes and drop reasons: what it predicts is
//! a list of [`Predicted`] happenings per step, compared with the core's by
//! [`crate::observe`].
//!
//! Where the rules leave a choice open, the model follows the core's documented choice
//! and says so with a `Core's choice` comment naming the core function.
//!
//! What the model does not know: the backoff jitter. A4 says "full jitter from the
//! seeded generator" without saying which generator, so the model is told the wait the
//! core announced (through `poll_timeout`) and checks that it lies within A4's bounds
//! ([`Prediction::backoff_bounds`]).

use authsync_core::{DropReason, IgnoredBecause, Outcome, WakeReason};

use crate::alphabet::{
    AnswerChoice, Breadth, Input, RETRY_AFTER_S, Reply, Step, TokenChoice, TokenName, User,
};
use crate::observe::{Happening, Predicted};
use crate::sim::FETCH_TIMEOUT_MS;

/// The refresh-ahead window (R1): the core's default, 60 s.
pub const REFRESH_AHEAD_MS: i64 = 60_000;

/// The model's name for a batch; the core's batch ids are paired with these.
pub type BatchKey = u32;

/// Who an event belongs to (section 2), with anonymous users numbered by generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    /// The `n`th anonymous user of the install (0 at install, +1 per logout).
    Anonymous(u32),
    /// An identified user.
    User(User),
}

impl Party {
    /// The identified user, if this is one.
    #[must_use]
    pub const fn user(self) -> Option<User> {
        match self {
            Self::User(user) => Some(user),
            Self::Anonymous(_) => None,
        }
    }
}

/// The knobs of C1 (docs/rules.md) that the rules depend on; the simulated driver builds the
/// core's `Config` from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    /// `jwt_enabled`.
    pub jwt: bool,
    /// Batch max events (the byte limit is never reached: events are tiny).
    pub batch_max_events: usize,
    /// Max pending events (D3).
    pub max_pending: usize,
    /// Max consecutive auth failures (A3).
    pub max_auth_failures: u32,
    /// Flush interval in ms (S1).
    pub flush_interval_ms: u64,
    /// Backoff base in ms (A4).
    pub backoff_base_ms: u64,
    /// Backoff cap in ms (A4).
    pub backoff_cap_ms: u64,
}

impl Settings {
    /// Small limits so that full batches, overflow and lockout are reached in a few
    /// steps: batches of 2, at most 5 pending events, lockout after 3 failures, JWT on.
    /// The flush interval (10 min) is longer than any backoff (1 min cap) plus 64 short
    /// waits, so a running backoff is always the core's next wakeup and the model can
    /// be told its length.
    #[must_use]
    pub const fn small() -> Self {
        Self {
            jwt: true,
            batch_max_events: 2,
            max_pending: 5,
            max_auth_failures: 3,
            flush_interval_ms: 600_000,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
        }
    }

    /// [`Settings::small`] with the rules document's default lockout threshold (10).
    #[must_use]
    pub const fn default_lockout() -> Self {
        Self {
            max_auth_failures: 10,
            ..Self::small()
        }
    }

    /// [`Settings::small`] with JWT disabled: no token is ever stored or sent, and a 401
    /// makes the owner wait for the next session (A2).
    #[must_use]
    pub const fn jwt_disabled() -> Self {
        Self {
            jwt: false,
            ..Self::small()
        }
    }

    /// [`Settings::small`] with 4 pending events at most: the explorer's configuration.
    #[must_use]
    pub const fn explorer() -> Self {
        Self {
            max_pending: 4,
            ..Self::small()
        }
    }
}

/// A sealed batch (S1, S3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Batch {
    /// Its name, stable across retries.
    pub key: BatchKey,
    /// Whose events.
    pub owner: Party,
    /// The events' sequence numbers, oldest first.
    pub seqs: Vec<u64>,
    /// Whether it was ever sent.
    pub attempted: bool,
}

/// The batch still taking the current user's events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenBatch {
    /// Whose events.
    pub owner: Party,
    /// The events' sequence numbers.
    pub seqs: Vec<u64>,
    /// When its first event was tracked (ms since the start).
    pub first_ms: u64,
}

/// What is known of one user's tokens (T2, A2, R1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenRecord {
    /// The newest token passed.
    pub newest: TokenName,
    /// The token the server last rejected.
    pub rejected: Option<TokenName>,
    /// Whether `TOKEN_EXPIRING` was told for `newest`.
    pub expiry_noticed: bool,
}

/// The request in flight (S2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flight {
    /// The batch it carries.
    pub batch: BatchKey,
    /// The token it carries.
    pub token: Option<TokenName>,
}

/// What a call should return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A call that returns nothing.
    Nothing,
    /// `handle_track` accepts the event with this `seq` (S3).
    Tracked(u64),
    /// The call's `Outcome`.
    Outcome(Outcome),
    /// The call is refused: the request is not in flight (A7).
    NotInFlight,
}

/// The model's prediction for one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// What the user sees, in any order.
    pub happenings: Vec<Predicted>,
    /// What the call returns.
    pub expected: Expected,
    /// For a transient failure: the wait A4 allows, `(shortest, longest)` in ms.
    pub backoff_bounds: Option<(u64, u64)>,
}

/// The reference model's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Model {
    /// The configuration.
    pub settings: Settings,
    /// Milliseconds since the start.
    pub now_ms: u64,
    /// The next event's `seq` (S3: from 1).
    pub next_seq: u64,
    /// The next batch's key.
    pub next_key: BatchKey,
    /// How many anonymous users came after the first (U1, L1).
    pub anonymous_generation: u32,
    /// The current user.
    pub current: Party,
    /// The open batch.
    pub open: Option<OpenBatch>,
    /// Sealed batches, oldest first.
    pub queue: Vec<Batch>,
    /// Each user's tokens, by [`User::index`].
    pub tokens: [Option<TokenRecord>; 3],
    /// How many tokens were minted for each user.
    pub minted: [u32; 3],
    /// Users who logged out and still have pending data (L1).
    pub logged_out: Vec<User>,
    /// Owners whose batches wait for the next session (A2 without a token).
    pub waiting_for_session: Vec<Party>,
    /// Users told `TOKEN_NOT_AVAILABLE` in their current episode (S5).
    pub noticed_no_token: Vec<User>,
    /// Consecutive authentication failures in this session (A2, A3).
    pub auth_failures: u32,
    /// Consecutive transient failures since the last 2xx (A4).
    pub backoff_streak: u32,
    /// When the running backoff ends (ms since the start).
    pub backoff_until: Option<u64>,
    /// The request in flight.
    pub in_flight: Option<Flight>,
    /// Events tracked.
    pub tracked: u64,
    /// Events acknowledged.
    pub acked: u64,
    /// Events dropped.
    pub dropped: u64,
    /// Token fetches running (R2), in the order they began.
    pub fetching: Vec<Fetch>,
}

/// A token fetch the provider has not answered (R2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fetch {
    /// For whom.
    pub user: User,
    /// The user's newest token when it began (R2a: a token the app passes meanwhile
    /// wins).
    pub token_at_start: Option<TokenName>,
    /// When it began, ms since the start.
    pub started_ms: u64,
}

impl Model {
    /// A new install: anonymous, nothing pending (U1).
    #[must_use]
    pub const fn new(settings: Settings) -> Self {
        Self {
            settings,
            now_ms: 0,
            next_seq: 1,
            next_key: 1,
            anonymous_generation: 0,
            current: Party::Anonymous(0),
            open: None,
            queue: Vec::new(),
            tokens: [None; 3],
            minted: [0; 3],
            logged_out: Vec::new(),
            waiting_for_session: Vec::new(),
            noticed_no_token: Vec::new(),
            auth_failures: 0,
            backoff_streak: 0,
            backoff_until: None,
            in_flight: None,
            tracked: 0,
            acked: 0,
            dropped: 0,
            fetching: Vec::new(),
        }
    }

    /// Events neither acknowledged nor dropped.
    #[must_use]
    pub fn pending(&self) -> u64 {
        let sealed: usize = self.queue.iter().map(|b| b.seqs.len()).sum();
        let open = self.open.as_ref().map_or(0, |o| o.seqs.len());
        (sealed + open) as u64
    }

    /// Whether nothing may be sent until the next session start (A3).
    #[must_use]
    pub const fn locked_out(&self) -> bool {
        self.auth_failures >= self.settings.max_auth_failures
    }

    /// When the client must next be woken, in ms since the start, and why (DT2): the
    /// open batch's flush interval (S1), a running backoff while data waits for it
    /// (A4), or the refresh-ahead instant of a token that matters (R1). The earliest;
    /// on a tie, in that order.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<(u64, WakeReason)> {
        let flush = self.open.as_ref().map(|o| {
            (
                o.first_ms + self.settings.flush_interval_ms,
                WakeReason::FlushInterval,
            )
        });
        let backoff = self
            .backoff_until
            .filter(|_| !self.queue.is_empty())
            .map(|until| (until, WakeReason::Backoff));
        let refresh = User::ALL
            .into_iter()
            .filter(|&u| self.current == Party::User(u) || self.has_pending(Party::User(u)))
            .filter_map(|u| {
                let record = self.tokens[u.index()]?;
                let usable = self.usable_token(u)?;
                let warn_at = usable.exp_from_start_ms() - REFRESH_AHEAD_MS;
                (!record.expiry_noticed)
                    .then(|| u64::try_from(warn_at).ok())
                    .flatten()
                    .filter(|&at| at > self.now_ms)
            })
            .min()
            .map(|at| (at, WakeReason::RefreshAhead));
        let fetch = self
            .fetching
            .iter()
            .map(|f| f.started_ms + FETCH_TIMEOUT_MS)
            .min()
            .map(|at| (at, WakeReason::TokenFetchTimeout));
        [flush, backoff, refresh, fetch]
            .into_iter()
            .flatten()
            .reduce(|earliest, next| if next.0 < earliest.0 { next } else { earliest })
    }

    /// The inputs that make sense now (see [`crate::alphabet::inputs`]).
    #[must_use]
    pub fn inputs(&self, breadth: Breadth) -> Vec<Input> {
        crate::alphabet::inputs(
            breadth,
            self.in_flight.is_some(),
            |u| self.tokens[u.index()].is_some(),
            |u| self.tokens[u.index()].is_some_and(|t| t.rejected.is_some()),
            |u| self.fetching.iter().any(|f| f.user == u),
        )
    }

    /// Chooses the concrete step for `input`: which token a `PassToken` passes. An
    /// `Again` or `Rejected` choice with no such token passes a fresh one.
    pub fn resolve(&mut self, input: Input) -> Step {
        match input {
            Input::Track => Step::Track,
            Input::Identify(user) => Step::Identify(user),
            Input::PassToken(user, choice) => {
                let record = self.tokens[user.index()];
                let known = match choice {
                    TokenChoice::Again => record.map(|r| r.newest),
                    TokenChoice::Rejected => record.and_then(|r| r.rejected),
                    TokenChoice::Fresh | TokenChoice::Expired => None,
                };
                Step::PassToken(known.unwrap_or_else(|| {
                    self.minted[user.index()] += 1;
                    TokenName {
                        user,
                        serial: self.minted[user.index()],
                        expired: choice == TokenChoice::Expired,
                    }
                }))
            }
            Input::SessionStart => Step::SessionStart,
            Input::Logout => Step::Logout,
            Input::Flush => Step::Flush,
            Input::Reply(reply) => Step::Reply(reply),
            Input::StaleReply => Step::StaleReply,
            Input::Wait(wait) => Step::Wait(wait),
            Input::Restart => Step::Restart,
            Input::Answer(user, choice) => {
                let record = self.tokens[user.index()];
                let known = match choice {
                    AnswerChoice::Same => record.map(|r| r.newest),
                    AnswerChoice::Rejected => record.and_then(|r| r.rejected),
                    AnswerChoice::Fresh => None,
                    AnswerChoice::NoToken => return Step::Answer(user, None),
                };
                Step::Answer(
                    user,
                    Some(known.unwrap_or_else(|| {
                        self.minted[user.index()] += 1;
                        TokenName {
                            user,
                            serial: self.minted[user.index()],
                            expired: false,
                        }
                    })),
                )
            }
        }
    }

    /// Applies one step and predicts what the core does.
    ///
    /// `announced_backoff_ms` is the wait the core announced after this step, if it
    /// announced one (used only for a transient failure, A4: the model knows the bounds,
    /// not the jitter). With none announced, the model expects the retry at once.
    pub fn apply(&mut self, step: Step, announced_backoff_ms: Option<u64>) -> Prediction {
        let mut out = Vec::new();
        let mut backoff_bounds = None;
        let expected = match step {
            Step::Track => Expected::Tracked(self.track(&mut out)),
            Step::Identify(user) => Expected::Outcome(self.identify(user)),
            Step::PassToken(token) => Expected::Outcome(self.pass_token(token)),
            Step::SessionStart => {
                // SS1: counter 0, lockout lifted, waiting batches freed; S1: sealed.
                self.seal();
                self.auth_failures = 0;
                self.waiting_for_session.clear();
                Expected::Nothing
            }
            Step::Logout => Expected::Outcome(match self.current {
                Party::User(user) => {
                    self.log_out(user);
                    Outcome::Applied
                }
                // L5.
                Party::Anonymous(_) => Outcome::Ignored(IgnoredBecause::AlreadyAnonymous),
            }),
            Step::Flush => {
                self.seal();
                Expected::Nothing
            }
            Step::Reply(reply) => match self.in_flight.take() {
                Some(flight) => {
                    backoff_bounds = self.answer(flight, reply, announced_backoff_ms, &mut out);
                    Expected::Nothing
                }
                // A7: nothing changes, nothing is reviewed.
                None => {
                    return Prediction {
                        happenings: out,
                        expected: Expected::NotInFlight,
                        backoff_bounds,
                    };
                }
            },
            Step::StaleReply => {
                return Prediction {
                    happenings: out,
                    expected: Expected::NotInFlight,
                    backoff_bounds,
                };
            }
            Step::Wait(wait) => {
                self.now_ms += wait.millis();
                Expected::Nothing
            }
            Step::Restart => {
                // The process died: its request will never be answered. Everything
                // durable survives (D2); the restored client decides afresh what to send.
                // Token fetches are not durable: the new process asks again.
                self.in_flight = None;
                self.fetching.clear();
                Expected::Nothing
            }
            Step::Answer(user, token) => {
                Expected::Outcome(self.answer_fetch(user, token, &mut out))
            }
        };
        self.run_timers();
        self.review(&mut out);
        self.ask_provider(&mut out);
        self.expire_fetches(&mut out);
        Prediction {
            happenings: out,
            expected,
            backoff_bounds,
        }
    }

    /// R2: every notice that names a user asks the provider, once at a time per user;
    /// with JWT disabled no token can be passed, so none is asked.
    fn ask_provider(&mut self, out: &mut Vec<Predicted>) {
        if !self.settings.jwt {
            return;
        }
        let named: Vec<User> = out
            .iter()
            .filter_map(|h| match h {
                Happening::Notified {
                    identifier: Some(user),
                    ..
                } => Some(*user),
                _ => None,
            })
            .collect();
        for user in named {
            if self.fetching.iter().any(|f| f.user == user) {
                continue;
            }
            self.fetching.push(Fetch {
                user,
                token_at_start: self.tokens[user.index()].map(|t| t.newest),
                started_ms: self.now_ms,
            });
            out.push(Happening::Fetch { user });
        }
    }

    /// R2: a fetch not answered within its timeout gives no token and is stopped.
    fn expire_fetches(&mut self, out: &mut Vec<Predicted>) {
        let now = self.now_ms;
        let (expired, running): (Vec<Fetch>, Vec<Fetch>) = self
            .fetching
            .iter()
            .partition(|f| f.started_ms + FETCH_TIMEOUT_MS <= now);
        self.fetching = running;
        for fetch in expired {
            out.push(Happening::FetchFailed {
                user: fetch.user,
                reason: "TimedOut".to_owned(),
            });
            out.push(Happening::CancelFetch);
        }
    }

    /// R2a-R2d: what the provider's answer means.
    fn answer_fetch(
        &mut self,
        user: User,
        token: Option<TokenName>,
        out: &mut Vec<Predicted>,
    ) -> Outcome {
        let Some(at) = self.fetching.iter().position(|f| f.user == user) else {
            return Outcome::Ignored(IgnoredBecause::NoUsableToken);
        };
        let fetch = self.fetching.remove(at);
        let record = self.tokens[user.index()];
        let (reason, because) = match token {
            None => ("NoToken", IgnoredBecause::NoUsableToken),
            Some(_)
                if self.current != Party::User(user) && !self.has_pending(Party::User(user)) =>
            {
                ("UserGone", IgnoredBecause::UserGone)
            }
            Some(_) if record.is_some_and(|r| Some(r.newest) != fetch.token_at_start) => {
                ("Superseded", IgnoredBecause::Superseded)
            }
            Some(t) if record.is_some_and(|r| r.rejected == Some(t)) => {
                ("Rejected", IgnoredBecause::RejectedToken)
            }
            Some(t) if record.is_some_and(|r| r.newest == t) => {
                ("Unchanged", IgnoredBecause::SameToken)
            }
            Some(t) => return self.pass_token(t),
        };
        out.push(Happening::FetchFailed {
            user,
            reason: reason.to_owned(),
        });
        Outcome::Ignored(because)
    }

    /// S1, S3, D3.
    fn track(&mut self, out: &mut Vec<Predicted>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tracked += 1;
        let (current, now) = (self.current, self.now_ms);
        let open = self.open.get_or_insert_with(|| OpenBatch {
            owner: current,
            seqs: Vec::new(),
            first_ms: now,
        });
        open.seqs.push(seq);
        if open.seqs.len() >= self.settings.batch_max_events {
            self.seal();
        }
        self.enforce_bound(out);
        seq
    }

    /// D3: the oldest events go. Core's choice (`Client::enforce_queue_bound`): the
    /// batch in flight is never cut, and a batch the server may have seen (attempted)
    /// goes whole rather than being re-cut under the same id.
    fn enforce_bound(&mut self, out: &mut Vec<Predicted>) {
        let flight = self.in_flight.map(|f| f.batch);
        while self.pending() > self.settings.max_pending as u64 {
            let excess = (self.pending() - self.settings.max_pending as u64) as usize;
            if let Some(at) = self.queue.iter().position(|b| Some(b.key) != flight) {
                let batch = &mut self.queue[at];
                let owner = batch.owner;
                let gone = if batch.attempted || excess >= batch.seqs.len() {
                    let gone = batch.seqs.len();
                    self.queue.remove(at);
                    gone
                } else {
                    batch.seqs.drain(..excess);
                    excess
                };
                self.count_drop(DropReason::Overflow, gone as u64, owner, out);
            } else if let Some(open) = &mut self.open {
                let gone = excess.min(open.seqs.len());
                open.seqs.drain(..gone);
                let owner = open.owner;
                if open.seqs.is_empty() {
                    self.open = None;
                }
                self.count_drop(DropReason::Overflow, gone as u64, owner, out);
            } else {
                return;
            }
        }
    }

    /// U2.
    fn identify(&mut self, user: User) -> Outcome {
        if self.current == Party::User(user) {
            return Outcome::Ignored(IgnoredBecause::AlreadyIdentified);
        }
        if let Party::User(previous) = self.current {
            self.log_out(previous);
        }
        self.seal();
        // Core's choice (`DurableState::apply`, `Identified`): identifying a user who
        // logged out with data still pending makes that data theirs again, no longer
        // logged out (the rules do not say).
        self.logged_out.retain(|u| *u != user);
        self.current = Party::User(user);
        Outcome::Applied
    }

    /// L1: seal the user's data, keep it for sending, start a new anonymous user.
    fn log_out(&mut self, user: User) {
        self.seal();
        if !self.logged_out.contains(&user) {
            self.logged_out.push(user);
        }
        self.anonymous_generation += 1;
        self.current = Party::Anonymous(self.anonymous_generation);
        self.forget_if_done(Party::User(user));
    }

    /// T1, T2, V1, A2.
    fn pass_token(&mut self, token: TokenName) -> Outcome {
        if !self.settings.jwt {
            // V1 in `Live`: ignored, not stored.
            return Outcome::Ignored(IgnoredBecause::JwtDisabled);
        }
        let slot = &mut self.tokens[token.user.index()];
        match slot {
            Some(record) if record.rejected == Some(token) => {
                Outcome::Ignored(IgnoredBecause::RejectedToken)
            }
            Some(record) if record.newest == token => Outcome::Ignored(IgnoredBecause::SameToken),
            _ => {
                // Core's choice (`TokenState`): only the last rejected token is
                // remembered, and it stays remembered when a new token replaces it.
                let rejected = slot.and_then(|r| r.rejected);
                *slot = Some(TokenRecord {
                    newest: token,
                    rejected,
                    expiry_noticed: false,
                });
                // S5: a token ends the "no token" episode.
                self.noticed_no_token.retain(|u| *u != token.user);
                Outcome::Applied
            }
        }
    }

    /// A1–A6 for the request in flight. Returns A4's bounds for a transient failure.
    fn answer(
        &mut self,
        flight: Flight,
        reply: Reply,
        announced_backoff_ms: Option<u64>,
        out: &mut Vec<Predicted>,
    ) -> Option<(u64, u64)> {
        let at = self.queue.iter().position(|b| b.key == flight.batch)?;
        let owner = self.queue[at].owner;
        let events = self.queue[at].seqs.len() as u64;
        match reply {
            Reply::Ok => {
                self.queue.remove(at);
                self.acked += events;
                self.auth_failures = 0;
                self.backoff_streak = 0;
                self.backoff_until = None;
                out.push(Happening::Acked {
                    batch: flight.batch,
                    events,
                });
                self.forget_if_done(owner);
            }
            Reply::Unauthorized(code) => {
                let was_locked_out = self.locked_out();
                // A2: the notice names an identified owner, with JWT disabled too.
                let identifier = owner.user();
                out.push(Happening::Notified {
                    code: code.expected_code().to_owned(),
                    identifier,
                    token: flight.token,
                });
                self.auth_failures += 1;
                match (owner, flight.token) {
                    // L2: a logged-out user's data is deleted, the notice was the one.
                    (Party::User(user), _) if self.logged_out.contains(&user) => {
                        self.purge(user, None, out);
                    }
                    // A2: the token is marked rejected; a different one unblocks.
                    (Party::User(user), Some(token)) if self.settings.jwt => {
                        if let Some(record) = &mut self.tokens[user.index()] {
                            record.rejected = Some(token);
                        }
                    }
                    // A2: anonymous, or JWT disabled: wait for the next session.
                    _ => {
                        if !self.waiting_for_session.contains(&owner) {
                            self.waiting_for_session.push(owner);
                        }
                    }
                }
                if !was_locked_out && self.locked_out() {
                    out.push(Happening::LockedOut);
                }
            }
            Reply::TooLarge if events == 1 => {
                self.drop_batch(at, DropReason::TooLarge, out);
            }
            Reply::TooLarge => {
                // A5: two halves with new ids, the first takes the odd event.
                let batch = self.queue.remove(at);
                let (head, tail) = batch.seqs.split_at(batch.seqs.len().div_ceil(2));
                for (offset, seqs) in [head, tail].into_iter().enumerate() {
                    self.queue.insert(
                        at + offset,
                        Batch {
                            key: self.next_key,
                            owner,
                            seqs: seqs.to_vec(),
                            attempted: false,
                        },
                    );
                    self.next_key += 1;
                }
            }
            Reply::BadRequest => self.drop_batch(at, DropReason::Rejected { status: 400 }, out),
            Reply::Unavailable | Reply::TransportFailure => {
                // A4: the ceiling doubles per consecutive failure up to the cap; a
                // Retry-After is a floor. Not an authentication failure.
                self.backoff_streak += 1;
                let doublings = (self.backoff_streak - 1).min(40);
                let ceiling = self
                    .settings
                    .backoff_base_ms
                    .saturating_mul(1 << doublings)
                    .min(self.settings.backoff_cap_ms);
                let floor = if reply == Reply::Unavailable {
                    RETRY_AFTER_S * 1_000
                } else {
                    0
                };
                self.backoff_until = Some(self.now_ms + announced_backoff_ms.unwrap_or(0));
                return Some((floor, ceiling.max(floor)));
            }
        }
        None
    }

    /// Deadlines that have passed: the open batch's flush interval (S1), the backoff (A4).
    fn run_timers(&mut self) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.first_ms + self.settings.flush_interval_ms <= self.now_ms)
        {
            self.seal();
        }
        if self.backoff_until.is_some_and(|until| until <= self.now_ms) {
            self.backoff_until = None;
        }
    }

    /// What follows every input: L3, S5, R1, then S2's one send.
    fn review(&mut self, out: &mut Vec<Predicted>) {
        if self.settings.jwt {
            // L3: a logged-out user without a usable token: data deleted, no notice.
            // The batch in flight is kept; its answer decides.
            for user in self.logged_out.clone() {
                if self.usable_token(user).is_none() {
                    self.purge(user, self.in_flight.map(|f| f.batch), out);
                }
            }
            // S5: once per episode, from the moment a batch of the user is sealed.
            // "No token" is no token at all: a rejected one is A2's business.
            for user in User::ALL {
                let has_sealed = self.queue.iter().any(|b| b.owner == Party::User(user));
                if has_sealed
                    && self.tokens[user.index()].is_none()
                    && !self.noticed_no_token.contains(&user)
                {
                    out.push(Happening::Notified {
                        code: "TOKEN_NOT_AVAILABLE".to_owned(),
                        identifier: Some(user),
                        token: None,
                    });
                    self.noticed_no_token.push(user);
                }
            }
            // R1: expired tokens are past the window; good ones never enter it here.
            // Core's choice (`Client::refresh_ahead_candidates`): a newest token the
            // server already rejected is not warned about.
            for user in User::ALL {
                let matters =
                    self.current == Party::User(user) || self.has_pending(Party::User(user));
                let usable = self.usable_token(user);
                if let Some(record) = &mut self.tokens[user.index()]
                    && matters
                    && usable.is_some()
                    && record.newest.expired
                    && !record.expiry_noticed
                {
                    record.expiry_noticed = true;
                    out.push(Happening::Notified {
                        code: "TOKEN_EXPIRING".to_owned(),
                        identifier: Some(user),
                        token: Some(record.newest),
                    });
                }
            }
        }
        self.dispatch(out);
    }

    /// S2, S4, A3, A4: one request at a time, none in a lockout or a backoff. Core's
    /// choice (`Client::dispatch`): the oldest batch whose owner may send goes first,
    /// and a backoff holds back every owner.
    fn dispatch(&mut self, out: &mut Vec<Predicted>) {
        if self.in_flight.is_some() || self.locked_out() || self.backoff_until.is_some() {
            return;
        }
        let chosen = self
            .queue
            .iter()
            .enumerate()
            .find_map(|(at, b)| self.may_send(b.owner).map(|token| (at, token)));
        let Some((at, token)) = chosen else {
            return;
        };
        let batch = &mut self.queue[at];
        batch.attempted = true;
        self.in_flight = Some(Flight {
            batch: batch.key,
            token,
        });
        out.push(Happening::Sent {
            batch: batch.key,
            owner: batch.owner,
            seqs: batch.seqs.clone(),
            bearer: token,
        });
    }

    /// Whether `owner` may send now, and with which token (S4, S5, A2).
    fn may_send(&self, owner: Party) -> Option<Option<TokenName>> {
        if self.waiting_for_session.contains(&owner) {
            return None;
        }
        match owner {
            Party::User(user) if self.settings.jwt => self.usable_token(user).map(Some),
            _ => Some(None),
        }
    }

    /// The user's newest token unless the server rejected it (A2).
    fn usable_token(&self, user: User) -> Option<TokenName> {
        self.tokens[user.index()]
            .filter(|r| r.rejected != Some(r.newest))
            .map(|r| r.newest)
    }

    fn has_pending(&self, owner: Party) -> bool {
        self.queue.iter().any(|b| b.owner == owner)
            || self.open.as_ref().is_some_and(|o| o.owner == owner)
    }

    /// S1: the open batch becomes a sealed batch.
    fn seal(&mut self) {
        if let Some(open) = self.open.take() {
            self.queue.push(Batch {
                key: self.next_key,
                owner: open.owner,
                seqs: open.seqs,
                attempted: false,
            });
            self.next_key += 1;
        }
    }

    fn drop_batch(&mut self, at: usize, reason: DropReason, out: &mut Vec<Predicted>) {
        let batch = self.queue.remove(at);
        self.count_drop(reason, batch.seqs.len() as u64, batch.owner, out);
    }

    /// L2, L3: all of a logged-out user's sealed data but `keep` goes, in one drop.
    fn purge(&mut self, user: User, keep: Option<BatchKey>, out: &mut Vec<Predicted>) {
        let owner = Party::User(user);
        let doomed = |b: &Batch| b.owner == owner && Some(b.key) != keep;
        let events: usize = self
            .queue
            .iter()
            .filter(|b| doomed(b))
            .map(|b| b.seqs.len())
            .sum();
        if events > 0 {
            self.queue.retain(|b| !doomed(b));
            self.count_drop(DropReason::LoggedOutAuthFailure, events as u64, owner, out);
        }
    }

    fn count_drop(
        &mut self,
        reason: DropReason,
        events: u64,
        owner: Party,
        out: &mut Vec<Predicted>,
    ) {
        self.dropped += events;
        out.push(Happening::Dropped {
            reason,
            events,
            owner,
        });
        self.forget_if_done(owner);
    }

    /// L1: a logged-out user's token is kept only to send their remaining data; once
    /// it is all gone, so is everything the client knew of them.
    fn forget_if_done(&mut self, owner: Party) {
        let Party::User(user) = owner else {
            return;
        };
        if self.logged_out.contains(&user) && !self.has_pending(owner) {
            self.logged_out.retain(|u| *u != user);
            self.tokens[user.index()] = None;
            self.noticed_no_token.retain(|u| *u != user);
            self.waiting_for_session.retain(|p| *p != owner);
        }
    }
}
