//! A1–A7, V3.

use authsync_core::{RequestId, TransportFailure, WakeReason};

use crate::support::*;

/// An identified user "alice" with a token, one event tracked and its batch in flight.
fn alice_in_flight(config: authsync_core::Config) -> (Harness, String) {
    let mut h = Harness::new(config);
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track("e");
    h.flush();
    (h, token)
}

#[test]
fn a1_a_2xx_acknowledges_and_resets_the_counter_and_the_backoff() {
    let (mut h, _) = alice_in_flight(jwt_config());
    h.unauthorized("INVALID_SIGNATURE");
    let second = good_token("alice", 2);
    h.pass_token(&second, "alice");
    assert_eq!(h.client.auth_failures(), 1);
    h.respond(503, &[], "");
    h.advance(1_000);
    assert_eq!(h.ok(), vec![acked(h.batch_id(1), 1)]);
    assert_eq!(h.client.auth_failures(), 0);
    assert_eq!(h.client.totals().acked, 1);
    // The backoff streak reset: the next failure waits at most the base again.
    h.track("f");
    h.flush();
    h.respond(503, &[], "");
    let wait = h.client.poll_timeout().unwrap().at_mono_ms - h.now.mono_ms;
    assert!(wait <= 1_000, "waited {wait} ms");
}

#[test]
fn a2_a_401_keeps_the_batch_marks_the_token_and_notifies_once() {
    let (mut h, token) = alice_in_flight(jwt_config());
    assert_eq!(
        h.unauthorized("TIME_CONSTRAINT_FAILURE"),
        vec![notice(
            "TIME_CONSTRAINT_FAILURE",
            Some("alice"),
            Some(&token)
        )]
    );
    assert_eq!(h.client.auth_failures(), 1);
    assert_eq!(h.client.totals().pending(), 1, "the batch is kept");
    // Time passing and flushes send nothing for alice.
    h.track("more");
    assert_eq!(h.flush(), vec![]);
    assert_eq!(h.advance(3_600_000), vec![]);
    // The rejected token again changes nothing.
    assert_eq!(
        h.client
            .handle_authentication_details(h.now, &token, "alice"),
        Ok(authsync_core::Outcome::Ignored(
            authsync_core::IgnoredBecause::RejectedToken
        ))
    );
    assert_eq!(h.drain(), vec![]);
    // A different token: the same batch goes again, same id.
    let fresh = good_token("alice", 2);
    assert_eq!(
        h.pass_token(&fresh, "alice"),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&fresh))]
    );
}

#[test]
fn a2_the_code_comes_from_the_body_else_unknown() {
    let (mut h, token) = alice_in_flight(jwt_config());
    assert_eq!(
        h.respond(401, &[], "<html>nope</html>"),
        vec![notice("UNKNOWN", Some("alice"), Some(&token))]
    );
    let second = good_token("alice", 2);
    h.pass_token(&second, "alice");
    assert_eq!(
        h.respond(
            401,
            &[],
            r#"{"error":{"type":"jwt","code":"SHINY_NEW_CODE"}}"#
        ),
        vec![notice("SHINY_NEW_CODE", Some("alice"), Some(&second))]
    );
    let third = good_token("alice", 3);
    h.pass_token(&third, "alice");
    assert_eq!(
        h.unauthorized("TOKEN_NOT_AVAILABLE"),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), Some(&third))],
        "a server-sent TOKEN_NOT_AVAILABLE is a failure like any other"
    );
    assert_eq!(h.client.auth_failures(), 3);
}

#[test]
fn a2_other_owners_are_not_blocked_by_a_rejected_token() {
    // JWT disabled: alice's 401 makes her batches wait for the next session, and the
    // anonymous user after her logout still sends.
    let mut h = Harness::new(config().with_batch_limits(1, 128 * 1024));
    h.identify("alice");
    h.track("a1");
    h.track("a2");
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", Some("alice"), None)],
        "A2: the notice names an identified owner with JWT disabled too"
    );
    h.logout();
    let anonymous = anon(&h.client);
    assert_eq!(h.track("x"), vec![send(h.batch_id(3), anonymous, 1, None)]);
    h.ok();
    assert_eq!(h.client.totals().pending(), 2);
}

#[test]
fn a2_anonymous_and_jwt_disabled_401s_wait_for_the_next_session() {
    let mut h = Harness::new(jwt_config());
    let anonymous = anon(&h.client);
    h.track("x");
    h.flush();
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", None, None)]
    );
    assert_eq!(h.advance(600_000), vec![]);
    assert_eq!(
        h.session_start(),
        vec![send(h.batch_id(1), anonymous, 1, None)]
    );

    let mut disabled = Harness::new(config());
    disabled.identify("alice");
    disabled.track("a");
    disabled.flush();
    assert_eq!(
        disabled.unauthorized("IDENTIFIER_MISMATCH"),
        vec![notice("IDENTIFIER_MISMATCH", Some("alice"), None)]
    );
    assert_eq!(disabled.flush(), vec![]);
    assert_eq!(
        disabled.session_start(),
        vec![send(disabled.batch_id(1), identified("alice"), 1, None)]
    );
}

#[test]
fn a3_lockout_after_ten_consecutive_failures() {
    let (mut h, first) = alice_in_flight(jwt_config());
    let mut tokens = vec![first];
    for n in 1..10 {
        let seen = h.unauthorized("INVALID_SIGNATURE");
        assert_eq!(
            seen,
            vec![notice(
                "INVALID_SIGNATURE",
                Some("alice"),
                Some(tokens.last().unwrap())
            )]
        );
        let next = good_token("alice", n + 1);
        assert_eq!(
            h.pass_token(&next, "alice").len(),
            1,
            "a new token is tried"
        );
        tokens.push(next);
    }
    assert_eq!(
        h.unauthorized("INVALID_SIGNATURE"),
        vec![
            notice(
                "INVALID_SIGNATURE",
                Some("alice"),
                Some(tokens.last().unwrap())
            ),
            Seen::LockedOut
        ]
    );
    assert!(h.client.is_locked_out());
    // Whatever tokens arrive, nothing goes for anyone until the next session.
    let eleventh = good_token("alice", 11);
    assert_eq!(h.pass_token(&eleventh, "alice"), vec![]);
    h.logout();
    h.track("anonymous");
    assert_eq!(h.flush(), vec![]);
    assert_eq!(h.advance(3_600_000), vec![]);
    // The stored token is used after it.
    let seen = h.session_start();
    assert_eq!(
        seen,
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&eleventh))]
    );
    assert!(!h.client.is_locked_out());
}

#[test]
fn a3_the_counter_counts_within_a_session_and_the_lockout_is_reported_once() {
    let (mut h, first) = alice_in_flight(jwt_config().with_max_auth_failures(2));
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", Some("alice"), Some(&first))]
    );
    let second = good_token("alice", 2);
    h.pass_token(&second, "alice");
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![
            notice("UNKNOWN", Some("alice"), Some(&second)),
            Seen::LockedOut
        ]
    );
    let third = good_token("alice", 3);
    assert_eq!(h.pass_token(&third, "alice"), vec![]);
    assert_eq!(
        h.session_start(),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&third))]
    );
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", Some("alice"), Some(&third))],
        "one failure in the new session: no lockout"
    );
    assert_eq!(h.client.auth_failures(), 1);
}

#[test]
fn a4_transient_failures_back_off_with_jitter_and_honour_retry_after() {
    let (mut h, token) = alice_in_flight(jwt_config());
    assert_eq!(h.respond(503, &[("retry-after", "30")], ""), vec![]);
    assert_eq!(h.client.auth_failures(), 0, "not an authentication failure");
    let wakeup = h.client.poll_timeout().unwrap();
    assert_eq!(wakeup.reason, WakeReason::Backoff);
    assert_eq!(
        wakeup.at_mono_ms,
        h.now.mono_ms + 30_000,
        "Retry-After beats a shorter jitter"
    );
    assert_eq!(h.advance(29_999), vec![]);
    assert_eq!(
        h.advance(1),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );

    // Without Retry-After: waits grow, each at most base * 2^(n-1), capped.
    let mut ceilings = Vec::new();
    for status in [500, 502, 429, 408] {
        h.respond(status, &[], "");
        let wait = h.client.poll_timeout().unwrap().at_mono_ms - h.now.mono_ms;
        ceilings.push(wait);
        h.advance(wait);
    }
    for (n, wait) in ceilings.iter().enumerate() {
        assert!(*wait <= 1_000 << (n + 1), "attempt {n}: {wait}");
    }
    let id = h.last_id();
    h.client
        .handle_transport_failure(h.now, id, TransportFailure::Timeout)
        .unwrap();
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.poll_timeout().unwrap().reason, WakeReason::Backoff);
}

#[test]
fn a4_retry_after_reads_http_dates_and_is_capped_at_an_hour() {
    let (mut h, _) = alice_in_flight(jwt_config());
    // T0 is Tue, 14 Nov 2023 22:13:20 GMT; two minutes later:
    h.respond(503, &[("retry-after", "Tue, 14 Nov 2023 22:15:20 GMT")], "");
    assert_eq!(
        h.client.poll_timeout().unwrap().at_mono_ms,
        h.now.mono_ms + 120_000
    );
    h.advance(120_000);
    h.respond(429, &[("retry-after", "999999")], "");
    assert_eq!(
        h.client.poll_timeout().unwrap().at_mono_ms,
        h.now.mono_ms + 3_600_000
    );
}

#[test]
fn a5_a_413_splits_the_batch_with_the_odd_event_first() {
    let mut h = Harness::new(config());
    let owner = anon(&h.client);
    h.track_n(5);
    h.flush();
    assert_eq!(
        h.respond(413, &[], ""),
        vec![send(h.batch_id(2), owner.clone(), 3, None)]
    );
    assert_eq!(
        h.ok(),
        vec![acked(h.batch_id(2), 3), send(h.batch_id(3), owner, 2, None)]
    );
    let body: serde_json::Value = serde_json::from_slice(&h.last_request().body).unwrap();
    let seqs: Vec<u64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5]);
    assert_eq!(h.ok(), vec![acked(h.batch_id(3), 2)]);
    assert_eq!(h.client.totals().acked, 5);
}

#[test]
fn a5_a_one_event_batch_that_is_too_large_is_dropped() {
    let mut h = Harness::new(config());
    h.track("only");
    h.flush();
    assert_eq!(h.respond(413, &[], ""), vec![dropped("too_large", 1)]);
    assert_eq!(h.client.totals().dropped, 1);
}

#[test]
fn a6_other_4xx_are_permanent_and_drop_the_batch() {
    for status in [400, 403, 404, 422, 418] {
        let mut h = Harness::new(config());
        h.track_n(2);
        h.flush();
        assert_eq!(
            h.respond(status, &[], r#"{"error":{"type":"x","message":"no"}}"#),
            vec![dropped("rejected", 2)]
        );
        assert_eq!(h.client.totals().dropped, 2, "{status}");
        assert_eq!(h.client.auth_failures(), 0);
    }
}

#[test]
fn a7_a_response_for_a_request_not_in_flight_is_an_error_and_changes_nothing() {
    let mut h = Harness::new(config());
    h.track("e");
    h.flush();
    let before = h.client.snapshot();
    let stale = RequestId(h.last_id().0 + 7);
    let response = http::Response::builder()
        .status(200)
        .body(bytes::Bytes::new())
        .unwrap();
    assert_eq!(
        h.client.handle_response(h.now, stale, response),
        Err(authsync_core::UnknownRequest(stale))
    );
    assert_eq!(
        h.client
            .handle_transport_failure(h.now, stale, TransportFailure::Reset),
        Err(authsync_core::UnknownRequest(stale))
    );
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.snapshot(), before);
    assert!(
        h.client.outlook().in_flight,
        "the real request is still in flight"
    );
    h.ok();
    let id = h.last_id();
    let again = http::Response::builder()
        .status(200)
        .body(bytes::Bytes::new())
        .unwrap();
    assert!(
        h.client.handle_response(h.now, id, again).is_err(),
        "answered once only"
    );
}

#[test]
fn v3_any_response_bytes_are_accepted_without_panicking() {
    let bodies: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00",
        b"{\"error\":",
        b"[[[[[[[[[[[[",
        b"{\"error\":{\"code\":1e999}}",
        b"null",
    ];
    for status in [200u16, 401, 413, 429, 500, 302, 101] {
        for body in bodies {
            let mut h = Harness::new(jwt_config());
            h.track_n(2);
            h.flush();
            let id = h.last_id();
            let mut builder = http::Response::builder().status(status);
            builder = builder.header(
                "retry-after",
                http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
            );
            let response = builder.body(bytes::Bytes::copy_from_slice(body)).unwrap();
            h.client.handle_response(h.now, id, response).unwrap();
            h.drain();
            let totals = h.client.totals();
            assert_eq!(
                totals.tracked,
                totals.acked + totals.dropped + totals.pending()
            );
        }
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut h = Harness::new(jwt_config());
    h.track("e");
    h.flush();
    assert_eq!(
        h.respond(401, &[], &deep),
        vec![notice("UNKNOWN", None, None)]
    );
}

#[test]
fn a2_error_codes_keep_their_published_numbers_and_wire_names() {
    use authsync_core::ErrorCode;
    assert_eq!(ErrorCode::DecryptionFailed.numeric(), Some(4000));
    assert_eq!(ErrorCode::HeaderTypeIncompatible.numeric(), Some(4001));
    assert_eq!(ErrorCode::TimeConstraintFailure.numeric(), Some(4010));
    assert_eq!(ErrorCode::InvalidSignature.numeric(), None);
    for code in [
        ErrorCode::IdentifierMismatch,
        ErrorCode::TokenExpiring,
        ErrorCode::Other("SHINY".into()),
    ] {
        assert_eq!(code.to_string(), code.as_str());
    }
}

#[test]
fn a7_request_ids_and_wake_reasons_read_in_one_line() {
    assert_eq!(RequestId(3).to_string(), "#3");
    assert_eq!(WakeReason::FlushInterval.to_string(), "flush interval");
    assert_eq!(WakeReason::Backoff.to_string(), "backoff");
    assert_eq!(WakeReason::RefreshAhead.to_string(), "refresh-ahead");
}

#[test]
fn a2_the_rejected_token_stays_refused_after_a_newer_one_arrives() {
    let (mut h, first) = alice_in_flight(jwt_config());
    h.unauthorized("INVALID_SIGNATURE");
    h.pass_token(&good_token("alice", 2), "alice");
    assert_eq!(
        h.client
            .handle_authentication_details(h.now, &first, "alice"),
        Ok(authsync_core::Outcome::Ignored(
            authsync_core::IgnoredBecause::RejectedToken
        ))
    );
}

#[test]
fn a4_jitter_differs_from_one_wait_to_the_next() {
    let (mut h, _) = alice_in_flight(jwt_config().with_backoff(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(1),
    ));
    let mut waits = std::collections::BTreeSet::new();
    for _ in 0..8 {
        h.transport_failure();
        let wait = h.client.poll_timeout().unwrap().at_mono_ms - h.now.mono_ms;
        assert!(wait <= 1_000);
        waits.insert(wait);
        h.advance(wait);
    }
    assert!(waits.len() > 4, "the same wait again and again: {waits:?}");
}

#[test]
fn s3_batch_ids_after_a_split_are_never_reused() {
    let mut h = Harness::new(config());
    h.track("a");
    h.flush();
    h.ok();
    h.track_n(3);
    h.flush();
    h.respond(413, &[], "");
    h.ok();
    h.ok();
    h.track("after");
    h.flush();
    let ids: Vec<&str> = h.requests.iter().map(|r| r.batch_id.as_str()).collect();
    assert_eq!(
        ids,
        [1, 2, 3, 4, 5]
            .map(|n| h.batch_id(n))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "batch 2 split into 3 and 4; the next batch is 5"
    );
}
