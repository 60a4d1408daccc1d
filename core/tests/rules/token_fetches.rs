//! R2: the token provider, asked by the core (single flight per identifier, a
//! timeout), and what a late answer means (R2a-R2e).

use std::time::Duration;

use authsync_core::{Config, IgnoredBecause, Outcome, TokenAnswer, UnknownJob};

use crate::support::*;

/// JWT on, a provider with a 30 s timeout.
fn provider_config() -> Config {
    jwt_config().with_token_provider(Duration::from_secs(30))
}

fn fetch(identifier: &str, code: &str) -> Seen {
    Seen::Fetch {
        identifier: identifier.to_owned(),
        code: code.to_owned(),
    }
}

fn failed(identifier: &str, reason: &str) -> Seen {
    Seen::FetchFailed {
        identifier: identifier.to_owned(),
        reason: reason.to_owned(),
    }
}

/// alice identified, one batch sealed and waiting for her token.
fn waiting_for_alice() -> Harness {
    let mut h = Harness::new(provider_config());
    h.identify("alice");
    h.track("e");
    assert_eq!(
        h.flush(),
        vec![
            notice("TOKEN_NOT_AVAILABLE", Some("alice"), None),
            fetch("alice", "TOKEN_NOT_AVAILABLE")
        ]
    );
    h
}

#[test]
fn r2_the_provider_is_asked_on_a_notice_and_its_token_is_used() {
    let mut h = waiting_for_alice();
    let token = good_token("alice", 1);
    assert_eq!(
        h.answer_fetch(TokenAnswer::Token(token.clone())),
        vec![send(h.batch_id(1), identified("alice"), 1, Some(&token))]
    );
}

#[test]
fn r2_one_fetch_at_a_time_per_identifier() {
    let mut h = waiting_for_alice();
    let first = good_token("alice", 1);
    h.pass_token(&first, "alice");
    // The 401 for the app's token is a new notice while the first fetch still runs:
    // no second fetch.
    assert_eq!(
        h.unauthorized("INVALID_SIGNATURE"),
        vec![notice("INVALID_SIGNATURE", Some("alice"), Some(&first))]
    );
    assert_eq!(h.fetches.len(), 1);
    // Another identifier gets its own.
    h.identify("bob");
    h.track("b");
    let seen = h.flush();
    assert!(
        seen.contains(&fetch("bob", "TOKEN_NOT_AVAILABLE")),
        "{seen:?}"
    );
    assert_eq!(h.fetches.len(), 2);
}

#[test]
fn r2_each_notice_with_an_identifier_asks_the_provider() {
    // A 401 of an identified owner.
    let mut h = Harness::new(provider_config());
    let first = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&first, "alice");
    h.track("e");
    h.flush();
    assert_eq!(
        h.unauthorized("TIME_CONSTRAINT_FAILURE"),
        vec![
            notice("TIME_CONSTRAINT_FAILURE", Some("alice"), Some(&first)),
            fetch("alice", "TIME_CONSTRAINT_FAILURE")
        ]
    );
    // R1's refresh-ahead notice.
    let mut h = Harness::new(provider_config());
    h.identify("carol");
    let expiring = token("carol", T0_UNIX_MS / 1000 + 30, 1);
    assert_eq!(
        h.pass_token(&expiring, "carol"),
        vec![
            notice("TOKEN_EXPIRING", Some("carol"), Some(&expiring)),
            fetch("carol", "TOKEN_EXPIRING")
        ]
    );
    // No notice names an anonymous owner's identifier: no fetch.
    let mut h = Harness::new(provider_config());
    h.track("x");
    h.flush();
    assert_eq!(
        h.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", None, None)]
    );
    assert!(h.fetches.is_empty());
}

#[test]
fn r2_with_jwt_disabled_or_without_a_provider_nothing_is_fetched() {
    let mut disabled = Harness::new(config().with_token_provider(Duration::from_secs(30)));
    disabled.identify("alice");
    disabled.track("e");
    disabled.flush();
    assert_eq!(
        disabled.unauthorized("UNKNOWN"),
        vec![notice("UNKNOWN", Some("alice"), None)]
    );
    let mut none = Harness::new(jwt_config());
    none.identify("alice");
    none.track("e");
    assert_eq!(
        none.flush(),
        vec![notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)]
    );
    assert!(disabled.fetches.is_empty() && none.fetches.is_empty());
}

#[test]
fn r2a_a_token_the_app_passed_meanwhile_wins_over_the_providers() {
    let mut h = waiting_for_alice();
    let apps = good_token("alice", 1);
    h.pass_token(&apps, "alice");
    let providers = good_token("alice", 2);
    assert_eq!(
        h.client
            .handle_token_answer(h.now, h.fetches[0].id, TokenAnswer::Token(providers)),
        Ok(Outcome::Ignored(IgnoredBecause::Superseded))
    );
    assert_eq!(
        h.drain(),
        vec![failed(
            "alice",
            "the app passed a token meanwhile; the provider's was not used"
        )]
    );
    assert_eq!(
        h.last_request().headers["authorization"],
        format!("Bearer {apps}")
    );
}

#[test]
fn r2b_a_user_who_logged_out_during_the_fetch_still_gets_the_token_for_what_is_left() {
    let mut h = Harness::new(provider_config());
    let first = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&first, "alice");
    h.track("e");
    h.flush();
    h.unauthorized("INVALID_SIGNATURE");
    // alice logs out with her batch still pending (her rejected token cannot send it,
    // L3 would delete it: a token passed before the sweep keeps it).
    let fresh = good_token("alice", 2);
    let _ = h.client.handle_logout(h.now);
    let id = h.fetches[0].id;
    let outcome = h
        .client
        .handle_token_answer(h.now, id, TokenAnswer::Token(fresh));
    let seen = h.drain();
    // L3 swept her data at logout (no usable token then): the answer comes for a user
    // who is gone.
    assert_eq!(
        outcome,
        Ok(Outcome::Ignored(IgnoredBecause::UserGone)),
        "{seen:?}"
    );

    // With a usable token at logout, her data stays and the provider's newer token
    // is used for it.
    let mut h = Harness::new(provider_config());
    let expiring = token("alice", T0_UNIX_MS / 1000 + 30, 1);
    h.identify("alice");
    h.pass_token(&expiring, "alice");
    let fetch_id = h.fetches[0].id;
    h.track("e");
    h.logout();
    h.respond(503, &[("retry-after", "60")], "");
    let newer = good_token("alice", 2);
    assert_eq!(
        h.client
            .handle_token_answer(h.now, fetch_id, TokenAnswer::Token(newer.clone())),
        Ok(Outcome::Applied)
    );
    h.drain();
    h.advance(60_000);
    assert_eq!(
        h.last_request().headers["authorization"],
        format!("Bearer {newer}"),
        "the retry uses the provider's token (S4)"
    );
}

#[test]
fn r2c_the_rejected_token_from_the_provider_is_ignored_and_not_asked_again() {
    let mut h = Harness::new(provider_config());
    let first = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&first, "alice");
    h.track("e");
    h.flush();
    h.unauthorized("INVALID_SIGNATURE");
    let id = h.fetches.last().unwrap().id;
    assert_eq!(
        h.client
            .handle_token_answer(h.now, id, TokenAnswer::Token(first.clone())),
        Ok(Outcome::Ignored(IgnoredBecause::RejectedToken))
    );
    assert_eq!(
        h.drain(),
        vec![failed(
            "alice",
            "the provider gave the token the server rejected"
        )]
    );
    assert_eq!(h.requests.len(), 1, "nothing sent with the rejected token");
    assert_eq!(h.fetches.len(), 1, "no fetch loop");
}

#[test]
fn r2d_an_answer_for_a_user_who_is_gone_is_not_stored() {
    let mut h = Harness::new(provider_config());
    h.identify("alice");
    let expiring = token("alice", T0_UNIX_MS / 1000 + 30, 1);
    h.pass_token(&expiring, "alice");
    h.logout();
    assert_eq!(
        h.client.handle_token_answer(
            h.now,
            h.fetches[0].id,
            TokenAnswer::Token(good_token("alice", 2))
        ),
        Ok(Outcome::Ignored(IgnoredBecause::UserGone))
    );
    // Identified again later, alice has no token: the provider's was not kept.
    h.drain();
    h.identify("alice");
    h.track("e");
    let seen = h.flush();
    assert!(
        seen.contains(&notice("TOKEN_NOT_AVAILABLE", Some("alice"), None)),
        "{seen:?}"
    );
}

#[test]
fn r2e_a_fetch_that_times_out_is_cancelled_and_its_late_answer_refused() {
    let mut h = waiting_for_alice();
    let id = h.fetches[0].id;
    assert_eq!(h.advance(29_999), vec![]);
    assert_eq!(
        h.advance(1),
        vec![
            failed(
                "alice",
                "the provider did not answer in time and was stopped"
            ),
            Seen::CancelFetch
        ]
    );
    assert_eq!(
        h.client
            .handle_token_answer(h.now, id, TokenAnswer::Token(good_token("alice", 1))),
        Err(UnknownJob)
    );
    assert_eq!(h.drain(), vec![], "a refused answer changes nothing");
    assert_eq!(h.client.outlook().fetches, 0);
}

#[test]
fn r2_no_token_failures_and_malformed_tokens_are_told_and_asked_again_on_the_next_notice() {
    let mut h = waiting_for_alice();
    assert_eq!(
        h.answer_fetch(TokenAnswer::NoToken),
        vec![failed("alice", "the provider gave no token")]
    );
    // A notice for alice again (her new episode after a token and a 401).
    let first = good_token("alice", 1);
    h.pass_token(&first, "alice");
    let seen = h.unauthorized("INVALID_SIGNATURE");
    assert!(
        seen.contains(&fetch("alice", "INVALID_SIGNATURE")),
        "{seen:?}"
    );
    let seen = h.answer_fetch(TokenAnswer::Token("not a jwt".into()));
    assert_eq!(seen.len(), 1);
    assert!(
        matches!(&seen[0], Seen::FetchFailed { reason, .. } if reason.contains("refused")),
        "{seen:?}"
    );
    let seen = h.advance(1);
    assert_eq!(seen, vec![]);
    let mut h = waiting_for_alice();
    assert_eq!(
        h.answer_fetch(TokenAnswer::Failed("exit status 3".into())),
        vec![failed("alice", "the provider failed: exit status 3")]
    );
}

#[test]
fn r2_closing_cancels_running_fetches() {
    let mut h = waiting_for_alice();
    h.client.handle_close(h.now);
    let seen = h.drain();
    assert!(seen.contains(&Seen::CancelFetch), "{seen:?}");
    assert!(
        seen.contains(&failed(
            "alice",
            "the client closed before the provider answered"
        )),
        "{seen:?}"
    );
    assert!(seen.contains(&Seen::Finish { clean: true }), "{seen:?}");
}

#[test]
fn r2_a_running_fetch_keeps_the_client_from_settling() {
    let mut h = waiting_for_alice();
    assert!(!h.client.outlook().is_settled(h.now.mono_ms));
    h.answer_fetch(TokenAnswer::NoToken);
    assert!(h.client.outlook().is_settled(h.now.mono_ms));
}

#[test]
fn r2_the_token_already_in_use_from_the_provider_changes_nothing() {
    let mut h = Harness::new(provider_config());
    h.identify("alice");
    // Expiring within the refresh-ahead window: the provider is asked (R1, R2).
    let expiring = token("alice", T0_UNIX_MS / 1000 + 30, 1);
    h.pass_token(&expiring, "alice");
    let id = h.fetches.last().expect("a refresh-ahead fetch").id;
    assert_eq!(
        h.client
            .handle_token_answer(h.now, id, TokenAnswer::Token(expiring.clone())),
        Ok(Outcome::Ignored(IgnoredBecause::SameToken))
    );
    assert_eq!(
        h.drain(),
        vec![failed(
            "alice",
            "the provider gave the token already in use"
        )]
    );
}

#[test]
fn r2_a_provider_answer_and_a_fetch_show_no_whole_token() {
    let token = good_token("alice", 7);
    let shown = format!("{:?}", TokenAnswer::Token(token.clone()));
    assert!(
        shown.starts_with("Token(") && !shown.contains(&token),
        "{shown}"
    );
    assert_eq!(format!("{:?}", TokenAnswer::NoToken), "NoToken");
    assert_eq!(
        format!("{:?}", TokenAnswer::Failed("exit 1".into())),
        "Failed(\"exit 1\")"
    );
    assert_eq!(authsync_core::FetchId(3).to_string(), "fetch #3");
}
