//! S1–S6.

use authsync_core::{Now, WakeReason};
use serde_json::Value;

use crate::support::*;

fn body_json(h: &Harness) -> Value {
    serde_json::from_slice(&h.last_request().body).unwrap()
}

#[test]
fn s1_sealed_when_the_event_count_is_reached() {
    let mut h = Harness::new(config().with_batch_limits(3, 128 * 1024));
    let owner = anon(&h.client);
    assert_eq!(h.track_n(2), vec![]);
    assert_eq!(h.track("third"), vec![send(h.batch_id(1), owner, 3, None)]);
}

#[test]
fn s1_sealed_before_the_body_would_pass_the_byte_limit() {
    let mut h = Harness::new(config().with_batch_limits(100, 2048));
    let big = "x".repeat(600);
    let mut seen = Vec::new();
    for _ in 0..4 {
        h.client
            .handle_track(h.now, "big", &serde_json::json!({ "v": big }))
            .unwrap();
        seen.extend(h.drain());
    }
    assert_eq!(seen.len(), 1, "one batch went: {seen:?}");
    let request = h.last_request();
    assert!(
        request.body.len() <= 2048,
        "body {} bytes",
        request.body.len()
    );
    assert!(request.events >= 2);
}

#[test]
fn s1_sealed_when_the_flush_interval_passes_since_the_first_event() {
    let mut h = Harness::new(config());
    let owner = anon(&h.client);
    h.track("first");
    assert_eq!(
        h.client.poll_timeout().map(|w| (w.at_mono_ms, w.reason)),
        Some((h.now.mono_ms + 20_000, WakeReason::FlushInterval))
    );
    assert_eq!(h.advance(10_000), vec![]);
    assert_eq!(
        h.track("second"),
        vec![],
        "a later event does not move the deadline"
    );
    assert_eq!(h.advance(9_999), vec![]);
    assert_eq!(h.advance(1), vec![send(h.batch_id(1), owner, 2, None)]);
}

#[test]
fn s1_an_event_tracked_after_the_flush_interval_ran_out_opens_a_new_batch() {
    let mut h = Harness::new(config());
    let owner = anon(&h.client);
    assert_eq!(h.track("first"), vec![]);
    // 25 s later, with no timeout handled in between: the first batch is sealed (and
    // sent) before the second event joins a batch of its own.
    h.now = h.now.plus_ms(25_000);
    assert_eq!(
        h.track("second"),
        vec![send(h.batch_id(1), owner.clone(), 1, None)]
    );
    h.ok();
    assert_eq!(
        h.flush(),
        vec![send(h.batch_id(2), owner, 1, None)],
        "the second event went alone"
    );
}

#[test]
fn s1_sealed_on_flush_and_on_session_start() {
    let mut h = Harness::new(config());
    let owner = anon(&h.client);
    h.track("a");
    assert_eq!(h.flush(), vec![send(h.batch_id(1), owner.clone(), 1, None)]);
    h.ok();
    h.track("b");
    assert_eq!(h.session_start(), vec![send(h.batch_id(2), owner, 1, None)]);
}

#[test]
fn s1_a_batch_never_mixes_owners() {
    let mut h = Harness::new(config());
    let first_anon = anon(&h.client);
    h.track("anon-1");
    h.identify("alice");
    h.track("alice-1");
    h.logout();
    let second_anon = anon(&h.client);
    h.track("anon-2");
    h.flush();
    h.ok();
    h.ok();
    h.ok();
    let owners: Vec<(String, String, usize)> = h
        .requests
        .iter()
        .map(|request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let user = &body["user"];
            (
                user["type"].as_str().unwrap().to_owned(),
                user["id"].as_str().unwrap().to_owned(),
                request.events,
            )
        })
        .collect();
    assert_ne!(
        first_anon, second_anon,
        "logout starts a new anonymous user"
    );
    assert_eq!(
        owners,
        vec![
            ("anonymous".to_owned(), first_anon.id().to_owned(), 1),
            ("identified".to_owned(), "alice".to_owned(), 1),
            ("anonymous".to_owned(), second_anon.id().to_owned(), 1),
        ]
    );
    assert_eq!(h.client.totals().acked, 3);
}

#[test]
fn s2_one_request_in_flight_and_an_owners_batches_in_order() {
    let mut h = Harness::new(config().with_batch_limits(1, 128 * 1024));
    let owner = anon(&h.client);
    assert_eq!(
        h.track("a"),
        vec![send(h.batch_id(1), owner.clone(), 1, None)]
    );
    assert_eq!(h.track("b"), vec![], "the first is still in flight");
    assert_eq!(h.track("c"), vec![]);
    assert_eq!(
        h.ok(),
        vec![
            acked(h.batch_id(1), 1),
            send(h.batch_id(2), owner.clone(), 1, None)
        ]
    );
    assert_eq!(
        h.ok(),
        vec![acked(h.batch_id(2), 1), send(h.batch_id(3), owner, 1, None)]
    );
}

#[test]
fn s3_batch_ids_are_stable_across_retries_and_the_body_bytes_never_change() {
    let mut h = Harness::new(config());
    h.track("a");
    h.flush();
    let first = h.last_request().clone();
    assert_eq!(first.headers["idempotency-key"], first.batch_id.as_str());
    h.respond(503, &[], "");
    h.advance(1_000);
    let retry = h.last_request().clone();
    assert_ne!(first.id, retry.id);
    assert_eq!(retry.batch_id, first.batch_id);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers, first.headers);
}

#[test]
fn s3_batch_ids_embed_the_install_id_and_a_counter() {
    let a = Harness::new(config().with_seed(1));
    let b = Harness::new(config().with_seed(2));
    assert_ne!(
        a.batch_id(1),
        b.batch_id(1),
        "two installs never share batch ids"
    );
    let mut h = Harness::new(config().with_batch_limits(1, 128 * 1024));
    h.track("a");
    h.ok();
    h.track("b");
    assert_eq!(h.requests[0].batch_id, h.batch_id(1));
    assert_eq!(h.requests[1].batch_id, h.batch_id(2));
}

#[test]
fn s3_events_carry_seq_from_one_and_the_time_of_their_track_call() {
    let mut h = Harness::new(config());
    h.track("first");
    h.now = Now::new(h.now.mono_ms + 5, h.now.unix_ms + 5);
    h.track("second");
    h.flush();
    let body = body_json(&h);
    assert_eq!(body["app_id"], "app-test");
    assert_eq!(body["batch_id"], h.batch_id(1));
    let events = body["events"].as_array().unwrap();
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["name"], "first");
    assert_eq!(events[0]["ts_ms"], T0_UNIX_MS);
    assert_eq!(events[0]["attrs"], serde_json::json!({"k": "first"}));
    assert_eq!(events[1]["seq"], 2);
    assert_eq!(events[1]["ts_ms"], T0_UNIX_MS + 5);
}

#[test]
fn s4_authorization_only_for_identified_owners_with_jwt_enabled() {
    let token = good_token("alice", 1);
    let mut h = Harness::new(jwt_config());
    let anonymous = anon(&h.client);
    h.pass_token(&token, "alice");
    h.track("anon");
    assert_eq!(
        h.identify("alice"),
        vec![send(h.batch_id(1), anonymous, 1, None)]
    );
    h.ok();
    h.track("alice");
    assert_eq!(
        h.flush(),
        vec![send(h.batch_id(2), identified("alice"), 1, Some(&token))]
    );
    let request = h.last_request();
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-app-id"], "app-test");
    assert!(request.headers["authorization"].is_sensitive());

    let mut disabled = Harness::new(config());
    disabled.identify("alice");
    disabled.track("e");
    assert_eq!(
        disabled.flush(),
        vec![send(disabled.batch_id(1), identified("alice"), 1, None)],
        "JWT disabled: never an Authorization header"
    );
}

#[test]
fn s5_without_a_token_batches_wait_with_one_notice_until_a_token_arrives() {
    let mut h = Harness::new(jwt_config().with_batch_limits(1, 128 * 1024));
    h.identify("alice");
    assert_eq!(
        h.track("a1"),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    assert_eq!(h.track("a2"), vec![], "once for the episode");
    assert_eq!(h.advance(60_000), vec![]);
    // The token arrives: the episode ends and the batches go, in order.
    let token = good_token("alice", 1);
    assert_eq!(
        h.pass_token(&token, "alice"),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );
    assert_eq!(
        h.ok(),
        vec![
            acked(h.batch_id(1), 1),
            send(h.batch_id(2), identified("alice"), 1, Some(&token))
        ]
    );
}

#[test]
fn s5_other_owners_are_not_held_up_by_a_missing_token() {
    let mut h = Harness::new(jwt_config().with_batch_limits(1, 128 * 1024));
    let anonymous = anon(&h.client);
    assert_eq!(
        h.track("x1"),
        vec![send(h.batch_id(1), anonymous.clone(), 1, None)]
    );
    assert_eq!(h.track("x2"), vec![]);
    h.identify("alice");
    assert_eq!(
        h.track("a1"),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    assert_eq!(
        h.ok(),
        vec![
            acked(h.batch_id(1), 1),
            send(h.batch_id(2), anonymous, 1, None)
        ]
    );
    assert_eq!(
        h.ok(),
        vec![acked(h.batch_id(2), 1)],
        "alice's batch still waits"
    );
    assert_eq!(h.client.totals().pending(), 1);
}

#[test]
fn s5_a_new_episode_after_a_token_is_forgotten_tells_again() {
    let mut h = Harness::new(jwt_config().with_batch_limits(1, 128 * 1024));
    h.identify("alice");
    assert_eq!(
        h.track("a1"),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    h.logout();
    h.identify("alice");
    assert_eq!(
        h.track("a2"),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
}

#[test]
fn s6_a_token_that_looks_expired_is_still_sent() {
    let mut h = Harness::new(jwt_config());
    let expired = token("alice", T0_UNIX_MS / 1000 - 3_600, 1);
    h.identify("alice");
    assert_eq!(
        h.pass_token(&expired, "alice"),
        vec![notice("TOKEN_EXPIRING", Some("alice"), Some(&expired))],
        "refresh-ahead only warns (R1)"
    );
    h.track("e");
    assert_eq!(
        h.flush(),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&expired))]
    );
}
