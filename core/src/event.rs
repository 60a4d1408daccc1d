//! Event validation and encoding (V2, S3).
//!
//! An event is encoded to its wire JSON once, when it is tracked; batches and the
//! journal only ever copy those bytes. This module does not know about batches.

use serde::Serialize;

use crate::error::EventError;

/// Longest event name (V2).
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// Largest encoded attributes object (V2).
pub const MAX_ATTRIBUTES_BYTES: usize = 32 * 1024;

/// Encodes `{"seq":…,"name":…,"ts_ms":…,"attrs":{…}}` into `out` (cleared first).
///
/// `out` is a scratch buffer the caller reuses: serde_json writes in many small pieces,
/// which a `Vec` takes fastest.
pub(crate) fn encode_event<A: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    seq: u64,
    name: &str,
    ts_ms: u64,
    attrs: &A,
) -> Result<(), EventError> {
    if name.is_empty() {
        return Err(EventError::EmptyName);
    }
    if name.len() > MAX_EVENT_NAME_BYTES {
        return Err(EventError::NameTooLong { len: name.len() });
    }
    out.clear();
    out.extend_from_slice(b"{\"seq\":");
    write_json(out, &seq)?;
    out.extend_from_slice(b",\"name\":");
    write_json(out, name)?;
    out.extend_from_slice(b",\"ts_ms\":");
    write_json(out, &ts_ms)?;
    out.extend_from_slice(b",\"attrs\":");
    let attrs_start = out.len();
    write_json(out, attrs)?;
    let attrs_len = out.len() - attrs_start;
    if out.get(attrs_start) != Some(&b'{') {
        return Err(EventError::AttributesNotObject);
    }
    if attrs_len > MAX_ATTRIBUTES_BYTES {
        return Err(EventError::AttributesTooLarge { len: attrs_len });
    }
    out.push(b'}');
    Ok(())
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
        let mut out = Vec::new();
        encode_event(&mut out, 7, name, 1_700_000_000_000, attrs)?;
        Ok(String::from_utf8(out).unwrap())
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
        let mut out = Vec::new();
        assert!(matches!(
            encode_event(&mut out, 1, "e", 0, &non_string_keys),
            Err(EventError::AttributesUnencodable(_))
        ));
    }
}
