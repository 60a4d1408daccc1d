//! Scripted faults for the next requests to `POST /v1/report`.
//!
//! Faults wait in a FIFO queue; each request to the report path takes the first one
//! (whatever its method or body), so a fault always hits exactly one request. In the
//! HTTP admin API a fault is a JSON object (see [`Fault::list_from_json`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// One scripted fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this response without processing the request (it is logged, not stored).
    Respond(FaultResponse),
    /// Wait this long, then process the request normally.
    Delay(Duration),
    /// Read the request, then close the connection without any answer.
    Close,
    /// Process the request normally (storing an accepted batch), then fail the answer
    /// whatever the processing said, so that the client retries and must get
    /// `duplicate: true`.
    AcceptThenFail(AfterAccept),
}

/// How an [`Fault::AcceptThenFail`] fails after processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAccept {
    /// Answer this status (with an `injected` error body).
    Status(u16),
    /// Close the connection without any answer.
    Close,
}

/// The value of a `Retry-After` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Delay-seconds, e.g. `Retry-After: 2`.
    Seconds(u64),
    /// An HTTP date, e.g. `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
    Date(SystemTime),
    /// This text as is (malformed values, for robustness tests).
    Raw(String),
}

impl RetryAfter {
    /// The header value.
    pub fn header_value(&self) -> String {
        match self {
            Self::Seconds(secs) => secs.to_string(),
            Self::Date(time) => httpdate::fmt_http_date(*time),
            Self::Raw(text) => text.clone(),
        }
    }
}

/// A canned response for [`Fault::Respond`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultResponse {
    /// The status code (100 to 999).
    pub status: u16,
    /// An optional `Retry-After` header.
    pub retry_after: Option<RetryAfter>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The `Content-Type`; `None` sends none.
    pub content_type: Option<String>,
}

impl FaultResponse {
    /// This status with an error body `{"error": {"type": "injected", "message": ...}}`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            body: json!({"error": {"type": "injected", "message": format!("injected fault: status {status}")}})
                .to_string()
                .into_bytes(),
            content_type: Some("application/json".to_owned()),
        }
    }

    /// A 401 with a JWT error body carrying `code` (any string, known or not).
    pub fn jwt_401(code: &str) -> Self {
        Self {
            body: crate::wire::jwt_error_body(code, "injected fault"),
            ..Self::status(401)
        }
    }

    /// Adds `Retry-After: <secs>`.
    #[must_use]
    pub fn retry_after_secs(mut self, secs: u64) -> Self {
        self.retry_after = Some(RetryAfter::Seconds(secs));
        self
    }

    /// Adds `Retry-After: <HTTP date>`.
    #[must_use]
    pub fn retry_after_date(mut self, when: SystemTime) -> Self {
        self.retry_after = Some(RetryAfter::Date(when));
        self
    }

    /// Adds `Retry-After` with this text as is.
    #[must_use]
    pub fn retry_after_raw(mut self, text: impl Into<String>) -> Self {
        self.retry_after = Some(RetryAfter::Raw(text.into()));
        self
    }

    /// Replaces the body with these bytes, sent with no `Content-Type`.
    #[must_use]
    pub fn body_bytes(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.content_type = None;
        self
    }

    /// Replaces the body with this JSON, as `application/json`.
    #[must_use]
    pub fn body_json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.content_type = Some("application/json".to_owned());
        self
    }
}

impl From<FaultResponse> for Fault {
    fn from(response: FaultResponse) -> Self {
        Self::Respond(response)
    }
}

impl Fault {
    /// Answer `status` with an `injected` error body, without processing.
    pub fn status(status: u16) -> Self {
        Self::Respond(FaultResponse::status(status))
    }

    /// Answer 401 with this JWT error code, without processing.
    pub fn jwt_401(code: &str) -> Self {
        Self::Respond(FaultResponse::jwt_401(code))
    }

    /// Wait `ms` milliseconds, then process normally.
    pub fn delay_ms(ms: u64) -> Self {
        Self::Delay(Duration::from_millis(ms))
    }

    /// Close the connection without answering.
    pub fn close() -> Self {
        Self::Close
    }

    /// Process and store, then answer `status`.
    pub fn accept_then_fail(status: u16) -> Self {
        Self::AcceptThenFail(AfterAccept::Status(status))
    }

    /// Process and store, then close the connection without answering.
    pub fn accept_then_close() -> Self {
        Self::AcceptThenFail(AfterAccept::Close)
    }

    /// A short description for the request log.
    pub fn describe(&self) -> String {
        match self {
            Self::Respond(r) => match &r.retry_after {
                Some(ra) => format!("respond {} (Retry-After: {})", r.status, ra.header_value()),
                None => format!("respond {}", r.status),
            },
            Self::Delay(d) => format!("delay {} ms", d.as_millis()),
            Self::Close => "close".to_owned(),
            Self::AcceptThenFail(AfterAccept::Status(s)) => format!("accept then {s}"),
            Self::AcceptThenFail(AfterAccept::Close) => "accept then close".to_owned(),
        }
    }

    /// Parses the HTTP admin form: one object, or an array of them. Each object has a
    /// `kind` and an optional `count` (repeat it, default 1):
    ///
    /// - `{"kind": "status", "status": 503, "retry_after_secs": 2}` — also
    ///   `"retry_after_date": "<HTTP date>"` (sent as given), `"retry_after_unix": SECS`
    ///   (formatted as an HTTP date), `"body": <JSON>` or `"body_text": "raw bytes"`;
    /// - `{"kind": "jwt_401", "code": "INVALID_SIGNATURE"}`;
    /// - `{"kind": "delay", "ms": 500}`;
    /// - `{"kind": "close"}`;
    /// - `{"kind": "accept_then_fail", "status": 500}`; `{"kind": "accept_then_close"}`.
    ///
    /// # Errors
    /// A message naming the first invalid field.
    pub fn list_from_json(value: &Value) -> Result<Vec<Self>, String> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut faults = Vec::new();
        for item in items {
            let Value::Object(object) = item else {
                return Err("a fault must be a JSON object".to_owned());
            };
            let fault = Self::from_object(object)?;
            let count = match object.get("count") {
                None => 1,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or("count must be an integer from 1 to 10000")?,
            };
            for _ in 0..count {
                faults.push(fault.clone());
            }
        }
        Ok(faults)
    }

    fn from_object(object: &Map<String, Value>) -> Result<Self, String> {
        let status = |default: Option<u16>| -> Result<u16, String> {
            match object.get("status") {
                None => default.ok_or_else(|| "status is required".to_owned()),
                Some(v) => v
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..=999).contains(s))
                    .ok_or_else(|| "status must be an integer from 100 to 999".to_owned()),
            }
        };
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("kind is required")?;
        match kind {
            "status" | "respond" => {
                let mut response = FaultResponse::status(status(None)?);
                if let Some(v) = object.get("retry_after_secs") {
                    let secs = v.as_u64().ok_or("retry_after_secs must be an integer")?;
                    response = response.retry_after_secs(secs);
                }
                if let Some(v) = object.get("retry_after_date") {
                    let text = v.as_str().ok_or("retry_after_date must be a string")?;
                    response = response.retry_after_raw(text);
                }
                if let Some(v) = object.get("retry_after_unix") {
                    let secs = v.as_u64().ok_or("retry_after_unix must be an integer")?;
                    response = response.retry_after_date(UNIX_EPOCH + Duration::from_secs(secs));
                }
                if let Some(body) = object.get("body") {
                    response = response.body_json(body);
                }
                if let Some(v) = object.get("body_text") {
                    let text = v.as_str().ok_or("body_text must be a string")?;
                    response = response.body_bytes(text.as_bytes());
                }
                Ok(Self::Respond(response))
            }
            "jwt_401" => {
                let code = object
                    .get("code")
                    .and_then(Value::as_str)
                    .ok_or("code must be a string")?;
                Ok(Self::jwt_401(code))
            }
            "delay" => {
                let ms = object
                    .get("ms")
                    .and_then(Value::as_u64)
                    .ok_or("ms must be an integer")?;
                Ok(Self::delay_ms(ms))
            }
            "close" => Ok(Self::Close),
            "accept_then_fail" => Ok(Self::accept_then_fail(status(Some(500))?)),
            "accept_then_close" => Ok(Self::accept_then_close()),
            other => Err(format!(
                "unknown fault kind {other:?} (status, jwt_401, delay, close, accept_then_fail, accept_then_close)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let faults = Fault::list_from_json(&json!([
            {"kind": "status", "status": 503, "retry_after_secs": 2},
            {"kind": "status", "status": 429, "retry_after_unix": 0, "body_text": "zz"},
            {"kind": "jwt_401", "code": "X"},
            {"kind": "delay", "ms": 5, "count": 2},
            {"kind": "close"},
            {"kind": "accept_then_fail"},
            {"kind": "accept_then_close"},
        ]))
        .unwrap();
        assert_eq!(faults.len(), 8);
        assert_eq!(
            faults[0],
            Fault::Respond(FaultResponse::status(503).retry_after_secs(2))
        );
        let Fault::Respond(r) = &faults[1] else {
            panic!()
        };
        assert_eq!(
            r.retry_after.as_ref().unwrap().header_value(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(r.body, b"zz");
        assert_eq!(faults[5], Fault::Close);
        assert_eq!(faults[6], Fault::accept_then_fail(500));
    }

    #[test]
    fn refuses_bad_faults() {
        for bad in [
            json!({"kind": "status"}),
            json!({"kind": "status", "status": 42}),
            json!({"kind": "nope"}),
            json!({"kind": "delay"}),
            json!(3),
            json!({"kind": "close", "count": 0}),
        ] {
            assert!(Fault::list_from_json(&bad).is_err(), "{bad}");
        }
    }
}
