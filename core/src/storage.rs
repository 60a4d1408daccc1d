//! Persistence as a confirmed step (D2, D4): the journal's records on their way to the
//! disk, and the decisions about them.
//!
//! The client encodes every record into frames here. The host asks for them as
//! [`WriteJob`]s, appends them, and confirms; it syncs and compacts when handed a
//! [`SyncJob`] or a [`CompactJob`]. This module decides when each is due, what is
//! stored (written, and synced), and what a failure means: no more appends (nothing is
//! ever appended after a torn frame), everything since kept in memory, and a rewrite of
//! the whole state tried again with a backoff that never spins. It owns no rule about
//! events, tokens or requests; the client asks it whether a record is stored.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::record::{Record, Snapshot};
use crate::state::DurableState;

/// Where a client's state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    /// In memory only: no journal, every change counts as stored at once. A restart
    /// starts a new install.
    #[default]
    Memory,
    /// In a journal and snapshots that the host writes (D2).
    Durable(StoragePolicy),
}

/// How a durable store is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoragePolicy {
    /// When appended records are forced to the disk.
    pub fsync: FsyncPolicy,
    /// Journal bytes past which a compaction is due, and then only once the journal
    /// is also a quarter of the last snapshot's size: each compaction rewrites the
    /// whole state, so a fixed threshold alone would make a large queue's compactions
    /// quadratic, while the quarter keeps their cost at most four bytes written per
    /// journal byte and a restart's replay to a fifth of the state.
    pub compact_after_bytes: u64,
}

impl Default for StoragePolicy {
    /// Sync at most every 100 ms; compact past 1 MiB of journal.
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Every(Duration::from_millis(100)),
            compact_after_bytes: 1024 * 1024,
        }
    }
}

/// When appended records are forced to the disk.
///
/// Whatever the policy, a request leaves only once the records that gave its batch
/// its number and events are synced, so a batch id that reached a server survives a
/// power loss and is never handed out again (D2, D5): a waiting request asks for a
/// sync at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// With every append: nothing whose call returned is lost, even on power loss.
    Always,
    /// At most this long after the first unsynced append: a power loss loses at most
    /// the events tracked within the last period, far fewer syncs.
    Every(Duration),
    /// Never explicitly: the operating system writes back when it likes; a write
    /// counts as synced.
    Never,
}

/// Why a storage operation failed, as the host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageFailure {
    /// What kind of failure.
    pub kind: StorageFailureKind,
    /// The operating system's words, for a human.
    pub message: String,
}

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The kinds of storage failure D4 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFailureKind {
    /// The disk is full (`ENOSPC`, a quota).
    NoSpace,
    /// The file system is read-only (`EROFS`).
    ReadOnly,
    /// Any other I/O error (`EIO`, a lost device).
    Io,
}

impl fmt::Display for StorageFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSpace => "no space left",
            Self::ReadOnly => "read-only file system",
            Self::Io => "I/O error",
        })
    }
}

/// Identifies a [`WriteJob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// Identifies a [`SyncJob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncId(pub u64);

/// Identifies a [`CompactJob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompactId(pub u64);

/// Frames to append to the journal, from [`crate::Client::poll_write`]: written in
/// the order handed out, then confirmed with [`crate::Client::handle_written`].
///
/// `Debug` shows the frames' length, not their bytes, which hold tokens (T3).
#[derive(Clone, PartialEq, Eq)]
pub struct WriteJob {
    /// Matches the confirmation to the job.
    pub id: WriteId,
    /// The journal segment to append to; a number not seen before means a new
    /// segment file, created empty.
    pub segment: u64,
    /// The encoded frames, appended as they are.
    pub frames: Bytes,
    /// Whether to force them to the disk before confirming (fsync `always`).
    pub sync: bool,
}

impl fmt::Debug for WriteJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteJob")
            .field("id", &self.id)
            .field("segment", &self.segment)
            .field("bytes", &self.frames.len())
            .field("sync", &self.sync)
            .finish()
    }
}

/// Frames to append in place, lent by [`crate::Client::write_pending`] to a host that
/// appends on the thread of the input: a [`WriteJob`] without an id, its frames
/// borrowed rather than handed out.
///
/// `Debug` shows the frames' length, not their bytes, which hold tokens (T3).
pub struct PendingWrite<'a> {
    /// The journal segment to append to; a number not seen before means a new
    /// segment file, created empty.
    pub segment: u64,
    /// The encoded frames, appended as they are.
    pub frames: &'a [u8],
    /// Whether to force them to the disk before returning (fsync `always`).
    pub sync: bool,
}

impl fmt::Debug for PendingWrite<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingWrite")
            .field("segment", &self.segment)
            .field("bytes", &self.frames.len())
            .field("sync", &self.sync)
            .finish()
    }
}

/// A sync of every journal segment written and not yet synced, from
/// [`crate::Step::Sync`]; confirmed with [`crate::Client::handle_synced`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncJob {
    /// Matches the confirmation to the job.
    pub id: SyncId,
}

/// A compaction, from [`crate::Step::Compact`]: write the snapshot (atomically, then
/// synced), then remove every journal segment numbered below `first_segment`, and
/// confirm with [`crate::Client::handle_compacted`]. A failed attempt must leave no
/// temporary file behind.
#[derive(Clone)]
pub struct CompactJob {
    /// Matches the confirmation to the job.
    pub id: CompactId,
    /// The first journal segment the snapshot does not cover.
    pub first_segment: u64,
    state: Box<DurableState>,
}

impl fmt::Debug for CompactJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJob")
            .field("id", &self.id)
            .field("first_segment", &self.first_segment)
            .field("lsn", &self.state.lsn)
            .finish_non_exhaustive()
    }
}

impl CompactJob {
    /// Encodes the snapshot to write: the expensive part, meant for the host's
    /// background thread, not the app's.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.state.snapshot(self.first_segment)
    }

    /// The sequence number of the last record the snapshot holds.
    #[must_use]
    pub fn lsn(&self) -> u64 {
        self.state.lsn
    }
}

/// First wait before storage is tried again after a failure (D4).
const RETRY_BASE_MS: u64 = 200;
/// Longest wait between tries: a disk that comes back is in use again within it.
const RETRY_CAP_MS: u64 = 10_000;
/// Journal segments past which a compaction is due even for a small journal: every
/// start begins a new segment.
const MAX_SEGMENTS: u64 = 4;

/// Waiting for storage that failed.
#[derive(Clone, Debug)]
struct Broken {
    /// Failed tries so far.
    attempts: u32,
    /// When the next rewrite is due, monotonic; `None` while one runs.
    retry_at_mono_ms: Option<u64>,
    /// A rewrite after damage found at open, not a failure: its success is nothing
    /// to tell.
    after_damage: bool,
}

/// The journal's pipeline: records encoded and not yet written, jobs out, what is
/// stored, and the health of the store.
#[derive(Clone, Debug)]
pub(crate) struct Journal {
    /// `None`: memory only.
    policy: Option<StoragePolicy>,
    pending: BytesMut,
    /// The lsn of the last record in `pending`.
    pending_lsn: u64,
    /// The write job out: its id, last lsn, length and segment.
    writing: Option<(WriteId, u64, u64, u64)>,
    /// The segment last written to, to count segments.
    last_segment_written: Option<u64>,
    written_lsn: u64,
    synced_lsn: u64,
    syncing: Option<(SyncId, u64)>,
    /// Since when written records wait to be synced, monotonic.
    unsynced_since_mono_ms: Option<u64>,
    /// A sync was asked for at once (a request waits for it).
    sync_wanted: bool,
    /// The compaction out: its id, the snapshot's lsn and whether it heals a failure.
    compacting: Option<(CompactId, u64, bool)>,
    /// After a failed compaction, when it may be tried again.
    compact_retry_at_mono_ms: Option<u64>,
    compact_failures: u32,
    /// The segment the next write goes to.
    segment: u64,
    /// Journal bytes and segments since the last snapshot.
    journal_bytes: u64,
    segments: u64,
    /// Bytes and segments the compaction out covers, dropped when it succeeds.
    compacting_covers: (u64, u64),
    snapshot_bytes: u64,
    broken: Option<Broken>,
    next_job: u64,
}

/// What a confirmation changed, for the client to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// Nothing to tell.
    Quietly,
    /// Storage failed: changes from this lsn on are in memory only.
    Failed {
        failure: StorageFailure,
        from_lsn: u64,
    },
    /// A rewrite succeeded after a failure.
    Resumed,
    /// A compaction failed without harm.
    CompactionFailed(StorageFailure),
}

impl Journal {
    /// A journal for `storage`, whose state is stored up to `stored_lsn` (a new
    /// install: nothing; a recovered one: everything read back), whose next appends
    /// go to `segment`.
    pub(crate) fn new(storage: Storage, stored_lsn: u64, segment: u64) -> Self {
        let policy = match storage {
            Storage::Memory => None,
            Storage::Durable(policy) => Some(policy),
        };
        Self {
            policy,
            pending: BytesMut::new(),
            pending_lsn: 0,
            writing: None,
            last_segment_written: None,
            written_lsn: stored_lsn,
            synced_lsn: stored_lsn,
            syncing: None,
            unsynced_since_mono_ms: None,
            sync_wanted: false,
            compacting: None,
            compact_retry_at_mono_ms: None,
            compact_failures: 0,
            segment,
            journal_bytes: 0,
            segments: 0,
            compacting_covers: (0, 0),
            snapshot_bytes: 0,
            broken: None,
            next_job: 1,
        }
    }

    /// What a recovered store holds: journal bytes and segments since its snapshot,
    /// and the snapshot's size, which set when the next compaction is due.
    pub(crate) fn set_sizes(&mut self, journal_bytes: u64, segments: u64, snapshot_bytes: u64) {
        self.journal_bytes = journal_bytes;
        self.segments = segments;
        self.snapshot_bytes = snapshot_bytes;
    }

    /// The segment the next write goes to.
    pub(crate) const fn segment(&self) -> u64 {
        self.segment
    }

    /// Whether the whole state must be rewritten at once (after damage was found).
    pub(crate) fn rewrite_now(&mut self) {
        if self.policy.is_some() {
            self.broken = Some(Broken {
                attempts: 0,
                retry_at_mono_ms: Some(0),
                after_damage: true,
            });
        }
    }

    /// Takes a record the client just committed, tagged with the owner current when
    /// it was made.
    pub(crate) fn record(&mut self, record: &Record, owner_tag: u32) {
        let lsn = record.lsn();
        if self.policy.is_none() {
            self.written_lsn = lsn;
            self.synced_lsn = lsn;
            return;
        }
        // While storage is broken and no rewrite runs, the next rewrite takes the whole
        // state; while one runs, what comes after its snapshot is appended after it.
        let dropped = self
            .broken
            .as_ref()
            .is_some_and(|b| b.retry_at_mono_ms.is_some());
        if !dropped {
            record.encode(owner_tag, &mut self.pending);
            self.pending_lsn = lsn;
        }
    }

    /// The next frames to append, if the store may take them.
    pub(crate) fn poll_write(&mut self) -> Option<WriteJob> {
        let policy = self.policy?;
        if self.writing.is_some() || self.pending.is_empty() || self.broken.is_some() {
            return None;
        }
        let id = WriteId(self.take_job_number());
        let frames = self.pending.split().freeze();
        self.writing = Some((id, self.pending_lsn, frames.len() as u64, self.segment));
        Some(WriteJob {
            id,
            segment: self.segment,
            frames,
            sync: policy.fsync == FsyncPolicy::Always,
        })
    }

    fn take_job_number(&mut self) -> u64 {
        let number = self.next_job;
        self.next_job += 1;
        number
    }

    /// A write job's result; `None` when `id` is not the job out.
    pub(crate) fn written(
        &mut self,
        id: WriteId,
        result: Result<(), StorageFailure>,
        now_mono_ms: u64,
    ) -> Option<Confirmed> {
        let (out, last_lsn, bytes, segment) = self.writing?;
        if out != id {
            return None;
        }
        self.writing = None;
        let policy = self.policy?;
        Some(self.confirm(policy, last_lsn, bytes, segment, result, now_mono_ms))
    }

    /// Appends what is pending with `append` and confirms it, the frames lent in place
    /// (the buffer is kept for the next records); `None` when nothing may be written.
    pub(crate) fn write_in_place(
        &mut self,
        append: impl FnOnce(&PendingWrite<'_>) -> Result<(), StorageFailure>,
        now_mono_ms: u64,
    ) -> Option<Confirmed> {
        let policy = self.policy?;
        if self.writing.is_some() || self.pending.is_empty() || self.broken.is_some() {
            return None;
        }
        let result = append(&PendingWrite {
            segment: self.segment,
            frames: &self.pending,
            sync: policy.fsync == FsyncPolicy::Always,
        });
        let bytes = self.pending.len() as u64;
        self.pending.clear();
        let (last_lsn, segment) = (self.pending_lsn, self.segment);
        Some(self.confirm(policy, last_lsn, bytes, segment, result, now_mono_ms))
    }

    fn confirm(
        &mut self,
        policy: StoragePolicy,
        last_lsn: u64,
        bytes: u64,
        segment: u64,
        result: Result<(), StorageFailure>,
        now_mono_ms: u64,
    ) -> Confirmed {
        match result {
            Ok(()) => {
                self.written_lsn = self.written_lsn.max(last_lsn);
                if self.last_segment_written != Some(segment) {
                    self.last_segment_written = Some(segment);
                    self.segments += 1;
                }
                self.journal_bytes += bytes;
                match policy.fsync {
                    FsyncPolicy::Always | FsyncPolicy::Never => {
                        self.synced_lsn = self.written_lsn;
                    }
                    FsyncPolicy::Every(_) => {
                        self.unsynced_since_mono_ms.get_or_insert(now_mono_ms);
                    }
                }
                Confirmed::Quietly
            }
            Err(failure) => self.fail(failure, now_mono_ms),
        }
    }

    /// Storage failed: no more appends, everything not yet stored kept in memory, a
    /// rewrite of the whole state after the backoff (D4).
    fn fail(&mut self, failure: StorageFailure, now_mono_ms: u64) -> Confirmed {
        let attempts = self.broken.as_ref().map_or(0, |b| b.attempts) + 1;
        self.pending.clear();
        self.broken = Some(Broken {
            attempts,
            retry_at_mono_ms: Some(now_mono_ms.saturating_add(retry_delay_ms(attempts))),
            after_damage: false,
        });
        Confirmed::Failed {
            failure,
            from_lsn: self.written_lsn.min(self.synced_lsn) + 1,
        }
    }

    /// A sync job's result.
    pub(crate) fn synced(
        &mut self,
        id: SyncId,
        result: Result<(), StorageFailure>,
        now_mono_ms: u64,
    ) -> Option<Confirmed> {
        let (out, through) = self.syncing?;
        if out != id {
            return None;
        }
        self.syncing = None;
        Some(match result {
            Ok(()) => {
                self.synced_lsn = self.synced_lsn.max(through);
                self.unsynced_since_mono_ms =
                    (self.written_lsn > self.synced_lsn).then_some(now_mono_ms);
                Confirmed::Quietly
            }
            // The page cache may have dropped what it failed to write: nothing written
            // since the last good sync is trusted, the state is rewritten whole.
            Err(failure) => {
                self.written_lsn = self.synced_lsn;
                self.fail(failure, now_mono_ms)
            }
        })
    }

    /// A compaction's result: `Ok` with the snapshot's size.
    pub(crate) fn compacted(
        &mut self,
        id: CompactId,
        result: Result<u64, StorageFailure>,
        now_mono_ms: u64,
    ) -> Option<Confirmed> {
        let (out, lsn, heal) = self.compacting?;
        if out != id {
            return None;
        }
        self.compacting = None;
        Some(match result {
            Ok(snapshot_bytes) => {
                self.snapshot_bytes = snapshot_bytes;
                let (bytes, segments) = self.compacting_covers;
                self.journal_bytes = self.journal_bytes.saturating_sub(bytes);
                self.segments = self.segments.saturating_sub(segments);
                self.written_lsn = self.written_lsn.max(lsn);
                self.synced_lsn = self.synced_lsn.max(lsn);
                self.compact_failures = 0;
                self.compact_retry_at_mono_ms = None;
                if self.written_lsn > self.synced_lsn {
                    self.unsynced_since_mono_ms.get_or_insert(now_mono_ms);
                }
                match self.broken.take() {
                    Some(broken) if heal && !broken.after_damage => Confirmed::Resumed,
                    broken if !heal => {
                        self.broken = broken;
                        Confirmed::Quietly
                    }
                    _ => Confirmed::Quietly,
                }
            }
            Err(failure) if heal => self.fail(failure, now_mono_ms),
            Err(failure) => {
                self.compact_failures = self.compact_failures.saturating_add(1);
                self.compact_retry_at_mono_ms =
                    Some(now_mono_ms.saturating_add(retry_delay_ms(self.compact_failures)));
                Confirmed::CompactionFailed(failure)
            }
        })
    }

    /// Asks for a sync at once: a request waits for records written but not synced.
    pub(crate) fn want_sync(&mut self) {
        self.sync_wanted = true;
    }

    /// The sync or compaction due now, if any; `state` is the client's, for a
    /// compaction's snapshot.
    pub(crate) fn poll_maintenance(
        &mut self,
        now_mono_ms: u64,
        state: &DurableState,
        compaction: bool,
    ) -> Option<MaintenanceStep> {
        let policy = self.policy?;
        if self.compacting.is_some() {
            return None;
        }
        if let Some(broken) = &mut self.broken {
            let due = broken.retry_at_mono_ms.is_some_and(|at| at <= now_mono_ms);
            if !due || self.writing.is_some() || self.syncing.is_some() {
                return None;
            }
            broken.retry_at_mono_ms = None;
            return Some(MaintenanceStep::Compact(self.compaction(state, true)));
        }
        if self.syncing.is_none() && self.written_lsn > self.synced_lsn {
            let period_over = match policy.fsync {
                FsyncPolicy::Every(period) => self
                    .unsynced_since_mono_ms
                    .is_some_and(|since| since.saturating_add(millis(period)) <= now_mono_ms),
                FsyncPolicy::Always | FsyncPolicy::Never => false,
            };
            if period_over || self.sync_wanted {
                self.sync_wanted = false;
                let id = SyncId(self.take_job_number());
                self.syncing = Some((id, self.written_lsn));
                return Some(MaintenanceStep::Sync(SyncJob { id }));
            }
        }
        if self.written_lsn <= self.synced_lsn && self.pending.is_empty() && self.writing.is_none()
        {
            self.sync_wanted = false;
        }
        let threshold = policy.compact_after_bytes.max(self.snapshot_bytes / 4);
        let grown = self.journal_bytes > threshold || self.segments > MAX_SEGMENTS;
        let may_retry = self
            .compact_retry_at_mono_ms
            .is_none_or(|at| at <= now_mono_ms);
        if grown && may_retry && compaction {
            return Some(MaintenanceStep::Compact(self.compaction(state, false)));
        }
        None
    }

    /// A compaction of `state`: later appends go to a new segment, which the
    /// snapshot does not cover.
    fn compaction(&mut self, state: &DurableState, heal: bool) -> CompactStart {
        let id = CompactId(self.take_job_number());
        self.segment += 1;
        self.compacting_covers = (self.journal_bytes, self.segments);
        if heal {
            // Everything so far goes into the snapshot; what follows it is appended
            // after.
            self.pending.clear();
        }
        self.compacting = Some((id, state.lsn, heal));
        CompactStart {
            id,
            first_segment: self.segment,
        }
    }

    /// The compaction `start` as a job, its snapshot taken from `state` now (the host's
    /// thread polls it: the app's does not pay for the copy). Records made since it
    /// started are in the snapshot too, and read back once more from the new segment,
    /// where recovery skips them.
    pub(crate) fn compact_job(&mut self, start: CompactStart, state: &DurableState) -> CompactJob {
        if let Some((id, lsn, _)) = &mut self.compacting
            && *id == start.id
        {
            *lsn = state.lsn;
        }
        CompactJob {
            id: start.id,
            first_segment: start.first_segment,
            state: Box::new(state.clone()),
        }
    }

    /// When maintenance is next due, monotonic: a periodic sync, a retry.
    pub(crate) fn next_deadline(&self) -> Option<(u64, MaintenanceDue)> {
        let policy = self.policy?;
        if let Some(at) = self.broken.as_ref().and_then(|b| b.retry_at_mono_ms) {
            return Some((at, MaintenanceDue::Retry));
        }
        let sync = match policy.fsync {
            FsyncPolicy::Every(period) if self.syncing.is_none() => self
                .unsynced_since_mono_ms
                .filter(|_| self.written_lsn > self.synced_lsn)
                .map(|since| (since.saturating_add(millis(period)), MaintenanceDue::Sync)),
            _ => None,
        };
        let compaction = self
            .compact_retry_at_mono_ms
            .filter(|_| self.compacting.is_none())
            .map(|at| (at, MaintenanceDue::Retry));
        sync.into_iter().chain(compaction).min_by_key(|(at, _)| *at)
    }

    /// Whether record `lsn` is written (it survives the process being killed).
    pub(crate) fn is_written(&self, lsn: u64) -> bool {
        lsn <= self.written_lsn
    }

    /// The last record synced.
    pub(crate) const fn synced_lsn(&self) -> u64 {
        self.synced_lsn
    }

    /// Whether record `lsn` is on the disk (it survives a power loss).
    pub(crate) fn is_synced(&self, lsn: u64) -> bool {
        lsn <= self.synced_lsn
    }

    /// The last record written.
    pub(crate) const fn written_lsn(&self) -> u64 {
        self.written_lsn
    }

    /// Whether storage failed and is not healed yet.
    pub(crate) const fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Whether frames wait to be handed out or a job is out.
    pub(crate) fn has_work(&self) -> bool {
        !self.pending.is_empty()
            || self.writing.is_some()
            || self.syncing.is_some()
            || self.compacting.is_some()
    }

    /// Whether records wait to be written.
    pub(crate) fn has_unwritten(&self) -> bool {
        !self.pending.is_empty() || self.writing.is_some()
    }

    /// Whether a job is out with the host.
    pub(crate) fn has_job_out(&self) -> bool {
        self.writing.is_some() || self.syncing.is_some() || self.compacting.is_some()
    }

    /// Whether the store is durable (not memory only).
    pub(crate) const fn is_durable(&self) -> bool {
        self.policy.is_some()
    }

    /// Whether everything written is synced and nothing is out or broken: a clean
    /// close.
    pub(crate) fn is_clean(&self, lsn: u64) -> bool {
        self.broken.is_none() && self.written_lsn >= lsn && self.synced_lsn >= lsn
    }

    /// A sync before closing, of everything written by then.
    pub(crate) fn want_final_sync(&mut self, lsn: u64) {
        if self.policy.is_some() && self.synced_lsn < lsn {
            self.sync_wanted = true;
        }
    }
}

/// A sync or a compaction, which the client turns into a [`crate::Step`].
pub(crate) enum MaintenanceStep {
    Sync(SyncJob),
    Compact(CompactStart),
}

/// A compaction decided, its snapshot not taken yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CompactStart {
    id: CompactId,
    first_segment: u64,
}

/// Why maintenance is next due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaintenanceDue {
    Sync,
    Retry,
}

/// The wait before try `attempts` (from 1): doubling from 200 ms to 10 s.
fn retry_delay_ms(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_BASE_MS << doublings).min(RETRY_CAP_MS)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d4_retries_double_from_200_ms_to_10_s_and_never_spin() {
        let waits: Vec<u64> = (1..=9).map(retry_delay_ms).collect();
        assert_eq!(
            waits,
            vec![200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]
        );
        assert_eq!(retry_delay_ms(u32::MAX), 10_000);
    }
}
