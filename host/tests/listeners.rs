//! LS1: one listener registered with two workspaces is never called concurrently,
//! and each workspace's notices reach it in the order they happened.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use authsync_core::{AuthNotice, ErrorCode, Event};
use authsync_host::Listeners;

const NOTICES: usize = 400;

fn notice(app_id: &str, n: usize) -> Event {
    Event::Notice(Box::new(AuthNotice {
        code: ErrorCode::Unknown,
        message: n.to_string(),
        token: None,
        identifier: Some("alice".into()),
        app_id: app_id.into(),
    }))
}

#[test]
fn ls1_a_listener_on_two_workspaces_is_called_serially_and_in_order() {
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let (overlaps, heard) = (overlaps.clone(), heard.clone());
        Arc::new(move |notice: &AuthNotice| {
            if inside.swap(true, Ordering::SeqCst) {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            // Long enough for the other workspace's thread to arrive meanwhile.
            thread::yield_now();
            let n: usize = notice.message.parse().unwrap();
            heard.lock().unwrap().push((notice.app_id.clone(), n));
            inside.store(false, Ordering::SeqCst);
        })
    };
    let workers: Vec<_> = ["app-one", "app-two"]
        .into_iter()
        .map(|app_id| {
            let mut listeners = Listeners::default();
            listeners.register(listener.clone());
            thread::spawn(move || {
                for n in 0..NOTICES {
                    assert_eq!(listeners.dispatch(&notice(app_id, n)), 0);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "called concurrently");
    let heard = heard.lock().unwrap();
    for app_id in ["app-one", "app-two"] {
        let order: Vec<usize> = heard
            .iter()
            .filter(|(app, _)| app == app_id)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(order, (0..NOTICES).collect::<Vec<_>>(), "{app_id} in order");
    }
}
