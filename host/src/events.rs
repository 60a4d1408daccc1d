//! What a driver tells an observer about its work: a timeline of sends, answers and
//! the core's notices, for logs, dashboards and the `authsync` command's output.
//!
//! Observers are called like listeners (serially, on the driver's thread or task).
//! Nothing here carries a whole token (T3).

use authsync_core::{AckNotice, AuthNotice, DropNotice, Owner, Request, TransportFailure};

/// One thing that happened in a workspace's sync.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// A request left for the server.
    Sent {
        /// The batch it carries.
        batch_id: String,
        /// Whose events.
        owner: Owner,
        /// How many events.
        events: usize,
        /// The token's redacted prefix, when the request is authenticated.
        token: Option<String>,
    },
    /// The server answered a request.
    Answered {
        /// The batch it answered.
        batch_id: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for a human reader (at most 200 characters).
        summary: String,
    },
    /// A request failed without an answer.
    TransportFailed {
        /// The batch it carried.
        batch_id: String,
        /// How it failed.
        failure: TransportFailure,
    },
    /// The listener was told this (after the listeners ran).
    Notified(AuthNotice),
    /// A batch was acknowledged.
    Acked(AckNotice),
    /// Events were dropped.
    Dropped(DropNotice),
    /// A lockout began (A3).
    LockedOut,
    /// A token provider gave nothing usable for this identifier.
    ProviderFailed {
        /// The identifier it was asked for.
        identifier: String,
        /// Why its answer was not used.
        reason: String,
    },
}

impl SyncEvent {
    /// The event for a request about to be sent.
    #[must_use]
    pub fn sent(request: &Request) -> Self {
        let token = request
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let token = v.trim_start_matches("Bearer ");
                let prefix: String = token.chars().take(8).collect();
                format!("{prefix}…")
            });
        Self::Sent {
            batch_id: request.batch_id.clone(),
            owner: request.owner.clone(),
            events: request.events,
            token,
        }
    }

    /// The event for a response to the request that carried `batch_id`.
    #[must_use]
    pub fn answered(batch_id: &str, response: &http::Response<bytes::Bytes>) -> Self {
        let text = String::from_utf8_lossy(response.body());
        Self::Answered {
            batch_id: batch_id.to_owned(),
            status: response.status().as_u16(),
            summary: text.chars().take(200).collect(),
        }
    }
}

/// An observer of a workspace's [`SyncEvent`]s.
pub type Observer = std::sync::Arc<dyn Fn(&SyncEvent) + Send + Sync>;

/// The observers of one workspace: called like listeners, in order, one at a time; one
/// that panics is logged and the others are still called.
#[derive(Clone, Default)]
pub struct Observers {
    registered: Vec<Observer>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.registered.len())
    }
}

impl Observers {
    /// Adds an observer after the ones already registered.
    pub fn register(&mut self, observer: Observer) {
        self.registered.push(observer);
    }

    /// Calls every observer with `event`, in order; returns how many panicked.
    pub fn dispatch(&self, event: &SyncEvent) -> usize {
        let mut panicked = 0;
        for observer in &self.registered {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(event))).is_err() {
                panicked += 1;
                log::error!("authsync: an observer panicked; the driver goes on");
            }
        }
        panicked
    }
}
