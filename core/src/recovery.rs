//! Recovery (D2, D5): the state back from what a host read of its store, and an
//! account of anything that could not be read.
//!
//! The snapshot is the base; the journal segments after it are read frame by frame,
//! skipping damaged bytes to the next whole frame (LevelDB's way). Records apply in
//! sequence. After a hole (a damaged frame, a missing record) a record still applies
//! only while it proves it belongs: its frame's owner tag names the user the state
//! says is current, and it applies cleanly (a seal must take the next batch number).
//! Past the first record that does not, the rest is lost: counted, never applied.
//! Keeping less would lose more; keeping more could give one user's events to another
//! or send new events under an id the server already saw.
//!
//! Whenever anything was lost, event seqs and batch numbers jump to the next multiple
//! of 2^32 above everything seen, so that no id handed out before the damage is handed
//! out again for other content (the server's deduplication would swallow it).

use std::fmt;
use std::ops::RangeInclusive;

use bytes::Bytes;

use crate::config::ValidConfig;
use crate::error::RestoreError;
use crate::event::tracked_seq;
use crate::record::{Change, Damage, Frame, Scan, Scanned, Snapshot};
use crate::state::DurableState;
use crate::storage::FsyncPolicy;

/// What a host read from its store, for [`crate::Client::recover`].
///
/// The host hands over what it read as it read it, damaged or not; after a run that
/// did not close cleanly it syncs the files first, so that what it read is on the
/// disk.
#[derive(Clone, Debug, Default)]
pub struct StoredState {
    /// The snapshot file: `None` when there is none, `Err` with what is wrong when it
    /// cannot be read or does not check out.
    pub snapshot: Option<Result<Snapshot, String>>,
    /// The journal segments, in increasing order of their numbers.
    pub segments: Vec<StoredSegment>,
    /// How the run before this one ended.
    pub previous_run: PreviousRun,
    /// A seed from the operating system for a new install, used when nothing of the
    /// old one can be restored (its ids must not be handed out again).
    pub fresh_seed: u64,
}

/// One journal segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSegment {
    /// Its number, from its file name.
    pub number: u64,
    /// Its bytes.
    pub bytes: Bytes,
}

/// How the run before this one ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PreviousRun {
    /// No run is known: a new store, or one written by an older version.
    #[default]
    Unknown,
    /// The run closed its store after syncing everything.
    Clean,
    /// The run ended without closing (killed, crashed, or the machine stopped),
    /// with this fsync policy.
    Unclean(FsyncPolicy),
}

/// What opening a store found, given to the app as
/// [`crate::StorageNotice::Recovered`] when there is anything to tell (D5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Damaged stretches, by file name.
    pub damage: Vec<(String, Damage)>,
    /// Records known to be lost: holes in the sequence, and records that could not
    /// be proven to belong after one.
    pub lost_records: u64,
    /// Tracked events among them whose frames could still be read.
    pub lost_events: u64,
    /// The seqs of those events, first to last.
    pub lost_seqs: Option<RangeInclusive<u64>>,
    /// Whether more may be lost than can be counted (a damaged snapshot, a frame whose
    /// content is unknown).
    pub loss_unknown: bool,
    /// Nothing of the old install could be restored: this is a new one, with a new
    /// seed (new anonymous and install ids).
    pub started_over: bool,
    /// Where event seqs and batch numbers go on from, when they jumped.
    pub ids_advanced_to: Option<u64>,
    /// The run before ended without closing, syncing at most every this many
    /// milliseconds: what it tracked in its last period may be lost if the machine
    /// stopped (not if only the process was killed).
    pub unsynced_window_ms: Option<u64>,
}

impl RecoveryReport {
    /// Whether there is nothing to tell.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }

    /// Whether something is known or suspected lost.
    #[must_use]
    pub fn lost_anything(&self) -> bool {
        self.lost_records > 0 || self.loss_unknown || self.started_over
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .damage
            .iter()
            .map(|(file, damage)| format!("{file}: {damage}"))
            .collect();
        if self.started_over {
            parts.push("nothing of the old state could be restored: a new install began".into());
        }
        if self.lost_records > 0 {
            let events = match (&self.lost_seqs, self.lost_events) {
                (Some(seqs), n) => format!(
                    ", {n} of them tracked events (seqs {}..={})",
                    seqs.start(),
                    seqs.end()
                ),
                (None, 0) => String::new(),
                (None, n) => format!(", {n} of them tracked events"),
            };
            parts.push(format!(
                "{} record(s) lost or not proven to belong{events}",
                self.lost_records
            ));
        }
        if self.loss_unknown {
            parts.push("more may be lost than can be counted".into());
        }
        if let Some(to) = self.ids_advanced_to {
            parts.push(format!("ids go on from {to}, so none is used twice"));
        }
        if let Some(ms) = self.unsynced_window_ms {
            parts.push(format!(
                "the last run did not close: if the machine stopped, events tracked in its last {ms} ms may be lost"
            ));
        }
        if parts.is_empty() {
            f.write_str("the store opened cleanly")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// The outcome of a recovery, for the client to take over.
pub(crate) struct Recovered {
    pub(crate) state: DurableState,
    pub(crate) report: RecoveryReport,
    /// The lsn at which the ids jump, when they do.
    pub(crate) advance: Option<(u64, u64)>,
    /// The segment new appends go to.
    pub(crate) next_segment: u64,
    /// Journal bytes and segments since the snapshot, and the snapshot's size.
    pub(crate) journal_bytes: u64,
    pub(crate) segments: u64,
    pub(crate) snapshot_bytes: u64,
    /// Whether the store must be rewritten whole (damage to remove).
    pub(crate) rewrite: bool,
    /// Whether the store held nothing: a first start.
    pub(crate) empty: bool,
}

/// How reading goes on after a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No hole so far: records apply in sequence.
    InSequence,
    /// After a hole: each record must prove it belongs.
    AfterHole,
    /// A record did not: the rest is lost.
    Stopped,
}

/// Everything seen in intact frames, so that ids jump above all of it.
#[derive(Default)]
struct Seen {
    max_lsn: u64,
    max_seq: u64,
    max_batch: u64,
}

impl Seen {
    fn note(&mut self, frame: &Frame) {
        let ids = frame.ids;
        self.max_lsn = self.max_lsn.max(frame.record.lsn());
        self.max_seq = self.max_seq.max(ids.seq).max(ids.next_seq);
        // A batch number in use: the next two may have been handed out by a split.
        let used = ids.batch.map_or(0, |batch| batch.saturating_add(2));
        self.max_batch = self.max_batch.max(used).max(ids.next_batch);
    }
}

pub(crate) fn recover(
    config: &ValidConfig,
    stored: StoredState,
) -> Result<Recovered, RestoreError> {
    let mut report = RecoveryReport::default();
    if let PreviousRun::Unclean(FsyncPolicy::Every(period)) = stored.previous_run {
        report.unsynced_window_ms = Some(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
    }
    let (mut base, first_segment, snapshot_bytes) = match stored.snapshot {
        None => (None, 0, 0),
        Some(Ok(snapshot)) => {
            let bytes = snapshot.as_bytes().len() as u64;
            match DurableState::from_snapshot(&snapshot) {
                Ok(state) => (Some(state), snapshot.first_segment(), bytes),
                Err(_) => {
                    report
                        .damage
                        .push(("snapshot".into(), whole_file_damage(bytes)));
                    report.loss_unknown = true;
                    (None, 0, 0)
                }
            }
        }
        Some(Err(_)) => {
            report
                .damage
                .push(("snapshot".into(), whole_file_damage(0)));
            report.loss_unknown = true;
            (None, 0, 0)
        }
    };
    if let Some(state) = &base
        && state.envelope.app_id != config.config.app_id
    {
        return Err(RestoreError::AppIdMismatch {
            persisted: state.envelope.app_id.clone(),
            configured: config.config.app_id.clone(),
        });
    }
    // New appends go to a segment of their own, after every segment the store holds
    // and never below the first one the snapshot leaves to the journal (the
    // compaction that wrote it may have removed every segment).
    let next_segment = stored
        .segments
        .iter()
        .map(|s| s.number + 1)
        .chain([first_segment, 1])
        .max()
        .unwrap_or(1);
    let live: Vec<&StoredSegment> = stored
        .segments
        .iter()
        .filter(|s| s.number >= first_segment)
        .collect();
    let journal_bytes = live.iter().map(|s| s.bytes.len() as u64).sum();
    let empty = base.is_none() && report.damage.is_empty() && journal_bytes == 0;
    let mut items = live
        .iter()
        .flat_map(|segment| Scan::new(&segment.bytes).map(|item| (segment.number, item)))
        .peekable();
    if base.is_none() {
        match items.peek() {
            Some((_, Scanned::Frame(Frame { record, .. }))) if record.lsn() == 1 => {
                if let Change::Genesis { app_id, seed } = record.change() {
                    if *app_id != config.config.app_id {
                        return Err(RestoreError::AppIdMismatch {
                            persisted: app_id.clone(),
                            configured: config.config.app_id.clone(),
                        });
                    }
                    base = Some(DurableState::genesis(app_id.clone(), *seed));
                    items.next();
                }
            }
            _ => {}
        }
    }
    let started_over = base.is_none() && !empty;
    let mut state = base.unwrap_or_else(|| {
        let seed = if started_over {
            stored.fresh_seed
        } else {
            config.config.seed
        };
        DurableState::genesis(config.config.app_id.clone(), seed)
    });
    report.started_over = started_over;
    let mut seen = Seen::default();
    let mut mode = if started_over {
        Mode::Stopped
    } else {
        Mode::InSequence
    };
    for (segment, item) in items {
        let frame = match item {
            Scanned::Damage(damage) => {
                report.damage.push((format!("journal.{segment}"), damage));
                // A damaged stretch at the end of the last segment is most often a
                // write cut short; its content is unknown either way.
                report.loss_unknown = true;
                if mode == Mode::InSequence {
                    mode = Mode::AfterHole;
                }
                continue;
            }
            Scanned::Frame(frame) => frame,
        };
        seen.note(&frame);
        let lsn = frame.record.lsn();
        if lsn <= state.lsn {
            continue;
        }
        if mode != Mode::Stopped && lsn > state.lsn + 1 {
            report.lost_records += lsn - state.lsn - 1;
            mode = Mode::AfterHole;
        }
        let applied = match mode {
            Mode::InSequence => state.apply(&frame.record).is_ok(),
            Mode::AfterHole => apply_proven(&mut state, &frame),
            Mode::Stopped => false,
        };
        if !applied {
            mode = Mode::Stopped;
            report.lost_records += 1;
            if let Change::EventAdded { event, .. } = frame.record.change() {
                report.lost_events += 1;
                if let Some(seq) = tracked_seq(event) {
                    report.lost_seqs = Some(match report.lost_seqs.take() {
                        Some(range) => (*range.start()).min(seq)..=(*range.end()).max(seq),
                        None => seq..=seq,
                    });
                }
            }
        }
    }
    let lost = report.lost_anything() || !report.damage.is_empty();
    let advance = lost.then(|| {
        let highest = seen
            .max_seq
            .max(seen.max_batch)
            .max(state.next_seq)
            .max(state.next_batch);
        let to = ((highest >> 32) + 1) << 32;
        report.ids_advanced_to = Some(to);
        (seen.max_lsn.max(state.lsn) + 1, to)
    });
    Ok(Recovered {
        state,
        report,
        advance,
        next_segment,
        journal_bytes,
        segments: live.len() as u64,
        snapshot_bytes,
        rewrite: lost,
        empty,
    })
}

/// Applies a record found after a hole if it proves it belongs: it was made while the
/// state's current user was current, and it applies cleanly.
fn apply_proven(state: &mut DurableState, frame: &Frame) -> bool {
    if frame.owner_tag != Some(state.current_tag) {
        return false;
    }
    let (lsn, next_seq) = (state.lsn, state.next_seq);
    // The records of the hole are gone: go on from just before this one. A record
    // that does not apply changes nothing but these two, which are put back.
    state.lsn = frame.record.lsn() - 1;
    if let Change::EventAdded { event, .. } = frame.record.change() {
        match tracked_seq(event) {
            Some(seq) if seq >= state.next_seq => state.next_seq = seq,
            _ => {
                state.lsn = lsn;
                return false;
            }
        }
    }
    if state.apply(&frame.record).is_err() {
        state.lsn = lsn;
        state.next_seq = next_seq;
        return false;
    }
    true
}

fn whole_file_damage(bytes: u64) -> Damage {
    Damage {
        offset: 0,
        bytes,
        kind: crate::record::DamageKind::Checksum,
        at_end: true,
    }
}
