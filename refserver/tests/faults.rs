//! Every fault kind through real HTTP, from the Rust admin handle.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_refserver::{Fault, FaultResponse};
use common::{Report, get, server, token};

#[test]
fn a_status_fault_answers_without_processing_then_the_queue_moves_on() {
    let server = server();
    let admin = server.admin();
    admin.push_fault(FaultResponse::status(503).retry_after_secs(7));
    admin.push_fault(Fault::status(429));

    let reply = Report::anonymous("anon-1").send(&server);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(reply.json()["error"]["type"], "injected");
    let reply = Report::anonymous("anon-1").send(&server);
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(
        admin.total_accepted(),
        0,
        "faulted requests are not processed"
    );

    // The queue is empty: the same batch is processed now, for the first time.
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
    let log = admin.request_log();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[0].fault.as_deref(),
        Some("respond 503 (Retry-After: 7)")
    );
    assert_eq!(log[0].response.status, Some(503));
    assert_eq!(log[0].response.header("retry-after"), Some("7"));
    assert_eq!(log[2].fault, None);
    assert_eq!(admin.stats().faults_applied, 2);
}

#[test]
fn retry_after_as_an_http_date() {
    let server = server();
    let when = UNIX_EPOCH + Duration::from_secs(1_700_000_120);
    server
        .admin()
        .push_fault(FaultResponse::status(503).retry_after_date(when));
    let reply = Report::anonymous("anon-1").send(&server);
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.header("retry-after"),
        Some("Tue, 14 Nov 2023 22:15:20 GMT")
    );
    let parsed: SystemTime =
        httpdate::parse_http_date(reply.header("retry-after").unwrap()).unwrap();
    assert_eq!(parsed, when);
}

#[test]
fn a_401_with_a_chosen_code_and_a_garbage_body() {
    let server = server();
    let admin = server.admin();
    admin.push_fault(Fault::jwt_401("SOMETHING_NEW"));
    admin.push_fault(FaultResponse::status(401).body_bytes(&b"\xff\x00garbage"[..]));
    admin.push_fault(FaultResponse::status(500).retry_after_raw("soon-ish"));

    let reply = Report::identified("user-1")
        .bearer(&token("user-1"))
        .send(&server);
    reply.assert_jwt("SOMETHING_NEW");

    let response = common::agent()
        .post(server.report_url())
        .send(&b"{}"[..])
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("content-type").is_none());
    let bytes = response.into_body().read_to_vec().unwrap();
    assert_eq!(bytes, b"\xff\x00garbage");

    let reply = Report::anonymous("anon-1").send(&server);
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("retry-after"), Some("soon-ish"));
    assert_eq!(admin.total_accepted(), 0);
}

#[test]
fn a_delay_fault_waits_then_processes_normally() {
    let server = server();
    server.admin().push_fault(Fault::delay_ms(300));
    let started = Instant::now();
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(server.admin().total_accepted(), 2);
    assert_eq!(
        server.admin().request_log()[0].fault.as_deref(),
        Some("delay 300 ms")
    );
}

#[test]
fn a_close_fault_drops_the_connection_without_an_answer() {
    let server = server();
    let admin = server.admin();
    admin.push_fault(Fault::close());
    let result = Report::anonymous("anon-1").try_send(&server);
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(
        admin.total_accepted(),
        0,
        "a closed request is not processed"
    );
    let log = admin.request_log();
    assert_eq!(log[0].response.status, None);
    assert_eq!(log[0].fault.as_deref(), Some("close"));
    // The next request gets through.
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
}

#[test]
fn accept_then_fail_stores_the_batch_so_the_retry_is_a_duplicate() {
    let server = server();
    let admin = server.admin();
    admin.push_fault(Fault::accept_then_fail(500));
    let t = token("user-1");
    let reply = Report::identified("user-1")
        .events(3)
        .bearer(&t)
        .send(&server);
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["type"], "injected");
    assert_eq!(
        admin.total_accepted(),
        3,
        "the batch was stored before the failure"
    );

    Report::identified("user-1")
        .events(3)
        .bearer(&t)
        .send(&server)
        .assert_ok(3, true);
    assert_eq!(admin.total_accepted(), 3);
    assert_eq!(admin.accepted_events().len(), 3);
    assert_eq!(admin.duplicate_count(), 1);
}

#[test]
fn accept_then_close_stores_the_batch_and_drops_the_connection() {
    let server = server();
    let admin = server.admin();
    admin.push_fault(Fault::accept_then_close());
    let result = Report::anonymous("anon-1").events(4).try_send(&server);
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(admin.total_accepted(), 4);
    Report::anonymous("anon-1")
        .events(4)
        .send(&server)
        .assert_ok(4, true);
    let log = admin.request_log();
    assert_eq!(log[0].response.status, None);
    assert_eq!(log[0].fault.as_deref(), Some("accept then close"));
}

#[test]
fn faults_are_taken_by_report_requests_only_and_can_be_cleared() {
    let server = server();
    let admin = server.admin();
    admin.push_faults([Fault::status(503), Fault::status(502)]);
    assert_eq!(get(&format!("{}/elsewhere", server.url())).status, 404);
    assert_eq!(admin.pending_faults().len(), 2);
    assert_eq!(Report::anonymous("anon-1").send(&server).status, 503);
    assert_eq!(admin.pending_faults(), vec![Fault::status(502)]);
    admin.clear_faults();
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
}

#[test]
fn reset_forgets_data_dedupe_and_faults_but_keeps_the_config() {
    let server = common::start(common::base_config().leeway_secs(5));
    let admin = server.admin();
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
    admin.push_fault(Fault::status(503));
    admin.reset();
    assert!(admin.request_log().is_empty());
    assert!(admin.accepted_events().is_empty());
    assert!(admin.pending_faults().is_empty());
    assert_eq!(admin.stats(), authsync_refserver::Stats::default());
    // The dedupe store is empty too: the same batch is new again.
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
    assert_eq!(admin.config().leeway_secs, 5);
}
