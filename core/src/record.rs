//! Persist records and snapshots: what a driver writes so that a restart reproduces the
//! state exactly (D2), and their versioned, checksummed encoding.
//!
//! Every durable change of the core is a [`Record`]; the core changes its durable state
//! only by applying records, the same way live and on restore, so the two cannot
//! disagree. A record costs what its change costs (tracking an event writes that
//! event, never the queue). A [`Snapshot`] is the whole durable state at one record
//! sequence number (lsn); restoring is "snapshot, then the records after it".
//!
//! Encoding (version 1), little-endian:
//! - journal frame: `len: u32 | crc32(payload): u32 | payload`, the payload's first
//!   byte saying its layout:
//!   - `1` ([`FORMAT_VERSION`]): `postcard(Record) | event`, for every change; `event`
//!     is the raw JSON of a tracked event, empty for any other change.
//!   - `2` (tracked event): `lsn: u64 | unix_ms: u64 | event`. Nearly every frame of a
//!     journal is one, and this fixed layout reads back in a few loads where a serde
//!     decode of the same record costs about ten times more (it dominated restarts).
//!
//!   The event is kept out of postcard so that writing it is a copy and reading it back
//!   borrows the journal's bytes. A torn or damaged tail is detected by the length or
//!   the checksum, and everything from the first bad frame on is reported, never
//!   applied.
//! - snapshot: `"ASNP" | version: u8 | lsn: u64 | crc32(payload): u32 | payload`,
//!   payload = postcard of the state.
//!
//! New kinds of change are appended to the end of [`Change`] so that older records
//! keep their encoding; anything else bumps the version.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::owner::Owner;
use crate::token::Token;

/// The encoding version written in every frame and snapshot.
pub const FORMAT_VERSION: u8 = 1;

/// The payload layout of a tracked event's frame: fixed-width, see the module docs.
const EVENT_FRAME_LAYOUT: u8 = 2;

/// Bytes of an event frame's payload before the event: layout, lsn, timestamp.
const EVENT_FRAME_FIXED_BYTES: usize = 1 + 8 + 8;

/// Bytes before a journal frame's payload: length and checksum.
pub const FRAME_HEADER_BYTES: usize = 8;

const SNAPSHOT_MAGIC: &[u8; 4] = b"ASNP";
const SNAPSHOT_HEADER_BYTES: usize = 4 + 1 + 8 + 4;

/// Why data was dropped (D1). The wire names are those of SPEC.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue passed its bound; the oldest events went (D3).
    Overflow,
    /// The server refused the batch permanently (A6), with this status.
    Rejected {
        /// The HTTP status of the refusal.
        status: u16,
    },
    /// A one-event batch was still too large for the server (A5).
    TooLarge,
    /// A logged-out user's data could no longer be authenticated (L2, L3).
    LoggedOutAuthFailure,
}

impl DropReason {
    /// The reason's name in SPEC.md (`overflow`, `rejected`, `too_large`,
    /// `logged_out_auth_failure`).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Overflow => "overflow",
            Self::Rejected { .. } => "rejected",
            Self::TooLarge => "too_large",
            Self::LoggedOutAuthFailure => "logged_out_auth_failure",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status } => write!(f, "rejected ({status})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Listener notices whose "once" must survive a restart (S5, R1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NoticeMark {
    /// `TOKEN_NOT_AVAILABLE` was told for this identifier's current episode.
    NoToken,
    /// `TOKEN_EXPIRING` was told for this identifier's current token.
    Expiring,
}

/// One durable change. Applied by [`crate::state::DurableState::apply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// A new install: its app id and seed.
    Genesis { app_id: String, seed: u64 },
    /// An event joins the current owner's open batch. The event's bytes are the
    /// frame's tail, not part of the postcard encoding.
    EventAdded {
        unix_ms: u64,
        #[serde(skip)]
        event: Bytes,
    },
    /// The open batch is sealed under the next batch number.
    Sealed,
    /// A request for this batch was sent for the first time.
    Attempted { batch: u64 },
    /// The server acknowledged this batch.
    Acked { batch: u64 },
    /// This batch is dropped.
    Dropped { batch: u64, reason: DropReason },
    /// The oldest `events` of a batch (`None`: the open batch) are dropped (D3).
    Trimmed { batch: Option<u64>, events: u32 },
    /// This batch is split into two halves with the next two batch numbers (A5).
    Split { batch: u64 },
    /// All of this logged-out user's data is deleted (L2, L3).
    Purged {
        identifier: String,
        keep: Option<u64>,
    },
    /// The current user becomes this identified user.
    Identified { identifier: String },
    /// The identified current user logs out; a new anonymous user begins.
    LoggedOut,
    /// A token for this identifier.
    TokenPassed { identifier: String, token: Token },
    /// This token of this identifier was rejected by the server.
    TokenRejected { identifier: String, token: Token },
    /// One more consecutive authentication failure.
    AuthFailureCounted,
    /// This owner's batches wait for the next session start.
    WaitingForSession { owner: Owner },
    /// A session starts.
    SessionStarted,
    /// A transient failure: the failure streak and the wall-clock retry deadline.
    BackoffSet { streak: u32, until_unix_ms: u64 },
    /// A once-only notice was told.
    Noticed {
        identifier: String,
        mark: NoticeMark,
    },
}

/// A durable change for the driver to append to its journal, in order, before it acts
/// on any later action (a send must never reach the network before the records
/// that precede it are written).
///
/// Records are opaque: write them with [`Record::encode`] and give them back to
/// [`crate::Client::restore`]. `Debug` never shows a token whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    lsn: u64,
    change: Change,
}

impl Record {
    pub(crate) const fn new(lsn: u64, change: Change) -> Self {
        Self { lsn, change }
    }

    /// This record's sequence number: 1 for the install's first record, then +1.
    #[must_use]
    pub const fn lsn(&self) -> u64 {
        self.lsn
    }

    pub(crate) const fn change(&self) -> &Change {
        &self.change
    }

    /// Appends this record as one journal frame to `out`.
    ///
    /// ```
    /// use authsync_core::{Client, Config, Now, JournalReader, Action};
    /// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
    /// let mut journal = Vec::new();
    /// while let Some(action) = client.poll_action() {
    ///     if let Action::Persist(record) = action {
    ///         record.encode(&mut journal);
    ///     }
    /// }
    /// let records: Vec<_> = JournalReader::new(&journal).collect::<Result<_, _>>().unwrap();
    /// assert_eq!(records.len(), 1);
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
        if let Change::EventAdded { unix_ms, event } = &self.change {
            out.reserve(EVENT_FRAME_FIXED_BYTES + event.len());
            out.push(EVENT_FRAME_LAYOUT);
            out.extend_from_slice(&self.lsn.to_le_bytes());
            out.extend_from_slice(&unix_ms.to_le_bytes());
            out.extend_from_slice(event);
        } else {
            out.push(FORMAT_VERSION);
            if postcard::to_extend(self, Sink(out)).is_err() {
                // A Vec sink has no failure mode for these types; should serializing
                // ever fail, the frame is left out whole rather than written torn.
                out.truncate(start);
                return;
            }
        }
        let payload = &out[start + FRAME_HEADER_BYTES..];
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes an event frame's body (after the layout byte), the event borrowed from
    /// `source`.
    fn decode_event(source: &Bytes, body: &[u8]) -> Option<Self> {
        let (lsn, rest) = body.split_first_chunk::<8>()?;
        let (unix_ms, event) = rest.split_first_chunk::<8>()?;
        if event.is_empty() {
            return None;
        }
        Some(Self::new(
            u64::from_le_bytes(*lsn),
            Change::EventAdded {
                unix_ms: u64::from_le_bytes(*unix_ms),
                event: source.slice_ref(event),
            },
        ))
    }

    /// Decodes a postcard frame's body (after the layout byte); `tail` is what follows
    /// the postcard encoding, the event of an `EventAdded`, borrowed from `source`.
    fn decode(source: &Bytes, body: &[u8]) -> Option<Self> {
        let (mut record, tail) = postcard::take_from_bytes::<Self>(body).ok()?;
        match &mut record.change {
            Change::EventAdded { event, .. } if !tail.is_empty() => *event = source.slice_ref(tail),
            Change::EventAdded { .. } => return None,
            _ if !tail.is_empty() => return None,
            _ => {}
        }
        Some(record)
    }
}

/// Lets postcard append to a borrowed buffer, so a frame is encoded in place.
struct Sink<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Where and why a journal stops being readable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "journal unreadable at byte {offset}: {kind} ({remaining} bytes from there on are ignored)"
)]
pub struct JournalDamage {
    /// Offset of the first frame that could not be read; the valid prefix's length.
    pub offset: usize,
    /// Bytes from `offset` to the end, which a driver should truncate.
    pub remaining: usize,
    /// What is wrong with that frame.
    pub kind: DamageKind,
}

/// What is wrong with a damaged journal frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The frame is cut short: a write that a crash interrupted.
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The payload's layout (version) byte is not one this build reads.
    UnknownVersion(u8),
    /// The checksum matches but the payload does not decode.
    Undecodable,
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated frame"),
            Self::Checksum => f.write_str("checksum mismatch"),
            Self::UnknownVersion(v) => write!(f, "unknown format version {v}"),
            Self::Undecodable => f.write_str("undecodable record"),
        }
    }
}

/// Reads journal frames in order; yields each record, then at most one
/// [`JournalDamage`] for a torn or damaged tail, then nothing.
///
/// ```
/// use authsync_core::{JournalReader, DamageKind};
/// let mut reader = JournalReader::new(&[1, 0, 0]);
/// let damage = reader.next().unwrap().unwrap_err();
/// assert_eq!((damage.offset, damage.kind), (0, DamageKind::Truncated));
/// assert!(reader.next().is_none());
/// ```
#[derive(Debug)]
pub struct JournalReader {
    bytes: Bytes,
    offset: usize,
    done: bool,
}

impl JournalReader {
    /// A reader over a whole journal file's bytes (copied once).
    #[must_use]
    pub fn new(bytes: &[u8]) -> Self {
        Self::shared(Bytes::copy_from_slice(bytes))
    }

    /// A reader over a journal already in a `Bytes`: the events of the records it
    /// yields borrow from it instead of being copied.
    #[must_use]
    pub const fn shared(bytes: Bytes) -> Self {
        Self {
            bytes,
            offset: 0,
            done: false,
        }
    }

    /// Length of the prefix read so far without damage.
    #[must_use]
    pub const fn valid_len(&self) -> usize {
        self.offset
    }

    fn damage(&mut self, kind: DamageKind) -> Option<Result<Record, JournalDamage>> {
        self.done = true;
        Some(Err(JournalDamage {
            offset: self.offset,
            remaining: self.bytes.len() - self.offset,
            kind,
        }))
    }
}

impl Iterator for JournalReader {
    type Item = Result<Record, JournalDamage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset == self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.offset..];
        let Some((header, after)) = rest.split_at_checked(FRAME_HEADER_BYTES) else {
            return self.damage(DamageKind::Truncated);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = after.get(..len) else {
            return self.damage(DamageKind::Truncated);
        };
        if crc32fast::hash(payload) != crc {
            return self.damage(DamageKind::Checksum);
        }
        let Some((&layout, body)) = payload.split_first() else {
            return self.damage(DamageKind::Undecodable);
        };
        let decoded = match layout {
            EVENT_FRAME_LAYOUT => Record::decode_event(&self.bytes, body),
            FORMAT_VERSION => Record::decode(&self.bytes, body),
            unknown => return self.damage(DamageKind::UnknownVersion(unknown)),
        };
        match decoded {
            Some(record) => {
                self.offset += FRAME_HEADER_BYTES + len;
                Some(Ok(record))
            }
            None => self.damage(DamageKind::Undecodable),
        }
    }
}

/// The whole durable state at one record sequence number, encoded.
///
/// Produce one with [`crate::Client::snapshot`] at any time, write it atomically, and
/// give it to [`crate::Client::restore`] with the journal records written after it
/// (records at or before its [`Snapshot::lsn`] are skipped, so a crash between
/// writing a snapshot and trimming the journal is harmless).
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    lsn: u64,
    /// Shared, so that restored batches borrow their events from it.
    bytes: Bytes,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("lsn", &self.lsn)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn encode<T: Serialize>(lsn: u64, state: &T) -> Self {
        let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + 256);
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&lsn.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        // As in `Record::encode`, a Vec sink cannot fail for these types; an empty
        // payload would be refused by `from_bytes` rather than misread.
        if postcard::to_extend(state, Sink(&mut bytes)).is_err() {
            bytes.truncate(SNAPSHOT_HEADER_BYTES);
        }
        let crc = crc32fast::hash(&bytes[SNAPSHOT_HEADER_BYTES..]);
        bytes[13..17].copy_from_slice(&crc.to_le_bytes());
        Self {
            lsn,
            bytes: Bytes::from(bytes),
        }
    }

    /// Reads a snapshot file's bytes, checking magic, version and checksum.
    ///
    /// # Errors
    /// A description of what is wrong, as [`crate::RestoreError::Snapshot`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, crate::RestoreError> {
        let mut verifier = SnapshotVerifier::new();
        verifier.update(&bytes);
        verifier.finish(bytes)
    }

    /// The sequence number of the last record this snapshot includes.
    #[must_use]
    pub const fn lsn(&self) -> u64 {
        self.lsn
    }

    /// The encoded snapshot, to write to a file.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded state, borrowing from the snapshot's bytes.
    pub(crate) fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, crate::RestoreError> {
        postcard::from_bytes(&self.bytes[SNAPSHOT_HEADER_BYTES..])
            .map_err(|_| crate::RestoreError::Snapshot("undecodable state".to_owned()))
    }

    /// The buffer a decoded state borrows from, to slice events out of without copying.
    pub(crate) const fn shared_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Checks a snapshot file's checksum while the file is read in pieces, so that each
/// piece is checksummed while it is still in cache: reading a large snapshot whole and
/// then checksumming it walked it through memory twice, a fifth of a restart.
///
/// Feed it every byte of the file, in order, then hand it the bytes to get the
/// [`Snapshot`]; [`Snapshot::from_bytes`] does both for bytes already in memory.
///
/// ```
/// use authsync_core::{Client, Config, Now, SnapshotVerifier};
/// let client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
/// let snapshot = client.snapshot();
/// let mut verifier = SnapshotVerifier::new();
/// for piece in snapshot.as_bytes().chunks(5) {
///     verifier.update(piece);
/// }
/// let read = verifier.finish(snapshot.as_bytes().to_vec()).unwrap();
/// assert_eq!(read, snapshot);
/// ```
#[derive(Clone, Default)]
pub struct SnapshotVerifier {
    hasher: crc32fast::Hasher,
    seen: usize,
}

impl fmt::Debug for SnapshotVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotVerifier")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl SnapshotVerifier {
    /// A verifier that has seen nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the file's next bytes.
    pub fn update(&mut self, piece: &[u8]) {
        let header_left = SNAPSHOT_HEADER_BYTES.saturating_sub(self.seen);
        self.hasher
            .update(piece.get(header_left..).unwrap_or_default());
        self.seen += piece.len();
    }

    /// The snapshot in `bytes`, which must be exactly the bytes fed to
    /// [`SnapshotVerifier::update`], after checking magic, version and checksum.
    ///
    /// # Errors
    /// A description of what is wrong, as [`crate::RestoreError::Snapshot`].
    pub fn finish(self, bytes: Vec<u8>) -> Result<Snapshot, crate::RestoreError> {
        let bad = |why: &str| crate::RestoreError::Snapshot(why.to_owned());
        if self.seen != bytes.len() {
            return Err(bad("checksummed bytes differ from the snapshot's"));
        }
        // `magic | version: u8 | lsn: u64 | crc: u32`, as `Snapshot::encode` writes it.
        let header = bytes.split_first_chunk::<4>().and_then(|(magic, rest)| {
            let (&version, rest) = rest.split_first()?;
            let (lsn, rest) = rest.split_first_chunk::<8>()?;
            let (crc, _) = rest.split_first_chunk::<4>()?;
            Some((
                magic,
                version,
                u64::from_le_bytes(*lsn),
                u32::from_le_bytes(*crc),
            ))
        });
        let Some((magic, version, lsn, crc)) = header else {
            return Err(bad("not a snapshot"));
        };
        if magic != SNAPSHOT_MAGIC {
            return Err(bad("not a snapshot"));
        }
        if version != FORMAT_VERSION {
            return Err(bad("unknown format version"));
        }
        if self.hasher.finalize() != crc {
            return Err(bad("checksum mismatch"));
        }
        Ok(Snapshot {
            lsn,
            bytes: Bytes::from(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracked event's record.
    fn event_record(lsn: u64, unix_ms: u64, event: &'static [u8]) -> Record {
        Record::new(
            lsn,
            Change::EventAdded {
                unix_ms,
                event: Bytes::from_static(event),
            },
        )
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::new(
                1,
                Change::Genesis {
                    app_id: "a".into(),
                    seed: 9,
                },
            ),
            event_record(2, 5, b"{}"),
            Record::new(3, Change::Sealed),
        ]
    }

    #[test]
    fn d2_frames_round_trip() {
        let mut journal = Vec::new();
        for record in sample() {
            record.encode(&mut journal);
        }
        let read: Vec<Record> = JournalReader::new(&journal)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, sample());
    }

    #[test]
    fn d2_torn_tail_is_reported_at_every_cut() {
        let mut journal = Vec::new();
        let mut boundaries = vec![0];
        for record in sample() {
            record.encode(&mut journal);
            boundaries.push(journal.len());
        }
        for cut in 0..journal.len() {
            let mut reader = JournalReader::new(&journal[..cut]);
            let good = reader.by_ref().take_while(Result::is_ok).count();
            let valid = boundaries[good];
            assert!(valid <= cut);
            assert_eq!(reader.valid_len(), valid, "cut at {cut}");
            assert_eq!(boundaries.contains(&cut), valid == cut);
        }
    }

    /// A frame with a valid checksum but the wrong shape: `payload` after the version.
    fn frame_of(payload: &[u8]) -> Vec<u8> {
        frame_with_layout(FORMAT_VERSION, payload)
    }

    /// A frame with a valid checksum: the `layout` byte, then `payload`.
    fn frame_with_layout(layout: u8, payload: &[u8]) -> Vec<u8> {
        let mut body = vec![layout];
        body.extend_from_slice(payload);
        let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn d2_an_event_record_without_its_event_is_undecodable() {
        let mut encoded = Vec::new();
        let empty = event_record(2, 5, b"");
        empty.encode(&mut encoded);
        let damage = JournalReader::new(&encoded).next().unwrap().unwrap_err();
        assert_eq!(damage.kind, DamageKind::Undecodable);
    }

    #[test]
    fn d2_event_frames_use_the_fixed_layout_and_the_postcard_layout_still_reads() {
        let record = event_record(7, 1_700_000_000_000, b"{\"e\":1}");
        let mut encoded = Vec::new();
        record.encode(&mut encoded);
        assert_eq!(encoded[FRAME_HEADER_BYTES], EVENT_FRAME_LAYOUT);
        assert_eq!(
            encoded.len(),
            FRAME_HEADER_BYTES + EVENT_FRAME_FIXED_BYTES + 7
        );
        let mut postcard_layout = postcard::to_allocvec(&record).unwrap();
        postcard_layout.extend_from_slice(b"{\"e\":1}");
        for frame in [encoded, frame_of(&postcard_layout)] {
            let read = JournalReader::new(&frame).next().unwrap().unwrap();
            assert_eq!(read, record);
        }
    }

    #[test]
    fn d2_a_postcard_layout_event_record_without_its_event_is_undecodable() {
        let record = event_record(7, 5, b"");
        let frame = frame_of(&postcard::to_allocvec(&record).unwrap());
        let damage = JournalReader::new(&frame).next().unwrap().unwrap_err();
        assert_eq!(damage.kind, DamageKind::Undecodable);
    }

    #[test]
    fn a_snapshot_verifier_shows_how_much_it_has_seen() {
        let mut verifier = SnapshotVerifier::new();
        verifier.update(b"ASNP");
        assert!(format!("{verifier:?}").contains("seen: 4"));
    }

    #[test]
    fn d2_a_short_event_frame_is_undecodable() {
        for fixed in 0..=16 {
            let frame = frame_with_layout(EVENT_FRAME_LAYOUT, &vec![1; fixed]);
            let damage = JournalReader::new(&frame).next().unwrap().unwrap_err();
            assert_eq!(damage.kind, DamageKind::Undecodable, "{fixed} bytes");
        }
    }

    #[test]
    fn d2_a_record_with_a_stray_tail_is_undecodable() {
        let mut head = postcard::to_allocvec(&Record::new(3, Change::Sealed)).unwrap();
        assert!(JournalReader::new(&frame_of(&head)).next().unwrap().is_ok());
        head.push(b'x');
        let damage = JournalReader::new(&frame_of(&head))
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(damage.kind, DamageKind::Undecodable);
    }

    #[test]
    fn d2_an_event_is_the_frames_tail_and_reads_back_borrowed() {
        let record = event_record(2, 5, b"{\"k\":1}");
        let mut journal = Vec::new();
        record.encode(&mut journal);
        assert!(journal.ends_with(b"{\"k\":1}"), "written as raw bytes");
        let shared = Bytes::from(journal);
        let read = JournalReader::shared(shared.clone())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(read, record);
        let Change::EventAdded { event, .. } = read.change() else {
            panic!("an event record")
        };
        assert_eq!(
            event.as_ptr(),
            shared[shared.len() - event.len()..].as_ptr(),
            "no copy"
        );
    }

    #[test]
    fn d2_flipped_bit_is_a_checksum_error() {
        let mut journal = Vec::new();
        sample()[1].encode(&mut journal);
        let last = journal.len() - 1;
        journal[last] ^= 1;
        let damage = JournalReader::new(&journal).next().unwrap().unwrap_err();
        assert_eq!(damage.kind, DamageKind::Checksum);
        assert_eq!(damage.remaining, journal.len());
    }

    #[test]
    fn snapshot_header_is_checked() {
        let snapshot = Snapshot::encode(7, &("state", 1u8));
        let restored = Snapshot::from_bytes(snapshot.as_bytes().to_vec()).unwrap();
        assert_eq!(restored.lsn(), 7);
        assert_eq!(
            restored.decode::<(String, u8)>().unwrap(),
            ("state".into(), 1)
        );
        let mut damaged = snapshot.as_bytes().to_vec();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(Snapshot::from_bytes(damaged).is_err());
        assert!(Snapshot::from_bytes(b"nope".to_vec()).is_err());
    }
}
