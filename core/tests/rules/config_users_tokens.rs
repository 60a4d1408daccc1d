//! C1, U1, U2, T1, T2, T3.

use authsync_core::{
    AuthDetailsError, Client, Config, ConfigError, IdentifyError, IgnoredBecause, Now, Outcome,
    Owner, TokenError,
};

use crate::support::*;

#[test]
fn c1_invalid_config_is_a_typed_error_not_a_panic() {
    let now = Now::new(0, 0);
    assert_eq!(
        Client::new(Config::new("", "http://h"), now).unwrap_err(),
        ConfigError::EmptyAppId
    );
    assert!(matches!(
        Client::new(Config::new("app", "not a url"), now).unwrap_err(),
        ConfigError::InvalidEndpoint { .. }
    ));
    assert!(matches!(
        Client::new(config().with_max_auth_failures(0), now).unwrap_err(),
        ConfigError::OutOfRange {
            field: "max_auth_failures",
            ..
        }
    ));
}

#[test]
fn u1_new_client_is_anonymous_with_an_id_from_the_seed_kept_across_restarts() {
    let mut h = Harness::new(config());
    let first = anon(&h.client);
    assert!(matches!(&first, Owner::Anonymous(id) if id.starts_with("anon-")));
    h.track("e");
    assert_eq!(h.restored().current_user(), &first);

    let same_seed = Harness::new(config());
    assert_eq!(
        anon(&same_seed.client),
        first,
        "ids are a function of the seed"
    );
    let other_seed = Harness::new(config().with_seed(43));
    assert_ne!(anon(&other_seed.client), first);
    assert_ne!(other_seed.client.install_id(), h.client.install_id());
}

#[test]
fn u2_identify_makes_later_events_belong_to_that_user() {
    let mut h = Harness::new(config().with_batch_limits(2, 128 * 1024));
    let anonymous = anon(&h.client);
    assert_eq!(h.track("before"), vec![]);
    // Identify seals the anonymous batch: a batch never mixes owners (S1).
    assert_eq!(
        h.identify("alice"),
        vec![send(h.batch_id(1), anonymous, 1, None)]
    );
    h.ok();
    h.track("after-1");
    let seen = h.track("after-2");
    assert_eq!(
        seen,
        vec![send(h.batch_id(2), identified("alice"), 2, None)]
    );
}

#[test]
fn u2_identify_with_the_current_id_is_a_no_op() {
    let mut h = Harness::new(config());
    h.identify("alice");
    h.track("e");
    let lsn = h.client.lsn();
    assert_eq!(
        h.client.handle_identify(h.now, "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::AlreadyIdentified))
    );
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.lsn(), lsn, "nothing persisted");
}

#[test]
fn u2_identify_another_user_acts_as_logout_then_identify() {
    let mut h = Harness::new(jwt_config());
    let alice_token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&alice_token, "alice");
    h.track("a1");
    // Alice's open batch is sealed and sent with her token (L1), then Bob is current.
    assert_eq!(
        h.identify("bob"),
        vec![send(
            h.batch_id(1),
            identified("alice"),
            1,
            Some(&alice_token)
        )]
    );
    assert_eq!(h.client.current_user(), &identified("bob"));
    // Alice is logged out: a 401 for her batch deletes her data (L2).
    assert_eq!(
        h.unauthorized("INVALID_SIGNATURE"),
        vec![
            notice("INVALID_SIGNATURE", Some("alice"), Some(&alice_token)),
            dropped("logged_out_auth_failure", 1),
        ]
    );
}

#[test]
fn u2_identify_refuses_empty_and_over_long_identifiers() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.client.handle_identify(h.now, ""),
        Err(IdentifyError::EmptyIdentifier)
    );
    let long = "x".repeat(authsync_core::MAX_IDENTIFIER_BYTES + 1);
    assert!(matches!(
        h.client.handle_identify(h.now, &long),
        Err(IdentifyError::IdentifierTooLong { .. })
    ));
    assert!(matches!(h.client.current_user(), Owner::Anonymous(_)));
}

#[test]
fn t1_malformed_tokens_are_refused_and_nothing_is_stored_or_sent() {
    let mut h = Harness::new(jwt_config());
    h.identify("alice");
    h.track("e");
    h.flush();
    let lsn = h.client.lsn();
    let oversized = format!("a.b.{}", "c".repeat(8 * 1024));
    let cases: Vec<(&str, &str, AuthDetailsError)> = vec![
        ("", "alice", AuthDetailsError::Token(TokenError::Empty)),
        ("a.b.c", "", AuthDetailsError::EmptyIdentifier),
        (
            "only.two",
            "alice",
            AuthDetailsError::Token(TokenError::NotJws),
        ),
        (
            "a.b.c\n",
            "alice",
            AuthDetailsError::Token(TokenError::NotVisibleAscii),
        ),
        (
            "a.b+.c",
            "alice",
            AuthDetailsError::Token(TokenError::NotJws),
        ),
        (
            &oversized,
            "alice",
            AuthDetailsError::Token(TokenError::TooLong {
                len: oversized.len(),
            }),
        ),
    ];
    for (token, id, expected) in cases {
        assert_eq!(
            h.client.handle_authentication_details(h.now, token, id),
            Err(expected)
        );
    }
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.lsn(), lsn, "nothing persisted");
    assert!(h.requests.is_empty(), "nothing sent");
}

#[test]
fn t2_a_token_replaces_the_identifiers_token_and_may_arrive_before_identify() {
    let mut h = Harness::new(jwt_config());
    let first = good_token("alice", 1);
    let second = good_token("alice", 2);
    assert_eq!(h.pass_token(&first, "alice"), vec![]);
    assert_eq!(h.pass_token(&second, "alice"), vec![]);
    assert_eq!(
        h.client
            .handle_authentication_details(h.now, &second, "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::SameToken))
    );
    h.identify("alice");
    h.track("e");
    assert_eq!(
        h.flush(),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&second))]
    );
}

#[test]
fn t3_tokens_are_never_printed_whole() {
    let mut h = Harness::new(jwt_config());
    let secret = good_token("alice", 7);
    h.identify("alice");
    h.pass_token(&secret, "alice");
    h.track("e");
    h.client.handle_flush(h.now);
    let mut printed = Vec::new();
    let print_all = |h: &mut Harness, printed: &mut Vec<String>| loop {
        let mut progressed = false;
        while let Some(job) = h.client.poll_write() {
            printed.push(format!("{job:?}"));
            h.client.handle_written(h.now, job.id, Ok(())).unwrap();
            progressed = true;
        }
        while let Some(event) = h.client.poll_event() {
            printed.push(format!("{event:?}"));
            progressed = true;
        }
        while let Some(step) = h.client.poll_step() {
            printed.push(format!("{step:?}"));
            if let authsync_core::Step::Send(request) = &step {
                printed.push(format!("{:?}", request.to_http()));
                h.requests.push((**request).clone());
            }
            progressed = true;
        }
        if !progressed {
            break;
        }
    };
    print_all(&mut h, &mut printed);
    let id = h.last_id();
    let body = r#"{"error":{"code":"INVALID_SIGNATURE"}}"#;
    let response = http::Response::builder()
        .status(401)
        .body(bytes::Bytes::from(body))
        .unwrap();
    h.client.handle_response(h.now, id, response).unwrap();
    print_all(&mut h, &mut printed);
    printed.push(format!("{:?}", h.client));
    printed.push(format!("{:?}", h.client.snapshot()));
    printed.push(format!(
        "{}",
        h.client
            .handle_authentication_details(h.now, &format!("{secret} "), "alice")
            .unwrap_err()
    ));
    for line in &printed {
        assert!(!line.contains(&secret), "token printed whole in {line}");
    }
    assert!(
        printed.iter().any(|l| l.contains(&secret[..8])),
        "a prefix helps debugging"
    );
}

#[test]
fn t3_a_clients_debug_shows_no_token() {
    let mut h = Harness::new(jwt_config());
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    let shown = format!("{:?}", h.client);
    assert!(shown.starts_with("Client"), "{shown}");
    assert!(
        shown.contains("identified:alice") || shown.contains("alice"),
        "{shown}"
    );
    assert!(!shown.contains(&token), "a token printed whole: {shown}");
}

#[test]
fn u2_t1_identifiers_of_up_to_1024_bytes_are_accepted() {
    let mut h = Harness::new(jwt_config());
    let longest = "i".repeat(authsync_core::MAX_IDENTIFIER_BYTES);
    let too_long = "i".repeat(authsync_core::MAX_IDENTIFIER_BYTES + 1);
    let token = good_token("i", 1);
    assert_eq!(
        h.client
            .handle_authentication_details(h.now, &token, &longest),
        Ok(Outcome::Applied)
    );
    assert_eq!(
        h.client
            .handle_authentication_details(h.now, &token, &too_long),
        Err(AuthDetailsError::IdentifierTooLong { len: 1025 })
    );
    assert_eq!(
        h.client.handle_identify(h.now, &longest),
        Ok(Outcome::Applied)
    );
    assert_eq!(
        h.client.handle_identify(h.now, &too_long),
        Err(IdentifyError::IdentifierTooLong { len: 1025 })
    );
}

#[test]
fn u1_the_seed_and_the_record_sequence_are_reported() {
    let mut h = Harness::new(config().with_seed(4_242));
    assert_eq!(h.client.seed(), 4_242);
    assert_eq!(h.client.lsn(), 1, "the install record");
    h.track("e");
    assert_eq!(h.client.lsn(), 2);
    assert_eq!(h.restored().seed(), 4_242, "kept across restarts");
}
