//! A simulated driver: carries a [`Step`] out on the real [`Client`].
//!
//! It owns the simulated clock (both clocks advance together from
//! [`T0_UNIX_MS`]), answers the request in flight as the step says, keeps the store a
//! host would (journal segments and the snapshot of the last compaction), and
//! restores the client from them on [`Step::Restart`]. It reports what happened and
//! judges nothing: the model and the invariants do.

use std::collections::BTreeMap;

use authsync_core::{
    AckNotice, AuthNotice, Client, Config, DropNotice, Event, FetchFailure, FetchId, FsyncPolicy,
    Now, Outcome, PreviousRun, Request, RequestId, Snapshot, Step as CoreStep, Storage,
    StoragePolicy, StoredSegment, StoredState, TokenAnswer, TransportFailure, WakeReason,
};
use bytes::Bytes;

use crate::alphabet::{Reply, Step, TokenName, User};
use crate::model::{REFRESH_AHEAD_MS, Settings};

/// The wall clock when a simulation starts: 2023-11-14T22:13:20Z.
pub const T0_UNIX_MS: u64 = 1_700_000_000_000;

/// The monotonic clock when a simulation starts.
const T0_MONO_MS: u64 = 1_000;

/// The app id of every simulated client.
pub const APP_ID: &str = "app-model";

/// The seed of every simulated install.
pub const SEED: u64 = 7;

/// The core's configuration for `settings`: `Live`, refresh-ahead at 60 s (its default).
#[must_use]
pub fn config(settings: &Settings) -> Config {
    let ms = std::time::Duration::from_millis;
    Config::new(APP_ID, "http://127.0.0.1:9")
        .with_jwt(settings.jwt)
        .with_batch_limits(
            u32::try_from(settings.batch_max_events).unwrap_or(u32::MAX),
            128 * 1024,
        )
        .with_max_pending_events(u32::try_from(settings.max_pending).unwrap_or(u32::MAX))
        .with_max_auth_failures(settings.max_auth_failures)
        .with_flush_interval(ms(settings.flush_interval_ms))
        .with_backoff(ms(settings.backoff_base_ms), ms(settings.backoff_cap_ms))
        .with_refresh_ahead(ms(REFRESH_AHEAD_MS.unsigned_abs()))
        .with_seed(SEED)
        .with_storage(Storage::Durable(StoragePolicy {
            fsync: FsyncPolicy::Always,
            ..StoragePolicy::default()
        }))
        .with_token_provider(std::time::Duration::from_millis(FETCH_TIMEOUT_MS))
}

/// How long the simulated token provider may take (R2's default).
pub const FETCH_TIMEOUT_MS: u64 = 30_000;

/// The name of a fetch failure's kind, as the model predicts it.
#[must_use]
pub fn fetch_failure_name(reason: &FetchFailure) -> String {
    let shown = format!("{reason:?}");
    shown.split('(').next().unwrap_or_default().to_owned()
}

/// The JWS string of an abstract token: a real base64url JSON payload with `sub` and
/// `exp` (so R1 can read it), and a signature segment that names the token, so that
/// [`token_name`] can read it back.
#[must_use]
pub fn token_string(name: TokenName) -> String {
    let exp = T0_UNIX_MS.saturating_add_signed(name.exp_from_start_ms()) / 1_000;
    let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload =
        base64url(format!(r#"{{"sub":"{}","exp":{exp}}}"#, name.user.identifier()).as_bytes());
    let validity = if name.expired { "x" } else { "g" };
    format!(
        "{header}.{payload}.sig_{}_{}_{validity}",
        name.user.identifier(),
        name.serial
    )
}

/// The abstract token a JWS string made by [`token_string`] stands for.
#[must_use]
pub fn token_name(token: &str) -> Option<TokenName> {
    let signature = token.rsplit('.').next()?;
    let mut parts = signature.strip_prefix("sig_")?.split('_');
    let user = User::from_identifier(parts.next()?)?;
    let serial = parts.next()?.parse().ok()?;
    let expired = match parts.next()? {
        "x" => true,
        "g" => false,
        _ => return None,
    };
    let name = TokenName {
        user,
        serial,
        expired,
    };
    (parts.next().is_none() && token_string(name) == token).then_some(name)
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A client's durable state (its lsn and encoded state), without what says where its
/// journal goes on: a restart begins a new segment.
#[must_use]
pub fn state_of(client: &Client) -> (u64, Vec<u8>) {
    let snapshot = client.snapshot();
    let mut bytes = snapshot.as_bytes().to_vec();
    if let Some(header) = bytes.get_mut(13..25) {
        header.fill(0);
    }
    (snapshot.lsn(), bytes)
}

/// One output of the core, as the simulated host took it, in order: what the model
/// and the invariants look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Journal frames written (and synced: the simulation's fsync policy is `always`).
    Persist(Bytes),
    /// A request sent.
    Send(Box<Request>),
    /// A notice for the listeners.
    Notify(Box<AuthNotice>),
    /// Events dropped.
    Dropped(DropNotice),
    /// A batch acknowledged.
    Acked(AckNotice),
    /// A lockout began.
    LockedOut,
    /// A compaction, into a snapshot at this lsn.
    Compacted(u64),
    /// The token provider is asked for a token for this identifier (R2).
    Fetch(String),
    /// A fetch is stopped (R2).
    CancelFetch,
    /// A fetch gave nothing usable: for this identifier, for this reason (R2).
    FetchFailed(String, String),
    /// Anything else the core handed out (the observers' timeline), as text.
    Other(String),
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// A call without a result.
    Nothing,
    /// `handle_track` accepted an event with this `seq`.
    Tracked(u64),
    /// The call's `Outcome`.
    Outcome(Outcome),
    /// The call was refused because the request is not in flight (A7).
    NotInFlight,
    /// The call failed in a way no step should make it fail.
    Failed(String),
}

/// Everything one step did.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Every action, `Persist` included, in order.
    pub actions: Vec<Action>,
    /// What the call returned.
    pub result: CallResult,
    /// The request this step answered, with the answer.
    pub answered: Option<(Request, Reply)>,
    /// Whether the client was locked out before the step.
    pub locked_out_before: bool,
    /// The backoff the core announced after the step (`poll_timeout` with reason
    /// `Backoff`), in ms from now.
    pub announced_backoff_ms: Option<u64>,
    /// A refused call (A7) changed the durable state.
    pub refused_call_changed_state: bool,
    /// A restart's restored state differs from the state before it.
    pub restore_differs: bool,
}

/// The simulated driver and its client.
#[derive(Clone)]
pub struct Sim {
    config: Config,
    client: Client,
    elapsed_ms: u64,
    /// Journal segments, by number.
    journal: BTreeMap<u64, Vec<u8>>,
    /// The snapshot of the last compaction.
    base: Option<Snapshot>,
    in_flight: Option<Request>,
    /// Token fetches running, by identifier (R2).
    fetches: BTreeMap<String, FetchId>,
    log: Option<Vec<Action>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("client", &self.client)
            .field("elapsed_ms", &self.elapsed_ms)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A new install configured from `settings`. With `keep_log`, every action is kept
    /// for [`Sim::log`] (the determinism check compares two runs' logs).
    ///
    /// # Errors
    /// The core's refusal of the configuration, as text.
    pub fn new(settings: &Settings, keep_log: bool) -> Result<Self, String> {
        let config = config(settings);
        let client = Client::new(config.clone(), Self::at(0)).map_err(|e| e.to_string())?;
        let mut sim = Self {
            config,
            client,
            elapsed_ms: 0,
            journal: BTreeMap::new(),
            base: None,
            in_flight: None,
            fetches: BTreeMap::new(),
            log: keep_log.then(Vec::new),
        };
        sim.drain();
        Ok(sim)
    }

    const fn at(elapsed_ms: u64) -> Now {
        Now::new(T0_MONO_MS + elapsed_ms, T0_UNIX_MS + elapsed_ms)
    }

    /// The current simulated time.
    #[must_use]
    pub const fn now(&self) -> Now {
        Self::at(self.elapsed_ms)
    }

    /// Milliseconds since the start at monotonic instant `mono_ms`.
    #[must_use]
    pub const fn elapsed_at(mono_ms: u64) -> u64 {
        mono_ms.saturating_sub(T0_MONO_MS)
    }

    /// The client.
    #[must_use]
    pub const fn client(&self) -> &Client {
        &self.client
    }

    /// Whether a token fetch runs (R2): runtime state a restored client does not have.
    #[must_use]
    pub fn fetching(&self) -> bool {
        !self.fetches.is_empty()
    }

    /// The request in flight, as the driver knows it.
    #[must_use]
    pub const fn in_flight(&self) -> Option<&Request> {
        self.in_flight.as_ref()
    }

    /// Every action so far, when kept.
    #[must_use]
    pub fn log(&self) -> &[Action] {
        self.log.as_deref().unwrap_or_default()
    }

    /// A client restored from this driver's snapshot and journal, now, as a second
    /// driver with the same history (for the restore-equivalence check). Only
    /// meaningful with no request in flight: a restored client sends that batch again.
    ///
    /// # Errors
    /// The core's refusal to restore, as text.
    pub fn restored_twin(&self) -> Result<(Self, Vec<Action>), String> {
        let mut twin = self.clone();
        twin.log = self.log.as_ref().map(|_| Vec::new());
        twin.client = self.restore()?;
        twin.in_flight = None;
        let actions = twin.drain();
        Ok((twin, actions))
    }

    fn restore(&self) -> Result<Client, String> {
        let stored = StoredState {
            snapshot: self.base.clone().map(Ok),
            segments: self
                .journal
                .iter()
                .map(|(&number, bytes)| StoredSegment {
                    number,
                    bytes: Bytes::from(bytes.clone()),
                })
                .collect(),
            previous_run: PreviousRun::Clean,
            fresh_seed: SEED + 1,
        };
        let (client, report) =
            Client::recover(self.config.clone(), self.now(), stored).map_err(|e| e.to_string())?;
        if report.is_clean() {
            Ok(client)
        } else {
            Err(format!(
                "a store the simulation wrote whole reads back damaged: {report}"
            ))
        }
    }

    /// Carries out one step and drains the client's actions.
    pub fn apply(&mut self, step: Step) -> StepReport {
        let locked_out_before = self.client.is_locked_out();
        let now = self.now();
        let mut answered = None;
        let mut refused_call_changed_state = false;
        let mut restore_differs = false;
        let result = match step {
            Step::Track => match self.client.handle_track(now, "e", &serde_json::json!({})) {
                Ok(receipt) => CallResult::Tracked(receipt.seq),
                Err(e) => CallResult::Failed(e.to_string()),
            },
            Step::Identify(user) => match self.client.handle_identify(now, user.identifier()) {
                Ok(outcome) => CallResult::Outcome(outcome),
                Err(e) => CallResult::Failed(e.to_string()),
            },
            Step::PassToken(token) => match self.client.handle_authentication_details(
                now,
                &token_string(token),
                token.user.identifier(),
            ) {
                Ok(outcome) => CallResult::Outcome(outcome),
                Err(e) => CallResult::Failed(e.to_string()),
            },
            Step::SessionStart => {
                self.client.handle_session_start(now);
                CallResult::Nothing
            }
            Step::Logout => CallResult::Outcome(self.client.handle_logout(now)),
            Step::Flush => {
                self.client.handle_flush(now);
                CallResult::Nothing
            }
            Step::Reply(reply) => match self.in_flight.take() {
                Some(request) => {
                    let result = self.answer(request.id, reply);
                    answered = Some((request, reply));
                    match result {
                        Ok(()) => CallResult::Nothing,
                        Err(e) => CallResult::Failed(e),
                    }
                }
                None => {
                    let (result, changed) = self.answer_stale(RequestId(u64::MAX), reply);
                    refused_call_changed_state = changed;
                    result
                }
            },
            Step::StaleReply => {
                let stale = self
                    .in_flight
                    .as_ref()
                    .map_or(RequestId(u64::MAX), |r| RequestId(r.id.0 + 1_000));
                let (result, changed) = self.answer_stale(stale, Reply::Ok);
                refused_call_changed_state = changed;
                result
            }
            Step::Wait(wait) => {
                self.elapsed_ms += wait.millis();
                self.client.handle_timeout(self.now());
                CallResult::Nothing
            }
            Step::Answer(user, token) => match self.fetches.remove(user.identifier()) {
                Some(id) => {
                    let answer = token.map_or(TokenAnswer::NoToken, |t| {
                        TokenAnswer::Token(token_string(t))
                    });
                    match self.client.handle_token_answer(now, id, answer) {
                        Ok(outcome) => CallResult::Outcome(outcome),
                        Err(e) => CallResult::Failed(e.to_string()),
                    }
                }
                None => CallResult::Failed(format!("no fetch runs for {user:?}")),
            },
            Step::Restart => match self.restore() {
                Ok(restored) => {
                    let before = state_of(&self.client);
                    self.client = restored;
                    self.in_flight = None;
                    // Fetches are runtime, not durable: a new process asks again.
                    self.fetches.clear();
                    // Records the restored client commits at once (a first send marks
                    // its batch attempted) legitimately change the state.
                    let after = state_of(&self.client);
                    restore_differs = self.client.lsn() == before.0 && before != after;
                    CallResult::Nothing
                }
                Err(e) => CallResult::Failed(e),
            },
        };
        let actions = self.drain();
        let announced_backoff_ms = self
            .client
            .poll_timeout()
            .filter(|w| w.reason == WakeReason::Backoff)
            .map(|w| w.at_mono_ms.saturating_sub(self.now().mono_ms));
        StepReport {
            actions,
            result,
            answered,
            locked_out_before,
            announced_backoff_ms,
            refused_call_changed_state,
            restore_differs,
        }
    }

    fn answer(&mut self, id: RequestId, reply: Reply) -> Result<(), String> {
        let now = self.now();
        let response = |status: u16, retry_after: Option<u64>, body: String| {
            let mut builder = http::Response::builder().status(status);
            if let Some(seconds) = retry_after {
                builder = builder.header(http::header::RETRY_AFTER, seconds.to_string());
            }
            builder.body(Bytes::from(body)).map_err(|e| e.to_string())
        };
        let answered = match reply {
            Reply::TransportFailure => {
                self.client
                    .handle_transport_failure(now, id, TransportFailure::Connect)
            }
            Reply::Ok => self.client.handle_response(
                now,
                id,
                response(
                    200,
                    None,
                    r#"{"status":"ok","accepted":1,"duplicate":false}"#.into(),
                )?,
            ),
            Reply::Unauthorized(code) => {
                self.client
                    .handle_response(now, id, response(401, None, code.body())?)
            }
            Reply::TooLarge => {
                self.client
                    .handle_response(now, id, response(413, None, String::new())?)
            }
            Reply::BadRequest => self.client.handle_response(
                now,
                id,
                response(
                    400,
                    None,
                    r#"{"error":{"type":"schema","message":"no"}}"#.into(),
                )?,
            ),
            Reply::Unavailable => self.client.handle_response(
                now,
                id,
                response(503, Some(crate::alphabet::RETRY_AFTER_S), String::new())?,
            ),
        };
        answered.map_err(|e| e.to_string())
    }

    /// Answers a request id that is not in flight; reports whether the state changed.
    fn answer_stale(&mut self, id: RequestId, reply: Reply) -> (CallResult, bool) {
        let before = self.client.snapshot();
        let result = match self.answer(id, reply) {
            Ok(()) => CallResult::Failed(format!("an answer to {id}, not in flight, was taken")),
            Err(_) => CallResult::NotInFlight,
        };
        (result, self.client.snapshot() != before)
    }

    /// Carries out every output, as a host would, until there is none.
    fn drain(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        loop {
            let before = actions.len();
            while let Some(job) = self.client.poll_write() {
                self.journal
                    .entry(job.segment)
                    .or_default()
                    .extend_from_slice(&job.frames);
                let _ = self.client.handle_written(self.now(), job.id, Ok(()));
                actions.push(Action::Persist(job.frames));
            }
            while let Some(event) = self.client.poll_event() {
                actions.push(match event {
                    Event::Notice(notice) => Action::Notify(notice),
                    Event::Dropped(drop) => Action::Dropped(drop),
                    Event::Acked(ack) => Action::Acked(ack),
                    Event::LockedOut => Action::LockedOut,
                    Event::TokenFetchFailed { identifier, reason } => {
                        Action::FetchFailed(identifier, fetch_failure_name(&reason))
                    }
                    other => Action::Other(format!("{other:?}")),
                });
            }
            while let Some(step) = self.client.poll_step() {
                actions.push(match step {
                    CoreStep::Send(request) => {
                        self.in_flight = Some((*request).clone());
                        Action::Send(request)
                    }
                    CoreStep::Compact(job) => {
                        let snapshot = job.snapshot();
                        let size = snapshot.as_bytes().len() as u64;
                        self.journal.retain(|&n, _| n >= job.first_segment);
                        let _ = self.client.handle_compacted(self.now(), job.id, Ok(size));
                        self.base = Some(snapshot);
                        Action::Compacted(job.lsn())
                    }
                    CoreStep::FetchToken(fetch) => {
                        self.fetches.insert(fetch.identifier.clone(), fetch.id);
                        Action::Fetch(fetch.identifier)
                    }
                    CoreStep::CancelFetch(id) => {
                        self.fetches.retain(|_, running| *running != id);
                        Action::CancelFetch
                    }
                    CoreStep::Sync(job) => {
                        let _ = self.client.handle_synced(self.now(), job.id, Ok(()));
                        Action::Other("sync".into())
                    }
                    other => Action::Other(format!("{other:?}")),
                });
            }
            if actions.len() == before {
                break;
            }
        }
        if let Some(log) = &mut self.log {
            log.extend(actions.iter().cloned());
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_strings_are_jws_with_a_readable_exp_and_read_back() {
        let name = TokenName {
            user: User::U1,
            serial: 12,
            expired: true,
        };
        let token = token_string(name);
        assert_eq!(token_name(&token), Some(name));
        assert_eq!(
            authsync_core::unverified_expiry(&token),
            Ok(Some(T0_UNIX_MS / 1_000 - 86_400))
        );
        assert_eq!(token_name("a.b.sig_u9_1_g"), None);
        assert_eq!(base64url(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw");
    }
}
