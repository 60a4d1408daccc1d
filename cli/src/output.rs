//! JSON lines on stdout, one per notable thing, written whole even when the driver's
//! thread and the script's thread both have something to say.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use authsync_blocking::{AuthNotice, Event, IgnoredBecause, Totals};

/// A shared, line-at-a-time JSON writer.
#[derive(Clone)]
pub struct JsonLines {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl JsonLines {
    /// Lines go to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }

    /// Writes one line and flushes it, so a reader sees it at once.
    pub fn emit(&self, line: &Value) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // Nobody is left to tell if stdout is gone; the exit status still says it all.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    /// The line for an event, if it has one in section 5: acked, auth_error, dropped,
    /// locked_out, storage, and (beyond the section) transport_failure, so that an
    /// unreachable endpoint is not silent.
    pub fn event(&self, event: &Event) {
        let line = match event {
            Event::Acked(ack) => {
                json!({"event": "acked", "batch_id": ack.batch_id, "events": ack.events})
            }
            Event::Notice(notice) => auth_error(notice),
            Event::Dropped(drop) => {
                json!({"event": "dropped", "reason": drop.reason.as_str(), "events": drop.events})
            }
            Event::LockedOut => json!({"event": "locked_out"}),
            Event::Storage(notice) => json!({"event": "storage", "message": notice.to_string()}),
            Event::TransportFailed { batch_id, failure } => json!({
                "event": "transport_failure",
                "batch_id": batch_id,
                "failure": format!("{failure:?}").to_lowercase(),
            }),
            _ => return,
        };
        self.emit(&line);
    }

    /// `{"event":"ignored","line":N,"reason":"..."}`: an operation the library ignored
    /// by rule.
    pub fn ignored(&self, line: usize, because: IgnoredBecause) {
        let reason = match because {
            IgnoredBecause::JwtDisabled => "jwt_disabled",
            IgnoredBecause::AlreadyAnonymous => "already_anonymous",
            IgnoredBecause::AlreadyIdentified => "already_identified",
            IgnoredBecause::SameToken => "same_token",
            IgnoredBecause::RejectedToken => "rejected_token",
            _ => "ignored",
        };
        self.emit(&json!({"event": "ignored", "line": line, "reason": reason}));
    }

    /// `{"event":"error","line":N,"message":"..."}`.
    pub fn refused(&self, line: usize, message: &str) {
        self.emit(&json!({"event": "error", "line": line, "message": message}));
    }

    /// `{"event":"summary",...}`.
    pub fn summary(&self, totals: Totals) {
        self.emit(&json!({
            "event": "summary",
            "tracked": totals.tracked,
            "acked": totals.acked,
            "dropped": totals.dropped,
            "pending": totals.pending(),
        }));
    }
}

/// No token in it: only code, identifier, app id and message.
fn auth_error(notice: &AuthNotice) -> Value {
    json!({
        "event": "auth_error",
        "code": notice.code.as_str(),
        "identifier": notice.identifier,
        "app_id": notice.app_id,
        "message": notice.message,
    })
}
