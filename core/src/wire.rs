//! Wire protocol v1 (docs/rules.md, section 4): the request a batch becomes, and what a
//! response means.
//!
//! This module turns bytes into verdicts and back; what to do about a verdict is the
//! client's. Any response bytes are accepted without panicking (V3).

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use crate::batch::Batch;
use crate::config::ValidConfig;
use crate::error_code::ErrorCode;
use crate::http_date;
use crate::output::{Request, RequestId};
use crate::token::Token;

/// Longest wait a `Retry-After` can impose (A4).
pub(crate) const RETRY_AFTER_CAP_MS: u64 = 60 * 60 * 1000;

const X_APP_ID: HeaderName = HeaderName::from_static("x-app-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The request for `batch`, whose body is `body`, authenticated with `token` when
/// there is one (S4).
pub(crate) fn request_for(
    id: RequestId,
    config: &ValidConfig,
    batch_id: String,
    batch: &Batch,
    body: Bytes,
    token: Option<&Token>,
) -> Request {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Both values were checked to be visible ASCII (C1, S3), so these conversions
    // succeed; a failure would leave the header out rather than panic.
    if let Ok(app_id) = HeaderValue::from_str(&config.config.app_id) {
        headers.insert(X_APP_ID, app_id);
    }
    if let Ok(key) = HeaderValue::from_str(&batch_id) {
        headers.insert(IDEMPOTENCY_KEY, key);
    }
    if let Some(token) = token
        && let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
    {
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
    }
    Request {
        id,
        batch_id,
        owner: batch.owner.clone(),
        events: batch.len(),
        method: Method::POST,
        uri: config.report_uri.clone(),
        headers,
        body,
    }
}

/// What a response means for the batch it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx (A1).
    Accepted { duplicate: bool },
    /// 401 (A2), with the code and message of its body.
    Unauthorized { code: ErrorCode, message: String },
    /// 413 (A5).
    TooLarge,
    /// 408, 429, 5xx, and statuses a v1 server does not send (1xx, 3xx): try later
    /// (A4), waiting at least `retry_after_ms` when the server said so.
    Transient { retry_after_ms: Option<u64> },
    /// Any other 4xx (A6).
    Rejected { status: u16 },
}

pub(crate) fn classify(response: &http::Response<Bytes>, now_unix_ms: u64) -> Verdict {
    let status = response.status();
    match status {
        s if s.is_success() => Verdict::Accepted {
            duplicate: duplicate_flag(response.body()),
        },
        StatusCode::UNAUTHORIZED => {
            let (code, message) = auth_error(response.body());
            Verdict::Unauthorized { code, message }
        }
        StatusCode::PAYLOAD_TOO_LARGE => Verdict::TooLarge,
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            transient(response, now_unix_ms)
        }
        s if s.is_client_error() => Verdict::Rejected { status: s.as_u16() },
        _ => transient(response, now_unix_ms),
    }
}

fn transient(response: &http::Response<Bytes>, now_unix_ms: u64) -> Verdict {
    let retry_after_ms = response
        .headers()
        .get_all(RETRY_AFTER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| http_date::retry_after_ms(value, now_unix_ms))
        .map(|ms| ms.min(RETRY_AFTER_CAP_MS));
    Verdict::Transient { retry_after_ms }
}

/// The code and message of a 401 body; `UNKNOWN` when there is no readable code (A2).
/// The code is read from `error.code` whatever else the body holds: a message of the
/// wrong type does not hide it.
fn auth_error(body: &[u8]) -> (ErrorCode, String) {
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (
            ErrorCode::Unknown,
            "401 without a readable error body".to_owned(),
        );
    };
    let error = parsed.get("error");
    let code = match error.and_then(|e| e.get("code")) {
        Some(serde_json::Value::String(code)) => ErrorCode::from_wire(code),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map_or(ErrorCode::Unknown, ErrorCode::from_numeric),
        _ => ErrorCode::Unknown,
    };
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

#[derive(Deserialize)]
struct AcceptedBody {
    #[serde(default)]
    duplicate: bool,
}

/// Whether a 2xx says the batch was a duplicate; any 2xx acknowledges, readable or not.
fn duplicate_flag(body: &[u8]) -> bool {
    serde_json::from_slice::<AcceptedBody>(body).is_ok_and(|b| b.duplicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .unwrap()
    }

    #[test]
    fn a1_to_a6_status_classes() {
        let cases = [
            (200, Verdict::Accepted { duplicate: false }),
            (204, Verdict::Accepted { duplicate: false }),
            (413, Verdict::TooLarge),
            (
                408,
                Verdict::Transient {
                    retry_after_ms: None,
                },
            ),
            (
                429,
                Verdict::Transient {
                    retry_after_ms: None,
                },
            ),
            (
                500,
                Verdict::Transient {
                    retry_after_ms: None,
                },
            ),
            (
                503,
                Verdict::Transient {
                    retry_after_ms: None,
                },
            ),
            (
                302,
                Verdict::Transient {
                    retry_after_ms: None,
                },
            ),
            (400, Verdict::Rejected { status: 400 }),
            (403, Verdict::Rejected { status: 403 }),
            (404, Verdict::Rejected { status: 404 }),
            (422, Verdict::Rejected { status: 422 }),
        ];
        for (status, verdict) in cases {
            assert_eq!(classify(&response(status, &[], ""), 0), verdict, "{status}");
        }
        assert_eq!(
            classify(
                &response(200, &[], r#"{"status":"ok","accepted":3,"duplicate":true}"#),
                0
            ),
            Verdict::Accepted { duplicate: true }
        );
    }

    #[test]
    fn a2_401_codes_come_from_the_body() {
        let body =
            r#"{"error":{"type":"jwt","code":"IDENTIFIER_MISMATCH","message":"sub differs"}}"#;
        assert_eq!(
            classify(&response(401, &[], body), 0),
            Verdict::Unauthorized {
                code: ErrorCode::IdentifierMismatch,
                message: "sub differs".into()
            }
        );
        let numeric = r#"{"error":{"code":4010}}"#;
        assert!(matches!(
            classify(&response(401, &[], numeric), 0),
            Verdict::Unauthorized {
                code: ErrorCode::TimeConstraintFailure,
                ..
            }
        ));
    }

    #[test]
    fn v3_garbage_401_bodies_are_unknown() {
        for body in [
            "",
            "{",
            "\u{0}\u{ff}",
            "[]",
            r#"{"error":{"code":null}}"#,
            r#"{"error":{"code":[1]}}"#,
        ] {
            assert!(
                matches!(
                    classify(&response(401, &[], body), 0),
                    Verdict::Unauthorized {
                        code: ErrorCode::Unknown,
                        ..
                    }
                ),
                "{body:?}"
            );
        }
        let other_fields_malformed = r#"{"error":{"code":"INVALID_SIGNATURE","message":5}}"#;
        assert!(
            matches!(
                classify(&response(401, &[], other_fields_malformed), 0),
                Verdict::Unauthorized {
                    code: ErrorCode::InvalidSignature,
                    ..
                }
            ),
            "A2: the code is read even when the message is not a string"
        );
        let unknown = r#"{"error":{"code":"BRAND_NEW"}}"#;
        assert!(matches!(
            classify(&response(401, &[], unknown), 0),
            Verdict::Unauthorized { code: ErrorCode::Other(ref raw), .. } if raw == "BRAND_NEW"
        ));
        let invalid_utf8 = http::Response::builder()
            .status(401)
            .body(Bytes::from_static(b"{\"error\":{\"code\":\"\xff\"}}"))
            .unwrap();
        assert!(matches!(
            classify(&invalid_utf8, 0),
            Verdict::Unauthorized {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn a4_retry_after_is_read_and_capped_at_an_hour() {
        let verdict = classify(&response(503, &[("retry-after", "7")], ""), 0);
        assert_eq!(
            verdict,
            Verdict::Transient {
                retry_after_ms: Some(7_000)
            }
        );
        let verdict = classify(&response(429, &[("retry-after", "86400")], ""), 0);
        assert_eq!(
            verdict,
            Verdict::Transient {
                retry_after_ms: Some(RETRY_AFTER_CAP_MS)
            }
        );
        let verdict = classify(&response(503, &[("retry-after", "later")], ""), 0);
        assert_eq!(
            verdict,
            Verdict::Transient {
                retry_after_ms: None
            }
        );
    }
}
