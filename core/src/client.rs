//! The client: every rule of SPEC.md section 3, decided in one place.
//!
//! Inputs arrive through the `handle_*` methods; each commits durable changes as
//! records (see [`crate::state`]), then runs the same review: seal what is due, sweep
//! logged-out data that can no longer be authenticated, tell the listener what it must
//! hear, and send the next batch if anything may go. Outputs are drained with
//! [`Client::poll_action`] and [`Client::poll_timeout`].

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::action::{
    AckNotice, Action, AuthNotice, DropNotice, IgnoredBecause, Outcome, RequestId, SendOutlook,
    TransportFailure, WakeReason, Wakeup,
};
use crate::backoff;
use crate::config::{Config, ValidConfig};
use crate::error::{
    AuthDetailsError, ConfigError, EventError, IdentifyError, RestoreError, UnknownRequest,
};
use crate::error_code::ErrorCode;
use crate::event::PreparedEvent;
use crate::owner::{MAX_IDENTIFIER_BYTES, Owner};
use crate::record::{Change, DropReason, NoticeMark, Record, Snapshot};
use crate::state::{DurableState, Totals};
use crate::time::{Clock, Now};
use crate::token::Token;
use crate::wire::{self, RETRY_AFTER_CAP_MS, Verdict};

/// Size of a fresh event arena: a few hundred typical events.
const ARENA_CHUNK: usize = 64 * 1024;

/// What `handle_track` reports for an accepted event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackReceipt {
    /// The event's per-install sequence number (S3), from 1.
    pub seq: u64,
}

/// The request in flight (S2): at most one, never persisted (a restart sends its batch
/// again under the same id, and the server deduplicates).
#[derive(Clone, Debug)]
struct InFlight {
    id: RequestId,
    batch: u64,
    token: Option<Token>,
}

/// One workspace's sync client: a pure, deterministic state machine (DT1).
///
/// It reads no clock, no randomness, no environment, and does no I/O: time comes in
/// with every call as [`Now`], randomness from [`Config::seed`], and everything it wants
/// done comes out as an [`Action`]. The same inputs give the same actions, byte for byte.
///
/// # The methods, by kind
///
/// - **Construction**: [`Client::new`] for a new install, [`Client::restore`] from a
///   [`Snapshot`] and the journal's [`Record`]s.
/// - **Inputs** (`handle_*`, each with the current time): [`handle_track`],
///   [`handle_identify`], [`handle_authentication_details`], [`handle_session_start`],
///   [`handle_logout`], [`handle_flush`], [`handle_response`],
///   [`handle_transport_failure`], [`handle_timeout`]. A refused call returns a typed
///   error and changes nothing; a call that changes nothing by rule returns
///   [`Outcome::Ignored`].
/// - **Outputs** (`poll_*`): [`poll_action`] until `None`, then [`poll_timeout`].
/// - **Getters**: [`totals`], [`current_user`], [`is_locked_out`], [`outlook`],
///   [`snapshot`], and a few more.
///
/// # The driver's loop
///
/// After every input, drain [`poll_action`] until it returns `None`, carrying out each
/// action in order (write [`Action::Persist`] records before anything after them,
/// send [`Action::Send`] requests, hand notices to the app); then sleep until
/// [`poll_timeout`] or the next input, and call [`handle_timeout`] when it is reached.
/// Calling `handle_timeout` early is harmless, and once a timeout is handled,
/// `poll_timeout` moves forward, so a driver never busy-loops (DT2).
///
/// ```
/// use authsync_core::{Action, Client, Config, Now};
/// use serde_json::json;
///
/// let config = Config::new("app-1", "http://127.0.0.1:8080").with_seed(7);
/// let mut client = Client::new(config, Now::new(0, 1_700_000_000_000)).unwrap();
/// let now = Now::new(10, 1_700_000_000_010);
/// client.handle_track(now, "app_open", &json!({"cold": true})).unwrap();
/// client.handle_flush(now);
///
/// let mut sent = None;
/// while let Some(action) = client.poll_action() {
///     match action {
///         Action::Persist(record) => { /* append to the journal */ let _ = record; }
///         Action::Send(request) => sent = Some(request),
///         other => println!("{other:?}"),
///     }
/// }
/// let request = sent.expect("a flush sends the batch");
/// assert_eq!(request.events, 1);
///
/// // The server answered 200: the batch is acknowledged.
/// let response = http::Response::builder().status(200).body(bytes::Bytes::new()).unwrap();
/// client.handle_response(Now::new(20, 1_700_000_000_020), request.id, response).unwrap();
/// assert_eq!(client.totals().acked, 1);
/// ```
///
/// [`handle_track`]: Client::handle_track
/// [`handle_identify`]: Client::handle_identify
/// [`handle_authentication_details`]: Client::handle_authentication_details
/// [`handle_session_start`]: Client::handle_session_start
/// [`handle_logout`]: Client::handle_logout
/// [`handle_flush`]: Client::handle_flush
/// [`handle_response`]: Client::handle_response
/// [`handle_transport_failure`]: Client::handle_transport_failure
/// [`handle_timeout`]: Client::handle_timeout
/// [`poll_action`]: Client::poll_action
/// [`poll_timeout`]: Client::poll_timeout
/// [`totals`]: Client::totals
/// [`current_user`]: Client::current_user
/// [`is_locked_out`]: Client::is_locked_out
/// [`outlook`]: Client::outlook
/// [`snapshot`]: Client::snapshot
// `Clone` lets the model tests' explorer branch a client at every state instead of
// replaying each path from the start; it is not part of the stable API.
#[cfg_attr(feature = "_internal_test_exports", derive(Clone))]
pub struct Client {
    config: ValidConfig,
    state: DurableState,
    clock: Clock,
    in_flight: Option<InFlight>,
    next_request: u64,
    /// When the open batch's flush interval runs out (S1), monotonic.
    open_deadline_ms: Option<u64>,
    /// When the running backoff runs out (A4), monotonic.
    backoff_deadline_ms: Option<u64>,
    actions: VecDeque<Action>,
    /// Reused by `handle_track`, so that tracking allocates nothing of its own.
    prepared: PreparedEvent,
    /// Where tracked events are written and split off as `Bytes`: one allocation per
    /// chunk of events instead of one per event.
    arena: BytesMut,
    /// Set by every change that may alter what is sent, told or awaited; cleared by
    /// the review. Tracking into an open batch changes none of those.
    review_needed: bool,
    wakeup: Option<Wakeup>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.config.config.app_id)
            .field("current_user", &self.state.current)
            .field("totals", &self.state.totals)
            .field("auth_failures", &self.state.auth_failures)
            .field("in_flight", &self.in_flight.as_ref().map(|f| f.id))
            .field("tokens", &self.state.tokens.len())
            .field("wakeup", &self.wakeup)
            .finish_non_exhaustive()
    }
}

impl Client {
    // ----- construction -------------------------------------------------------------

    /// A client for a new install (C1, U1). Its first action persists the install
    /// record (app id and seed).
    ///
    /// ```
    /// use authsync_core::{Client, Config, ConfigError, Now};
    /// let client = Client::new(Config::new("app", "https://ingest.example.com"), Now::new(0, 0));
    /// assert!(client.is_ok());
    /// let invalid = Client::new(Config::new("", "https://ingest.example.com"), Now::new(0, 0));
    /// assert_eq!(invalid.unwrap_err(), ConfigError::EmptyAppId);
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid configuration.
    pub fn new(config: Config, now: Now) -> Result<Self, ConfigError> {
        let config = config.validated()?;
        let app_id = config.config.app_id.clone();
        let seed = config.config.seed;
        let state = DurableState::genesis(app_id.clone(), seed);
        let mut client = Self::assemble(config, state, now);
        client.actions.push_back(Action::Persist(Record::new(
            1,
            Change::Genesis { app_id, seed },
        )));
        client.after_input();
        Ok(client)
    }

    /// A client restored from a snapshot (if any) and the journal records written
    /// after it (D2). Records the snapshot already includes are skipped. The restored
    /// client keeps its own seed; [`Config::seed`] is not used.
    ///
    /// Timers that survive a restart (backoff, the open batch's flush interval) were
    /// persisted in wall-clock terms and resume from `now`. A request that was in
    /// flight is sent again under the same batch id.
    ///
    /// ```
    /// use authsync_core::{Action, Client, Config, Now, Record};
    /// let config = Config::new("app", "http://127.0.0.1:9").with_seed(3);
    /// let mut client = Client::new(config.clone(), Now::new(0, 0)).unwrap();
    /// let _ = client.handle_track(Now::new(1, 1), "e", &serde_json::json!({})).unwrap();
    /// let records: Vec<Record> = std::iter::from_fn(|| client.poll_action())
    ///     .filter_map(|a| if let Action::Persist(r) = a { Some(r) } else { None })
    ///     .collect();
    ///
    /// let restored = Client::restore(config, Now::new(0, 5), None, records).unwrap();
    /// assert_eq!(restored.totals(), client.totals());
    /// assert_eq!(restored.current_user(), client.current_user());
    /// ```
    ///
    /// # Errors
    /// [`RestoreError`] when the configuration is invalid, the persisted state belongs
    /// to another app id, or the snapshot and records do not form one history.
    pub fn restore(
        config: Config,
        now: Now,
        snapshot: Option<&Snapshot>,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, RestoreError> {
        let config = config.validated()?;
        let mut records = records.into_iter().peekable();
        let mut state = if let Some(snapshot) = snapshot {
            DurableState::from_snapshot(snapshot)?
        } else {
            match records.next().map(|r| (r.lsn(), r.change().clone())) {
                Some((1, Change::Genesis { app_id, seed })) => DurableState::genesis(app_id, seed),
                _ => return Err(RestoreError::MissingGenesis),
            }
        };
        if state.envelope.app_id != config.config.app_id {
            return Err(RestoreError::AppIdMismatch {
                persisted: state.envelope.app_id,
                configured: config.config.app_id,
            });
        }
        for record in records {
            if record.lsn() <= state.lsn {
                continue;
            }
            if record.lsn() != state.lsn + 1 {
                return Err(RestoreError::Gap {
                    expected: state.lsn + 1,
                    found: record.lsn(),
                });
            }
            let lsn = record.lsn();
            state
                .apply(&record)
                .map_err(|why| RestoreError::Inconsistent { lsn, why })?;
        }
        let mut client = Self::assemble(config, state, now);
        client.resume_timers();
        client.after_input();
        Ok(client)
    }

    fn assemble(config: ValidConfig, state: DurableState, now: Now) -> Self {
        Self {
            config,
            state,
            clock: Clock::new(now),
            in_flight: None,
            next_request: 1,
            open_deadline_ms: None,
            backoff_deadline_ms: None,
            actions: VecDeque::new(),
            prepared: PreparedEvent::default(),
            arena: BytesMut::new(),
            review_needed: true,
            wakeup: None,
        }
    }

    /// Turns the wall-clock deadlines of the durable state back into monotonic ones.
    fn resume_timers(&mut self) {
        let interval = self.config.flush_interval_ms;
        self.open_deadline_ms = self.state.open.as_ref().map(|open| {
            let due = open.first_unix_ms.saturating_add(interval);
            self.clock.mono_at_unix_capped(due, interval)
        });
        let until = self.state.backoff.until_unix_ms;
        if until > self.clock.now().unix_ms {
            let longest = self.config.backoff_cap_ms.max(RETRY_AFTER_CAP_MS);
            self.backoff_deadline_ms = Some(self.clock.mono_at_unix_capped(until, longest));
        }
    }

    // ----- inputs -------------------------------------------------------------------

    /// Tracks an event for the current user (S1, S3, V2, D3). `attrs` must serialize
    /// to a JSON object of at most 32 KiB.
    ///
    /// The event's durable record is the next [`Action::Persist`]: a driver that
    /// returns to the app only after writing it loses no tracked event in a crash.
    ///
    /// ```
    /// use authsync_core::{Client, Config, EventError, Now};
    /// use serde_json::json;
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// let receipt = client.handle_track(Now::new(1, 1), "purchase", &json!({"sku": "A1"})).unwrap();
    /// assert_eq!(receipt.seq, 1);
    /// let refused = client.handle_track(Now::new(1, 1), "", &json!({}));
    /// assert_eq!(refused, Err(EventError::EmptyName));
    /// ```
    ///
    /// # Errors
    /// [`EventError`] for an invalid event; nothing is queued.
    pub fn handle_track<A: Serialize + ?Sized>(
        &mut self,
        now: Now,
        name: &str,
        attrs: &A,
    ) -> Result<TrackReceipt, EventError> {
        let mut event = std::mem::take(&mut self.prepared);
        let tracked = event
            .refill(name, attrs)
            .map(|()| self.handle_track_prepared(now, &event));
        self.prepared = event;
        tracked
    }

    /// Tracks an event checked and encoded beforehand (see [`PreparedEvent`]); the
    /// same as [`Client::handle_track`] otherwise, and it cannot fail.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, PreparedEvent};
    /// use serde_json::json;
    /// let event = PreparedEvent::new("purchase", &json!({"sku": "A1"})).unwrap();
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// assert_eq!(client.handle_track_prepared(Now::new(1, 1), &event).seq, 1);
    /// assert_eq!(client.handle_track_prepared(Now::new(1, 1), &event).seq, 2);
    /// assert_eq!(client.totals().tracked, 2);
    /// ```
    pub fn handle_track_prepared(&mut self, now: Now, event: &PreparedEvent) -> TrackReceipt {
        let seq = self.state.next_seq;
        // A fresh chunk once less than 4 KiB is left: most events fit in what remains,
        // and a larger one gets its own allocation from `write_tracked`.
        if self.arena.capacity() < ARENA_CHUNK / 16 {
            self.arena.reserve(ARENA_CHUNK);
        }
        let event_len = event.write_tracked(seq, now.unix_ms, &mut self.arena);
        let now = self.clock.advance(now);
        let max_bytes = self.config.config.batch_max_bytes as usize;
        if let Some(open) = &self.state.open {
            let with_event = self.open_body_bound(open) + 1 + event_len;
            if with_event > max_bytes {
                self.seal_open();
            }
        }
        if self.state.open.is_none() {
            self.open_deadline_ms = Some(now.mono_ms.saturating_add(self.config.flush_interval_ms));
            self.review_needed = true;
        }
        let event = self.arena.split().freeze();
        self.commit(Change::EventAdded {
            unix_ms: now.unix_ms,
            event,
        });
        if let Some(open) = &self.state.open {
            let full = open.run.len() >= self.config.config.batch_max_events as usize
                || self.open_body_bound(open) >= max_bytes;
            if full {
                self.seal_open();
            }
        }
        self.enforce_queue_bound();
        self.after_input();
        TrackReceipt { seq }
    }

    /// Identifies the current user (U2): later events belong to `identifier`.
    /// Identifying the current user again changes nothing; identifying another user
    /// while one is identified logs that one out first (L1).
    ///
    /// ```
    /// use authsync_core::{Client, Config, IgnoredBecause, Now, Outcome, Owner};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// assert_eq!(client.handle_identify(Now::new(0, 0), "u1"), Ok(Outcome::Applied));
    /// assert_eq!(client.current_user(), &Owner::Identified("u1".into()));
    /// assert_eq!(
    ///     client.handle_identify(Now::new(0, 0), "u1"),
    ///     Ok(Outcome::Ignored(IgnoredBecause::AlreadyIdentified))
    /// );
    /// ```
    ///
    /// # Errors
    /// [`IdentifyError`] for an empty or over-long identifier.
    pub fn handle_identify(
        &mut self,
        now: Now,
        identifier: &str,
    ) -> Result<Outcome, IdentifyError> {
        if identifier.is_empty() {
            return Err(IdentifyError::EmptyIdentifier);
        }
        if identifier.len() > MAX_IDENTIFIER_BYTES {
            return Err(IdentifyError::IdentifierTooLong {
                len: identifier.len(),
            });
        }
        self.clock.advance(now);
        let outcome = match &self.state.current {
            Owner::Identified(current) if current == identifier => {
                Outcome::Ignored(IgnoredBecause::AlreadyIdentified)
            }
            current => {
                if matches!(current, Owner::Identified(_)) {
                    self.log_out();
                }
                self.seal_open();
                self.commit(Change::Identified {
                    identifier: identifier.to_owned(),
                });
                Outcome::Applied
            }
        };
        self.after_input();
        Ok(outcome)
    }

    /// Passes a token for `identifier` (T1, T2, V1): the seed's
    /// `passAuthenticationDetails`. It replaces the identifier's token and is used for
    /// its batches from the next send on, including retries (S4).
    ///
    /// With JWT disabled: an integration error in the test environment with the
    /// validator on, otherwise ignored (V1). Passing the current token again, or the
    /// token the server rejected, is ignored (A2).
    ///
    /// ```
    /// use authsync_core::{AuthDetailsError, Client, Config, Environment, IgnoredBecause, Now, Outcome, TokenError};
    /// let config = Config::new("app", "http://127.0.0.1:9").with_jwt(true);
    /// let mut client = Client::new(config, Now::new(0, 0)).unwrap();
    /// assert_eq!(client.handle_authentication_details(Now::new(0, 0), "aaa.bbb.ccc", "u1"), Ok(Outcome::Applied));
    /// assert_eq!(
    ///     client.handle_authentication_details(Now::new(0, 0), "not a jwt", "u1"),
    ///     Err(AuthDetailsError::Token(TokenError::NotVisibleAscii))
    /// );
    ///
    /// let test = Config::new("app", "http://127.0.0.1:9").with_environment(Environment::Test);
    /// let mut client = Client::new(test, Now::new(0, 0)).unwrap();
    /// assert_eq!(
    ///     client.handle_authentication_details(Now::new(0, 0), "aaa.bbb.ccc", "u1"),
    ///     Err(AuthDetailsError::JwtDisabled)
    /// );
    /// ```
    ///
    /// # Errors
    /// [`AuthDetailsError`] for a malformed token or identifier, or V1 misuse in test;
    /// nothing is stored and nothing is sent.
    pub fn handle_authentication_details(
        &mut self,
        now: Now,
        token: &str,
        identifier: &str,
    ) -> Result<Outcome, AuthDetailsError> {
        let config = &self.config.config;
        if !config.jwt_enabled {
            if config.environment == crate::Environment::Test && config.integration_validator {
                return Err(AuthDetailsError::JwtDisabled);
            }
            self.clock.advance(now);
            self.after_input();
            return Ok(Outcome::Ignored(IgnoredBecause::JwtDisabled));
        }
        if identifier.is_empty() {
            return Err(AuthDetailsError::EmptyIdentifier);
        }
        if identifier.len() > MAX_IDENTIFIER_BYTES {
            return Err(AuthDetailsError::IdentifierTooLong {
                len: identifier.len(),
            });
        }
        let token = Token::parse(token)?;
        self.clock.advance(now);
        let known = self.state.tokens.get(identifier);
        let outcome = if known.is_some_and(|t| t.rejected.as_ref() == Some(&token)) {
            Outcome::Ignored(IgnoredBecause::RejectedToken)
        } else if known.is_some_and(|t| t.current == token) {
            Outcome::Ignored(IgnoredBecause::SameToken)
        } else {
            self.commit(Change::TokenPassed {
                identifier: identifier.to_owned(),
                token,
            });
            Outcome::Applied
        };
        self.after_input();
        Ok(outcome)
    }

    /// Starts a session (SS1): seals the open batch, resets the failure counter, lifts
    /// a lockout, and lets batches that waited for a session go. A running backoff
    /// still runs out.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// client.handle_session_start(Now::new(0, 0));
    /// assert!(!client.is_locked_out());
    /// ```
    pub fn handle_session_start(&mut self, now: Now) {
        self.clock.advance(now);
        self.seal_open();
        self.commit(Change::SessionStarted);
        self.after_input();
    }

    /// Logs the identified user out (L1–L5): their open batch is sealed and their
    /// pending data still goes, with their token; the current user becomes a new
    /// anonymous user. While anonymous, nothing changes (L5).
    ///
    /// ```
    /// use authsync_core::{Client, Config, IgnoredBecause, Now, Outcome};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// assert_eq!(client.handle_logout(Now::new(0, 0)), Outcome::Ignored(IgnoredBecause::AlreadyAnonymous));
    /// ```
    pub fn handle_logout(&mut self, now: Now) -> Outcome {
        self.clock.advance(now);
        let outcome = if matches!(self.state.current, Owner::Identified(_)) {
            self.log_out();
            Outcome::Applied
        } else {
            Outcome::Ignored(IgnoredBecause::AlreadyAnonymous)
        };
        self.after_input();
        outcome
    }

    /// Seals the open batch so that it is sent as soon as the rules allow (S1).
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// client.handle_flush(Now::new(0, 0));
    /// assert!(client.outlook().in_flight);
    /// ```
    pub fn handle_flush(&mut self, now: Now) {
        self.clock.advance(now);
        self.seal_open();
        self.after_input();
    }

    /// The response to request `id` (A1–A6): acknowledged, authentication failure,
    /// too large, try later, or refused. Any bytes are accepted (V3).
    ///
    /// # Errors
    /// [`UnknownRequest`] when `id` is not the request in flight (A7); nothing changes.
    pub fn handle_response(
        &mut self,
        now: Now,
        id: RequestId,
        response: http::Response<Bytes>,
    ) -> Result<(), UnknownRequest> {
        let flight = self.take_in_flight(id)?;
        let now = self.clock.advance(now);
        match wire::classify(&response, now.unix_ms) {
            Verdict::Accepted { duplicate } => self.acknowledge(&flight, duplicate),
            Verdict::Unauthorized { code, message } => self.auth_failure(&flight, code, message),
            Verdict::TooLarge => self.too_large(&flight),
            Verdict::Transient { retry_after_ms } => self.back_off(retry_after_ms),
            Verdict::Rejected { status } => {
                self.drop_batch(flight.batch, DropReason::Rejected { status });
            }
        }
        self.after_input();
        Ok(())
    }

    /// Request `id` failed without a response (A4): its batch is kept and retried after
    /// a backoff. Not an authentication failure.
    ///
    /// # Errors
    /// [`UnknownRequest`] when `id` is not the request in flight (A7); nothing changes.
    pub fn handle_transport_failure(
        &mut self,
        now: Now,
        id: RequestId,
        failure: TransportFailure,
    ) -> Result<(), UnknownRequest> {
        let _ = failure;
        self.take_in_flight(id)?;
        self.clock.advance(now);
        self.back_off(None);
        self.after_input();
        Ok(())
    }

    /// Lets time pass (DT2): seals batches whose flush interval ran out, retries after
    /// a backoff, warns of expiring tokens. Harmless when called early.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// let wakeup = client.poll_timeout().unwrap();
    /// assert_eq!(wakeup.at_mono_ms, 20_000);
    /// client.handle_timeout(Now::new(wakeup.at_mono_ms, 20_000));
    /// assert!(client.outlook().in_flight);
    /// ```
    pub fn handle_timeout(&mut self, now: Now) {
        self.clock.advance(now);
        self.after_input();
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next action for the driver, oldest first; `None` when there is none left.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the core next needs [`Client::handle_timeout`], and why; `None` when only
    /// an input can make anything happen (DT2). Always later than the last time seen.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Wakeup> {
        self.wakeup
    }

    // ----- getters ------------------------------------------------------------------

    /// Running totals of this install, across restarts (D1).
    #[must_use]
    pub fn totals(&self) -> Totals {
        self.state.totals
    }

    /// The user new events belong to (U1, U2).
    #[must_use]
    pub fn current_user(&self) -> &Owner {
        &self.state.current
    }

    /// Whether nothing is sent until the next session start (A3).
    #[must_use]
    pub fn is_locked_out(&self) -> bool {
        self.state.auth_failures >= self.config.config.max_auth_failures
    }

    /// Consecutive authentication failures in this session (A2, A3).
    #[must_use]
    pub fn auth_failures(&self) -> u32 {
        self.state.auth_failures
    }

    /// The seed this install was created with (U1).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.state.seed
    }

    /// This install's id, the prefix of its batch ids (S3).
    #[must_use]
    pub fn install_id(&self) -> &str {
        &self.state.envelope.install_id
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config.config
    }

    /// Sequence number of the last durable change; a snapshot taken now has it.
    #[must_use]
    pub fn lsn(&self) -> u64 {
        self.state.lsn
    }

    /// The whole durable state, for a driver that compacts its journal (D2).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.state.snapshot()
    }

    /// What is left to send and when it would go, for a driver waiting until the
    /// client is idle.
    #[must_use]
    pub fn outlook(&self) -> SendOutlook {
        SendOutlook {
            in_flight: self.in_flight.is_some(),
            next_send_mono_ms: self.next_send_mono_ms(),
        }
    }

    // ----- rules --------------------------------------------------------------------

    /// Applies a change and hands its record to the driver. The only way durable state
    /// changes, live or on restore.
    fn commit(&mut self, change: Change) {
        if !matches!(change, Change::EventAdded { .. }) {
            self.review_needed = true;
        }
        let record = Record::new(self.state.lsn + 1, change);
        match self.state.apply(&record) {
            Ok(()) => self.actions.push_back(Action::Persist(record)),
            // Live changes are built from the state they apply to; one that does not
            // apply is a bug, caught by the tests, and changes nothing in release.
            Err(why) => debug_assert!(false, "live change does not apply: {why}"),
        }
    }

    fn notify(
        &mut self,
        code: ErrorCode,
        message: String,
        token: Option<Token>,
        identifier: Option<String>,
    ) {
        self.actions.push_back(Action::Notify(Box::new(AuthNotice {
            code,
            message,
            token,
            identifier,
            app_id: self.config.config.app_id.clone(),
        })));
    }

    fn take_in_flight(&mut self, id: RequestId) -> Result<InFlight, UnknownRequest> {
        match self.in_flight.take() {
            Some(flight) if flight.id == id => {
                self.review_needed = true;
                Ok(flight)
            }
            other => {
                self.in_flight = other;
                Err(UnknownRequest(id))
            }
        }
    }

    /// An upper bound of the open batch's body size, whatever number it is sealed under.
    fn open_body_bound(&self, open: &crate::batch::OpenBatch) -> usize {
        self.state.envelope.overhead_bound(&open.owner) + open.run.joined_len()
    }

    /// S1: the open batch becomes a sealed batch.
    fn seal_open(&mut self) {
        if self.state.open.is_some() {
            self.commit(Change::Sealed);
            self.open_deadline_ms = None;
        }
    }

    /// L1: seal A's data, mark A logged out, start a new anonymous user. What happens to
    /// A's data then is the review's (L3) and the responses' (L2).
    fn log_out(&mut self) {
        self.seal_open();
        self.commit(Change::LoggedOut);
    }

    /// D3: past the bound, the oldest events go. A batch whose id the server may have
    /// seen goes whole; the batch in flight is never cut.
    fn enforce_queue_bound(&mut self) {
        let bound = u64::from(self.config.config.max_pending_events);
        let in_flight = self.in_flight.as_ref().map(|f| f.batch);
        loop {
            let excess = self.state.pending_events().saturating_sub(bound);
            if excess == 0 {
                return;
            }
            let oldest = self
                .state
                .queue
                .iter()
                .find(|b| Some(b.number) != in_flight)
                .map(|b| (b.number, b.len() as u64, b.attempted, b.owner.clone()));
            let (change, dropped, owner) = match oldest {
                Some((number, len, attempted, owner)) if attempted || excess >= len => (
                    Change::Dropped {
                        batch: number,
                        reason: DropReason::Overflow,
                    },
                    len,
                    owner,
                ),
                Some((number, _, _, owner)) => (trim(Some(number), excess), excess, owner),
                None => match &self.state.open {
                    Some(open) => {
                        let events = excess.min(open.run.len() as u64);
                        (trim(None, events), events, open.owner.clone())
                    }
                    None => return,
                },
            };
            self.commit(change);
            if self.state.open.is_none() {
                self.open_deadline_ms = None;
            }
            self.actions.push_back(Action::Dropped(DropNotice {
                reason: DropReason::Overflow,
                events: dropped,
                owner,
            }));
        }
    }

    /// A1: acknowledged; the counter and the backoff reset.
    fn acknowledge(&mut self, flight: &InFlight, duplicate: bool) {
        let Some(events) = self.state.queue.get(flight.batch).map(|b| b.len()) else {
            return;
        };
        self.commit(Change::Acked {
            batch: flight.batch,
        });
        self.backoff_deadline_ms = None;
        self.actions.push_back(Action::Acked(AckNotice {
            batch_id: self.state.envelope.batch_id(flight.batch),
            events,
            duplicate,
        }));
    }

    /// A2, L2, A3: one notice, one count, and the owner waits for a new token (or for
    /// the next session when it has none); a logged-out user's data is deleted.
    fn auth_failure(&mut self, flight: &InFlight, code: ErrorCode, message: String) {
        let Some(owner) = self.state.queue.get(flight.batch).map(|b| b.owner.clone()) else {
            return;
        };
        let was_locked_out = self.is_locked_out();
        let jwt = self.config.config.jwt_enabled;
        let identifier = if jwt {
            owner.identifier().map(str::to_owned)
        } else {
            None
        };
        self.notify(code, message, flight.token.clone(), identifier);
        self.commit(Change::AuthFailureCounted);
        match (&owner, &flight.token) {
            (Owner::Identified(id), _) if self.state.logged_out.contains(id) => {
                self.purge(id.clone(), None);
            }
            (Owner::Identified(id), Some(token)) if jwt => self.commit(Change::TokenRejected {
                identifier: id.clone(),
                token: token.clone(),
            }),
            _ => self.commit(Change::WaitingForSession { owner }),
        }
        if !was_locked_out && self.is_locked_out() {
            self.actions.push_back(Action::LockedOut);
        }
    }

    /// A5: halves with new ids, or a one-event batch dropped.
    fn too_large(&mut self, flight: &InFlight) {
        match self.state.queue.get(flight.batch).map(|b| b.len()) {
            Some(1) => self.drop_batch(flight.batch, DropReason::TooLarge),
            Some(_) => self.commit(Change::Split {
                batch: flight.batch,
            }),
            None => {}
        }
    }

    /// A6, A5: one batch dropped, with the reason.
    fn drop_batch(&mut self, number: u64, reason: DropReason) {
        let Some((events, owner)) = self
            .state
            .queue
            .get(number)
            .map(|b| (b.len() as u64, b.owner.clone()))
        else {
            return;
        };
        self.commit(Change::Dropped {
            batch: number,
            reason,
        });
        self.actions.push_back(Action::Dropped(DropNotice {
            reason,
            events,
            owner,
        }));
    }

    /// L2, L3: all of a logged-out user's pending data is deleted, except the batch in
    /// flight, whose response decides its fate.
    fn purge(&mut self, identifier: String, keep: Option<u64>) {
        let owner = Owner::Identified(identifier.clone());
        let events: u64 = self
            .state
            .queue
            .iter()
            .filter(|b| b.owner == owner && Some(b.number) != keep)
            .map(|b| b.len() as u64)
            .sum();
        if events == 0 {
            return;
        }
        self.commit(Change::Purged { identifier, keep });
        self.actions.push_back(Action::Dropped(DropNotice {
            reason: DropReason::LoggedOutAuthFailure,
            events,
            owner,
        }));
    }

    /// A4: try later, after exponential backoff with full jitter, and not before a
    /// server's `Retry-After`.
    fn back_off(&mut self, retry_after_ms: Option<u64>) {
        let now = self.clock.now();
        let streak = self.state.backoff.streak.saturating_add(1);
        let delay = backoff::delay_ms(
            self.state.seed,
            self.state.backoff.draws,
            streak,
            self.config.backoff_base_ms,
            self.config.backoff_cap_ms,
            retry_after_ms,
        );
        self.commit(Change::BackoffSet {
            streak,
            until_unix_ms: now.unix_ms.saturating_add(delay),
        });
        self.backoff_deadline_ms = Some(now.mono_ms.saturating_add(delay));
    }

    /// Runs due timers, then the review if anything may have changed.
    fn after_input(&mut self) {
        let now = self.clock.now().mono_ms;
        if self.open_deadline_ms.is_some_and(|due| due <= now) {
            self.seal_open();
        }
        if self.backoff_deadline_ms.is_some_and(|due| due <= now) {
            self.backoff_deadline_ms = None;
            self.review_needed = true;
        }
        if self.review_needed || self.wakeup.is_some_and(|w| w.at_mono_ms <= now) {
            self.review();
        }
    }

    fn review(&mut self) {
        self.review_needed = false;
        self.sweep_logged_out();
        self.tell_missing_tokens();
        self.tell_expiring_tokens();
        self.dispatch();
        self.wakeup = self.next_wakeup();
    }

    /// L3: a logged-out user without a usable token can never have their data
    /// authenticated again, so it is deleted at once (a drop action, no notice).
    fn sweep_logged_out(&mut self) {
        if !self.config.config.jwt_enabled || self.state.logged_out.is_empty() {
            return;
        }
        let unusable: Vec<String> = self
            .state
            .logged_out
            .iter()
            .filter(|id| {
                self.state
                    .tokens
                    .get(*id)
                    .and_then(|t| t.usable())
                    .is_none()
            })
            .cloned()
            .collect();
        for identifier in unusable {
            let keep = self.in_flight.as_ref().map(|f| f.batch);
            self.purge(identifier, keep);
        }
    }

    /// S5: an identified owner with a sealed batch and no token: told once per episode.
    fn tell_missing_tokens(&mut self) {
        if !self.config.config.jwt_enabled {
            return;
        }
        let untold: Vec<String> = self
            .state
            .queue
            .owners()
            .filter_map(Owner::identifier)
            .filter(|id| {
                !self.state.tokens.contains_key(*id) && !self.state.told_no_token.contains(*id)
            })
            .map(str::to_owned)
            .collect();
        for identifier in untold {
            self.notify(
                ErrorCode::TokenNotAvailable,
                "no token for this identifier: pass one with pass_authentication_details"
                    .to_owned(),
                None,
                Some(identifier.clone()),
            );
            self.commit(Change::Noticed {
                identifier,
                mark: NoticeMark::NoToken,
            });
        }
    }

    /// The refresh-ahead instant (Unix ms) of each usable token that matters now and has
    /// not been warned about: the current user's, or one with pending data (R1).
    fn refresh_ahead_candidates(&self) -> Vec<(String, u64)> {
        let window = self.config.refresh_ahead_ms;
        if window == 0 || !self.config.config.jwt_enabled {
            return Vec::new();
        }
        self.state
            .tokens
            .iter()
            .filter(|(_, t)| !t.expiry_told && t.usable().is_some())
            .filter_map(|(id, t)| Some((id, t.expiry?)))
            .filter(|(id, _)| {
                let owner = Owner::Identified((*id).clone());
                self.state.current == owner || self.state.has_pending(&owner)
            })
            .map(|(id, exp)| (id.clone(), exp.saturating_mul(1000).saturating_sub(window)))
            .collect()
    }

    /// R1: warn once per token whose `exp` is within the window or past. Blocks
    /// nothing (S6).
    fn tell_expiring_tokens(&mut self) {
        let now = self.clock.now().unix_ms;
        for (identifier, warn_at) in self.refresh_ahead_candidates() {
            if warn_at > now {
                continue;
            }
            let Some(token) = self
                .state
                .tokens
                .get(&identifier)
                .map(|t| t.current.clone())
            else {
                continue;
            };
            let expiry = self
                .state
                .tokens
                .get(&identifier)
                .and_then(|t| t.expiry)
                .unwrap_or(0);
            let message = if expiry.saturating_mul(1000) <= now {
                format!("token expired at {expiry} (Unix seconds); pass a new one")
            } else {
                format!("token expires at {expiry} (Unix seconds); pass a new one")
            };
            self.notify(
                ErrorCode::TokenExpiring,
                message,
                Some(token),
                Some(identifier.clone()),
            );
            self.commit(Change::Noticed {
                identifier,
                mark: NoticeMark::Expiring,
            });
        }
    }

    /// Whether `owner`'s batches may go now, and with which token (S4, S5, A2).
    fn sendable_with(&self, owner: &Owner) -> Option<Option<Token>> {
        if self.state.waiting_for_session.contains(owner) {
            return None;
        }
        match owner {
            Owner::Identified(id) if self.config.config.jwt_enabled => {
                Some(Some(self.state.tokens.get(id)?.usable()?.clone()))
            }
            _ => Some(None),
        }
    }

    /// S2, S4, A3: send the oldest batch whose owner may send, one request at a time,
    /// nothing in a lockout or a backoff.
    fn dispatch(&mut self) {
        if self.in_flight.is_some() || self.is_locked_out() || self.backoff_deadline_ms.is_some() {
            return;
        }
        let mut blocked: Vec<&Owner> = Vec::new();
        let mut chosen = None;
        for batch in self.state.queue.iter() {
            if blocked.contains(&&batch.owner) {
                continue;
            }
            match self.sendable_with(&batch.owner) {
                Some(token) => {
                    chosen = Some((batch.number, token));
                    break;
                }
                None => blocked.push(&batch.owner),
            }
        }
        let Some((number, token)) = chosen else {
            return;
        };
        let Some(batch) = self.state.queue.get_mut(number) else {
            return;
        };
        // The body is built at the first send and kept: a cache of the batch's events,
        // not a durable change.
        let body = self.state.envelope.body_of(batch);
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let batch_id = self.state.envelope.batch_id(number);
        let request = wire::request_for(id, &self.config, batch_id, batch, body, token.as_ref());
        if !batch.attempted {
            self.commit(Change::Attempted { batch: number });
        }
        self.in_flight = Some(InFlight {
            id,
            batch: number,
            token,
        });
        self.actions.push_back(Action::Send(Box::new(request)));
    }

    fn next_wakeup(&self) -> Option<Wakeup> {
        let now = self.clock.now();
        let refresh = self
            .refresh_ahead_candidates()
            .into_iter()
            .map(|(_, warn_at)| self.clock.mono_at_unix(warn_at))
            .filter(|&at| at > now.mono_ms)
            .min();
        let has_data = !self.state.queue.is_empty();
        [
            (self.open_deadline_ms, WakeReason::FlushInterval),
            (
                self.backoff_deadline_ms.filter(|_| has_data),
                WakeReason::Backoff,
            ),
            (refresh, WakeReason::RefreshAhead),
        ]
        .into_iter()
        .filter_map(|(at, reason)| at.map(|at_mono_ms| Wakeup { at_mono_ms, reason }))
        .min_by_key(|w| w.at_mono_ms)
    }

    fn next_send_mono_ms(&self) -> Option<u64> {
        if self.is_locked_out() {
            return None;
        }
        let now = self.clock.now().mono_ms;
        let ready = self.backoff_deadline_ms.unwrap_or(now).max(now);
        if self
            .state
            .queue
            .iter()
            .any(|b| self.sendable_with(&b.owner).is_some())
        {
            return Some(ready);
        }
        let open = self.state.open.as_ref()?;
        self.sendable_with(&open.owner)?;
        Some(self.open_deadline_ms.unwrap_or(now).max(ready))
    }
}

const fn trim(batch: Option<u64>, events: u64) -> Change {
    Change::Trimmed {
        batch,
        events: if events > u32::MAX as u64 {
            u32::MAX
        } else {
            events as u32
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of_first_send(max_bytes: u32, second_event_bound: impl Fn(usize) -> usize) -> usize {
        let config = Config::new("app", "http://127.0.0.1:9").with_batch_limits(100, max_bytes);
        let now = Now::new(0, 0);
        let mut client = Client::new(config, now).unwrap();
        client
            .handle_track(now, "e", &serde_json::json!({}))
            .unwrap();
        let bound = client.open_body_bound(client.state.open.as_ref().unwrap());
        // The second event's padding that makes `bound + 1 + event` land where asked.
        let target = second_event_bound(bound);
        let pad = (0..4_096)
            .find(|&n| {
                let attrs = serde_json::json!({ "p": "x".repeat(n) });
                let len = PreparedEvent::new("e", &attrs).unwrap().write_tracked(
                    2,
                    0,
                    &mut BytesMut::new(),
                );
                bound + 1 + len == target
            })
            .unwrap();
        client
            .handle_track(now, "e", &serde_json::json!({ "p": "x".repeat(pad) }))
            .unwrap();
        client.handle_flush(now);
        std::iter::from_fn(|| client.poll_action())
            .find_map(|a| match a {
                Action::Send(request) => Some(request.events),
                _ => None,
            })
            .unwrap()
    }

    /// S1: an event that brings the body's bound exactly to the byte limit still joins
    /// the open batch; one byte more, and the open batch is sealed first.
    #[test]
    fn s1_the_byte_limit_is_inclusive() {
        assert_eq!(events_of_first_send(2_048, |_| 2_048), 2);
        assert_eq!(events_of_first_send(2_048, |_| 2_049), 1);
    }
}
