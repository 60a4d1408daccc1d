//! Event validation and encoding (V2, S3).
//!
//! An event is encoded to its wire JSON once, when it is tracked; batches and the
//! journal only ever copy those bytes. This module does not know about batches.

use std::fmt;

use bytes::BytesMut;
use serde::Serialize;

use crate::error::EventError;

/// Longest event name (V2).
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// Largest encoded attributes object (V2).
pub const MAX_ATTRIBUTES_BYTES: usize = 32 * 1024;

/// An event checked and half encoded: its name and attributes as wire JSON, waiting
/// for the sequence number and timestamp that tracking gives it.
///
/// Serializing the attributes is most of a track's cost and needs no state, so a
/// driver prepares an event before it takes the lock around its [`crate::Client`], and
/// holds the lock only for [`crate::Client::handle_track_prepared`]: threads that
/// track do not stall the thread that sends.
///
/// ```
/// use authsync_core::{Client, Config, Now, PreparedEvent};
/// use serde_json::json;
/// let event = PreparedEvent::new("purchase", &json!({"sku": "A1"})).unwrap();
/// let mut client = Client::new(Config::new("app", "http://127.0.0.1:9"), Now::new(0, 0)).unwrap();
/// assert_eq!(client.handle_track_prepared(Now::new(1, 1), &event).seq, 1);
/// assert!(PreparedEvent::new("", &json!({})).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreparedEvent {
    /// The event's text around its two numbers: `,"name":…,"ts_ms":` up to
    /// `ts_at`, then `,"attrs":{…}}`; tracking writes `{"seq":N`, the first part, the
    /// timestamp and the second part (four copies, where a piece per field cost a
    /// tenth more per track).
    json: Vec<u8>,
    ts_at: usize,
}

impl fmt::Debug for PreparedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Attributes may carry personal data; their size says enough.
        let name = self
            .json
            .get(NAME_KEY.len()..self.ts_at.saturating_sub(TS_KEY.len()))
            .unwrap_or_default();
        f.debug_struct("PreparedEvent")
            .field("name", &String::from_utf8_lossy(name))
            .field("attrs_bytes", &self.attrs_len())
            .finish()
    }
}

const SEQ_KEY: &[u8] = b"{\"seq\":";
const NAME_KEY: &[u8] = b",\"name\":";
const TS_KEY: &[u8] = b",\"ts_ms\":";
const ATTRS_KEY: &[u8] = b",\"attrs\":";

impl PreparedEvent {
    /// Checks `name` and `attrs` (V2) and encodes them.
    ///
    /// # Errors
    /// [`EventError`] for an empty or over-long name, attributes that are not a JSON
    /// object, are larger than [`MAX_ATTRIBUTES_BYTES`], or do not serialize.
    pub fn new<A: Serialize + ?Sized>(name: &str, attrs: &A) -> Result<Self, EventError> {
        let mut event = Self::default();
        event.refill(name, attrs)?;
        Ok(event)
    }

    /// Replaces this event's content, reusing its buffer.
    pub(crate) fn refill<A: Serialize + ?Sized>(
        &mut self,
        name: &str,
        attrs: &A,
    ) -> Result<(), EventError> {
        if name.is_empty() {
            return Err(EventError::EmptyName);
        }
        if name.len() > MAX_EVENT_NAME_BYTES {
            return Err(EventError::NameTooLong { len: name.len() });
        }
        self.json.clear();
        self.json.extend_from_slice(NAME_KEY);
        write_json(&mut self.json, name)?;
        self.json.extend_from_slice(TS_KEY);
        self.ts_at = self.json.len();
        self.json.extend_from_slice(ATTRS_KEY);
        let attrs_start = self.json.len();
        write_json(&mut self.json, attrs)?;
        if self.json.get(attrs_start) != Some(&b'{') {
            return Err(EventError::AttributesNotObject);
        }
        self.json.push(b'}');
        let attrs_len = self.attrs_len();
        if attrs_len > MAX_ATTRIBUTES_BYTES {
            return Err(EventError::AttributesTooLarge { len: attrs_len });
        }
        Ok(())
    }

    fn attrs_len(&self) -> usize {
        self.json
            .len()
            .saturating_sub(self.ts_at + ATTRS_KEY.len() + 1)
    }

    /// Appends `{"seq":…,"name":…,"ts_ms":…,"attrs":{…}}` to `out`; returns its length.
    pub(crate) fn write_tracked(&self, seq: u64, ts_ms: u64, out: &mut BytesMut) -> usize {
        let mut seq_text = itoa::Buffer::new();
        let mut ts_text = itoa::Buffer::new();
        let seq_text = seq_text.format(seq).as_bytes();
        let ts_text = ts_text.format(ts_ms).as_bytes();
        let (head, tail) = self.json.split_at(self.ts_at);
        let len = SEQ_KEY.len() + seq_text.len() + self.json.len() + ts_text.len();
        out.reserve(len);
        out.extend_from_slice(SEQ_KEY);
        out.extend_from_slice(seq_text);
        out.extend_from_slice(head);
        out.extend_from_slice(ts_text);
        out.extend_from_slice(tail);
        len
    }
}

/// The `seq` an event written by [`PreparedEvent::write_tracked`] starts with; recovery
/// reads it from events found after lost records (D5).
pub(crate) fn tracked_seq(event: &[u8]) -> Option<u64> {
    let digits = event.strip_prefix(SEQ_KEY)?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    // Read on every journal frame at a restart: digits straight to a number, without
    // the UTF-8 check and the generic parser (the same result, overflow included).
    (end > 0).then_some(())?;
    digits[..end].iter().try_fold(0u64, |number, digit| {
        number.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), EventError> {
    serde_json::to_writer(out, value).map_err(|e| EventError::AttributesUnencodable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn encode(name: &str, attrs: &serde_json::Value) -> Result<String, EventError> {
        let mut out = BytesMut::from(&b"kept"[..]);
        let len = PreparedEvent::new(name, attrs)?.write_tracked(7, 1_700_000_000_000, &mut out);
        assert_eq!(len + 4, out.len());
        Ok(String::from_utf8(out[4..].to_vec()).unwrap())
    }

    #[test]
    fn d5_the_seq_of_a_tracked_event_reads_back() {
        let mut out = BytesMut::new();
        PreparedEvent::new("e", &json!({}))
            .unwrap()
            .write_tracked(12_345, 1, &mut out);
        assert_eq!(tracked_seq(&out), Some(12_345));
        assert_eq!(tracked_seq(b"{\"seq\":"), None);
        assert_eq!(tracked_seq(b"{\"name\":1}"), None);
        assert_eq!(tracked_seq(b"{\"seq\":,"), None, "no digits");
        assert_eq!(tracked_seq(b"{\"seq\":007,"), Some(7));
        assert_eq!(
            tracked_seq(b"{\"seq\":18446744073709551615,"),
            Some(u64::MAX)
        );
        assert_eq!(
            tracked_seq(b"{\"seq\":18446744073709551616,"),
            None,
            "past u64"
        );
    }

    #[test]
    fn s3_event_wire_shape() {
        assert_eq!(
            encode("open \"app\"", &json!({"a": 1})).unwrap(),
            r#"{"seq":7,"name":"open \"app\"","ts_ms":1700000000000,"attrs":{"a":1}}"#
        );
    }

    #[test]
    fn a_prepared_event_shows_its_name_not_its_attributes() {
        let event = PreparedEvent::new("login", &json!({"email": "a@example.com"})).unwrap();
        let shown = format!("{event:?}");
        assert!(shown.contains("login"), "{shown}");
        assert!(shown.contains("attrs_bytes: 25"), "{shown}");
        assert!(!shown.contains("example.com"), "{shown}");
    }

    #[test]
    fn v2_invalid_events_are_typed_errors() {
        assert_eq!(encode("", &json!({})), Err(EventError::EmptyName));
        assert_eq!(
            encode(&"n".repeat(257), &json!({})),
            Err(EventError::NameTooLong { len: 257 })
        );
        assert!(encode(&"n".repeat(256), &json!({})).is_ok());
        for attrs in [json!([]), json!(1), json!("s"), json!(null)] {
            assert_eq!(encode("e", &attrs), Err(EventError::AttributesNotObject));
        }
        let big = json!({ "k": "x".repeat(MAX_ATTRIBUTES_BYTES) });
        assert!(matches!(
            encode("e", &big),
            Err(EventError::AttributesTooLarge { .. })
        ));
        let mut non_string_keys = BTreeMap::new();
        non_string_keys.insert(vec![1u8], 1);
        assert!(matches!(
            PreparedEvent::new("e", &non_string_keys),
            Err(EventError::AttributesUnencodable(_))
        ));
    }
}
