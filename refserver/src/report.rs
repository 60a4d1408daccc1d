//! `POST /v1/report` processing, in the check order of section 4 of the rules document:
//! route (404, 405) → body limit (413) → body and header/body agreement (400) →
//! authentication (401) → dedupe (200, `duplicate: true`) → accept (200).

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method};

use crate::config::ServerConfig;
use crate::jwt_check::authenticate;
use crate::records::{AcceptedBatch, AcceptedEvent};
use crate::state::Shared;
use crate::wire::{Batch, REPORT_PATH, error_body, jwt_error_body, ok_body, parse_batch};

/// The answer to give: a response, or a closed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// `None`: close the connection without an answer.
    pub(crate) status: Option<u16>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Outcome {
    pub(crate) fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            status: Some(status),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }
    }

    pub(crate) fn error(status: u16, kind: &str, message: &str) -> Self {
        Self::json(status, error_body(kind, message))
    }

    pub(crate) fn closed() -> Self {
        Self {
            status: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A request body as read: at most `limit` bytes are kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct BodyRead {
    pub(crate) bytes: Vec<u8>,
    /// The full length, counted even past the limit.
    pub(crate) total_len: usize,
    pub(crate) complete: bool,
}

/// Answers a non-admin request (no fault involved).
pub(crate) fn route(
    shared: &Shared,
    config: &ServerConfig,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &BodyRead,
) -> Outcome {
    if path != REPORT_PATH {
        return Outcome::error(404, "not_found", &format!("no route for {path}"));
    }
    if method != Method::POST {
        let mut outcome = Outcome::error(
            405,
            "method_not_allowed",
            &format!("{REPORT_PATH} takes POST"),
        );
        outcome
            .headers
            .push(("allow".to_owned(), "POST".to_owned()));
        return outcome;
    }
    if !body.complete {
        return Outcome::error(
            413,
            "payload_too_large",
            &format!(
                "the body of {} bytes is over the limit of {} bytes",
                body.total_len, config.max_body_bytes
            ),
        );
    }
    process(shared, config, headers, &body.bytes)
}

fn process(shared: &Shared, config: &ServerConfig, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let batch = match parse_checked(headers, body) {
        Ok(batch) => batch,
        Err(message) => return Outcome::error(400, "invalid_request", &message),
    };
    // Authentication comes before deduplication: a replayed batch id must not let an
    // unauthenticated request learn that the batch exists.
    let verified = match authenticate(headers, &batch.user, config) {
        Ok(verified) => verified,
        Err(failure) => {
            shared.update(|state| state.stats.auth_failures += 1);
            return Outcome::json(401, jwt_error_body(failure.code.as_str(), &failure.message));
        }
    };
    let accepted = batch.events.len();
    let first = shared.update(|state| {
        let first = state
            .dedupe
            .first_or_insert(&batch.app_id, &batch.batch_id, accepted);
        if first.is_some() {
            state.stats.duplicates += 1;
            return first;
        }
        state.stats.accepted_batches += 1;
        state.stats.accepted_events += accepted;
        *state
            .stats
            .accepted_by_app
            .entry(batch.app_id.clone())
            .or_default() += accepted;
        state
            .events
            .extend(batch.events.iter().map(|event| AcceptedEvent {
                app_id: batch.app_id.clone(),
                batch_id: batch.batch_id.clone(),
                user: batch.user.clone(),
                seq: event.seq,
                name: event.name.clone(),
                ts_ms: event.ts_ms,
                attrs: event.attrs.clone(),
            }));
        state.batches.push(AcceptedBatch {
            app_id: batch.app_id.clone(),
            batch_id: batch.batch_id.clone(),
            user: batch.user.clone(),
            events: accepted,
            auth: verified,
        });
        None
    });
    match first {
        Some(first) => Outcome::json(200, ok_body(first, true)),
        None => Outcome::json(200, ok_body(accepted, false)),
    }
}

/// The 400 checks: content type, body, and the headers that must repeat the body.
fn parse_checked(headers: &HeaderMap, body: &[u8]) -> Result<Batch, String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "Content-Type must be application/json, not {content_type:?}"
        ));
    }
    let batch = parse_batch(body)?;
    for (name, expected) in [
        ("x-app-id", batch.app_id.as_str()),
        ("idempotency-key", batch.batch_id.as_str()),
    ] {
        match headers.get(name).map(|v| v.to_str()) {
            None => return Err(format!("the {name} header is missing")),
            Some(Ok(value)) if value == expected => {}
            Some(_) => return Err(format!("the {name} header disagrees with the body")),
        }
    }
    Ok(batch)
}
