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
    /// The name as a JSON string, then the attributes object from `attrs_start` on.
    json: Vec<u8>,
    attrs_start: usize,
}

impl fmt::Debug for PreparedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Attributes may carry personal data; their size says enough.
        f.debug_struct("PreparedEvent")
            .field(
                "name",
                &String::from_utf8_lossy(&self.json[..self.attrs_start]),
            )
            .field("attrs_bytes", &(self.json.len() - self.attrs_start))
            .finish()
    }
}

const SEQ_KEY: &[u8] = b"{\"seq\":";
const NAME_KEY: &[u8] = b",\"name\":";
const TS_KEY: &[u8] = b",\"ts_ms\":";
const ATTRS_KEY: &[u8] = b",\"attrs\":";
const FIXED_TEXT_BYTES: usize = SEQ_KEY.len() + NAME_KEY.len() + TS_KEY.len() + ATTRS_KEY.len() + 1;

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
        write_json(&mut self.json, name)?;
        self.attrs_start = self.json.len();
        write_json(&mut self.json, attrs)?;
        if self.json.get(self.attrs_start) != Some(&b'{') {
            return Err(EventError::AttributesNotObject);
        }
        let attrs_len = self.json.len() - self.attrs_start;
        if attrs_len > MAX_ATTRIBUTES_BYTES {
            return Err(EventError::AttributesTooLarge { len: attrs_len });
        }
        Ok(())
    }

    /// Appends `{"seq":…,"name":…,"ts_ms":…,"attrs":{…}}` to `out`, returning its
    /// length.
    pub(crate) fn write_tracked(&self, seq: u64, ts_ms: u64, out: &mut BytesMut) -> usize {
        let mut seq_text = itoa::Buffer::new();
        let seq_text = seq_text.format(seq).as_bytes();
        let mut ts_text = itoa::Buffer::new();
        let ts_text = ts_text.format(ts_ms).as_bytes();
        let (name, attrs) = self.json.split_at(self.attrs_start);
        let len = FIXED_TEXT_BYTES + seq_text.len() + ts_text.len() + self.json.len();
        out.reserve(len);
        for part in [
            SEQ_KEY, seq_text, NAME_KEY, name, TS_KEY, ts_text, ATTRS_KEY, attrs, b"}",
        ] {
            out.extend_from_slice(part);
        }
        len
    }
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
        let mut out = BytesMut::new();
        let len = PreparedEvent::new(name, attrs)?.write_tracked(7, 1_700_000_000_000, &mut out);
        assert_eq!(len, out.len());
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn s3_event_wire_shape() {
        assert_eq!(
            encode("open \"app\"", &json!({"a": 1})).unwrap(),
            r#"{"seq":7,"name":"open \"app\"","ts_ms":1700000000000,"attrs":{"a":1}}"#
        );
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
