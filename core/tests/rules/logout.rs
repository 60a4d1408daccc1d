//! L1–L5.

use authsync_core::{IgnoredBecause, Outcome, Owner};

use crate::support::*;

#[test]
fn l1_logout_sends_the_old_users_data_with_their_token_and_starts_a_new_anonymous_user() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    let first_anonymous = anon(&h.client);
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    assert_eq!(
        h.track_n(2),
        vec![send(h.batch_id(1), identified("alice"), 2, Some(&token))]
    );
    h.track("open");
    assert_eq!(
        h.logout(),
        vec![],
        "her open batch is sealed, behind the one in flight"
    );
    let second_anonymous = anon(&h.client);
    assert!(matches!(second_anonymous, Owner::Anonymous(_)));
    assert_ne!(second_anonymous, first_anonymous);
    assert_eq!(
        h.ok(),
        vec![
            acked(h.batch_id(1), 2),
            send(h.batch_id(2), identified("alice"), 1, Some(&token))
        ]
    );
    assert_eq!(h.ok(), vec![acked(h.batch_id(2), 1)]);
    // Her token was kept only for that: a new batch of hers would have none.
    h.identify("alice");
    h.track("back");
    assert_eq!(
        h.flush(),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
}

#[test]
fn l2_a_401_after_logout_deletes_all_of_the_users_data_with_one_notice() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track_n(5);
    h.logout();
    assert_eq!(
        h.unauthorized("TIME_CONSTRAINT_FAILURE"),
        vec![
            notice("TIME_CONSTRAINT_FAILURE", Some("alice"), Some(&token)),
            dropped("logged_out_auth_failure", 5),
        ]
    );
    assert_eq!(h.client.auth_failures(), 1, "counted as in A2, once");
    assert_eq!(h.advance(600_000), vec![], "never retried");
    let totals = h.client.totals();
    assert_eq!(
        (totals.tracked, totals.dropped, totals.pending()),
        (5, 5, 0)
    );
}

#[test]
fn l3_logout_without_a_usable_token_deletes_the_data_at_once_without_a_notice() {
    // No token at all.
    let mut h = Harness::new(jwt_config());
    h.identify("alice");
    h.track_n(3);
    assert_eq!(h.logout(), vec![dropped("logged_out_auth_failure", 3)]);

    // Only a rejected token.
    let mut h = Harness::new(jwt_config());
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track("e");
    h.flush();
    h.unauthorized("INVALID_SIGNATURE");
    h.track("f");
    assert_eq!(h.logout(), vec![dropped("logged_out_auth_failure", 2)]);
    assert_eq!(h.client.totals().pending(), 0);
}

#[test]
fn l4_transient_failures_after_logout_keep_the_data_and_retry_it() {
    let mut h = Harness::new(jwt_config());
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track("e");
    assert_eq!(
        h.logout(),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );
    assert_eq!(h.respond(503, &[("retry-after", "5")], ""), vec![]);
    assert_eq!(
        h.advance(5_000),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );
    h.transport_failure();
    let wait = h.client.poll_timeout().unwrap().at_mono_ms - h.now.mono_ms;
    assert_eq!(
        h.advance(wait),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );
    // L2 still applies later.
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![
            notice("UNKNOWN", Some("alice"), Some(&token)),
            dropped("logged_out_auth_failure", 1)
        ]
    );
}

#[test]
fn l5_logout_while_anonymous_changes_nothing() {
    let mut h = Harness::new(config());
    let anonymous = anon(&h.client);
    h.track("e");
    let lsn = h.client.lsn();
    assert_eq!(
        h.client.handle_logout(h.now),
        Outcome::Ignored(IgnoredBecause::AlreadyAnonymous)
    );
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.lsn(), lsn);
    assert_eq!(anon(&h.client), anonymous);
}

#[test]
fn l2_a_401_after_logout_deletes_the_users_data_with_jwt_disabled_too() {
    let mut h = Harness::new(config());
    h.identify("alice");
    h.track_n(2);
    h.flush();
    h.logout();
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![
            notice("UNKNOWN", Some("alice"), None),
            dropped("logged_out_auth_failure", 2)
        ]
    );
    assert_eq!(h.client.totals().pending(), 0);
}
