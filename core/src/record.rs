//! Journal records and snapshots: what a host stores so that a restart reproduces the
//! state exactly (D2), and their versioned, checksummed encoding.
//!
//! Every durable change of the core is a [`Record`]; the core changes its durable state
//! only by applying records, the same way live and on recovery, so the two cannot
//! disagree. A record costs what its change costs (tracking an event writes that
//! event, never the queue). A [`Snapshot`] is the whole durable state at one record
//! sequence number (lsn); recovering is "snapshot, then the records after it".
//!
//! Encoding, little-endian:
//! - journal frame: `len: u32 | crc32(payload): u32 | payload`, the payload's first
//!   byte saying its layout:
//!   - `4` (any change): `owner_tag: u32 | postcard(Record)`;
//!   - `3` (tracked event): `lsn: u64 | unix_ms: u64 | owner_tag: u32 | event`. Nearly
//!     every frame of a journal is one, and this fixed layout reads back in a few loads
//!     where a serde decode of the same record costs about ten times more;
//!   - `1` and `2`: the same two without the owner tag, written by earlier versions and
//!     still read.
//!
//!   The owner tag is a checksum of the user that was current when the record was
//!   made. Recovery uses it to prove that a record found after a damaged one still
//!   belongs to the state it is applied to (D5). The event is kept out of postcard so
//!   that writing it is a copy and reading it back borrows the journal's bytes.
//! - snapshot: `"ASNP" | version: u8 | lsn: u64 | first_segment: u64 | crc32(payload):
//!   u32 | payload`, payload = postcard of the state; `first_segment` is the first
//!   journal segment whose records the snapshot does not hold (version 1 had no such
//!   field and is still read).
//!
//! New kinds of change are appended to the end of [`Change`] so that older records
//! keep their encoding; anything else bumps the version.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::owner::Owner;
use crate::token::Token;

/// Layout of an untagged postcard frame, written by earlier versions.
const POSTCARD_LAYOUT: u8 = 1;

/// Layout of an untagged event frame, written by earlier versions.
const EVENT_LAYOUT: u8 = 2;

/// Layout of a tracked event's frame: fixed-width, with its owner tag.
const TAGGED_EVENT_LAYOUT: u8 = 3;

/// Layout of any other change's frame: its owner tag, then postcard.
const TAGGED_POSTCARD_LAYOUT: u8 = 4;

/// Bytes of an untagged event frame's payload before the event: layout, lsn, time.
const EVENT_FIXED_BYTES: usize = 1 + 8 + 8;

/// Bytes of a tagged event frame's payload before the event.
const TAGGED_EVENT_FIXED_BYTES: usize = EVENT_FIXED_BYTES + 4;

/// Bytes before a journal frame's payload: length and checksum.
pub(crate) const FRAME_HEADER_BYTES: usize = 8;

/// The largest payload a frame can hold: an event of the largest size V2 allows, or
/// a record with the largest token T1 allows, with room to spare. A length field
/// above it is damage, which keeps the search for the next whole frame short.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

const SNAPSHOT_MAGIC: &[u8; 4] = b"ASNP";
/// Version 1: no first-segment field.
const SNAPSHOT_V1: u8 = 1;
const SNAPSHOT_V1_HEADER_BYTES: usize = 4 + 1 + 8 + 4;
/// Version 2: the first journal segment the snapshot does not hold.
const SNAPSHOT_V2: u8 = 2;
const SNAPSHOT_V2_HEADER_BYTES: usize = 4 + 1 + 8 + 8 + 4;

/// Why data was dropped (D1). The wire names are those of the rules document (docs/rules.md).
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
    /// The reason's name in the rules document (`overflow`, `rejected`, `too_large`,
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
    /// `TOKEN_NOT_AVAILABLE` was noticed for this identifier's current episode.
    NoToken,
    /// `TOKEN_EXPIRING` was noticed for this identifier's current token.
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
    /// A once-only notice was given.
    Noticed {
        identifier: String,
        mark: NoticeMark,
    },
    /// The open batch is sealed as batch `batch`, which must be the next number: a
    /// recovery that skipped a lost record finds out here if it lost a seal (D5).
    SealedAs { batch: u64 },
    /// Recovery lost records (D5): event seqs and batch numbers go on from these, far
    /// above anything that may have been handed out before. Applies even when records
    /// before it are missing: it is the first record written after such a recovery.
    IdsAdvanced { next_seq: u64, next_batch: u64 },
}

/// The ids a record holds besides its lsn; zero (or `None`) where it holds none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordIds {
    /// A tracked event's seq.
    pub(crate) seq: u64,
    /// A batch number the change uses.
    pub(crate) batch: Option<u64>,
    /// The seq and batch number ids jump to (`IdsAdvanced`).
    pub(crate) next_seq: u64,
    pub(crate) next_batch: u64,
}

/// A durable change, numbered: applied in lsn order, live and on recovery.
///
/// `Debug` never shows a token whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    lsn: u64,
    change: Change,
}

impl Record {
    pub(crate) const fn new(lsn: u64, change: Change) -> Self {
        Self { lsn, change }
    }

    /// This record's sequence number: 1 for the install's first record, then +1.
    pub(crate) const fn lsn(&self) -> u64 {
        self.lsn
    }

    pub(crate) const fn change(&self) -> &Change {
        &self.change
    }

    /// The ids this record holds besides its lsn.
    pub(crate) fn ids(&self) -> RecordIds {
        let mut ids = RecordIds::default();
        match &self.change {
            Change::EventAdded { event, .. } => {
                ids.seq = crate::event::tracked_seq(event).unwrap_or(0);
            }
            Change::SealedAs { batch }
            | Change::Attempted { batch }
            | Change::Acked { batch }
            | Change::Dropped { batch, .. }
            | Change::Split { batch }
            | Change::Trimmed {
                batch: Some(batch), ..
            }
            | Change::Purged {
                keep: Some(batch), ..
            } => ids.batch = Some(*batch),
            Change::IdsAdvanced {
                next_seq,
                next_batch,
            } => {
                ids.next_seq = *next_seq;
                ids.next_batch = *next_batch;
            }
            _ => {}
        }
        ids
    }

    /// Appends this record as one journal frame to `out`, tagged with the owner that
    /// was current when it was made.
    pub(crate) fn encode(&self, owner_tag: u32, out: &mut BytesMut) {
        let start = out.len();
        out.put_bytes(0, FRAME_HEADER_BYTES);
        if let Change::EventAdded { unix_ms, event } = &self.change {
            out.reserve(TAGGED_EVENT_FIXED_BYTES + event.len());
            out.put_u8(TAGGED_EVENT_LAYOUT);
            out.put_u64_le(self.lsn);
            out.put_u64_le(*unix_ms);
            out.put_u32_le(owner_tag);
            out.extend_from_slice(event);
        } else {
            out.put_u8(TAGGED_POSTCARD_LAYOUT);
            out.put_u32_le(owner_tag);
            if postcard::to_extend(self, Sink(out)).is_err() {
                // A buffer sink has no failure mode for these types; should serializing
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

    /// Decodes a frame's payload, events borrowed from `source` (which holds it).
    fn decode(source: &Bytes, payload: &[u8]) -> Result<Frame, DamageKind> {
        let Some((&layout, body)) = payload.split_first() else {
            return Err(DamageKind::Undecodable);
        };
        let decoded = match layout {
            TAGGED_EVENT_LAYOUT => Self::decode_event(source, body, true),
            EVENT_LAYOUT => Self::decode_event(source, body, false),
            TAGGED_POSTCARD_LAYOUT => body.split_first_chunk::<4>().and_then(|(tag, rest)| {
                Some((
                    Self::decode_postcard(source, rest)?.0,
                    Some(u32::from_le_bytes(*tag)),
                ))
            }),
            POSTCARD_LAYOUT => Self::decode_postcard(source, body),
            unknown => return Err(DamageKind::UnknownVersion(unknown)),
        };
        decoded
            .map(|(record, owner_tag)| Frame::new(record, owner_tag))
            .ok_or(DamageKind::Undecodable)
    }

    /// An event frame's record and tag: `lsn | unix_ms | [owner_tag] | event`.
    fn decode_event(source: &Bytes, body: &[u8], tagged: bool) -> Option<(Self, Option<u32>)> {
        let (lsn, rest) = body.split_first_chunk::<8>()?;
        let (unix_ms, rest) = rest.split_first_chunk::<8>()?;
        let (owner_tag, event) = if tagged {
            let (tag, event) = rest.split_first_chunk::<4>()?;
            (Some(u32::from_le_bytes(*tag)), event)
        } else {
            (None, rest)
        };
        if event.is_empty() {
            return None;
        }
        let record = Self::new(
            u64::from_le_bytes(*lsn),
            Change::EventAdded {
                unix_ms: u64::from_le_bytes(*unix_ms),
                event: source.slice_ref(event),
            },
        );
        Some((record, owner_tag))
    }

    /// A postcard frame's record; what follows the postcard encoding is the event of an
    /// `EventAdded` (written that way by version 1), borrowed from `source`.
    fn decode_postcard(source: &Bytes, body: &[u8]) -> Option<(Self, Option<u32>)> {
        let (mut record, tail) = postcard::take_from_bytes::<Self>(body).ok()?;
        match &mut record.change {
            Change::EventAdded { event, .. } if !tail.is_empty() => *event = source.slice_ref(tail),
            Change::EventAdded { .. } => return None,
            _ if !tail.is_empty() => return None,
            _ => {}
        }
        Some((record, None))
    }
}

/// Lets postcard append to a borrowed buffer, so a frame is encoded in place.
struct Sink<'a>(&'a mut BytesMut);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// A record read back, with the owner tag its frame carried (none in older layouts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) record: Record,
    pub(crate) owner_tag: Option<u32>,
    /// The record's ids, read once: the frame check and recovery's high-water marks
    /// both need them, and an event's seq is parsed from its text.
    pub(crate) ids: RecordIds,
}

impl Frame {
    pub(crate) fn new(record: Record, owner_tag: Option<u32>) -> Self {
        let ids = record.ids();
        Self {
            record,
            owner_tag,
            ids,
        }
    }

    /// The highest id this frame holds: its lsn, an event's seq, a batch number.
    pub(crate) fn highest_id(&self) -> u64 {
        [
            self.ids.seq,
            self.ids.batch.unwrap_or(0),
            self.ids.next_seq,
            self.ids.next_batch,
        ]
        .into_iter()
        .fold(self.record.lsn(), u64::max)
    }
}

/// A stretch of journal bytes that holds no whole frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where it starts in its file.
    pub offset: u64,
    /// How many bytes it spans (to the next whole frame, or to the end of the file).
    pub bytes: u64,
    /// What is wrong with the frame that starts it.
    pub kind: DamageKind,
    /// Whether it runs to the end of the file: a write cut short, typically.
    pub at_end: bool,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes unreadable at byte {} ({}{})",
            self.bytes,
            self.offset,
            self.kind,
            if self.at_end { ", to the end" } else { "" }
        )
    }
}

/// What is wrong with a damaged journal frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The frame is cut short: a write that a crash interrupted.
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The payload's layout byte is not one this build reads.
    UnknownVersion(u8),
    /// The checksum matches but the payload does not decode, or holds an id past any
    /// a store can have issued.
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

/// One item of a journal segment read back: a whole frame, or a damaged stretch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scanned {
    Frame(Frame),
    Damage(Damage),
}

/// Every frame of a journal segment, in order, one at a time (a restart does not hold
/// them all at once). A damaged frame does not end the read: the next offset at which
/// a whole frame with a valid checksum starts is found (as LevelDB's log reader
/// re-synchronises) and reading goes on from there, so that recovery can tell what was
/// lost and keep what it can prove belongs (D5).
pub(crate) struct Scan<'a> {
    bytes: &'a Bytes,
    offset: usize,
}

impl<'a> Scan<'a> {
    pub(crate) const fn new(bytes: &'a Bytes) -> Self {
        Self { bytes, offset: 0 }
    }
}

impl Iterator for Scan<'_> {
    type Item = Scanned;

    fn next(&mut self) -> Option<Scanned> {
        let (bytes, offset) = (self.bytes, self.offset);
        if offset >= bytes.len() {
            return None;
        }
        Some(match frame_at(bytes, offset) {
            Ok((frame, len)) => {
                self.offset += len;
                Scanned::Frame(frame)
            }
            Err(kind) => {
                let next = (offset + 1..bytes.len())
                    .find(|&at| frame_at(bytes, at).is_ok())
                    .unwrap_or(bytes.len());
                self.offset = next;
                Scanned::Damage(Damage {
                    offset: offset as u64,
                    bytes: (next - offset) as u64,
                    kind,
                    at_end: next == bytes.len(),
                })
            }
        })
    }
}

/// The frame starting at `offset` and its length with its header.
fn frame_at(bytes: &Bytes, offset: usize) -> Result<(Frame, usize), DamageKind> {
    let rest = &bytes[offset..];
    let Some((header, after)) = rest.split_first_chunk::<FRAME_HEADER_BYTES>() else {
        return Err(DamageKind::Truncated);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_PAYLOAD_BYTES {
        return Err(DamageKind::Undecodable);
    }
    let Some(payload) = after.get(..len) else {
        return Err(DamageKind::Truncated);
    };
    if crc32fast::hash(payload) != crc {
        return Err(DamageKind::Checksum);
    }
    let frame = Record::decode(bytes, payload)?;
    // An id no store can have issued is damage, not history (and recovery's
    // arithmetic on ids keeps its headroom).
    if frame.highest_id() >= ID_CEILING {
        return Err(DamageKind::Undecodable);
    }
    Ok((frame, FRAME_HEADER_BYTES + len))
}

/// Ids (lsns, event seqs, batch numbers) stay below this. They count up from 1 and
/// jump to the next multiple of 2^32 after a recovery from damage (D5): reaching
/// 2^62 would take 2^30 such recoveries. A record or snapshot holding an id at or
/// above it is damaged.
pub(crate) const ID_CEILING: u64 = 1 << 62;

/// The whole durable state at one record sequence number, encoded and checked.
///
/// A host reads a snapshot file with a [`SnapshotVerifier`] and hands it to
/// [`crate::Client::recover`]; it writes one from a [`crate::CompactJob`].
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    lsn: u64,
    first_segment: u64,
    header_len: usize,
    /// Shared, so that restored batches borrow their events from it.
    bytes: Bytes,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("lsn", &self.lsn)
            .field("first_segment", &self.first_segment)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn encode<T: Serialize>(lsn: u64, first_segment: u64, state: &T) -> Self {
        let mut bytes = BytesMut::with_capacity(SNAPSHOT_V2_HEADER_BYTES + 256);
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.put_u8(SNAPSHOT_V2);
        bytes.put_u64_le(lsn);
        bytes.put_u64_le(first_segment);
        bytes.put_u32_le(0);
        // As in `Record::encode`, a buffer sink cannot fail for these types; an empty
        // payload would be refused when read rather than misread.
        if postcard::to_extend(state, Sink(&mut bytes)).is_err() {
            bytes.truncate(SNAPSHOT_V2_HEADER_BYTES);
        }
        let crc = crc32fast::hash(&bytes[SNAPSHOT_V2_HEADER_BYTES..]);
        bytes[SNAPSHOT_V2_HEADER_BYTES - 4..SNAPSHOT_V2_HEADER_BYTES]
            .copy_from_slice(&crc.to_le_bytes());
        Self {
            lsn,
            first_segment,
            header_len: SNAPSHOT_V2_HEADER_BYTES,
            bytes: bytes.freeze(),
        }
    }

    /// Reads a snapshot file's bytes, checking magic, version and checksum.
    ///
    /// ```
    /// use authsync_core::Snapshot;
    /// assert!(Snapshot::from_bytes(b"not a snapshot".to_vec()).is_err());
    /// ```
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

    /// The first journal segment whose records this snapshot does not hold: segments
    /// numbered below it are stale.
    #[must_use]
    pub const fn first_segment(&self) -> u64 {
        self.first_segment
    }

    /// The encoded snapshot, to write to a file.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded state, borrowing from the snapshot's bytes.
    pub(crate) fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, crate::RestoreError> {
        postcard::from_bytes(&self.bytes[self.header_len..])
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
    /// The header's length, known once its version byte is seen.
    header_len: Option<usize>,
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
        const VERSION_AT: usize = 4;
        let start = self.seen;
        self.seen += piece.len();
        if self.header_len.is_none() {
            let Some(&version) = piece
                .get(VERSION_AT.saturating_sub(start)..)
                .and_then(<[u8]>::first)
            else {
                return;
            };
            if start > VERSION_AT {
                return;
            }
            self.header_len = Some(if version == SNAPSHOT_V1 {
                SNAPSHOT_V1_HEADER_BYTES
            } else {
                SNAPSHOT_V2_HEADER_BYTES
            });
        }
        let header_len = self.header_len.unwrap_or(SNAPSHOT_V2_HEADER_BYTES);
        self.hasher.update(
            piece
                .get(header_len.saturating_sub(start)..)
                .unwrap_or_default(),
        );
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
        let Some((magic, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(bad("not a snapshot"));
        };
        if magic != SNAPSHOT_MAGIC {
            return Err(bad("not a snapshot"));
        }
        let Some((&version, rest)) = rest.split_first() else {
            return Err(bad("not a snapshot"));
        };
        let Some((lsn, rest)) = rest.split_first_chunk::<8>() else {
            return Err(bad("not a snapshot"));
        };
        let (first_segment, rest, header_len) = match version {
            SNAPSHOT_V1 => (0, rest, SNAPSHOT_V1_HEADER_BYTES),
            SNAPSHOT_V2 => {
                let Some((segment, rest)) = rest.split_first_chunk::<8>() else {
                    return Err(bad("not a snapshot"));
                };
                (u64::from_le_bytes(*segment), rest, SNAPSHOT_V2_HEADER_BYTES)
            }
            _ => return Err(bad("unknown format version")),
        };
        let Some((crc, _)) = rest.split_first_chunk::<4>() else {
            return Err(bad("not a snapshot"));
        };
        if self.hasher.finalize() != u32::from_le_bytes(*crc) {
            return Err(bad("checksum mismatch"));
        }
        Ok(Snapshot {
            lsn: u64::from_le_bytes(*lsn),
            first_segment,
            header_len,
            bytes: Bytes::from(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &Bytes) -> Vec<Scanned> {
        Scan::new(bytes).collect()
    }

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
            Record::new(3, Change::SealedAs { batch: 1 }),
        ]
    }

    fn journal_of(records: &[Record]) -> (Bytes, Vec<usize>) {
        let mut out = BytesMut::new();
        let mut boundaries = vec![0];
        for (i, record) in records.iter().enumerate() {
            record.encode(i as u32 + 70, &mut out);
            boundaries.push(out.len());
        }
        (out.freeze(), boundaries)
    }

    fn frames(items: &[Scanned]) -> Vec<Frame> {
        items
            .iter()
            .filter_map(|i| match i {
                Scanned::Frame(f) => Some(f.clone()),
                Scanned::Damage(_) => None,
            })
            .collect()
    }

    #[test]
    fn d2_frames_round_trip_with_their_owner_tags() {
        let (journal, _) = journal_of(&sample());
        let read = scan(&journal);
        let expected: Vec<Frame> = sample()
            .into_iter()
            .enumerate()
            .map(|(i, record)| Frame::new(record, Some(i as u32 + 70)))
            .collect();
        assert_eq!(frames(&read), expected);
        assert_eq!(read.len(), 3, "no damage");
    }

    #[test]
    fn d5_a_torn_tail_is_reported_at_every_cut() {
        let (journal, boundaries) = journal_of(&sample());
        for cut in 0..journal.len() {
            let items = scan(&journal.slice(..cut));
            let whole = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
            assert_eq!(frames(&items).len(), whole, "cut at {cut}");
            let damage: Vec<&Damage> = items
                .iter()
                .filter_map(|i| match i {
                    Scanned::Damage(d) => Some(d),
                    Scanned::Frame(_) => None,
                })
                .collect();
            if boundaries.contains(&cut) {
                assert!(damage.is_empty(), "cut at {cut}");
            } else {
                assert_eq!(damage.len(), 1, "cut at {cut}");
                assert!(damage[0].at_end);
                assert_eq!(damage[0].offset as usize, boundaries[whole]);
                assert_eq!((damage[0].offset + damage[0].bytes) as usize, cut);
            }
        }
    }

    #[test]
    fn d5_reading_resumes_after_a_damaged_frame() {
        let (journal, boundaries) = journal_of(&sample());
        for at in boundaries[1]..boundaries[2] {
            let mut damaged = journal.to_vec();
            damaged[at] ^= 0x40;
            let items = scan(&Bytes::from(damaged));
            let lsns: Vec<u64> = frames(&items).iter().map(|f| f.record.lsn()).collect();
            assert_eq!(lsns, vec![1, 3], "flip at {at}");
            let Some(Scanned::Damage(damage)) = items.get(1) else {
                panic!("flip at {at}: {items:?}")
            };
            assert_eq!(damage.offset as usize, boundaries[1]);
            assert_eq!(damage.bytes as usize, boundaries[2] - boundaries[1]);
            assert!(!damage.at_end);
        }
    }

    /// A frame with a valid checksum: the `layout` byte, then `payload`.
    fn frame_with_layout(layout: u8, payload: &[u8]) -> Bytes {
        let mut body = vec![layout];
        body.extend_from_slice(payload);
        let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        Bytes::from(frame)
    }

    fn only(bytes: &Bytes) -> Result<Frame, DamageKind> {
        match scan(bytes).first() {
            Some(Scanned::Frame(frame)) => Ok(frame.clone()),
            Some(Scanned::Damage(damage)) => Err(damage.kind),
            None => Err(DamageKind::Truncated),
        }
    }

    #[test]
    fn d2_frames_of_earlier_versions_still_read_without_a_tag() {
        let record = event_record(7, 1_700_000_000_000, b"{\"e\":1}");
        let mut fixed = 7u64.to_le_bytes().to_vec();
        fixed.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        fixed.extend_from_slice(b"{\"e\":1}");
        let mut postcard_layout = postcard::to_allocvec(&record).unwrap();
        postcard_layout.extend_from_slice(b"{\"e\":1}");
        for frame in [
            frame_with_layout(EVENT_LAYOUT, &fixed),
            frame_with_layout(POSTCARD_LAYOUT, &postcard_layout),
        ] {
            let read = only(&frame).unwrap();
            assert_eq!(read.record, record);
            assert_eq!(read.owner_tag, None);
        }
        let sealed = Record::new(3, Change::Sealed);
        let read = only(&frame_with_layout(
            POSTCARD_LAYOUT,
            &postcard::to_allocvec(&sealed).unwrap(),
        ))
        .unwrap();
        assert_eq!(read.record, sealed);
    }

    #[test]
    fn d2_event_frames_use_the_fixed_layout() {
        let mut encoded = BytesMut::new();
        event_record(7, 5, b"{\"e\":1}").encode(9, &mut encoded);
        assert_eq!(encoded[FRAME_HEADER_BYTES], TAGGED_EVENT_LAYOUT);
        assert_eq!(
            encoded.len(),
            FRAME_HEADER_BYTES + TAGGED_EVENT_FIXED_BYTES + 7
        );
        assert!(encoded.ends_with(b"{\"e\":1}"), "written as raw bytes");
    }

    #[test]
    fn d2_an_event_record_without_its_event_is_undecodable() {
        let mut encoded = BytesMut::new();
        event_record(2, 5, b"").encode(1, &mut encoded);
        assert_eq!(only(&encoded.freeze()), Err(DamageKind::Undecodable));
        let record = event_record(7, 5, b"");
        let frame = frame_with_layout(POSTCARD_LAYOUT, &postcard::to_allocvec(&record).unwrap());
        assert_eq!(only(&frame), Err(DamageKind::Undecodable));
    }

    #[test]
    fn d2_short_frames_are_undecodable() {
        for fixed in 0..=20 {
            let frame = frame_with_layout(TAGGED_EVENT_LAYOUT, &vec![1; fixed]);
            assert_eq!(only(&frame), Err(DamageKind::Undecodable), "{fixed} bytes");
        }
        for fixed in 0..=16 {
            let frame = frame_with_layout(EVENT_LAYOUT, &vec![1; fixed]);
            assert_eq!(only(&frame), Err(DamageKind::Undecodable), "{fixed} bytes");
        }
        assert_eq!(
            only(&frame_with_layout(TAGGED_POSTCARD_LAYOUT, &[1, 2])),
            Err(DamageKind::Undecodable)
        );
        assert_eq!(
            only(&frame_with_layout(9, b"x")),
            Err(DamageKind::UnknownVersion(9))
        );
    }

    #[test]
    fn d2_a_record_with_a_stray_tail_is_undecodable() {
        let mut head = postcard::to_allocvec(&Record::new(3, Change::Sealed)).unwrap();
        assert!(only(&frame_with_layout(POSTCARD_LAYOUT, &head)).is_ok());
        head.push(b'x');
        assert_eq!(
            only(&frame_with_layout(POSTCARD_LAYOUT, &head)),
            Err(DamageKind::Undecodable)
        );
    }

    #[test]
    fn d2_an_event_reads_back_borrowed() {
        let mut out = BytesMut::new();
        event_record(2, 5, b"{\"k\":1}").encode(0, &mut out);
        let shared = out.freeze();
        let read = only(&shared).unwrap();
        let Change::EventAdded { event, .. } = read.record.change() else {
            panic!("an event record")
        };
        assert_eq!(
            event.as_ptr(),
            shared[shared.len() - event.len()..].as_ptr(),
            "no copy"
        );
    }

    #[test]
    fn d5_zeroes_and_oversized_lengths_are_damage() {
        let zeroes = Bytes::from(vec![0; 64]);
        let items = scan(&zeroes);
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Scanned::Damage(Damage {
                offset: 0,
                bytes: 64,
                at_end: true,
                ..
            })
        ));
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(only(&Bytes::from(huge)), Err(DamageKind::Undecodable));
    }

    #[test]
    fn a_snapshot_verifier_shows_how_much_it_has_seen() {
        let mut verifier = SnapshotVerifier::new();
        verifier.update(b"ASNP");
        assert!(format!("{verifier:?}").contains("seen: 4"));
    }

    #[test]
    fn snapshot_header_is_checked() {
        let snapshot = Snapshot::encode(7, 3, &("state", 1u8));
        let restored = Snapshot::from_bytes(snapshot.as_bytes().to_vec()).unwrap();
        assert_eq!((restored.lsn(), restored.first_segment()), (7, 3));
        assert_eq!(
            restored.decode::<(String, u8)>().unwrap(),
            ("state".into(), 1)
        );
        for piece in 1..snapshot.as_bytes().len() {
            let mut verifier = SnapshotVerifier::new();
            for chunk in snapshot.as_bytes().chunks(piece) {
                verifier.update(chunk);
            }
            assert_eq!(
                verifier.finish(snapshot.as_bytes().to_vec()).unwrap(),
                snapshot
            );
        }
        let mut damaged = snapshot.as_bytes().to_vec();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(Snapshot::from_bytes(damaged).is_err());
        assert!(Snapshot::from_bytes(b"nope".to_vec()).is_err());
    }

    #[test]
    fn version_1_snapshots_still_read() {
        let payload = postcard::to_allocvec(&("state", 1u8)).unwrap();
        let mut bytes = SNAPSHOT_MAGIC.to_vec();
        bytes.push(SNAPSHOT_V1);
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let read = Snapshot::from_bytes(bytes).unwrap();
        assert_eq!((read.lsn(), read.first_segment()), (7, 0));
        assert_eq!(read.decode::<(String, u8)>().unwrap(), ("state".into(), 1));
    }
}
