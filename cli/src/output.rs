//! JSON lines on stdout, one per notable thing, written whole even when the driver's
//! thread and the script's thread both have something to say.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use authsync_blocking::{AuthNotice, SyncEvent, Totals};

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

    /// The line for a sync event, if it has one in section 5.
    pub fn sync_event(&self, event: &SyncEvent) {
        let line = match event {
            SyncEvent::Acked(ack) => {
                json!({"event": "acked", "batch_id": ack.batch_id, "events": ack.events})
            }
            SyncEvent::Notified(notice) => auth_error(notice),
            SyncEvent::Dropped(drop) => {
                json!({"event": "dropped", "reason": drop.reason.as_str(), "events": drop.events})
            }
            SyncEvent::LockedOut => json!({"event": "locked_out"}),
            _ => return,
        };
        self.emit(&line);
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
