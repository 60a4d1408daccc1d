//! Authentication listeners and observers of one workspace (LS1).
//!
//! Listeners are called serially and in order: one at a time in the whole process,
//! so that a listener registered with several workspaces (or several clients) is never
//! called concurrently. A listener or observer that panics is caught and logged; the
//! driver goes on and the others are still called.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use authsync_core::{AuthNotice, Event};

/// A listener: the original SDK's `MoEngageAuthenticationError.Listener`.
pub type Listener = Arc<dyn Fn(&AuthNotice) + Send + Sync>;

/// An observer of everything that happens in a workspace's sync.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Held while any listener runs: LS1 across workspaces.
static LISTENER_CALLS: Mutex<()> = Mutex::new(());

/// The listeners and observers of one workspace.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use authsync_core::{AuthNotice, ErrorCode, Event};
/// use authsync_host::Listeners;
/// let heard = Arc::new(Mutex::new(Vec::new()));
/// let mut listeners = Listeners::default();
/// listeners.register(Arc::new(|_: &AuthNotice| panic!("a buggy listener")));
/// let sink = heard.clone();
/// listeners.register(Arc::new(move |n: &AuthNotice| sink.lock().unwrap().push(n.code.clone())));
/// # let notice = AuthNotice { code: ErrorCode::Unknown, message: String::new(), token: None, identifier: None, app_id: "a".into() };
/// listeners.dispatch(&Event::Notice(Box::new(notice)));
/// assert_eq!(heard.lock().unwrap().len(), 1, "the second listener still heard it");
/// ```
#[derive(Clone, Default)]
pub struct Listeners {
    listeners: Vec<Listener>,
    observers: Vec<Observer>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("listeners", &self.listeners.len())
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl Listeners {
    /// Adds a listener after the ones already registered.
    pub fn register(&mut self, listener: Listener) {
        self.listeners.push(listener);
    }

    /// Adds an observer after the ones already registered.
    pub fn observe(&mut self, observer: Observer) {
        self.observers.push(observer);
    }

    /// Whether anyone hears `event`: an observer, or a listener when it is a notice.
    #[must_use]
    pub fn hear(&self, event: &Event) -> bool {
        !self.observers.is_empty()
            || matches!(event, Event::Notice(_)) && !self.listeners.is_empty()
    }

    /// Hands `event` to the listeners (a notice) and the observers, in order; returns
    /// how many of them panicked.
    pub fn dispatch(&self, event: &Event) -> usize {
        let mut panicked = 0;
        if let Event::Notice(notice) = event {
            let _one_at_a_time = LISTENER_CALLS
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for listener in &self.listeners {
                if catch_unwind(AssertUnwindSafe(|| listener(notice))).is_err() {
                    panicked += 1;
                    log::error!(
                        "authsync: an authentication listener panicked on {} for app {}; the driver goes on",
                        notice.code,
                        notice.app_id
                    );
                }
            }
        }
        for observer in &self.observers {
            if catch_unwind(AssertUnwindSafe(|| observer(event))).is_err() {
                panicked += 1;
                log::error!("authsync: an observer panicked; the driver goes on");
            }
        }
        panicked
    }
}
