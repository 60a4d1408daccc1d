//! Wire protocol v1 (section 4 of the rules document): the request body and the response bodies.
//!
//! Parsing is strict, because a reference server that accepts what the contract does
//! not would hide client bugs: every field of the body must be there with its type;
//! unknown extra fields are ignored so that the protocol can grow.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The path of the report endpoint.
pub const REPORT_PATH: &str = "/v1/report";

/// Whether a batch's user is identified or anonymous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserKind {
    /// An identified user (needs a token under enforcement).
    Identified,
    /// An anonymous user (never needs a token).
    Anonymous,
}

impl UserKind {
    /// `identified` or `anonymous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identified => "identified",
            Self::Anonymous => "anonymous",
        }
    }
}

/// The owner of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct User {
    /// Identified or anonymous.
    #[serde(rename = "type")]
    pub kind: UserKind,
    /// The identifier, or the anonymous id.
    pub id: String,
}

/// One event of a batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The per-install counter, from 1.
    pub seq: u64,
    /// The event name.
    pub name: String,
    /// When it was tracked, Unix milliseconds.
    pub ts_ms: i64,
    /// The attributes (a JSON object).
    pub attrs: Map<String, Value>,
}

/// A parsed `POST /v1/report` body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Batch {
    /// The batch id (also the `Idempotency-Key`).
    pub batch_id: String,
    /// The app id (also `X-App-Id`).
    pub app_id: String,
    /// The owner.
    pub user: User,
    /// The events, at least one.
    pub events: Vec<Event>,
}

/// Parses and checks a report body; the error is a message for the 400 answer.
///
/// # Errors
/// A description of the first problem found.
pub fn parse_batch(body: &[u8]) -> Result<Batch, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
    let Value::Object(root) = value else {
        return Err("the body is not a JSON object".to_owned());
    };
    let batch_id = non_empty_string(&root, "batch_id", "")?;
    let app_id = non_empty_string(&root, "app_id", "")?;
    let user = match root.get("user") {
        Some(Value::Object(user)) => {
            let kind = match user.get("type").and_then(Value::as_str) {
                Some("identified") => UserKind::Identified,
                Some("anonymous") => UserKind::Anonymous,
                _ => return Err("user.type must be \"identified\" or \"anonymous\"".to_owned()),
            };
            User {
                kind,
                id: non_empty_string(user, "id", "user.")?,
            }
        }
        _ => return Err("user must be an object".to_owned()),
    };
    let events = match root.get("events") {
        Some(Value::Array(events)) if !events.is_empty() => events
            .iter()
            .enumerate()
            .map(|(i, event)| parse_event(i, event))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err("events must not be empty".to_owned()),
        _ => return Err("events must be an array".to_owned()),
    };
    Ok(Batch {
        batch_id,
        app_id,
        user,
        events,
    })
}

fn parse_event(index: usize, event: &Value) -> Result<Event, String> {
    let Value::Object(event) = event else {
        return Err(format!("events[{index}] is not an object"));
    };
    let prefix = format!("events[{index}].");
    let seq = event
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|seq| *seq >= 1)
        .ok_or_else(|| format!("{prefix}seq must be an integer from 1"))?;
    let name = non_empty_string(event, "name", &prefix)?;
    let ts_ms = event
        .get("ts_ms")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{prefix}ts_ms must be an integer"))?;
    let attrs = match event.get("attrs") {
        Some(Value::Object(attrs)) => attrs.clone(),
        _ => return Err(format!("{prefix}attrs must be an object")),
    };
    Ok(Event {
        seq,
        name,
        ts_ms,
        attrs,
    })
}

fn non_empty_string(
    object: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<String, String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("{prefix}{key} must be a non-empty string")),
    }
}

/// `{"status": "ok", "accepted": N, "duplicate": bool}`.
pub(crate) fn ok_body(accepted: usize, duplicate: bool) -> Vec<u8> {
    json!({"status": "ok", "accepted": accepted, "duplicate": duplicate})
        .to_string()
        .into_bytes()
}

/// `{"error": {"type": "jwt", "code": CODE, "message": "..."}}`.
pub(crate) fn jwt_error_body(code: &str, message: &str) -> Vec<u8> {
    json!({"error": {"type": "jwt", "code": code, "message": message}})
        .to_string()
        .into_bytes()
}

/// `{"error": {"type": TYPE, "message": "..."}}`.
pub(crate) fn error_body(kind: &str, message: &str) -> Vec<u8> {
    json!({"error": {"type": kind, "message": message}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: &Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn good() -> Value {
        json!({"batch_id": "b1", "app_id": "app", "user": {"type": "identified", "id": "u1"},
               "events": [{"seq": 1, "name": "e", "ts_ms": 1_700_000_000_000_i64, "attrs": {}}]})
    }

    #[test]
    fn parses_a_good_body() {
        let batch = parse_batch(&body(&good())).unwrap();
        assert_eq!(batch.user.kind, UserKind::Identified);
        assert_eq!(batch.events.len(), 1);
    }

    #[test]
    fn refuses_each_missing_or_mistyped_field() {
        let cases: [(&str, Value); 9] = [
            ("/batch_id", json!(1)),
            ("/app_id", json!("")),
            ("/user/type", json!("robot")),
            ("/user/id", json!(null)),
            ("/events", json!([])),
            ("/events/0/seq", json!(0)),
            ("/events/0/name", json!("")),
            ("/events/0/ts_ms", json!("x")),
            ("/events/0/attrs", json!([])),
        ];
        for (pointer, bad) in cases {
            let mut v = good();
            *v.pointer_mut(pointer).unwrap() = bad;
            assert!(parse_batch(&body(&v)).is_err(), "{pointer} accepted");
        }
        assert!(parse_batch(b"\xff\xfe").is_err());
        assert!(parse_batch(b"[]").is_err());
    }
}
