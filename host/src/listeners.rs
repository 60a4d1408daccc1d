//! Authentication listeners of one workspace (LS1).
//!
//! Listeners are called serially, in registration order, by the one driver thread or
//! task that owns the workspace, never concurrently. A listener that panics is caught
//! and logged; the driver goes on and the other listeners are still called.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use authsync_core::AuthNotice;

/// A listener: the seed's `MoEngageAuthenticationError.Listener`.
pub type Listener = Arc<dyn Fn(&AuthNotice) + Send + Sync>;

/// The listeners of one workspace.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use authsync_host::listeners::Listeners;
/// # use authsync_core::{AuthNotice, ErrorCode};
/// let heard = Arc::new(Mutex::new(Vec::new()));
/// let mut listeners = Listeners::default();
/// listeners.register(Arc::new(|_: &AuthNotice| panic!("a buggy listener")));
/// let sink = heard.clone();
/// listeners.register(Arc::new(move |n: &AuthNotice| sink.lock().unwrap().push(n.code.clone())));
/// # let notice = AuthNotice { code: ErrorCode::Unknown, message: String::new(), token: None, identifier: None, app_id: "a".into() };
/// listeners.dispatch(&notice);
/// assert_eq!(heard.lock().unwrap().len(), 1, "the second listener still heard it");
/// ```
#[derive(Clone, Default)]
pub struct Listeners {
    registered: Vec<Listener>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listeners({})", self.registered.len())
    }
}

impl Listeners {
    /// Adds a listener after the ones already registered.
    pub fn register(&mut self, listener: Listener) {
        self.registered.push(listener);
    }

    /// Whether any listener is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// Calls every listener with `notice`, in order; returns how many panicked.
    pub fn dispatch(&self, notice: &AuthNotice) -> usize {
        let mut panicked = 0;
        for listener in &self.registered {
            if catch_unwind(AssertUnwindSafe(|| listener(notice))).is_err() {
                panicked += 1;
                log::error!(
                    "authsync: an authentication listener panicked on {} for app {}; the driver goes on",
                    notice.code,
                    notice.app_id
                );
            }
        }
        panicked
    }
}
