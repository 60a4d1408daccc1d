//! The loop every driver runs, written once in `Engine`: what comes next, what a
//! driver still holds, when a workspace is settled, closing and finished. These tests
//! drive it by hand, as a driver would, without threads or sockets.

use std::time::{Duration, Instant};

use authsync_core::{Config, Event};
use authsync_host::{Engine, Error, Work, WorkspaceOptions};
use bytes::Bytes;
use serde_json::json;

fn config() -> Config {
    Config::new("app-loop", "http://127.0.0.1:9").with_flush_interval(Duration::from_secs(3600))
}

fn open(options: WorkspaceOptions<()>) -> Engine {
    Engine::open(options.seed(5)).unwrap().0
}

/// The same with an observer, so that every event is told.
fn open_observed(options: WorkspaceOptions<()>) -> Engine {
    open(options.observer(|_: &Event| {}))
}

fn ok() -> http::Response<Bytes> {
    http::Response::builder()
        .status(200)
        .body(Bytes::from_static(
            br#"{"status":"ok","accepted":1,"duplicate":false}"#,
        ))
        .unwrap()
}

fn track(engine: &mut Engine) {
    engine
        .input(|core, now| core.handle_track(now, "screen_view", &json!({"i": 1})))
        .unwrap()
        .unwrap();
}

fn settled(engine: &Engine) -> bool {
    engine.report(Instant::now()).settled
}

/// Hands out work until a send comes, telling events on the way.
fn until_send(engine: &mut Engine) -> Box<authsync_core::Request> {
    loop {
        match engine.next_work() {
            Some(Work::Send(request)) => return request,
            Some(Work::Tell(..)) => engine.told(),
            other => panic!("expected a send, got {other:?}"),
        }
    }
}

#[test]
fn a_send_in_the_drivers_hands_keeps_the_workspace_unsettled_until_answered() {
    let mut engine = open_observed(WorkspaceOptions::new(config()));
    track(&mut engine);
    assert!(
        engine.next_work().is_none(),
        "an open batch waits for its interval"
    );
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    let request = until_send(&mut engine);
    assert!(!settled(&engine), "the request is in the driver's hands");
    assert!(engine.next_work().is_none(), "S2: one request at a time");
    engine.answered(request.id, Ok(ok()));
    let mut acked = false;
    while let Some(work) = engine.next_work() {
        match work {
            Work::Tell(events, _) => {
                acked |= events.iter().any(|e| matches!(e, Event::Acked(_)));
                assert!(!settled(&engine), "events not yet told");
                engine.told();
            }
            other => panic!("nothing else to do, got {other:?}"),
        }
    }
    assert!(acked);
    assert!(settled(&engine));
    assert_eq!(engine.report(Instant::now()).totals.acked, 1);
}

#[test]
fn the_driver_is_woken_only_when_the_core_has_news() {
    let mut engine = open(WorkspaceOptions::new(config()));
    track(&mut engine);
    assert!(
        engine.has_news(),
        "the first track sets the batch's deadline"
    );
    let _ = engine.next_wake();
    track(&mut engine);
    assert!(
        !engine.has_news(),
        "a second track into the open batch changes nothing"
    );
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    assert!(engine.has_news(), "a sealed batch is a request to send");
}

#[test]
fn a_closing_workspace_refuses_inputs_and_finishes_once_its_send_is_answered() {
    let mut engine = open(WorkspaceOptions::new(config()));
    track(&mut engine);
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    let request = until_send(&mut engine);
    engine.close();
    engine.close();
    assert!(matches!(
        engine.input(|core, now| core.handle_flush(now)),
        Err(Error::ShutDown)
    ));
    assert!(
        !matches!(engine.next_work(), Some(Work::Finish { .. })),
        "not finished while a request is out"
    );
    engine.answered(request.id, Ok(ok()));
    let clean = loop {
        match engine.next_work() {
            Some(Work::Finish { clean }) => break clean,
            Some(Work::Tell(..)) => engine.told(),
            other => panic!("expected the finish, got {other:?}"),
        }
    };
    assert!(clean);
    assert!(!engine.is_finished());
    engine.finish(clean);
    assert!(engine.is_finished());
    assert_eq!(engine.report(Instant::now()).totals.acked, 1);
}

#[test]
fn a_token_fetch_is_cancelled_when_the_workspace_closes() {
    let options = WorkspaceOptions::new(config().with_jwt(true)).token_provider(());
    let mut engine = open(options);
    let identified = engine.input(|core, now| core.handle_identify(now, "alice"));
    assert_eq!(
        identified.unwrap().unwrap(),
        authsync_core::Outcome::Applied
    );
    track(&mut engine);
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    let mut fetch = None;
    while let Some(work) = engine.next_work() {
        match work {
            Work::FetchToken { id, request } => fetch = Some((id, request)),
            Work::Tell(..) => engine.told(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (id, request) = fetch.expect("R2: the provider is asked for alice's token");
    assert_eq!(request.identifier, "alice");
    assert!(!settled(&engine), "a running fetch may still bring a token");
    engine.close();
    let mut cancelled = false;
    while let Some(work) = engine.next_work() {
        match work {
            Work::CancelFetch(cancelled_id) => {
                assert_eq!(cancelled_id, id);
                cancelled = true;
            }
            Work::Finish { clean } => engine.finish(clean),
            Work::Tell(..) => engine.told(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(cancelled);
    assert!(
        request.cancellation.is_cancelled(),
        "the provider is told to stop"
    );
    assert!(engine.is_finished());
}

#[test]
fn storage_work_runs_off_the_lock_and_counts_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let storage = authsync_core::StoragePolicy {
        fsync: authsync_core::FsyncPolicy::Always,
        compact_after_bytes: 1,
    };
    let mut engine = open(
        WorkspaceOptions::new(config())
            .state_dir(dir.path().join("state"))
            .storage(storage),
    );
    track(&mut engine);
    let mut tasks = 0;
    while let Some(work) = engine.next_work() {
        match work {
            Work::Storage(task) => {
                assert!(!settled(&engine), "a storage task is in the driver's hands");
                tasks += 1;
                engine.storage_done(task.run());
            }
            Work::Tell(..) => engine.told(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(tasks >= 1, "a store past its compaction size is compacted");
    assert!(settled(&engine));
}

/// Two batches of one event each, the first handed out to send.
fn first_of_two_batches(
    open: fn(WorkspaceOptions<()>) -> Engine,
) -> (Engine, Box<authsync_core::Request>) {
    let mut engine = open(WorkspaceOptions::new(
        config().with_batch_limits(1, 512 * 1024),
    ));
    track(&mut engine);
    track(&mut engine);
    let first = until_send(&mut engine);
    (engine, first)
}

#[test]
fn a_sender_goes_on_with_the_next_request_and_leaves_everything_else_in_order() {
    let (mut engine, first) = first_of_two_batches(open_observed);
    assert!(engine.holds_work(), "a request is out");
    assert!(engine.next_send().is_none(), "S2: one request at a time");
    engine.answered(first.id, Ok(ok()));
    let second = engine
        .next_send()
        .expect("the second batch goes at once, before the first's events are told");
    assert_ne!(second.batch_id, first.batch_id);
    assert!(engine.holds_work());
    engine.answered(second.id, Ok(ok()));
    assert!(engine.next_send().is_none(), "nothing left to send");
    // The acknowledgements are still told, in order, by the driver's loop.
    let mut acked = Vec::new();
    while let Some(work) = engine.next_work() {
        match work {
            Work::Tell(events, _) => {
                acked.extend(events.iter().filter_map(|e| match e {
                    Event::Acked(ack) => Some(ack.batch_id.clone()),
                    _ => None,
                }));
                engine.told();
            }
            other => panic!("nothing else to do, got {other:?}"),
        }
    }
    assert_eq!(acked, vec![first.batch_id.clone(), second.batch_id.clone()]);
    assert!(!engine.holds_work());
    assert!(settled(&engine));
}

#[test]
fn a_step_other_than_a_send_stays_for_the_drivers_loop() {
    let mut engine = open(WorkspaceOptions::new(config()));
    track(&mut engine);
    engine.close();
    // Closing with nothing in flight: the core's next step is the end, not a send.
    assert!(engine.next_send().is_none());
    let mut finished = false;
    while let Some(work) = engine.next_work() {
        match work {
            Work::Tell(..) => engine.told(),
            Work::Finish { clean } => {
                engine.finish(clean);
                finished = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        finished,
        "the step next_send left is handed out by next_work"
    );
}

#[test]
fn a_sender_whose_request_failed_does_not_send_again_before_the_backoff() {
    let (mut engine, first) = first_of_two_batches(open);
    engine.answered(first.id, Err(authsync_core::TransportFailure::Connect));
    assert!(
        engine.next_send().is_none(),
        "A4: the next request waits for the backoff, even the other batch"
    );
    assert!(!engine.holds_work(), "nothing is out: waiters may look");
    let wake = engine.next_wake().expect("the backoff's end");
    assert!(wake > Instant::now());
}

#[test]
fn events_no_one_hears_wake_no_driver_and_notices_reach_listeners_alone() {
    let mut engine = open(WorkspaceOptions::new(config()));
    track(&mut engine);
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    let request = until_send(&mut engine);
    engine.answered(request.id, Ok(ok()));
    assert!(
        !engine.has_news(),
        "an acknowledgement with no observer: nothing to wake a driver for"
    );
    assert!(engine.next_work().is_none());
    assert!(settled(&engine));

    // A listener hears notices only: a 401's notice is told, the events around it
    // (sent, answered) are not.
    let mut engine = open(WorkspaceOptions::new(config()).authentication_listener(|_| {}));
    track(&mut engine);
    engine.input(|core, now| core.handle_flush(now)).unwrap();
    let request = until_send(&mut engine);
    let unauthorized = http::Response::builder()
        .status(401)
        .body(Bytes::from_static(
            br#"{"error":{"code":"INVALID_SIGNATURE","message":"bad"}}"#,
        ))
        .unwrap();
    engine.answered(request.id, Ok(unauthorized));
    assert!(engine.has_news(), "a notice to tell");
    assert!(
        !settled(&engine),
        "not settled while a notice waits to be told"
    );
    let mut told = Vec::new();
    while let Some(work) = engine.next_work() {
        if let Work::Tell(events, _) = work {
            told.extend(events);
            engine.told();
        }
    }
    assert!(!told.is_empty(), "the notice is told");
    assert!(
        told.iter().all(|e| matches!(e, Event::Notice(_))),
        "{told:?}"
    );
}
