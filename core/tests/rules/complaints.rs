//! The user complaints the rules guard against.

use crate::support::*;

#[test]
fn a_malformed_token_never_causes_a_retry_loop() {
    let mut h = Harness::new(jwt_config());
    h.identify("alice");
    h.track("e");
    assert_eq!(
        h.flush(),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    for bad in ["", "garbage", "a.b", "a.b.c.d", "a b.c.d"] {
        assert!(
            h.client
                .handle_authentication_details(h.now, bad, "alice")
                .is_err()
        );
    }
    assert_eq!(h.advance(24 * 3_600_000), vec![]);
    assert!(h.requests.is_empty(), "nothing was ever sent");
    assert_eq!(h.client.poll_timeout(), None, "nothing to wake up for");
}

#[test]
fn events_tracked_while_a_token_refresh_is_pending_are_never_lost() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    let first = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&first, "alice");
    h.track_n(2);
    h.unauthorized("TIME_CONSTRAINT_FAILURE");
    assert_eq!(h.track_n(7), vec![], "waiting for a new token");
    h.flush();
    let fresh = good_token("alice", 2);
    h.pass_token(&fresh, "alice");
    // Nine events in batches of two: five answers; a bound, so a regression fails
    // instead of hanging.
    for _ in 0..5 {
        h.ok();
    }
    assert!(!h.client.outlook().in_flight);
    let totals = h.client.totals();
    assert_eq!((totals.tracked, totals.acked, totals.dropped), (9, 9, 0));
    assert!(
        h.requests[1..]
            .iter()
            .all(|r| r.headers["authorization"] == format!("Bearer {fresh}").as_str())
    );
}

#[test]
fn one_rejected_token_gives_exactly_one_notice() {
    let mut h = Harness::new(jwt_config().with_batch_limits(1, 128 * 1024));
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track_n(5);
    let notices = h.unauthorized("INVALID_SIGNATURE");
    let mut later = Vec::new();
    later.extend(h.track_n(5));
    later.extend(h.flush());
    later.extend(h.session_start());
    later.extend(h.advance(3_600_000));
    assert_eq!(notices.len(), 1);
    assert_eq!(later, vec![], "no second notice, no send");
}

#[test]
fn a_retry_uses_the_newest_token() {
    let mut h = Harness::new(jwt_config());
    let old = good_token("alice", 1);
    let new = good_token("alice", 2);
    h.identify("alice");
    h.pass_token(&old, "alice");
    h.track("e");
    h.flush();
    assert_eq!(h.pass_token(&new, "alice"), vec![], "one request in flight");
    h.respond(503, &[("retry-after", "1")], "");
    assert_eq!(
        h.advance(1_000),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&new))]
    );
    // A 401 for a request that carried the old token does not block the new one.
    let mut h = Harness::new(jwt_config());
    h.identify("alice");
    h.pass_token(&old, "alice");
    h.track("e");
    h.flush();
    h.pass_token(&new, "alice");
    assert_eq!(
        h.unauthorized("TIME_CONSTRAINT_FAILURE"),
        vec![
            notice("TIME_CONSTRAINT_FAILURE", Some("alice"), Some(&old)),
            send(h.batch_id(1), identified("alice"), 1, Some(&new)),
        ]
    );
}

#[test]
fn a_stale_401_for_the_old_user_after_a_switch_does_not_block_the_new_user() {
    let mut h = Harness::new(jwt_config());
    let alice = good_token("alice", 1);
    let bob = good_token("bob", 2);
    h.identify("alice");
    h.pass_token(&alice, "alice");
    h.track("a");
    h.flush();
    h.identify("bob");
    h.pass_token(&bob, "bob");
    h.track("b");
    h.flush();
    assert_eq!(
        h.unauthorized("IDENTIFIER_MISMATCH"),
        vec![
            notice("IDENTIFIER_MISMATCH", Some("alice"), Some(&alice)),
            dropped("logged_out_auth_failure", 1),
            send(h.batch_id(2), identified("bob"), 1, Some(&bob)),
        ]
    );
    assert_eq!(h.ok(), vec![acked(h.batch_id(2), 1)]);
}
