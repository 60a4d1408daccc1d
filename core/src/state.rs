//! The durable state and the one function that changes it, [`DurableState::apply`].
//!
//! Everything D2 (docs/rules.md) says must survive a restart lives here and nowhere else:
//! pending data, the install and anonymous ids (through the seed and counters), tokens
//! and their rejected marks, the failure counter (a lockout is the counter at its
//! maximum), backoff, once-only notice marks, and the running totals. The client
//! decides which records to commit; this module only applies them, the same way live
//! and on restore. It holds no timers and no in-flight request: those are runtime.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::batch::{Envelope, EventRun, OpenBatch, PersistedBatch, PersistedOpenBatch};
use crate::owner::{Owner, owner_tag};
use crate::queue::Queue;
use crate::record::{Change, NoticeMark, Record, Snapshot};
use crate::seeded;
use crate::token::Token;

/// Running totals of an install, across restarts (D1).
///
/// `pending` is what is neither acknowledged nor dropped: `tracked = acked + dropped +
/// pending` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Events accepted by `track`.
    pub tracked: u64,
    /// Events in batches the server acknowledged.
    pub acked: u64,
    /// Events dropped, with a drop action saying why.
    pub dropped: u64,
}

impl Totals {
    /// Events neither acknowledged nor dropped.
    #[must_use]
    pub const fn pending(&self) -> u64 {
        self.tracked
            .saturating_sub(self.acked)
            .saturating_sub(self.dropped)
    }
}

/// What the core knows of one identifier's tokens (T2, A2, R1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenState {
    /// The newest token passed for this identifier.
    pub(crate) current: Token,
    /// The last token the server rejected for it (A2).
    pub(crate) rejected: Option<Token>,
    /// Whether `TOKEN_EXPIRING` was noticed for `current` (R1).
    pub(crate) expiry_noticed: bool,
    /// `current`'s `exp` in Unix seconds, read without verifying; derived, not stored.
    #[serde(skip)]
    pub(crate) expiry: Option<u64>,
}

impl TokenState {
    fn new(current: Token) -> Self {
        let expiry = current.unverified_expiry();
        Self {
            current,
            rejected: None,
            expiry_noticed: false,
            expiry,
        }
    }

    /// A token the server has not rejected (A2: a different token unblocks).
    pub(crate) fn usable(&self) -> Option<&Token> {
        (self.rejected.as_ref() != Some(&self.current)).then_some(&self.current)
    }
}

/// Transient-failure backoff (A4): the streak sets the ceiling, `draws` numbers the
/// jitter values already used, the deadline is in wall-clock terms so it survives a
/// restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Backoff {
    pub(crate) streak: u32,
    pub(crate) until_unix_ms: u64,
    pub(crate) draws: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DurableState {
    pub(crate) lsn: u64,
    pub(crate) seed: u64,
    pub(crate) envelope: Envelope,
    pub(crate) next_seq: u64,
    pub(crate) next_batch: u64,
    pub(crate) anonymous_generation: u64,
    pub(crate) current: Owner,
    pub(crate) tokens: BTreeMap<String, TokenState>,
    /// Identified users who logged out and still have pending data (L1, L2).
    pub(crate) logged_out: BTreeSet<String>,
    /// Owners whose batches wait for the next session start (A2 without a token).
    pub(crate) waiting_for_session: BTreeSet<Owner>,
    /// Identifiers given `TOKEN_NOT_AVAILABLE` in their current episode (S5).
    pub(crate) noticed_no_token: BTreeSet<String>,
    pub(crate) auth_failures: u32,
    pub(crate) backoff: Backoff,
    pub(crate) totals: Totals,
    pub(crate) queue: Queue,
    pub(crate) open: Option<OpenBatch>,
    /// [`owner_tag`] of `current`; derived, not stored.
    pub(crate) current_tag: u32,
}

/// Why a record does not apply; on restore it becomes
/// [`crate::RestoreError::Inconsistent`].
pub(crate) type ApplyError = &'static str;

impl DurableState {
    pub(crate) fn genesis(app_id: String, seed: u64) -> Self {
        let current = Owner::Anonymous(seeded::anonymous_id(seed, 0));
        Self {
            lsn: 1,
            seed,
            envelope: Envelope {
                install_id: seeded::install_id(seed),
                app_id,
            },
            next_seq: 1,
            next_batch: 1,
            anonymous_generation: 0,
            current_tag: owner_tag(&current),
            current,
            tokens: BTreeMap::new(),
            logged_out: BTreeSet::new(),
            waiting_for_session: BTreeSet::new(),
            noticed_no_token: BTreeSet::new(),
            auth_failures: 0,
            backoff: Backoff::default(),
            totals: Totals::default(),
            queue: Queue::default(),
            open: None,
        }
    }

    /// Whether `owner` has any pending event, sealed or open.
    pub(crate) fn has_pending(&self, owner: &Owner) -> bool {
        self.queue.has_owner(owner) || self.open.as_ref().is_some_and(|o| &o.owner == owner)
    }

    pub(crate) fn pending_events(&self) -> u64 {
        self.queue.events() + self.open.as_ref().map_or(0, |o| o.run.len() as u64)
    }

    /// Applies `record`, which must be the next in sequence; only the record a
    /// recovery writes after lost records ([`Change::IdsAdvanced`]) may skip ahead.
    pub(crate) fn apply(&mut self, record: &Record) -> Result<(), ApplyError> {
        let skips_ahead = matches!(record.change(), Change::IdsAdvanced { .. });
        if record.lsn() != self.lsn + 1 && !(skips_ahead && record.lsn() > self.lsn) {
            return Err("out of sequence");
        }
        self.apply_change(record.lsn(), record.change())?;
        self.lsn = record.lsn();
        Ok(())
    }

    /// Makes `owner` the current user.
    fn set_current(&mut self, owner: Owner) {
        self.current_tag = owner_tag(&owner);
        self.current = owner;
    }

    /// Seals the open batch as the next batch number, at record `lsn`.
    fn seal(&mut self, lsn: u64) -> Result<(), ApplyError> {
        let open = self.open.take().ok_or("no open batch to seal")?;
        let mut batch = self.envelope.seal(self.next_batch, open.owner, open.run);
        batch.content_lsn = lsn;
        self.next_batch += 1;
        self.queue.push(batch);
        Ok(())
    }

    fn apply_change(&mut self, lsn: u64, change: &Change) -> Result<(), ApplyError> {
        match change {
            Change::Genesis { .. } => return Err("install record after the start"),
            Change::EventAdded { unix_ms, event } => {
                let owner = &self.current;
                let queue = &self.queue;
                let open = self.open.get_or_insert_with(|| OpenBatch {
                    owner: owner.clone(),
                    first_unix_ms: *unix_ms,
                    // A batch usually fills like the one before it: starting at its size
                    // saves the run's regrowths, which were a tenth of a restart's cost.
                    run: queue.newest().map_or_else(EventRun::default, |last| {
                        EventRun::with_capacity(last.len(), last.joined_len())
                    }),
                });
                open.run.push(event);
                self.next_seq += 1;
                self.totals.tracked += 1;
            }
            Change::Sealed => self.seal(lsn)?,
            Change::SealedAs { batch } => {
                if *batch != self.next_batch {
                    return Err("seal under another batch number than the next");
                }
                self.seal(lsn)?;
            }
            Change::IdsAdvanced {
                next_seq,
                next_batch,
            } => {
                self.next_seq = self.next_seq.max(*next_seq);
                self.next_batch = self.next_batch.max(*next_batch);
            }
            Change::Attempted { batch } => {
                if !self.queue.mark_attempted(*batch) {
                    return Err("attempt of an unknown batch");
                }
            }
            Change::Acked { batch } => {
                let batch = self.queue.remove(*batch).ok_or("ack of an unknown batch")?;
                self.totals.acked += batch.len() as u64;
                self.auth_failures = 0;
                self.backoff.streak = 0;
                self.backoff.until_unix_ms = 0;
                self.forget_if_done(&batch.owner);
            }
            Change::Dropped { batch, .. } => {
                let batch = self
                    .queue
                    .remove(*batch)
                    .ok_or("drop of an unknown batch")?;
                self.totals.dropped += batch.len() as u64;
                self.forget_if_done(&batch.owner);
            }
            Change::Trimmed { batch, events } => self.trim(lsn, *batch, *events as usize)?,
            Change::Split { batch } => {
                let old = self.queue.get(*batch).ok_or("split of an unknown batch")?;
                if old.len() < 2 {
                    return Err("split of a one-event batch");
                }
                let mut halves = old.split(self.next_batch, self.next_batch + 1);
                for half in &mut halves {
                    half.content_lsn = lsn;
                }
                self.next_batch += 2;
                self.queue.replace(*batch, halves.into());
            }
            Change::Purged { identifier, keep } => {
                let owner = Owner::Identified(identifier.clone());
                self.totals.dropped += self.queue.remove_owner(&owner, *keep);
                self.forget_if_done(&owner);
            }
            Change::Identified { identifier } => {
                self.logged_out.remove(identifier);
                self.set_current(Owner::Identified(identifier.clone()));
            }
            Change::LoggedOut => {
                let Owner::Identified(identifier) = self.current.clone() else {
                    return Err("logout while anonymous");
                };
                self.anonymous_generation += 1;
                self.set_current(Owner::Anonymous(seeded::anonymous_id(
                    self.seed,
                    self.anonymous_generation,
                )));
                self.logged_out.insert(identifier.clone());
                self.forget_if_done(&Owner::Identified(identifier));
            }
            Change::TokenPassed { identifier, token } => {
                let state = TokenState::new(token.clone());
                match self.tokens.get_mut(identifier) {
                    Some(existing) => {
                        let rejected = existing.rejected.take();
                        *existing = TokenState { rejected, ..state };
                    }
                    None => {
                        self.tokens.insert(identifier.clone(), state);
                    }
                }
                self.noticed_no_token.remove(identifier);
            }
            Change::TokenRejected { identifier, token } => {
                let state = self
                    .tokens
                    .get_mut(identifier)
                    .ok_or("rejection of an unknown token")?;
                state.rejected = Some(token.clone());
            }
            Change::AuthFailureCounted => self.auth_failures = self.auth_failures.saturating_add(1),
            Change::WaitingForSession { owner } => {
                self.waiting_for_session.insert(owner.clone());
            }
            Change::SessionStarted => {
                self.auth_failures = 0;
                self.waiting_for_session.clear();
            }
            Change::BackoffSet {
                streak,
                until_unix_ms,
            } => {
                self.backoff = Backoff {
                    streak: *streak,
                    until_unix_ms: *until_unix_ms,
                    draws: self.backoff.draws + 1,
                };
            }
            Change::Noticed { identifier, mark } => match mark {
                NoticeMark::NoToken => {
                    self.noticed_no_token.insert(identifier.clone());
                }
                NoticeMark::Expiring => {
                    let state = self
                        .tokens
                        .get_mut(identifier)
                        .ok_or("notice for an unknown token")?;
                    state.expiry_noticed = true;
                }
            },
        }
        Ok(())
    }

    fn trim(&mut self, lsn: u64, batch: Option<u64>, events: usize) -> Result<(), ApplyError> {
        let owner = match batch {
            None => {
                let open = self.open.as_mut().ok_or("trim of a missing open batch")?;
                if events == 0 || events > open.run.len() {
                    return Err("trim beyond the open batch");
                }
                open.run.drop_front(events);
                let owner = open.owner.clone();
                if open.run.len() == 0 {
                    self.open = None;
                }
                owner
            }
            Some(number) => {
                let old = self.queue.get(number).ok_or("trim of an unknown batch")?;
                if events == 0 || events > old.len() || old.attempted {
                    return Err("trim of an attempted batch or beyond its size");
                }
                let owner = old.owner.clone();
                if events == old.len() {
                    self.queue.remove(number);
                } else {
                    let mut trimmed = old.without_front(events);
                    trimmed.content_lsn = lsn;
                    self.queue.replace(number, vec![trimmed]);
                }
                owner
            }
        };
        self.totals.dropped += events as u64;
        self.forget_if_done(&owner);
        Ok(())
    }

    /// A logged-out user's token is kept only to send their remaining data (L1); once
    /// it is gone, so are the token and the marks.
    fn forget_if_done(&mut self, owner: &Owner) {
        let Owner::Identified(identifier) = owner else {
            return;
        };
        if self.logged_out.contains(identifier) && !self.has_pending(owner) {
            self.logged_out.remove(identifier);
            self.tokens.remove(identifier);
            self.noticed_no_token.remove(identifier);
            self.waiting_for_session.remove(owner);
        }
    }

    /// The state encoded as a snapshot whose journal goes on in `first_segment`.
    pub(crate) fn snapshot(&self, first_segment: u64) -> Snapshot {
        Snapshot::encode(self.lsn, first_segment, &PersistedState::from_state(self))
    }

    pub(crate) fn from_snapshot(snapshot: &Snapshot) -> Result<Self, crate::RestoreError> {
        let persisted: PersistedState<'_> = snapshot.decode()?;
        let state = persisted.into_state(snapshot.shared_bytes())?;
        if state.lsn != snapshot.lsn() {
            return Err(crate::RestoreError::Snapshot(
                "sequence number mismatch".into(),
            ));
        }
        let highest = state.queue.iter().map(|batch| batch.number).fold(
            state.lsn.max(state.next_seq).max(state.next_batch),
            u64::max,
        );
        if highest >= crate::record::ID_CEILING {
            return Err(crate::RestoreError::Snapshot(
                "an id past any this store can have issued".into(),
            ));
        }
        Ok(state)
    }
}

/// The snapshot's shape: the durable state with batches as their events.
#[derive(Serialize, Deserialize)]
struct PersistedState<'a> {
    lsn: u64,
    seed: u64,
    app_id: String,
    next_seq: u64,
    next_batch: u64,
    anonymous_generation: u64,
    current: Owner,
    tokens: Vec<(String, TokenState)>,
    logged_out: Vec<String>,
    waiting_for_session: Vec<Owner>,
    noticed_no_token: Vec<String>,
    auth_failures: u32,
    backoff: Backoff,
    totals: Totals,
    #[serde(borrow)]
    batches: Vec<PersistedBatch<'a>>,
    #[serde(borrow)]
    open: Option<PersistedOpenBatch<'a>>,
}

impl<'a> PersistedState<'a> {
    fn from_state(state: &'a DurableState) -> Self {
        Self {
            lsn: state.lsn,
            seed: state.seed,
            app_id: state.envelope.app_id.clone(),
            next_seq: state.next_seq,
            next_batch: state.next_batch,
            anonymous_generation: state.anonymous_generation,
            current: state.current.clone(),
            tokens: state
                .tokens
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            logged_out: state.logged_out.iter().cloned().collect(),
            waiting_for_session: state.waiting_for_session.iter().cloned().collect(),
            noticed_no_token: state.noticed_no_token.iter().cloned().collect(),
            auth_failures: state.auth_failures,
            backoff: state.backoff,
            totals: state.totals,
            batches: state.queue.iter().map(PersistedBatch::from_batch).collect(),
            open: state.open.as_ref().map(PersistedOpenBatch::from_open),
        }
    }

    /// The state; sealed batches slice their events out of `source`, the buffer the
    /// persisted state borrows from.
    fn into_state(self, source: &bytes::Bytes) -> Result<DurableState, crate::RestoreError> {
        let bad = |why: &str| crate::RestoreError::Snapshot(why.to_owned());
        let mut state = DurableState::genesis(self.app_id, self.seed);
        state.lsn = self.lsn;
        state.next_seq = self.next_seq;
        state.next_batch = self.next_batch;
        state.anonymous_generation = self.anonymous_generation;
        state.set_current(self.current);
        state.tokens = self
            .tokens
            .into_iter()
            .map(|(identifier, mut token)| {
                token.expiry = token.current.unverified_expiry();
                (identifier, token)
            })
            .collect();
        state.logged_out = self.logged_out.into_iter().collect();
        state.waiting_for_session = self.waiting_for_session.into_iter().collect();
        state.noticed_no_token = self.noticed_no_token.into_iter().collect();
        state.auth_failures = self.auth_failures;
        state.backoff = self.backoff;
        state.totals = self.totals;
        for batch in self.batches {
            let batch = batch
                .into_batch(source)
                .ok_or_else(|| bad("damaged batch"))?;
            state.queue.push(batch);
        }
        state.open = match self.open {
            Some(open) => Some(open.into_open().ok_or_else(|| bad("damaged open batch"))?),
            None => None,
        };
        let counted = state.totals.acked + state.totals.dropped + state.pending_events();
        if counted != state.totals.tracked {
            return Err(bad("totals do not add up"));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn state_with(changes: Vec<Change>) -> DurableState {
        let mut state = DurableState::genesis("app".into(), 1);
        for change in changes {
            let record = Record::new(state.lsn + 1, change);
            state.apply(&record).unwrap();
        }
        state
    }

    fn event() -> Change {
        Change::EventAdded {
            unix_ms: 0,
            event: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn a_new_open_batch_starts_with_the_size_of_the_batch_sealed_before_it() {
        let long_event = || Change::EventAdded {
            unix_ms: 0,
            event: Bytes::from_static(br#"{"twenty":"bytes.."}"#),
        };
        let mut changes: Vec<Change> = std::iter::repeat_with(long_event).take(5).collect();
        changes.extend([Change::SealedAs { batch: 1 }, long_event()]);
        let mut state = state_with(changes);
        let open = state.open.take().unwrap();
        // Grown from empty, one event would have room for 4 ends and 20 bytes.
        assert_eq!(open.run.capacity(), (5, 5 * 20 + 4));
    }

    fn applies(state: &DurableState, change: Change) -> bool {
        let mut state = state.clone();
        let record = Record::new(state.lsn + 1, change);
        state.apply(&record).is_ok()
    }

    #[test]
    fn d3_trims_that_cannot_have_been_made_live_are_refused_on_restore() {
        let open = state_with(vec![event(), event()]);
        let trim_open = |events| Change::Trimmed {
            batch: None,
            events,
        };
        assert!(!applies(&open, trim_open(0)));
        assert!(!applies(&open, trim_open(3)));
        let mut emptied = open.clone();
        emptied
            .apply(&Record::new(open.lsn + 1, trim_open(2)))
            .unwrap();
        assert!(emptied.open.is_none(), "the whole open batch may go");
        let mut trimmed = open.clone();
        trimmed
            .apply(&Record::new(open.lsn + 1, trim_open(1)))
            .unwrap();
        assert_eq!(trimmed.pending_events(), 1, "one event left open");
        assert!(trimmed.open.is_some());
        assert_eq!(trimmed.totals.dropped, 1);

        let sealed = state_with(vec![event(), event(), Change::SealedAs { batch: 1 }]);
        let trim_sealed = |events| Change::Trimmed {
            batch: Some(1),
            events,
        };
        assert!(!applies(&sealed, trim_sealed(0)));
        assert!(!applies(&sealed, trim_sealed(3)));
        assert!(applies(&sealed, trim_sealed(2)));
        let attempted = state_with(vec![
            event(),
            event(),
            Change::SealedAs { batch: 1 },
            Change::Attempted { batch: 1 },
        ]);
        assert!(!applies(&attempted, trim_sealed(1)), "its id may be known");
    }

    #[test]
    fn d5_a_seal_under_another_number_than_the_next_does_not_apply() {
        let open = state_with(vec![event()]);
        assert!(applies(&open, Change::SealedAs { batch: 1 }));
        assert!(!applies(&open, Change::SealedAs { batch: 2 }));
        assert!(!applies(&open, Change::SealedAs { batch: 0 }));
    }

    #[test]
    fn d5_ids_advanced_skips_ahead_and_never_moves_ids_back() {
        let mut state = state_with(vec![event(), event()]);
        let lsn = state.lsn;
        let far = Record::new(
            lsn + 10,
            Change::IdsAdvanced {
                next_seq: 1 << 32,
                next_batch: 1 << 32,
            },
        );
        state.apply(&far).unwrap();
        assert_eq!(
            (state.lsn, state.next_seq, state.next_batch),
            (lsn + 10, 1 << 32, 1 << 32)
        );
        let back = Record::new(
            state.lsn + 1,
            Change::IdsAdvanced {
                next_seq: 5,
                next_batch: 5,
            },
        );
        state.apply(&back).unwrap();
        assert_eq!((state.next_seq, state.next_batch), (1 << 32, 1 << 32));
        let behind = Record::new(state.lsn, Change::SessionStarted);
        assert!(
            state.apply(&behind).is_err(),
            "only the recovery record skips"
        );
    }
}
