//! The report endpoint through real HTTP: acceptance, 400/404/405/413, dedupe, and
//! the check order of section 4 of the rules document.

mod common;

use authsync_refserver::UserKind;
use common::{Report, base_config, get, server, start, token};
use serde_json::json;

#[test]
fn accepts_an_identified_batch_and_records_its_events() {
    let server = server();
    let reply = Report::identified("user-1")
        .events(3)
        .bearer(&token("user-1"))
        .send(&server);
    reply.assert_ok(3, false);
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let admin = server.admin();
    let events = admin.accepted_events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].app_id, "app-1");
    assert_eq!(events[0].batch_id, "batch-1");
    assert_eq!(events[0].user.kind, UserKind::Identified);
    assert_eq!(events[0].user.id, "user-1");
    assert_eq!(events[2].seq, 3);
    assert_eq!(events[2].name, "event-3");
    assert_eq!(events[2].ts_ms, 1_700_000_000_003);
    assert_eq!(events[2].attrs["i"], 3);
    assert_eq!(admin.accepted_count("app-1"), 3);
    assert_eq!(admin.accepted_count("other"), 0);
    assert_eq!(admin.total_accepted(), 3);
    let batch = &admin.accepted_batches()[0];
    assert_eq!(batch.events, 3);
    assert_eq!(
        batch.auth.as_ref().unwrap().key_kid.as_deref(),
        Some("test-rsa-a")
    );

    let log = admin.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/v1/report");
    assert_eq!(log[0].header("idempotency-key"), Some("batch-1"));
    assert_eq!(log[0].bearer_token(), Some(token("user-1").as_str()));
    assert_eq!(log[0].body_json().unwrap()["batch_id"], "batch-1");
    assert_eq!(log[0].response.status, Some(200));
    assert_eq!(log[0].response.json().unwrap()["accepted"], 3);
}

#[test]
fn a_repeated_batch_id_is_a_duplicate_with_the_first_count_whatever_the_bytes() {
    let server = server();
    let t = token("user-1");
    Report::identified("user-1")
        .events(3)
        .bearer(&t)
        .send(&server)
        .assert_ok(3, false);
    Report::identified("user-1")
        .events(3)
        .bearer(&t)
        .send(&server)
        .assert_ok(3, true);
    // Other bytes (one event, not three), same batch id: still the first count.
    Report::identified("user-1")
        .events(1)
        .bearer(&t)
        .send(&server)
        .assert_ok(3, true);
    // The same batch id under another app id is another batch.
    Report::identified("user-1")
        .app("app-2")
        .events(1)
        .bearer(&t)
        .send(&server)
        .assert_ok(1, false);

    let admin = server.admin();
    assert_eq!(admin.duplicate_count(), 2);
    assert_eq!(admin.total_accepted(), 4);
    assert_eq!(admin.accepted_count("app-1"), 3);
    assert_eq!(admin.accepted_count("app-2"), 1);
    assert_eq!(admin.accepted_events().len(), 4);
}

#[test]
fn malformed_bodies_get_400_with_an_error_object() {
    let server = server();
    let good = Report::anonymous("anon-1");
    let mut missing_events = good.body_json();
    missing_events.as_object_mut().unwrap().remove("events");
    let mut bad_user = good.body_json();
    bad_user["user"]["type"] = json!("robot");
    let mut string_seq = good.body_json();
    string_seq["events"][0]["seq"] = json!("1");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("not UTF-8", b"\xff\xfe\xfd".to_vec()),
        ("truncated", good.body_bytes()[..20].to_vec()),
        ("an array", b"[]".to_vec()),
        ("no events", missing_events.to_string().into_bytes()),
        ("a bad user type", bad_user.to_string().into_bytes()),
        ("a string seq", string_seq.to_string().into_bytes()),
    ];
    for (what, body) in cases {
        let reply = good.clone().raw_body(&body).send(&server);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.json()["error"]["type"], "invalid_request", "{what}");
        assert!(reply.json()["error"]["message"].is_string(), "{what}");
    }
    assert_eq!(server.admin().total_accepted(), 0);
}

#[test]
fn headers_missing_or_disagreeing_with_the_body_get_400() {
    let server = server();
    let base = Report::anonymous("anon-1");
    let cases = [
        ("no X-App-Id", base.clone().omit("x-app-id")),
        ("no Idempotency-Key", base.clone().omit("idempotency-key")),
        ("no Content-Type", base.clone().omit("content-type")),
        (
            "X-App-Id disagrees",
            base.clone()
                .omit("x-app-id")
                .header("X-App-Id", "other-app"),
        ),
        (
            "Idempotency-Key disagrees",
            base.clone()
                .omit("idempotency-key")
                .header("Idempotency-Key", "batch-2"),
        ),
        (
            "Content-Type is text",
            base.clone()
                .omit("content-type")
                .header("Content-Type", "text/plain"),
        ),
    ];
    for (what, report) in cases {
        let reply = report.send(&server);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.json()["error"]["type"], "invalid_request", "{what}");
    }
    // Parameters on the media type are fine.
    base.omit("content-type")
        .header("Content-Type", "application/json; charset=utf-8")
        .send(&server)
        .assert_ok(2, false);
}

#[test]
fn a_body_over_the_limit_gets_413_and_one_at_the_limit_passes() {
    let server = start(base_config().max_body_bytes(1000));
    let report = Report::anonymous("anon-1").events(1);
    let body = report.body_bytes();
    // Pad the JSON with spaces to exactly the limit, then one byte over.
    let mut at_limit = body.clone();
    at_limit.resize(1000, b' ');
    report
        .clone()
        .raw_body(&at_limit)
        .send(&server)
        .assert_ok(1, false);
    let mut over = body;
    over.resize(1001, b' ');
    let reply = report
        .clone()
        .batch("batch-2")
        .raw_body(&over)
        .send(&server);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.json()["error"]["type"], "payload_too_large");

    // A body far over the limit is still answered 413, not a reset connection.
    let huge = vec![b' '; 3 * 1024 * 1024];
    let reply = report.batch("batch-3").raw_body(&huge).send(&server);
    assert_eq!(reply.status, 413);
    let log = server.admin().request_log();
    assert!(!log[2].body_complete);
    assert_eq!(log[2].body.len(), 1000);
}

#[test]
fn the_default_body_limit_takes_a_full_client_batch() {
    let server = server();
    // Clients send up to 128 KiB by default.
    let report = Report::anonymous("anon-1").events(1);
    let mut body = report.body_bytes();
    body.resize(128 * 1024, b' ');
    report.raw_body(&body).send(&server).assert_ok(1, false);
}

#[test]
fn unknown_paths_get_404_and_other_methods_405() {
    let server = server();
    let reply = get(&format!("{}/v2/report", server.url()));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["type"], "not_found");
    let reply = get(&server.report_url());
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[test]
fn a_body_both_malformed_and_unauthenticated_gets_400() {
    let server = server();
    // No token at all on an identified batch, and a body that is not JSON.
    let reply = Report::identified("user-1")
        .raw_body(b"{oops")
        .send(&server);
    assert_eq!(reply.status, 400);
    // A header/body disagreement with a bad token: 400 too.
    let reply = Report::identified("user-1")
        .bearer("not-a-token")
        .omit("x-app-id")
        .header("X-App-Id", "other")
        .send(&server);
    assert_eq!(reply.status, 400);
}

#[test]
fn an_unauthenticated_duplicate_gets_401_not_200() {
    let server = server();
    Report::identified("user-1")
        .bearer(&token("user-1"))
        .send(&server)
        .assert_ok(2, false);
    Report::identified("user-1")
        .send(&server)
        .assert_jwt("TOKEN_NOT_AVAILABLE");
    Report::identified("user-1")
        .bearer(&token("someone-else"))
        .send(&server)
        .assert_jwt("IDENTIFIER_MISMATCH");
    let admin = server.admin();
    assert_eq!(admin.duplicate_count(), 0);
    assert_eq!(admin.stats().auth_failures, 2);
    // Authenticated again, it is the duplicate it is.
    Report::identified("user-1")
        .bearer(&token("user-1"))
        .send(&server)
        .assert_ok(2, true);
}

#[test]
fn an_oversized_body_gets_413_before_any_other_check() {
    let server = start(base_config().max_body_bytes(50));
    // Malformed, unauthenticated and too large: the size wins.
    let reply = Report::identified("user-1")
        .raw_body(&[b'x'; 51])
        .send(&server);
    assert_eq!(reply.status, 413);
}
