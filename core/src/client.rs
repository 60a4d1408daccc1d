//! The client: every rule of section 3 of the rules document, decided in one place.
//!
//! Inputs arrive through the `handle_*` methods; each commits durable changes as
//! records (see [`crate::state`]), then runs the same review: seal what is due, sweep
//! logged-out data that can no longer be authenticated, give the listener the notices it must
//! hear, and send the next batch if anything may go. Outputs are drained with
//! [`Client::poll_write`], [`Client::poll_event`], [`Client::poll_step`] and
//! [`Client::poll_timeout`].

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::backoff;
use crate::config::{Config, ValidConfig};
use crate::error::{
    AuthDetailsError, ConfigError, EventError, IdentifyError, RestoreError, UnknownJob,
    UnknownRequest,
};
use crate::error_code::ErrorCode;
use crate::event::PreparedEvent;
use crate::fetch::{FetchFailure, FetchId, Fetches, TokenAnswer};
use crate::output::{
    AckNotice, AuthNotice, DropNotice, Event, IgnoredBecause, Outcome, RequestId, SendOutlook,
    Step, StorageNotice, TransportFailure, WakeReason, Wakeup,
};
use crate::owner::{MAX_IDENTIFIER_BYTES, Owner};
use crate::record::{Change, DropReason, NoticeMark, Record, Snapshot};
use crate::recovery::{RecoveryReport, StoredState, recover};
use crate::state::{DurableState, Totals};
use crate::storage::{
    CompactId, CompactStart, Confirmed, Journal, MaintenanceDue, MaintenanceStep, PendingWrite,
    StorageFailure, SyncId, WriteId, WriteJob,
};
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

/// Changes that are not stored because storage failed (D4): from record `from_lsn`
/// on they are kept in memory only, requests that depend on them wait, and they are
/// written (in a rewrite of the whole state) once storage works again. A process that
/// ends before then loses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unstored {
    /// The first record not stored.
    pub from_lsn: u64,
}

/// A step queued for the host: ready, or built when it is polled (a request, a
/// compaction's snapshot), by the host's thread rather than the app's.
#[derive(Clone, Debug)]
enum Queued {
    Ready(Step),
    Send(RequestId),
    Compact(CompactStart),
}

/// The request in flight (S2): at most one, never persisted (a restart sends its batch
/// again under the same id, and the server deduplicates).
#[derive(Clone, Debug)]
struct InFlight {
    id: RequestId,
    batch: u64,
    token: Option<Token>,
}

/// One workspace's sync client: a pure, deterministic state machine (DT1), and the one
/// loop every host runs.
///
/// It reads no clock, no randomness, no environment, and does no I/O: time comes in
/// with every call as [`Now`], randomness from [`Config::seed`], and everything it wants
/// done comes out as work for the host. The same inputs give the same outputs, byte for
/// byte. Every decision is here: the rules of the contract, when to write, sync and
/// compact, what a storage failure means, when to ask the token provider and what its
/// answer means, when a wait is over, and the order of a shutdown. A host only carries
/// out what it is handed.
///
/// # The methods, by kind
///
/// - **Construction**: [`Client::new`] for a new install, [`Client::recover`] from
///   what a store holds.
/// - **The app's inputs** (`handle_*`, each with the current time): [`handle_track`],
///   [`handle_identify`], [`handle_authentication_details`], [`handle_session_start`],
///   [`handle_logout`], [`handle_flush`], [`handle_close`]. A refused call returns a
///   typed error and changes nothing; a call that changes nothing by rule returns
///   [`Outcome::Ignored`].
/// - **The host's inputs**: results of the work it was handed —
///   [`handle_written`], [`handle_synced`], [`handle_compacted`],
///   [`handle_response`], [`handle_transport_failure`], [`handle_token_answer`] —
///   and [`handle_timeout`] when [`poll_timeout`] is reached.
/// - **Outputs**, drained after every input, in this order:
///   1. [`poll_write`]: journal appends, performed at once by whoever made the input
///      (so a `track` is stored when it returns), each confirmed before the next;
///   2. [`poll_event`]: what happened, for listeners and observers, released once the
///      records before it are written;
///   3. [`poll_step`]: work for the host's background side: send a request, fetch a
///      token, cancel a fetch, sync, compact, finish;
///   4. [`poll_timeout`]: when to call [`handle_timeout`] if nothing else happens.
/// - **Getters**: [`totals`], [`current_user`], [`is_locked_out`], [`outlook`], and a
///   few more.
///
/// Calling `handle_timeout` early is harmless, and once a timeout is handled,
/// `poll_timeout` moves forward, so a host never busy-loops (DT2).
///
/// ```
/// use authsync_core::{Client, Config, Event, Now, Step};
/// use serde_json::json;
///
/// let config = Config::new("app-1", "http://127.0.0.1:8080").with_seed(7);
/// let mut client = Client::new(config, Now::new(0, 1_700_000_000_000)).unwrap();
/// let now = Now::new(10, 1_700_000_000_010);
/// client.handle_track(now, "app_open", &json!({"cold": true})).unwrap();
/// client.handle_flush(now);
///
/// // Kept in memory (the default storage): nothing to write.
/// assert!(client.poll_write().is_none());
/// let Some(Step::Send(request)) = client.poll_step() else { panic!("a flush sends the batch") };
/// assert_eq!(request.events, 1);
///
/// // The server answered 200: the batch is acknowledged.
/// let response = http::Response::builder().status(200).body(bytes::Bytes::new()).unwrap();
/// client.handle_response(Now::new(20, 1_700_000_000_020), request.id, response).unwrap();
/// let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
/// assert!(events.iter().any(|e| matches!(e, Event::Acked(_))));
/// assert_eq!(client.totals().acked, 1);
/// ```
///
/// [`handle_track`]: Client::handle_track
/// [`handle_identify`]: Client::handle_identify
/// [`handle_authentication_details`]: Client::handle_authentication_details
/// [`handle_session_start`]: Client::handle_session_start
/// [`handle_logout`]: Client::handle_logout
/// [`handle_flush`]: Client::handle_flush
/// [`handle_close`]: Client::handle_close
/// [`handle_written`]: Client::handle_written
/// [`handle_synced`]: Client::handle_synced
/// [`handle_compacted`]: Client::handle_compacted
/// [`handle_response`]: Client::handle_response
/// [`handle_transport_failure`]: Client::handle_transport_failure
/// [`handle_token_answer`]: Client::handle_token_answer
/// [`handle_timeout`]: Client::handle_timeout
/// [`poll_write`]: Client::poll_write
/// [`poll_event`]: Client::poll_event
/// [`poll_step`]: Client::poll_step
/// [`poll_timeout`]: Client::poll_timeout
/// [`totals`]: Client::totals
/// [`current_user`]: Client::current_user
/// [`is_locked_out`]: Client::is_locked_out
/// [`outlook`]: Client::outlook
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
    journal: Journal,
    fetches: Fetches,
    steps: VecDeque<Queued>,
    /// Events, each with the lsn that must be written before it is emitted.
    events: VecDeque<(u64, Event)>,
    /// Reused by `handle_track`, so that tracking allocates nothing of its own.
    prepared: PreparedEvent,
    /// Where tracked events are written and split off as `Bytes`: one allocation per
    /// chunk of events instead of one per event.
    arena: BytesMut,
    /// Set by every change that may alter what is sent, noticed or awaited; cleared by
    /// the review. Tracking into an open batch changes none of those.
    review_needed: bool,
    /// The next request waits for its batch to be stored: a confirmation may let it go.
    send_waits_for_storage: bool,
    /// The last record of the last flush: a batch it sealed is synced at once, while
    /// one sealed by its size or interval waits for the sync period's own fsync.
    flushed_through_lsn: u64,
    /// The rules' next deadline, from the last review.
    wakeup: Option<Wakeup>,
    /// After `handle_close`: no new request, and `Finish` once all is stored.
    closing: bool,
    finished: bool,
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
            .field("fetches", &self.fetches.running())
            .field("storage_broken", &self.journal.is_broken())
            .field("wakeup", &self.poll_timeout())
            .finish_non_exhaustive()
    }
}

impl Client {
    // ----- construction -------------------------------------------------------------

    /// A client for a new install (C1, U1). With durable storage, its first write
    /// holds the install record (app id and seed).
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
        let journal = Journal::new(config.config.storage, 0, 1);
        let mut client = Self::assemble(config, state, journal, now);
        let genesis = Record::new(1, Change::Genesis { app_id, seed });
        client.journal.record(&genesis, client.state.current_tag);
        client.after_input();
        Ok(client)
    }

    /// A client recovered from what a store holds (D2, D5): its snapshot and journal
    /// segments as read, damaged or not. An empty store gives a new install. Damage is
    /// reported (also as the first event, [`StorageNotice::Recovered`]), never fatal:
    /// what can be proven is kept, ids jump past anything that may have been handed
    /// out, and the store is rewritten whole first.
    ///
    /// Timers that survive a restart (backoff, the open batch's flush interval) were
    /// persisted in wall-clock terms and resume from `now`. A request that was in
    /// flight is sent again under the same batch id.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, Storage, StoragePolicy, StoredSegment, StoredState};
    /// let config = Config::new("app", "http://127.0.0.1:9")
    ///     .with_seed(3)
    ///     .with_storage(Storage::Durable(StoragePolicy::default()));
    /// let mut client = Client::new(config.clone(), Now::new(0, 0)).unwrap();
    /// let _ = client.handle_track(Now::new(1, 1), "e", &serde_json::json!({})).unwrap();
    /// let mut journal = Vec::new();
    /// while let Some(job) = client.poll_write() {
    ///     journal.extend_from_slice(&job.frames);
    ///     client.handle_written(Now::new(1, 1), job.id, Ok(())).unwrap();
    /// }
    ///
    /// let stored = StoredState {
    ///     segments: vec![StoredSegment { number: 1, bytes: journal.into() }],
    ///     ..StoredState::default()
    /// };
    /// let (restored, report) = Client::recover(config, Now::new(0, 5), stored).unwrap();
    /// assert!(report.is_clean());
    /// assert_eq!(restored.totals(), client.totals());
    /// assert_eq!(restored.current_user(), client.current_user());
    /// ```
    ///
    /// # Errors
    /// [`RestoreError`] when the configuration is invalid or the store belongs to
    /// another app id; the store is left as it is.
    pub fn recover(
        config: Config,
        now: Now,
        stored: StoredState,
    ) -> Result<(Self, RecoveryReport), RestoreError> {
        let valid = config.validated()?;
        let recovered = recover(&valid, stored)?;
        if recovered.empty {
            let client = Self::new(config, now)?;
            return Ok((client, RecoveryReport::default()));
        }
        let mut journal = Journal::new(
            valid.config.storage,
            recovered.state.lsn,
            recovered.next_segment,
        );
        journal.set_sizes(
            recovered.journal_bytes,
            recovered.segments,
            recovered.snapshot_bytes,
        );
        let report = recovered.report;
        let mut client = Self::assemble(valid, recovered.state, journal, now);
        if recovered.rewrite {
            client.journal.rewrite_now();
        }
        if let Some((lsn, to)) = recovered.advance {
            client.commit_at(
                lsn,
                Change::IdsAdvanced {
                    next_seq: to,
                    next_batch: to,
                },
            );
        }
        if !report.is_clean() {
            client.emit_now(Event::Storage(StorageNotice::Recovered(Box::new(
                report.clone(),
            ))));
        }
        client.resume_timers();
        client.after_input();
        Ok((client, report))
    }

    fn assemble(config: ValidConfig, state: DurableState, journal: Journal, now: Now) -> Self {
        let fetches = Fetches::new(config.token_fetch_timeout_ms);
        Self {
            config,
            state,
            clock: Clock::new(now),
            in_flight: None,
            next_request: 1,
            open_deadline_ms: None,
            backoff_deadline_ms: None,
            journal,
            fetches,
            steps: VecDeque::new(),
            events: VecDeque::new(),
            prepared: PreparedEvent::default(),
            arena: BytesMut::new(),
            review_needed: true,
            send_waits_for_storage: false,
            flushed_through_lsn: 0,
            wakeup: None,
            closing: false,
            finished: false,
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
    /// The event's record is the next [`Client::poll_write`]: a host that returns to
    /// the app only after writing it loses no tracked event in a crash.
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
        // S1: a batch whose flush interval ran out is sealed before this event, even
        // if no timeout was handled in between.
        self.run_due_timers();
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

    /// Passes a token for `identifier` (T1, T2, V1): the original SDK's
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
        self.flushed_through_lsn = self.state.lsn;
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
        let text = String::from_utf8_lossy(response.body());
        self.emit(Event::Answered {
            batch_id: self.state.envelope.batch_id(flight.batch),
            status: response.status().as_u16(),
            summary: text.chars().take(200).collect(),
        });
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
        let flight = self.take_in_flight(id)?;
        self.clock.advance(now);
        self.emit(Event::TransportFailed {
            batch_id: self.state.envelope.batch_id(flight.batch),
            failure,
        });
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

    /// The result of write job `id` (D2, D4): its frames were appended (and synced,
    /// when the job said so), or the write failed. After a failure nothing more is
    /// appended; what was not stored stays in memory, requests that depend on it wait,
    /// and the whole state is rewritten once the store works again.
    ///
    /// # Errors
    /// [`UnknownJob`] when `id` is not the write job out; nothing changes.
    pub fn handle_written(
        &mut self,
        now: Now,
        id: WriteId,
        result: Result<(), StorageFailure>,
    ) -> Result<(), UnknownJob> {
        let synced_before = self.journal.synced_lsn();
        let confirmed = self
            .journal
            .written(id, result, self.clock.now().mono_ms.max(now.mono_ms))
            .ok_or(UnknownJob)?;
        self.after_write(now, synced_before, confirmed);
        Ok(())
    }

    /// [`Client::poll_write`] and [`Client::handle_written`] in one call, for a host
    /// that appends on the thread of the input: `append` performs the pending append
    /// (the frames lent in place, not handed out as a buffer of their own) and its
    /// result is confirmed at once. Returns whether there was anything to write.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, Storage, StoragePolicy};
    /// let config = Config::new("app", "http://127.0.0.1:9")
    ///     .with_storage(Storage::Durable(StoragePolicy::default()));
    /// let now = Now::new(0, 1_700_000_000_000);
    /// let mut client = Client::new(config, now).unwrap();
    /// let mut journal = Vec::new();
    /// while client.write_pending(now, |write| {
    ///     journal.extend_from_slice(write.frames); // your file, fsync if write.sync
    ///     Ok(())
    /// }) {}
    /// client.handle_track(now, "e", &serde_json::json!({})).unwrap();
    /// assert!(client.write_pending(now, |write| Ok(journal.extend_from_slice(write.frames))));
    /// assert_eq!(client.written_lsn(), client.lsn());
    /// ```
    pub fn write_pending(
        &mut self,
        now: Now,
        append: impl FnOnce(&PendingWrite<'_>) -> Result<(), StorageFailure>,
    ) -> bool {
        let synced_before = self.journal.synced_lsn();
        let at = self.clock.now().mono_ms.max(now.mono_ms);
        let Some(confirmed) = self.journal.write_in_place(append, at) else {
            return false;
        };
        self.after_write(now, synced_before, confirmed);
        true
    }

    fn after_write(&mut self, now: Now, synced_before: u64, confirmed: Confirmed) {
        // A request waits for its batch to be synced (and asks for a sync at once when
        // the app flushed it): a write that synced nothing, with no flushed record
        // waiting, lets none go.
        let may_release =
            self.journal.synced_lsn() > synced_before || self.flushed_through_lsn > synced_before;
        self.after_storage(now, confirmed, may_release);
    }

    /// The result of sync job `id`. A failed sync means nothing written since the last
    /// good one can be trusted: the state is rewritten whole (D4).
    ///
    /// # Errors
    /// [`UnknownJob`] when `id` is not the sync job out; nothing changes.
    pub fn handle_synced(
        &mut self,
        now: Now,
        id: SyncId,
        result: Result<(), StorageFailure>,
    ) -> Result<(), UnknownJob> {
        let confirmed = self
            .journal
            .synced(id, result, self.clock.now().mono_ms.max(now.mono_ms))
            .ok_or(UnknownJob)?;
        self.after_storage(now, confirmed, true);
        Ok(())
    }

    /// The result of compaction job `id`: `Ok` with the snapshot's size in bytes.
    ///
    /// # Errors
    /// [`UnknownJob`] when `id` is not the compaction out; nothing changes.
    pub fn handle_compacted(
        &mut self,
        now: Now,
        id: CompactId,
        result: Result<u64, StorageFailure>,
    ) -> Result<(), UnknownJob> {
        let confirmed = self
            .journal
            .compacted(id, result, self.clock.now().mono_ms.max(now.mono_ms))
            .ok_or(UnknownJob)?;
        self.after_storage(now, confirmed, true);
        Ok(())
    }

    fn after_storage(&mut self, now: Now, confirmed: Confirmed, may_release: bool) {
        let before = self.clock.now();
        let now = self.clock.advance(now);
        match confirmed {
            Confirmed::Quietly => {
                // Most confirmations are of a track's append, at the time of the track
                // itself: no timer moved, no request waits for what it stored, and only
                // the journal's own maintenance (a sync period, a compaction) can be due.
                let no_send_released = !self.send_waits_for_storage || !may_release;
                if now == before && !self.review_needed && no_send_released && !self.closing {
                    self.poll_maintenance();
                    return;
                }
            }
            Confirmed::Failed { failure, from_lsn } => {
                self.emit_now(Event::Storage(StorageNotice::Failed { failure, from_lsn }));
            }
            Confirmed::Resumed => self.emit_now(Event::Storage(StorageNotice::Resumed)),
            Confirmed::CompactionFailed(failure) => {
                self.emit_now(Event::Storage(StorageNotice::CompactionFailed { failure }));
            }
        }
        if self.send_waits_for_storage {
            self.review_needed = true;
        }
        self.after_input();
    }

    /// The token provider's answer to fetch `id` (R2), applied like
    /// [`Client::handle_authentication_details`] when it is still wanted:
    ///
    /// - **R2a** the app passed a token for the identifier while the fetch ran: the
    ///   app's is newer and kept ([`IgnoredBecause::Superseded`]);
    /// - **R2b** the user logged out meanwhile: the token is still used while they
    ///   have data left to send (L1);
    /// - **R2c** the answer is the token the server rejected: ignored (A2), and no new
    ///   fetch until the next notice;
    /// - **R2d** the user is gone (logged out, nothing left to send): ignored;
    /// - **R2e** an answer after the fetch ended (its timeout passed, the client
    ///   closed) is refused like a stale response (A7).
    ///
    /// No token, a failed provider, or a token that is malformed (T1) or unusable is
    /// emitted as [`Event::TokenFetchFailed`]; the provider is asked again on the next
    /// notice.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, Step, TokenAnswer, Outcome};
    /// use std::time::Duration;
    /// let config = Config::new("app", "http://127.0.0.1:9")
    ///     .with_jwt(true)
    ///     .with_token_provider(Duration::from_secs(30));
    /// let mut client = Client::new(config, Now::new(0, 0)).unwrap();
    /// client.handle_identify(Now::new(0, 0), "u1").unwrap();
    /// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
    /// client.handle_flush(Now::new(0, 0));
    /// // No token for u1: TOKEN_NOT_AVAILABLE, and the provider is asked.
    /// let Some(Step::FetchToken(fetch)) = client.poll_step() else { panic!() };
    /// assert_eq!(fetch.identifier, "u1");
    /// let answer = TokenAnswer::Token("aaa.bbb.ccc".into());
    /// assert_eq!(client.handle_token_answer(Now::new(5, 5), fetch.id, answer), Ok(Outcome::Applied));
    /// assert!(matches!(client.poll_step(), Some(Step::Send(_))));
    /// ```
    ///
    /// # Errors
    /// [`UnknownJob`] when fetch `id` is not running (R2e); nothing changes.
    pub fn handle_token_answer(
        &mut self,
        now: Now,
        id: FetchId,
        answer: TokenAnswer,
    ) -> Result<Outcome, UnknownJob> {
        let (identifier, flight) = self.fetches.end(id).ok_or(UnknownJob)?;
        self.clock.advance(now);
        let outcome = match answer {
            TokenAnswer::Token(text) => self.provided(identifier, flight.token_at_start, &text),
            TokenAnswer::NoToken => self.fetch_failed(identifier, FetchFailure::NoToken),
            TokenAnswer::Failed(why) => self.fetch_failed(identifier, FetchFailure::Failed(why)),
        };
        self.review_needed = true;
        self.after_input();
        Ok(outcome)
    }

    /// R2a-R2d: whether a provider's token is used.
    fn provided(
        &mut self,
        identifier: String,
        token_at_start: Option<Token>,
        text: &str,
    ) -> Outcome {
        let owner = Owner::Identified(identifier.clone());
        if self.state.current != owner && !self.state.has_pending(&owner) {
            return self.fetch_failed(identifier, FetchFailure::UserGone);
        }
        let known = self.state.tokens.get(&identifier);
        // R2a: the app passed a token since the fetch began (a token forgotten with its
        // user's data, L2, supersedes nothing).
        if known.is_some_and(|t| Some(&t.current) != token_at_start.as_ref()) {
            return self.fetch_failed(identifier, FetchFailure::Superseded);
        }
        let token = match Token::parse(text) {
            Ok(token) => token,
            Err(why) => {
                return self.fetch_failed(identifier, FetchFailure::Malformed(why.to_string()));
            }
        };
        if known.is_some_and(|t| t.rejected.as_ref() == Some(&token)) {
            return self.fetch_failed(identifier, FetchFailure::Rejected);
        }
        if known.is_some_and(|t| t.current == token) {
            return self.fetch_failed(identifier, FetchFailure::Unchanged);
        }
        self.commit(Change::TokenPassed { identifier, token });
        Outcome::Applied
    }

    fn fetch_failed(&mut self, identifier: String, reason: FetchFailure) -> Outcome {
        let because = match reason {
            FetchFailure::Superseded => IgnoredBecause::Superseded,
            FetchFailure::UserGone => IgnoredBecause::UserGone,
            FetchFailure::Rejected => IgnoredBecause::RejectedToken,
            FetchFailure::Unchanged => IgnoredBecause::SameToken,
            _ => IgnoredBecause::NoUsableToken,
        };
        self.emit(Event::TokenFetchFailed { identifier, reason });
        Outcome::Ignored(because)
    }

    /// Starts closing (the shutdown order): no new request is sent, token fetches are
    /// cancelled, what is written is synced, and once nothing is out —the request in
    /// flight answered— [`Step::Finish`] says the host may end. Nothing is flushed:
    /// what is pending stays stored for the next start.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, Step};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// client.handle_close(Now::new(1, 1));
    /// assert!(matches!(client.poll_step(), Some(Step::Finish { clean: true })));
    /// ```
    pub fn handle_close(&mut self, now: Now) {
        self.clock.advance(now);
        if self.closing {
            return;
        }
        self.closing = true;
        for (identifier, flight) in self.fetches.end_all() {
            self.steps
                .push_back(Queued::Ready(Step::CancelFetch(flight.id)));
            self.emit(Event::TokenFetchFailed {
                identifier,
                reason: FetchFailure::Closed,
            });
        }
        self.journal.want_final_sync(self.state.lsn);
        self.after_input();
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next journal append, if any: perform it before returning to whoever made
    /// the input, then confirm it with [`Client::handle_written`]. One is out at a
    /// time; none while storage is broken (D4).
    pub fn poll_write(&mut self) -> Option<WriteJob> {
        self.journal.poll_write()
    }

    /// The next piece of work for the host, oldest first; `None` when there is none.
    pub fn poll_step(&mut self) -> Option<Step> {
        loop {
            match self.steps.pop_front()? {
                Queued::Ready(step) => return Some(step),
                // A request whose answer already came (a restart's) is not sent.
                Queued::Send(id) => {
                    if let Some(step) = self.request_in_flight(id) {
                        return Some(step);
                    }
                }
                Queued::Compact(start) => {
                    return Some(Step::Compact(self.journal.compact_job(start, &self.state)));
                }
            }
        }
    }

    /// The next thing that happened, in order, once the records before it are
    /// written; `None` when there is none.
    pub fn poll_event(&mut self) -> Option<Event> {
        let written = self.journal.written_lsn();
        let at = self
            .events
            .iter()
            .position(|(needs, _)| *needs <= written)?;
        self.events.remove(at).map(|(_, event)| event)
    }

    /// When the core next needs [`Client::handle_timeout`], and why; `None` when only
    /// an input can make anything happen (DT2). Always later than the last time seen.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Wakeup> {
        let storage = self
            .journal
            .next_deadline()
            .map(|(at_mono_ms, due)| Wakeup {
                at_mono_ms,
                reason: match due {
                    MaintenanceDue::Sync => WakeReason::Sync,
                    MaintenanceDue::Retry => WakeReason::StorageRetry,
                },
            });
        let fetch = self.fetches.next_deadline().map(|at_mono_ms| Wakeup {
            at_mono_ms,
            reason: WakeReason::TokenFetchTimeout,
        });
        // A storage deadline already passed waits for a job the host is performing,
        // whose confirmation is the next input: waking for it would spin.
        let now = self.clock.now().mono_ms;
        [self.wakeup, storage, fetch]
            .into_iter()
            .flatten()
            .filter(|w| w.at_mono_ms > now)
            .min_by_key(|w| w.at_mono_ms)
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

    /// The whole durable state as a snapshot, whose journal goes on in the segment
    /// being written (to copy a store; hosts compact through [`Step::Compact`]).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.state.snapshot(self.journal.segment())
    }

    /// What is left to send and when it would go, for a driver waiting until the
    /// client is idle.
    #[must_use]
    pub fn outlook(&self) -> SendOutlook {
        let written = self.journal.written_lsn();
        let tellable = self.events.iter().any(|(needs, _)| *needs <= written);
        let unwritten = self.journal.has_unwritten() && !self.journal.is_broken();
        SendOutlook {
            in_flight: self.in_flight.is_some(),
            next_send_mono_ms: self.next_send_mono_ms(),
            fetches: self.fetches.running(),
            unfinished: !self.steps.is_empty() || tellable || unwritten,
        }
    }

    /// Why the latest changes are not stored, if they are not: storage failed and is
    /// not healed yet (D4). A host returns this to the app as the typed error of the
    /// call whose change it is. `None` when every change made so far is written.
    #[must_use]
    pub fn unstored(&self) -> Option<Unstored> {
        (self.journal.written_lsn() < self.state.lsn && self.journal.is_broken()).then(|| {
            Unstored {
                from_lsn: self.journal.written_lsn() + 1,
            }
        })
    }

    /// The last record written (confirmed by [`Client::handle_written`] or a
    /// compaction): an input whose change is at or below it is stored.
    #[must_use]
    pub fn written_lsn(&self) -> u64 {
        self.journal.written_lsn()
    }

    /// Whether [`Client::poll_step`] or [`Client::poll_event`] has something: a
    /// host that sleeps wakes its worker only then (or when [`Client::poll_timeout`]
    /// changed).
    #[must_use]
    pub fn has_output(&self) -> bool {
        let written = self.journal.written_lsn();
        !self.steps.is_empty() || self.events.iter().any(|(needs, _)| *needs <= written)
    }

    /// Whether storage failed and is not healed yet (D4).
    #[must_use]
    pub fn is_storage_broken(&self) -> bool {
        self.journal.is_broken()
    }

    // ----- rules --------------------------------------------------------------------

    /// Applies a change and hands its record to the journal. The only way durable
    /// state changes, live or on recovery.
    fn commit(&mut self, change: Change) {
        self.commit_at(self.state.lsn + 1, change);
    }

    fn commit_at(&mut self, lsn: u64, change: Change) {
        if !matches!(change, Change::EventAdded { .. }) {
            self.review_needed = true;
        }
        let record = Record::new(lsn, change);
        // The tag of the user current when the change was made (D5).
        let owner_tag = self.state.current_tag;
        match self.state.apply(&record) {
            Ok(()) => self.journal.record(&record, owner_tag),
            // Live changes are built from the state they apply to; one that does not
            // apply is a bug, caught by the tests, and changes nothing in release.
            Err(why) => debug_assert!(false, "live change does not apply: {why}"),
        }
    }

    /// Emits `event` once the records made so far are written.
    fn emit(&mut self, event: Event) {
        self.events.push_back((self.state.lsn, event));
    }

    /// Emits `event` at once: it is about storage itself.
    fn emit_now(&mut self, event: Event) {
        self.events.push_back((0, event));
    }

    fn emit_notice(
        &mut self,
        code: ErrorCode,
        message: String,
        token: Option<Token>,
        identifier: Option<String>,
    ) {
        // R2: a notice about an identifier asks the provider for a token, once at a
        // time per identifier; with JWT disabled no token can be passed.
        if self.config.config.jwt_enabled
            && !self.closing
            && let Some(identifier) = &identifier
        {
            let current = self.state.tokens.get(identifier).map(|t| t.current.clone());
            if let Some(fetch) = self.fetches.begin(
                identifier,
                &code,
                &self.config.config.app_id,
                self.clock.now().mono_ms,
                current,
            ) {
                self.steps.push_back(Queued::Ready(Step::FetchToken(fetch)));
            }
        }
        self.emit(Event::Notice(Box::new(AuthNotice {
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
            let batch = self.state.next_batch;
            self.commit(Change::SealedAs { batch });
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
            self.emit(Event::Dropped(DropNotice {
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
        self.emit(Event::Acked(AckNotice {
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
        // A2: the notice names an identified owner, with JWT disabled too.
        let identifier = owner.identifier().map(str::to_owned);
        self.emit_notice(code, message, flight.token.clone(), identifier);
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
            self.emit(Event::LockedOut);
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
        self.emit(Event::Dropped(DropNotice {
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
        self.emit(Event::Dropped(DropNotice {
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

    /// Runs due timers, then the review if anything may have changed, then the
    /// storage work and the end of a close that are due.
    fn after_input(&mut self) {
        let now = self.clock.now().mono_ms;
        self.run_due_timers();
        if self.review_needed || self.wakeup.is_some_and(|w| w.at_mono_ms <= now) {
            self.review();
        }
        for (identifier, flight) in self.fetches.end_expired(now) {
            // R2: no answer in time counts as no token; a command is stopped.
            self.steps
                .push_back(Queued::Ready(Step::CancelFetch(flight.id)));
            self.emit(Event::TokenFetchFailed {
                identifier,
                reason: FetchFailure::TimedOut,
            });
        }
        if self.closing {
            // Shutdown order: everything written is synced before the end.
            self.journal.want_final_sync(self.state.lsn);
        }
        self.poll_maintenance();
        self.finish_if_closed();
    }

    /// Queues the journal's sync or compaction, if one is due.
    fn poll_maintenance(&mut self) {
        let now = self.clock.now().mono_ms;
        // A closing client heals broken storage but starts no compaction.
        let compaction = !self.closing || self.journal.is_broken();
        if let Some(step) = self.journal.poll_maintenance(now, &self.state, compaction) {
            self.steps.push_back(match step {
                MaintenanceStep::Sync(job) => Queued::Ready(Step::Sync(job)),
                MaintenanceStep::Compact(start) => Queued::Compact(start),
            });
        }
    }

    /// S1, A4: seals the open batch whose flush interval ran out; a backoff that ran
    /// out lets requests go again.
    fn run_due_timers(&mut self) {
        let now = self.clock.now().mono_ms;
        if self.open_deadline_ms.is_some_and(|due| due <= now) {
            self.seal_open();
        }
        if self.backoff_deadline_ms.is_some_and(|due| due <= now) {
            self.backoff_deadline_ms = None;
            self.review_needed = true;
        }
    }

    /// The end of a close: nothing in flight, nothing left to write or sync.
    fn finish_if_closed(&mut self) {
        if !self.closing || self.finished || self.in_flight.is_some() {
            return;
        }
        let lsn = self.state.lsn;
        let waiting = if self.journal.is_broken() {
            self.journal.has_job_out()
        } else {
            self.journal.has_work() || !self.journal.is_clean(lsn) && self.journal.is_durable()
        };
        if !waiting {
            self.finished = true;
            self.steps.push_back(Queued::Ready(Step::Finish {
                clean: self.journal.is_clean(lsn),
            }));
        }
    }

    fn review(&mut self) {
        self.review_needed = false;
        self.sweep_logged_out();
        self.notice_missing_tokens();
        self.notice_expiring_tokens();
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

    /// S5: an identified owner with a sealed batch and no token: one notice per episode.
    fn notice_missing_tokens(&mut self) {
        if !self.config.config.jwt_enabled {
            return;
        }
        let untold: Vec<String> = self
            .state
            .queue
            .owners()
            .filter_map(Owner::identifier)
            .filter(|id| {
                !self.state.tokens.contains_key(*id) && !self.state.noticed_no_token.contains(*id)
            })
            .map(str::to_owned)
            .collect();
        for identifier in untold {
            self.emit_notice(
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
            .filter(|(_, t)| !t.expiry_noticed && t.usable().is_some())
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
    fn notice_expiring_tokens(&mut self) {
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
            self.emit_notice(
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
        self.send_waits_for_storage = false;
        if self.closing
            || self.in_flight.is_some()
            || self.is_locked_out()
            || self.backoff_deadline_ms.is_some()
        {
            return;
        }
        let mut blocked: Vec<&Owner> = Vec::new();
        let mut chosen = None;
        let mut waits_for_sync = false;
        for batch in self.state.queue.iter() {
            if blocked.contains(&&batch.owner) {
                continue;
            }
            let Some(token) = self.sendable_with(&batch.owner) else {
                blocked.push(&batch.owner);
                continue;
            };
            // D2, D4: a batch leaves only once what gave it its id and events is on
            // the disk, so that an id a server saw is never handed out again. While
            // the store works that is a moment away, and the queue's order is kept;
            // while it is broken, batches already stored go meanwhile. With a sync
            // period, a batch the app flushed is synced at once; others wait for the
            // period's fsync, so that tracking fast never costs more than one fsync a
            // period.
            if !self.journal.is_synced(batch.content_lsn) {
                self.send_waits_for_storage = true;
                waits_for_sync |= self.journal.is_written(batch.content_lsn)
                    && batch.content_lsn <= self.flushed_through_lsn;
                if !self.journal.is_broken() {
                    break;
                }
                blocked.push(&batch.owner);
                continue;
            }
            chosen = Some((batch.number, token));
            break;
        }
        if waits_for_sync {
            self.journal.want_sync();
        }
        let Some((number, token)) = chosen else {
            return;
        };
        let Some(batch) = self.state.queue.get(number) else {
            return;
        };
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let (owner, events, attempted) = (batch.owner.clone(), batch.len(), batch.attempted);
        if !attempted {
            self.commit(Change::Attempted { batch: number });
        }
        self.emit(Event::Sent {
            batch_id: self.state.envelope.batch_id(number),
            owner,
            events,
            token_prefix: token.as_ref().map(Token::redacted),
        });
        self.in_flight = Some(InFlight {
            id,
            batch: number,
            token,
        });
        // The request itself (its body, up to the byte limit of events) is built when
        // a host polls it, on its own thread, not on the app's that made the input.
        self.steps.push_back(Queued::Send(id));
    }

    /// The request of the batch in flight, built now: its body at its first send, then
    /// kept (a cache of the batch's events, not a durable change), the same bytes for
    /// every retry (S3).
    fn request_in_flight(&mut self, id: RequestId) -> Option<Step> {
        let flight = self.in_flight.as_ref().filter(|f| f.id == id)?;
        let (number, token) = (flight.batch, flight.token.clone());
        let batch = self.state.queue.get_mut(number)?;
        let body = self.state.envelope.body_of(batch);
        let batch_id = self.state.envelope.batch_id(number);
        let request = wire::request_for(id, &self.config, batch_id, batch, body, token.as_ref());
        Some(Step::Send(Box::new(request)))
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
        if self.is_locked_out() || self.closing {
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
        std::iter::from_fn(|| client.poll_step())
            .find_map(|step| match step {
                Step::Send(request) => Some(request.events),
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
