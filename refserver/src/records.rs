//! What the server records for tests: the request log, accepted batches and events,
//! and counters.
//!
//! The request log keeps whole headers, `Authorization` included, because tests check
//! which token was sent; `Debug` output shortens tokens to a prefix all the same.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::jwt_check::VerifiedToken;
use crate::wire::User;

/// One request the server received (admin requests excluded), and its answer.
#[derive(Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path with its query, e.g. `/v1/report`.
    pub path: String,
    /// The headers in arrival order, names in lower case; values decoded lossily.
    #[serde(serialize_with = "pairs")]
    pub headers: Vec<(String, String)>,
    /// The body bytes read (at most the body limit).
    #[serde(serialize_with = "lossy_text")]
    pub body: Vec<u8>,
    /// False when the body was longer than the limit (then `body` is its start).
    pub body_complete: bool,
    /// The fault applied to this request, described (see [`crate::Fault::describe`]).
    pub fault: Option<String>,
    /// The answer.
    pub response: LoggedResponse,
}

/// The answer to a logged request.
#[derive(Clone, PartialEq, Serialize)]
pub struct LoggedResponse {
    /// The status; `None` when the connection was closed without an answer.
    pub status: Option<u16>,
    /// The headers set by the server (hyper adds `date` and `content-length`).
    #[serde(serialize_with = "pairs")]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(serialize_with = "lossy_text")]
    pub body: Vec<u8>,
}

impl LoggedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The token of a `Bearer` `Authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }

    /// The body as JSON, if it is.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl LoggedResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `error.code` of a JWT error body.
    pub fn error_code(&self) -> Option<String> {
        self.json()?
            .pointer("/error/code")?
            .as_str()
            .map(str::to_owned)
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A token shortened for `Debug` output: the scheme and a few characters at most.
pub(crate) fn redact_authorization(value: &str) -> String {
    let prefix: String = value.chars().take(16).collect();
    if prefix.len() < value.len() {
        format!("{prefix}… ({} bytes)", value.len())
    } else {
        prefix
    }
}

fn redacted_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("authorization") {
                (n.clone(), redact_authorization(v))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

impl fmt::Debug for LoggedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &redacted_headers(&self.headers))
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("body_complete", &self.body_complete)
            .field("fault", &self.fault)
            .field("response", &self.response)
            .finish()
    }
}

impl fmt::Debug for LoggedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

fn pairs<S: Serializer>(headers: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let as_arrays: Vec<[&str; 2]> = headers
        .iter()
        .map(|(n, v)| [n.as_str(), v.as_str()])
        .collect();
    as_arrays.serialize(s)
}

fn lossy_text<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    String::from_utf8_lossy(bytes).serialize(s)
}

/// An accepted event, with the batch it came in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AcceptedEvent {
    /// The batch's app id.
    pub app_id: String,
    /// The batch id.
    pub batch_id: String,
    /// The batch's owner.
    pub user: User,
    /// The event's `seq`.
    pub seq: u64,
    /// The event's name.
    pub name: String,
    /// The event's `ts_ms`.
    pub ts_ms: i64,
    /// The event's attributes.
    pub attrs: Map<String, Value>,
}

/// An accepted (first-seen) batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AcceptedBatch {
    /// The app id.
    pub app_id: String,
    /// The batch id.
    pub batch_id: String,
    /// The owner.
    pub user: User,
    /// How many events it held (its `accepted` count).
    pub events: usize,
    /// The verified token, when one was checked (identified batch, enforcement on).
    pub auth: Option<VerifiedToken>,
}

/// Counters since the start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests logged (every non-admin request).
    pub requests: usize,
    /// Batches accepted for the first time.
    pub accepted_batches: usize,
    /// Events accepted (duplicates not counted again).
    pub accepted_events: usize,
    /// Requests answered `duplicate: true`.
    pub duplicates: usize,
    /// Requests answered 401 by the JWT checks (faults not counted).
    pub auth_failures: usize,
    /// Faults applied.
    pub faults_applied: usize,
    /// Accepted events per app id.
    pub accepted_by_app: BTreeMap<String, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shortens_the_token_but_the_record_keeps_it() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWJ5dGVz";
        let request = LoggedRequest {
            method: "POST".to_owned(),
            path: "/v1/report".to_owned(),
            headers: vec![("authorization".to_owned(), format!("Bearer {token}"))],
            body: b"{}".to_vec(),
            body_complete: true,
            fault: None,
            response: LoggedResponse {
                status: Some(200),
                headers: Vec::new(),
                body: Vec::new(),
            },
        };
        let debug = format!("{request:?}");
        assert!(!debug.contains(token), "{debug}");
        assert!(debug.contains("Bearer eyJhbGciO…"), "{debug}");
        assert_eq!(request.bearer_token(), Some(token));
    }
}
