//! SS1, V1, V2, W1.

use authsync_core::{
    AuthDetailsError, Client, Config, Environment, EventError, IgnoredBecause, Outcome,
};
use serde_json::json;

use crate::support::*;

#[test]
fn ss1_session_start_resets_the_counter_lifts_the_lockout_and_frees_waiting_batches() {
    let mut h = Harness::new(config().with_max_auth_failures(1));
    let anonymous = anon(&h.client);
    h.track("x");
    h.flush();
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", None, None), Seen::LockedOut]
    );
    assert!(h.client.is_locked_out());
    assert_eq!(
        h.session_start(),
        vec![send(h.batch_id(1), anonymous, 1, None)]
    );
    assert!(!h.client.is_locked_out());
    assert_eq!(h.client.auth_failures(), 0);
}

#[test]
fn ss1_a_running_backoff_still_runs_out() {
    let mut h = Harness::new(config());
    let anonymous = anon(&h.client);
    h.track("x");
    h.flush();
    h.respond(503, &[("retry-after", "60")], "");
    assert_eq!(h.session_start(), vec![]);
    assert_eq!(h.advance(59_999), vec![]);
    assert_eq!(h.advance(1), vec![send(h.batch_id(1), anonymous, 1, None)]);
}

#[test]
fn ss1_starting_a_client_is_not_a_session_start() {
    let mut h = Harness::new(config().with_max_auth_failures(1));
    h.track("x");
    h.flush();
    h.unauthorized("UNKNOWN");
    let restored = h.restored();
    assert!(restored.is_locked_out(), "the lockout survives a restart");
}

#[test]
fn v1_a_token_with_jwt_disabled_is_an_error_in_test_with_the_validator() {
    let now = authsync_core::Now::new(0, 0);
    let token = good_token("alice", 1);
    let test = config().with_environment(Environment::Test);
    let mut client = Client::new(test.clone(), now).unwrap();
    assert_eq!(
        client.handle_authentication_details(now, &token, "alice"),
        Err(AuthDetailsError::JwtDisabled)
    );
    for config in [config(), test.without_integration_validator()] {
        let mut h = Harness::new(config);
        assert_eq!(
            h.client
                .handle_authentication_details(h.now, &token, "alice"),
            Ok(Outcome::Ignored(IgnoredBecause::JwtDisabled))
        );
        h.identify("alice");
        h.track("e");
        assert_eq!(
            h.flush(),
            vec![send(h.batch_id(1), identified("alice"), 1, None)],
            "the token was not stored"
        );
    }
}

#[test]
fn v2_invalid_events_are_typed_errors_and_nothing_is_queued() {
    let mut h = Harness::new(config());
    type Case = (String, serde_json::Value, fn(&EventError) -> bool);
    let cases: Vec<Case> = vec![
        (String::new(), json!({}), |e| *e == EventError::EmptyName),
        ("n".repeat(257), json!({}), |e| {
            matches!(e, EventError::NameTooLong { len: 257 })
        }),
        ("e".into(), json!([1]), |e| {
            *e == EventError::AttributesNotObject
        }),
        ("e".into(), json!("text"), |e| {
            *e == EventError::AttributesNotObject
        }),
        ("e".into(), json!({"big": "x".repeat(32 * 1024)}), |e| {
            matches!(e, EventError::AttributesTooLarge { .. })
        }),
    ];
    for (name, attrs, is_expected) in cases {
        let error = h.client.handle_track(h.now, &name, &attrs).unwrap_err();
        assert!(is_expected(&error), "{error:?}");
    }
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.totals().tracked, 0);
    assert_eq!(
        h.client.handle_track(h.now, "ok", &json!({})).unwrap().seq,
        1,
        "no seq was used up"
    );
}

#[test]
fn w1_workspaces_are_isolated_instances() {
    let mut a = Harness::new(jwt_config());
    let mut b = Harness::new(
        Config::new("app-other", "http://127.0.0.1:9")
            .with_jwt(true)
            .with_seed(42),
    );
    let token = good_token("alice", 1);
    a.identify("alice");
    b.identify("alice");
    a.pass_token(&token, "alice");
    a.track("a");
    b.track("b");
    assert_eq!(a.flush().len(), 1);
    assert_eq!(
        b.flush(),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    a.unauthorized("UNKNOWN");
    assert_eq!((a.client.auth_failures(), b.client.auth_failures()), (1, 0));
    assert_eq!(b.client.config().app_id, "app-other");
}
