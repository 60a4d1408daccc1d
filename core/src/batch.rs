//! Batches: the open batch that events are appended to, and sealed batches with their
//! request body (S1, S3, A5, D3).
//!
//! Sealing moves the open batch's events, it does not copy them. A sealed batch's body
//! is built once, the first time it is sent, and every later send clones the same
//! `Bytes` (S3). Before that, the batch holds its events joined by commas; after, its
//! body; either way one copy of each event plus four bytes of offset, so restoring a
//! journal never builds bodies it may not send yet. A sealed batch's events are
//! `Bytes`: splitting (A5), trimming (D3) and restoring from a snapshot slice them
//! instead of copying (a restored batch shares the snapshot's buffer until it is sent).
//! This module decides nothing about when to seal or send; it only builds and cuts
//! batches.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::owner::Owner;

/// Events of one owner, joined by commas, with the end offset of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EventRun {
    joined: Vec<u8>,
    ends: Vec<u32>,
}

impl EventRun {
    /// An empty run with room for `events` events joined into `bytes` bytes.
    pub(crate) fn with_capacity(events: usize, bytes: usize) -> Self {
        Self {
            joined: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(events),
        }
    }

    pub(crate) fn push(&mut self, event: &[u8]) {
        if !self.ends.is_empty() {
            self.joined.push(b',');
        }
        self.joined.extend_from_slice(event);
        self.ends.push(offset(self.joined.len()));
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn joined_len(&self) -> usize {
        self.joined.len()
    }

    /// Removes the `count` oldest events.
    pub(crate) fn drop_front(&mut self, count: usize) {
        let count = count.min(self.len());
        if count == self.len() {
            *self = Self::default();
            return;
        }
        let cut = self.ends[count - 1] as usize + 1;
        self.joined.drain(..cut);
        self.ends.drain(..count);
        let shift = offset(cut);
        for end in &mut self.ends {
            *end -= shift;
        }
    }

    #[cfg(test)]
    fn from_events<'a>(events: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut run = Self::default();
        for event in events {
            run.push(event);
        }
        run
    }

    /// Rebuilds a run from persisted parts, refusing offsets that do not fit.
    pub(crate) fn from_parts(joined: Vec<u8>, ends: Vec<u32>) -> Option<Self> {
        parts_fit(&joined, &ends).then_some(Self { joined, ends })
    }
}

/// Whether `ends` are the ends of non-empty, comma-separated events filling `joined`.
fn parts_fit(joined: &[u8], ends: &[u32]) -> bool {
    let mut start = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        let separator_ok = i == 0 || joined.get(start.wrapping_sub(1)) == Some(&b',');
        if end <= start || end > joined.len() || !separator_ok {
            return false;
        }
        start = end + 1;
    }
    ends.last()
        .map_or(joined.is_empty(), |&e| e as usize == joined.len())
}

/// A sealed batch's events before its first send: joined by commas, shared.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SealedRun {
    joined: Bytes,
    ends: Vec<u32>,
}

impl SealedRun {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Events `range` as a run of their own, sharing the bytes.
    fn slice(&self, range: std::ops::Range<usize>) -> Self {
        if range.is_empty() {
            return Self {
                joined: Bytes::new(),
                ends: Vec::new(),
            };
        }
        let start = if range.start == 0 {
            0
        } else {
            self.ends[range.start - 1] as usize + 1
        };
        let end = self.ends[range.end - 1] as usize;
        let shift = offset(start);
        Self {
            joined: self.joined.slice(start..end),
            ends: self.ends[range].iter().map(|e| e - shift).collect(),
        }
    }
}

fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn event_in<'a>(bytes: &'a [u8], first_start: u32, ends: &[u32], index: usize) -> &'a [u8] {
    let start = if index == 0 {
        first_start as usize
    } else {
        ends[index - 1] as usize + 1
    };
    &bytes[start..ends[index] as usize]
}

/// The batch still receiving the current owner's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenBatch {
    pub(crate) owner: Owner,
    pub(crate) first_unix_ms: u64,
    pub(crate) run: EventRun,
}

/// What every body of a client has in common: the parts of the envelope that do not
/// depend on the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) install_id: String,
    pub(crate) app_id: String,
}

/// The envelope's fixed text, rounded up (S1: a body never passes the byte limit).
const ENVELOPE_TEXT_BYTES: usize = 80;

/// Longest decimal `u64`: the batch number part of a batch id.
const MAX_NUMBER_DIGITS: usize = 20;

impl Envelope {
    pub(crate) fn batch_id(&self, number: u64) -> String {
        format!("{}-{number}", self.install_id)
    }

    fn prefix(&self, number: u64, owner: &Owner) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix_len_bound(owner));
        out.extend_from_slice(b"{\"batch_id\":\"");
        out.extend_from_slice(self.batch_id(number).as_bytes());
        out.extend_from_slice(b"\",\"app_id\":");
        push_json_str(&mut out, &self.app_id);
        out.extend_from_slice(b",\"user\":{\"type\":\"");
        out.extend_from_slice(owner.wire_type().as_bytes());
        out.extend_from_slice(b"\",\"id\":");
        push_json_str(&mut out, owner.id());
        out.extend_from_slice(b"},\"events\":[");
        out
    }

    /// An upper bound on the envelope's length for `owner`, whatever the batch number;
    /// used to seal a batch before its body would pass the byte limit.
    pub(crate) fn overhead_bound(&self, owner: &Owner) -> usize {
        self.prefix_len_bound(owner) + SUFFIX.len()
    }

    fn prefix_len_bound(&self, owner: &Owner) -> usize {
        // Escaping grows a string at most six-fold (`\u00XX`), plus its quotes.
        let json_str_bound = |s: &str| s.len() * 6 + 2;
        // The fixed text (`{"batch_id":"`, the dash of the id, `","app_id":`,
        // `,"user":{"type":"identified","id":` and `},"events":[`) is 71 bytes.
        ENVELOPE_TEXT_BYTES
            + self.install_id.len()
            + MAX_NUMBER_DIGITS
            + json_str_bound(&self.app_id)
            + json_str_bound(owner.id())
    }

    /// Seals `run` as batch `number` of `owner`: a move, not a copy.
    pub(crate) fn seal(&self, number: u64, owner: Owner, mut run: EventRun) -> Batch {
        // A sealed batch keeps exactly its bytes (D3's memory bound counts on it).
        run.joined.shrink_to_fit();
        run.ends.shrink_to_fit();
        Batch::sealed(
            number,
            owner,
            SealedRun {
                joined: Bytes::from(run.joined),
                ends: run.ends,
            },
        )
    }

    /// The body of `batch`, built the first time it is asked for: every later call
    /// returns the same bytes (S3).
    pub(crate) fn body_of(&self, batch: &mut Batch) -> Bytes {
        if let Content::Run(run) = &batch.content {
            let mut body = self.prefix(batch.number, &batch.owner);
            let events_start = offset(body.len());
            body.reserve_exact(run.joined.len() + SUFFIX.len());
            body.extend_from_slice(&run.joined);
            body.extend_from_slice(SUFFIX);
            let ends = run.ends.iter().map(|end| end + events_start).collect();
            batch.content = Content::Body {
                body: Bytes::from(body),
                events_start,
                ends,
            };
        }
        match &batch.content {
            Content::Body { body, .. } => body.clone(),
            Content::Run(_) => Bytes::new(),
        }
    }
}

const SUFFIX: &[u8] = b"]}";

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail: serde_json only errors on I/O or on
    // non-string map keys, neither of which applies.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A sealed batch: a stable number (its id is `{install_id}-{number}`), one owner, and
/// its events: as a run until its first send, then as the body every send sends.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    pub(crate) number: u64,
    pub(crate) owner: Owner,
    /// Whether a request for it was ever sent: from then on its id may be known to the
    /// server, so it is never re-cut under the same id.
    pub(crate) attempted: bool,
    /// The lsn of the record that gave the batch its number and events (a seal, a
    /// split, a trim): it may be sent once that record is stored (D4). Runtime only.
    pub(crate) content_lsn: u64,
    content: Content,
}

#[derive(Clone, Debug)]
enum Content {
    /// Not sent yet: the events, joined by commas.
    Run(SealedRun),
    /// Sent at least once (or about to be): the body, and where each event ends in it.
    Body {
        body: Bytes,
        events_start: u32,
        ends: Vec<u32>,
    },
}

/// Two batches are the same when they hold the same events under the same identity,
/// whether or not one of them has built its body yet.
impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
            && self.owner == other.owner
            && self.attempted == other.attempted
            && self.events().eq(other.events())
    }
}

impl Eq for Batch {}

impl Batch {
    fn sealed(number: u64, owner: Owner, run: SealedRun) -> Self {
        Self {
            number,
            owner,
            attempted: false,
            content_lsn: 0,
            content: Content::Run(run),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.content {
            Content::Run(run) => run.len(),
            Content::Body { ends, .. } => ends.len(),
        }
    }

    /// Bytes of its events joined by commas.
    pub(crate) fn joined_len(&self) -> usize {
        match &self.content {
            Content::Run(run) => run.joined.len(),
            Content::Body {
                body, events_start, ..
            } => body.len() - *events_start as usize - SUFFIX.len(),
        }
    }

    fn event(&self, index: usize) -> &[u8] {
        match &self.content {
            Content::Run(run) => event_in(&run.joined, 0, &run.ends, index),
            Content::Body {
                body,
                events_start,
                ends,
            } => event_in(body, *events_start, ends, index),
        }
    }

    fn events(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.event(i))
    }

    /// The events as a shared run, whatever the batch's form: no copy.
    fn sealed_run(&self) -> SealedRun {
        match &self.content {
            Content::Run(run) => run.clone(),
            Content::Body {
                body,
                events_start,
                ends,
            } => SealedRun {
                joined: body.slice(*events_start as usize..body.len() - SUFFIX.len()),
                ends: ends.iter().map(|end| end - events_start).collect(),
            },
        }
    }

    #[cfg(test)]
    fn run(&self) -> EventRun {
        EventRun::from_events(self.events())
    }

    /// Splits into two halves, the first taking the odd event (A5), as batches
    /// `first` and `second`, sharing the events' bytes. Needs at least two events.
    pub(crate) fn split(&self, first: u64, second: u64) -> [Self; 2] {
        let run = self.sealed_run();
        let head = run.len().div_ceil(2);
        [
            Self::sealed(first, self.owner.clone(), run.slice(0..head)),
            Self::sealed(second, self.owner.clone(), run.slice(head..run.len())),
        ]
    }

    /// The same batch without its `count` oldest events (D3), sharing the bytes. Only
    /// for batches never attempted, whose id nobody has seen.
    pub(crate) fn without_front(&self, count: usize) -> Self {
        let run = self.sealed_run();
        let count = count.min(run.len());
        Self::sealed(self.number, self.owner.clone(), run.slice(count..run.len()))
    }
}

/// How a sealed batch is persisted in a snapshot: its events, not its body, which is
/// rebuilt at its first send. Read back, the events borrow from the snapshot's bytes.
#[derive(Serialize, Deserialize)]
pub(crate) struct PersistedBatch<'a> {
    pub(crate) number: u64,
    pub(crate) owner: Owner,
    pub(crate) attempted: bool,
    #[serde(borrow)]
    pub(crate) joined: RawBytes<'a>,
    pub(crate) ends: PersistedEnds,
}

impl<'a> PersistedBatch<'a> {
    pub(crate) fn from_batch(batch: &'a Batch) -> Self {
        let (joined, ends): (&'a [u8], Vec<u32>) = match &batch.content {
            Content::Run(run) => (&run.joined, run.ends.clone()),
            Content::Body {
                body,
                events_start,
                ends,
            } => (
                &body[*events_start as usize..body.len() - SUFFIX.len()],
                ends.iter().map(|end| end - events_start).collect(),
            ),
        };
        Self {
            number: batch.number,
            owner: batch.owner.clone(),
            attempted: batch.attempted,
            joined: RawBytes(joined),
            ends: PersistedEnds(ends),
        }
    }

    /// The batch, its events sliced from `source` (the buffer `joined` borrows from).
    pub(crate) fn into_batch(self, source: &Bytes) -> Option<Batch> {
        if self.ends.0.is_empty() || !parts_fit(self.joined.0, &self.ends.0) {
            return None;
        }
        let run = SealedRun {
            joined: source.slice_ref(self.joined.0),
            ends: self.ends.0,
        };
        let mut batch = Batch::sealed(self.number, self.owner, run);
        batch.attempted = self.attempted;
        Some(batch)
    }
}

/// Bytes written as one byte string and read back borrowed: the snapshot's events are
/// neither re-encoded element by element nor copied out of the file's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawBytes<'a>(pub(crate) &'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawBytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Borrowed;
        impl<'de> serde::de::Visitor<'de> for Borrowed {
            type Value = RawBytes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a borrowed byte string")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<Self::Value, E> {
                Ok(RawBytes(bytes))
            }
        }
        deserializer.deserialize_bytes(Borrowed)
    }
}

/// Event end offsets as one byte string of little-endian `u32`s: read back with a
/// single pass instead of a varint decode per event (a tenth of a restart).
pub(crate) struct PersistedEnds(pub(crate) Vec<u32>);

impl Serialize for PersistedEnds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|end| end.to_le_bytes()).collect();
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for PersistedEnds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let RawBytes(bytes) = RawBytes::deserialize(deserializer)?;
        let (words, []) = bytes.as_chunks::<4>() else {
            return Err(serde::de::Error::invalid_length(
                bytes.len(),
                &"a multiple of four bytes",
            ));
        };
        Ok(Self(
            words.iter().map(|word| u32::from_le_bytes(*word)).collect(),
        ))
    }
}

/// How the open batch is persisted in a snapshot.
#[derive(Serialize, Deserialize)]
pub(crate) struct PersistedOpenBatch<'a> {
    pub(crate) owner: Owner,
    pub(crate) first_unix_ms: u64,
    #[serde(borrow)]
    pub(crate) joined: RawBytes<'a>,
    pub(crate) ends: PersistedEnds,
}

impl<'a> PersistedOpenBatch<'a> {
    pub(crate) fn from_open(open: &'a OpenBatch) -> Self {
        Self {
            owner: open.owner.clone(),
            first_unix_ms: open.first_unix_ms,
            joined: RawBytes(&open.run.joined),
            ends: PersistedEnds(open.run.ends.clone()),
        }
    }

    /// The open batch; its events are copied, since it keeps growing.
    pub(crate) fn into_open(self) -> Option<OpenBatch> {
        let run = EventRun::from_parts(self.joined.0.to_vec(), self.ends.0)?;
        (run.len() > 0).then_some(OpenBatch {
            owner: self.owner,
            first_unix_ms: self.first_unix_ms,
            run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            install_id: "00ff".into(),
            app_id: "app".into(),
        }
    }

    #[test]
    fn d2_persisted_ends_round_trip_and_refuse_a_ragged_length() {
        let ends = PersistedEnds(vec![2, 5, 70_000]);
        let bytes = postcard::to_allocvec(&ends).unwrap();
        let read: PersistedEnds = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(read.0, ends.0);
        let ragged = postcard::to_allocvec(&RawBytes(&[1, 0, 0])).unwrap();
        assert!(postcard::from_bytes::<PersistedEnds>(&ragged).is_err());
    }

    fn run_of(events: &[&str]) -> EventRun {
        EventRun::from_events(events.iter().map(|e| e.as_bytes()))
    }

    #[test]
    fn s3_sealed_body_is_the_wire_json() {
        let mut batch = envelope().seal(
            3,
            Owner::Identified("u\"1".into()),
            run_of(&["{\"a\":1}", "{}"]),
        );
        let body = envelope().body_of(&mut batch);
        assert_eq!(
            body,
            envelope().body_of(&mut batch),
            "built once, the same bytes"
        );
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"batch_id":"00ff-3","app_id":"app","user":{"type":"identified","id":"u\"1"},"events":[{"a":1},{}]}"#
        );
        let events: Vec<&[u8]> = batch.events().collect();
        assert_eq!(events, vec![&b"{\"a\":1}"[..], &b"{}"[..]]);
        assert!(
            body.len()
                <= envelope().overhead_bound(&batch.owner)
                    + run_of(&["{\"a\":1}", "{}"]).joined_len()
        );
    }

    #[test]
    fn s1_overhead_bound_holds_for_the_worst_escaping_and_stays_close() {
        // Control characters escape six-fold: the worst case of the bound.
        let envelope = Envelope {
            install_id: "00ff00ff00ff00ff".into(),
            app_id: "\u{1}".repeat(40),
        };
        let owner = Owner::Identified("\u{1}".repeat(50));
        let mut batch = envelope.seal(u64::MAX, owner.clone(), EventRun::default());
        let body = envelope.body_of(&mut batch);
        let bound = envelope.overhead_bound(&owner);
        assert!(body.len() <= bound, "{} > {bound}", body.len());
        // The only slack left is the fixed text's rounding: a looser bound would seal
        // batches early.
        assert_eq!(bound - body.len(), ENVELOPE_TEXT_BYTES - 71);
    }

    #[test]
    fn a5_split_gives_the_odd_event_to_the_first_half() {
        let batch = envelope().seal(1, Owner::Anonymous("x".into()), run_of(&["{}", "[]", "1"]));
        let [first, second] = batch.split(5, 6);
        assert_eq!(first.run(), run_of(&["{}", "[]"]));
        assert_eq!(second.run(), run_of(&["1"]));
        assert_eq!((first.number, second.number), (5, 6));
    }

    #[test]
    fn d3_drop_front_keeps_the_newest() {
        let mut run = run_of(&["a", "bb", "ccc"]);
        run.drop_front(1);
        assert_eq!(run, run_of(&["bb", "ccc"]));
        run.drop_front(5);
        assert_eq!(run, EventRun::default());
        let batch = envelope().seal(9, Owner::Anonymous("x".into()), run_of(&["a", "b"]));
        assert_eq!(batch.without_front(1).run(), run_of(&["b"]));
    }

    #[test]
    fn batches_are_equal_by_identity_and_events_not_by_form() {
        let owner = Owner::Anonymous("x".into());
        let base = || envelope().seal(4, owner.clone(), run_of(&["{}", "[]"]));
        let mut sent = base();
        let _ = envelope().body_of(&mut sent);
        assert_eq!(base(), sent, "a built body changes nothing");
        let mut attempted = base();
        attempted.attempted = true;
        let others = [
            envelope().seal(5, owner.clone(), run_of(&["{}", "[]"])),
            envelope().seal(4, Owner::Identified("x".into()), run_of(&["{}", "[]"])),
            attempted,
            envelope().seal(4, owner.clone(), run_of(&["{}", "[1]"])),
        ];
        for other in others {
            assert_ne!(base(), other);
        }
    }

    #[test]
    fn joined_len_is_the_events_with_their_commas_before_and_after_the_body_is_built() {
        let mut batch = envelope().seal(4, Owner::Anonymous("x".into()), run_of(&["{}", "[1]"]));
        assert_eq!(batch.joined_len(), "{},[1]".len());
        let _ = envelope().body_of(&mut batch);
        assert_eq!(batch.joined_len(), "{},[1]".len());
    }

    #[test]
    fn raw_bytes_say_what_they_expected() {
        let error = serde_json::from_str::<RawBytes<'_>>("1").unwrap_err();
        assert!(
            error.to_string().contains("a borrowed byte string"),
            "{error}"
        );
    }

    impl EventRun {
        pub(crate) fn capacity(&self) -> (usize, usize) {
            (self.ends.capacity(), self.joined.capacity())
        }
    }

    #[test]
    fn persisted_parts_are_checked() {
        assert!(EventRun::from_parts(b"a,b".to_vec(), vec![1, 3]).is_some());
        assert!(EventRun::from_parts(b"a,b".to_vec(), vec![1, 2]).is_none());
        assert!(EventRun::from_parts(b"ab".to_vec(), vec![1, 2]).is_none());
        assert!(EventRun::from_parts(b"a,b".to_vec(), vec![3, 1]).is_none());
        assert!(EventRun::from_parts(b"a,b".to_vec(), vec![1, 9]).is_none());
        assert!(EventRun::from_parts(Vec::new(), Vec::new()).is_some());
        // An end before its start, or an event not preceded by a comma.
        assert!(EventRun::from_parts(b"a,b,c".to_vec(), vec![1, 1, 5]).is_none());
        assert!(EventRun::from_parts(b"abc".to_vec(), vec![1, 3]).is_none());
        assert!(
            PersistedOpenBatch {
                owner: Owner::Anonymous("x".into()),
                first_unix_ms: 0,
                joined: RawBytes(&[]),
                ends: PersistedEnds(Vec::new()),
            }
            .into_open()
            .is_none(),
            "an empty open batch is no open batch"
        );
        let mut batch = envelope().seal(
            2,
            Owner::Anonymous("x".into()),
            run_of(&["{}", "{\"k\":2}"]),
        );
        let restored = through_snapshot(&batch);
        assert_eq!(restored, batch);
        // After its first send the batch holds its body: it persists the same events.
        let _ = envelope().body_of(&mut batch);
        let restored = through_snapshot(&batch);
        assert_eq!(restored, batch);
        assert_eq!(restored.run(), batch.run());
        // Offsets that do not fit are refused.
        let bytes = Bytes::from_static(b"{},{}");
        let damaged = PersistedBatch {
            number: 1,
            owner: Owner::Anonymous("x".into()),
            attempted: false,
            joined: RawBytes(&bytes),
            ends: PersistedEnds(vec![2, 9]),
        };
        assert!(damaged.into_batch(&bytes).is_none());
    }

    /// A batch written as in a snapshot and read back borrowing from the written bytes.
    fn through_snapshot(batch: &Batch) -> Batch {
        let bytes = Bytes::from(postcard::to_allocvec(&PersistedBatch::from_batch(batch)).unwrap());
        let persisted: PersistedBatch<'_> = postcard::from_bytes(&bytes).unwrap();
        let restored = persisted.into_batch(&bytes).unwrap();
        let Content::Run(run) = &restored.content else {
            panic!("a restored batch is a run")
        };
        assert!(
            bytes.as_ptr_range().contains(&run.joined.as_ptr()),
            "no copy"
        );
        restored
    }
}
