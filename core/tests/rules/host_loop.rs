//! The getters a host's loop relies on to sleep, wake and settle (D4, the loop of the
//! rules document's section on hosts): `has_output`, `written_lsn`, `unstored`,
//! `outlook` and `poll_timeout`, driven on a bare client step by step, as a driver
//! sees them between two calls.

use authsync_core::{Client, Now, Step, Unstored};
use bytes::Bytes;
use serde_json::json;

use crate::support::{T0_UNIX_MS, config, disk_full, durable};

fn start() -> Now {
    Now::new(1_000, T0_UNIX_MS)
}

fn durable_client() -> Client {
    Client::new(config().with_storage(durable()), start()).expect("valid config")
}

fn confirm_writes(client: &mut Client, now: Now) {
    while let Some(job) = client.poll_write() {
        client.handle_written(now, job.id, Ok(())).unwrap();
    }
}

fn ok() -> http::Response<Bytes> {
    http::Response::builder()
        .status(200)
        .body(Bytes::from_static(br#"{"status":"ok"}"#))
        .unwrap()
}

/// Tracks an event whose record fails to be written (the disk is full), and takes the
/// events that follow.
fn track_on_a_failing_disk(client: &mut Client, now: Now) {
    client.handle_track(now, "e", &json!({})).unwrap();
    let job = client.poll_write().expect("the track's record");
    client
        .handle_written(now, job.id, Err(disk_full()))
        .unwrap();
    while client.poll_event().is_some() {}
}

/// Performs steps and takes events until there are none; returns the request sent.
fn perform_all(client: &mut Client, now: Now) -> Option<Box<authsync_core::Request>> {
    let mut sent = None;
    loop {
        confirm_writes(client, now);
        let event = client.poll_event();
        let step = client.poll_step();
        if event.is_none() && step.is_none() {
            return sent;
        }
        match step {
            Some(Step::Sync(job)) => {
                client.handle_synced(now, job.id, Ok(())).unwrap();
            }
            Some(Step::Send(request)) => sent = Some(request),
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
}

#[test]
fn loop_has_output_says_whether_a_step_or_a_released_event_waits() {
    let now = start();
    let mut client = durable_client();
    client.handle_track(now, "e", &json!({})).unwrap();
    client.handle_flush(now);
    assert!(
        !client.has_output(),
        "nothing is handed out before its records are written"
    );
    assert!(client.poll_step().is_none() && client.poll_event().is_none());
    confirm_writes(&mut client, now);
    assert!(
        client.has_output(),
        "written: a sync (then the send) is due"
    );
    let request = perform_all(&mut client, now).expect("the batch is sent");
    assert!(!client.has_output(), "everything taken");
    client.handle_response(now, request.id, ok()).unwrap();
    confirm_writes(&mut client, now);
    assert!(client.has_output(), "the acknowledgement is told");
    assert!(perform_all(&mut client, now).is_none());
    assert!(!client.has_output());
}

#[test]
fn loop_written_lsn_follows_the_confirmed_writes() {
    let now = start();
    let mut client = durable_client();
    for i in 0..3 {
        client.handle_track(now, "e", &json!({ "i": i })).unwrap();
    }
    assert!(client.lsn() > 3);
    assert!(client.written_lsn() < client.lsn(), "not confirmed yet");
    confirm_writes(&mut client, now);
    assert_eq!(client.written_lsn(), client.lsn());
}

#[test]
fn d4_unstored_only_once_a_write_failed_not_while_one_is_merely_out() {
    let now = start();
    let mut client = durable_client();
    confirm_writes(&mut client, now);
    let stored = client.written_lsn();
    client.handle_track(now, "e", &json!({})).unwrap();
    let job = client.poll_write().expect("the track's record");
    assert_eq!(
        client.unstored(),
        None,
        "a write still out is not a failure"
    );
    client
        .handle_written(now, job.id, Err(disk_full()))
        .unwrap();
    assert!(client.is_storage_broken());
    assert_eq!(
        client.unstored(),
        Some(Unstored {
            from_lsn: stored + 1
        })
    );
}

#[test]
fn loop_the_outlook_is_unfinished_while_writes_or_events_wait_and_not_on_a_broken_disk() {
    let now = start();
    let mut client = durable_client();
    confirm_writes(&mut client, now);
    assert!(perform_all(&mut client, now).is_none());
    assert!(!client.outlook().unfinished, "a new install, all written");

    // A record to write, nothing else: unfinished until it is written and synced.
    client.handle_track(now, "e", &json!({})).unwrap();
    assert!(client.outlook().unfinished, "a write waits");
    assert!(perform_all(&mut client, now).is_none());
    assert!(!client.outlook().unfinished);

    // An event released and not yet taken: unfinished.
    client.handle_flush(now);
    let request = perform_all(&mut client, now).expect("sent");
    client.handle_response(now, request.id, ok()).unwrap();
    confirm_writes(&mut client, now);
    assert!(
        client.outlook().unfinished,
        "the acknowledgement is to be told"
    );
    assert!(perform_all(&mut client, now).is_none());
    assert!(!client.outlook().unfinished);

    // A disk that failed: what waits to be written does not hold a wait forever.
    track_on_a_failing_disk(&mut client, now);
    assert!(client.is_storage_broken());
    assert!(
        client.poll_step().is_none(),
        "the heal waits for its backoff"
    );
    assert!(
        !client.outlook().unfinished,
        "broken storage is not unfinished work"
    );
}

#[test]
fn d4_a_storage_deadline_being_performed_is_not_a_wakeup_again() {
    let now = start();
    let mut client = durable_client();
    confirm_writes(&mut client, now);
    track_on_a_failing_disk(&mut client, now);
    let retry = client.poll_timeout().expect("the heal's backoff");
    let later = Now::new(retry.at_mono_ms, T0_UNIX_MS + (retry.at_mono_ms - 1_000));
    client.handle_timeout(later);
    assert!(
        matches!(client.poll_step(), Some(Step::Compact(_))),
        "the heal is handed out at its deadline"
    );
    assert!(
        client
            .poll_timeout()
            .is_none_or(|wakeup| wakeup.at_mono_ms > later.mono_ms),
        "a deadline the host is performing would make it spin: {:?}",
        client.poll_timeout()
    );
}

#[test]
fn d4_while_the_store_works_the_queue_keeps_its_order_even_behind_an_unsynced_split() {
    let now = start();
    let config = config()
        .with_storage(durable())
        .with_batch_limits(2, 128 * 1024);
    let mut client = Client::new(config, now).expect("valid config");
    // An anonymous batch, then alice's (JWT off: no token needed), both stored.
    for i in 0..2 {
        client.handle_track(now, "e", &json!({ "i": i })).unwrap();
    }
    let _ = client.handle_identify(now, "alice").unwrap();
    for i in 2..4 {
        client.handle_track(now, "e", &json!({ "i": i })).unwrap();
    }
    let first = perform_all(&mut client, now).expect("the first batch is sent");
    let too_large = http::Response::builder()
        .status(413)
        .body(Bytes::new())
        .unwrap();
    client.handle_response(now, first.id, too_large).unwrap();
    // The split's record is not written yet; alice's batch is stored.
    while client.poll_event().is_some() {}
    assert!(
        client.poll_step().is_none(),
        "alice's batch does not overtake the first batch's halves"
    );
    let next = perform_all(&mut client, now).expect("a half is sent once written");
    assert_eq!(next.events, 1, "the first half, with the first event");
    assert_eq!(
        next.batch_id.rsplit('-').next(),
        Some("3"),
        "{}",
        next.batch_id
    );
}

#[test]
fn d2_a_close_waits_for_written_records_to_be_synced_before_it_finishes() {
    let now = start();
    let policy = authsync_core::StoragePolicy {
        fsync: authsync_core::FsyncPolicy::Every(std::time::Duration::from_millis(100)),
        ..authsync_core::StoragePolicy::default()
    };
    let config = config().with_storage(authsync_core::Storage::Durable(policy));
    let mut client = Client::new(config, now).expect("valid config");
    client.handle_track(now, "e", &json!({})).unwrap();
    confirm_writes(&mut client, now);
    while client.poll_event().is_some() {}
    client.handle_close(now);
    let Some(Step::Sync(job)) = client.poll_step() else {
        panic!("written but not synced: the close syncs first");
    };
    client.handle_synced(now, job.id, Ok(())).unwrap();
    confirm_writes(&mut client, now);
    assert!(matches!(
        client.poll_step(),
        Some(Step::Finish { clean: true })
    ));
}

#[test]
fn loop_nothing_is_due_to_be_sent_once_closing() {
    let now = start();
    let mut closing = Client::new(config(), now).expect("valid config");
    closing.handle_track(now, "e", &json!({})).unwrap();
    closing.handle_flush(now);
    assert_eq!(closing.outlook().next_send_mono_ms, Some(now.mono_ms));
    closing.handle_close(now);
    assert_eq!(closing.outlook().next_send_mono_ms, None, "no new request");
}
