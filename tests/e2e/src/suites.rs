//! The suites: each rule group of the rules document (docs/rules.md), through a driver, over real HTTP.
//!
//! Every suite asserts what a user would check: what the server accepted (and how
//! often), what the listener heard, and the totals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use authsync_blocking::Event;
use authsync_core::{Environment, IgnoredBecause, Outcome};
use authsync_refserver::{Fault, FaultResponse, ServerConfig};
use serde_json::json;

use crate::driver::{Driver, Options, Recorder};
use crate::env::{Env, token, untrusted_token};

const WAIT: Duration = Duration::from_secs(15);

fn start<D: Driver>(options: Options) -> (D, Recorder) {
    let recorder = Recorder::default();
    let driver = D::start(options, recorder.clone()).unwrap_or_else(|e| panic!("start: {e}"));
    (driver, recorder)
}

fn track_n<D: Driver>(driver: &D, prefix: &str, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            driver
                .track(&format!("{prefix}{i}"), &json!({"i": i}))
                .unwrap()
        })
        .collect()
}

/// Accepted (app id, user id, seq) → how many times, for exactly-once checks.
fn accepted_seqs(env: &Env) -> BTreeMap<(String, String, u64), usize> {
    let mut seen = BTreeMap::new();
    for event in env.admin.accepted_events() {
        *seen
            .entry((event.app_id, event.user.id, event.seq))
            .or_default() += 1;
    }
    seen
}

/// U1, S1, S2, S3: anonymous events arrive once each, in order, without a token.
pub fn u1_s1_anonymous_events_arrive_once_in_order<D: Driver>() {
    let env = Env::new();
    let (driver, _) = start::<D>(Options::new(
        env.config("app-e2e").with_batch_limits(3, 128 * 1024),
    ));
    let seqs = track_n(&driver, "e", 7);
    assert_eq!(seqs, (1..=7).collect::<Vec<u64>>());
    let settled = driver.flush_and_wait(WAIT);
    assert!(settled.settled && settled.pending == 0, "{settled:?}");
    let events = env.admin.accepted_events();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs,
        "in order, once each"
    );
    assert!(events.iter().all(|e| e.user.id.starts_with("anon-")));
    assert_eq!(events[2].name, "e2");
    assert!(
        env.admin
            .request_log()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
    assert_eq!(
        env.admin.accepted_batches().len(),
        3,
        "batches of 3, 3 and 1"
    );
    assert_eq!(driver.totals().acked, 7);
}

/// S4, T2: an identified user's batches carry their token, the newest one.
pub fn s4_t2_identified_batches_carry_the_newest_token<D: Driver>() {
    let env = Env::new();
    let (driver, recorder) = start::<D>(Options::new(env.config("app-e2e")));
    let first = token("alice", 600, 1);
    assert_eq!(
        driver.pass_token(&first, "alice"),
        Ok(Outcome::Applied),
        "a token may come before identify"
    );
    driver.identify("alice").unwrap();
    driver.track("a", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let second = token("alice", 600, 2);
    assert_eq!(driver.pass_token(&second, "alice"), Ok(Outcome::Applied));
    driver.track("b", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let bearers: Vec<String> = env
        .admin
        .request_log()
        .iter()
        .filter_map(|r| r.bearer_token().map(str::to_owned))
        .collect();
    assert_eq!(bearers, vec![first, second]);
    let users: Vec<String> = env
        .admin
        .accepted_events()
        .into_iter()
        .map(|e| e.user.id)
        .collect();
    assert_eq!(users, vec!["alice", "alice"]);
    assert!(recorder.codes().is_empty(), "{:?}", recorder.codes());
}

/// S5, R2: a missing token is told once, the provider is asked once, the data waits
/// and then goes.
pub fn s5_r2_a_missing_token_is_asked_of_the_provider_once<D: Driver>() {
    let env = Env::new();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let options = Options::new(env.config("app-e2e").with_batch_limits(2, 128 * 1024)).provider(
        move |request| {
            let serial = counted.fetch_add(1, Ordering::SeqCst);
            // The backend is slow: the other batches' notices arrive meanwhile.
            std::thread::sleep(Duration::from_millis(150));
            Some(token(&request.identifier, 600, serial))
        },
    );
    let (driver, recorder) = start::<D>(options);
    driver.identify("alice").unwrap();
    track_n(&driver, "a", 6);
    let settled = driver.flush_and_wait(WAIT);
    assert!(settled.settled && settled.pending == 0, "{settled:?}");
    assert_eq!(recorder.codes(), vec!["TOKEN_NOT_AVAILABLE"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "single flight");
    assert_eq!(env.admin.accepted_count("app-e2e"), 6);
}

/// A2: a rejected token is told once with the token used; nothing goes until a new
/// token arrives; then the same batch goes and is accepted once.
pub fn a2_a_rejected_token_is_told_once_and_a_new_token_unblocks<D: Driver>() {
    let env = Env::new();
    let (driver, recorder) = start::<D>(Options::new(env.config("app-e2e")));
    let bad = untrusted_token("alice", 1);
    driver.identify("alice").unwrap();
    assert_eq!(driver.pass_token(&bad, "alice"), Ok(Outcome::Applied));
    track_n(&driver, "a", 3);
    let settled = driver.flush_and_wait(Duration::from_secs(2));
    assert!(
        settled.settled && settled.pending == 3,
        "waits for a token: {settled:?}"
    );
    let notices = recorder.notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].code.as_str(), "INVALID_SIGNATURE");
    assert_eq!(notices[0].identifier.as_deref(), Some("alice"));
    assert_eq!(
        notices[0].token.as_ref().map(|t| t.expose()),
        Some(bad.as_str())
    );
    assert_eq!(notices[0].app_id, "app-e2e");
    assert_eq!(
        driver.pass_token(&bad, "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::RejectedToken))
    );
    assert_eq!(
        env.admin.request_log().len(),
        1,
        "no retry with the rejected token"
    );
    assert_eq!(
        driver.pass_token(&token("alice", 600, 2), "alice"),
        Ok(Outcome::Applied)
    );
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-e2e"), 3);
    let ids: Vec<Option<String>> = env
        .admin
        .request_log()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(ids[0], ids[1], "the same batch, the same id");
}

/// A2, R2, S6: a token the server finds expired is refreshed through the provider.
pub fn a2_r2_an_expired_token_is_refreshed_through_the_provider<D: Driver>() {
    let env = Env::new();
    let options = Options::new(env.config("app-e2e").with_refresh_ahead(Duration::ZERO))
        .provider(|request| Some(token(&request.identifier, 600, 9)));
    let (driver, recorder) = start::<D>(options);
    driver.identify("alice").unwrap();
    assert_eq!(
        driver.pass_token(&token("alice", -120, 1), "alice"),
        Ok(Outcome::Applied)
    );
    track_n(&driver, "a", 2);
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(recorder.codes(), vec!["TIME_CONSTRAINT_FAILURE"]);
    assert_eq!(env.admin.accepted_count("app-e2e"), 2);
    assert_eq!(driver.totals().acked, 2);
}

/// R1: a token near its `exp` is refreshed before the server refuses anything.
pub fn r1_an_expiring_token_is_refreshed_ahead<D: Driver>() {
    let env = Env::new();
    let options = Options::new(env.config("app-e2e"))
        .provider(|request| Some(token(&request.identifier, 600, 2)));
    let (driver, recorder) = start::<D>(options);
    driver.identify("alice").unwrap();
    let expiring = token("alice", 30, 1);
    assert_eq!(driver.pass_token(&expiring, "alice"), Ok(Outcome::Applied));
    // Settling waits for the notice to be handled and the provider's answer passed in.
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(recorder.codes(), vec!["TOKEN_EXPIRING"]);
    driver.track("a", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let log = env.admin.request_log();
    assert_eq!(log.len(), 1);
    assert_ne!(log[0].bearer_token(), Some(expiring.as_str()));
    assert_eq!(recorder.codes(), vec!["TOKEN_EXPIRING"], "told once");
}

/// A3: after the maximum consecutive failures nothing is sent until the next session.
pub fn a3_lockout_after_the_maximum_failures_until_the_next_session<D: Driver>() {
    let env = Env::new();
    let serial = Arc::new(AtomicU32::new(10));
    let backend = Arc::clone(&serial);
    let options =
        Options::new(env.config("app-e2e").with_max_auth_failures(3)).provider(move |request| {
            Some(untrusted_token(
                &request.identifier,
                backend.fetch_add(1, Ordering::SeqCst),
            ))
        });
    let (driver, recorder) = start::<D>(options);
    driver.identify("alice").unwrap();
    assert_eq!(
        driver.pass_token(&untrusted_token("alice", 1), "alice"),
        Ok(Outcome::Applied)
    );
    driver.track("a", &json!({})).unwrap();
    let settled = driver.flush_and_wait(WAIT);
    assert!(settled.settled, "{settled:?}");
    assert!(driver.is_locked_out());
    assert_eq!(
        env.admin.request_log().len(),
        3,
        "exactly the maximum number of attempts"
    );
    assert_eq!(recorder.codes(), vec!["INVALID_SIGNATURE"; 3]);
    assert_eq!(
        recorder
            .events()
            .iter()
            .filter(|e| matches!(e, Event::LockedOut))
            .count(),
        1
    );
    // A good token during the lockout is stored, and used after the next session.
    assert_eq!(
        driver.pass_token(&token("alice", 600, 2), "alice"),
        Ok(Outcome::Applied)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        env.admin.request_log().len(),
        3,
        "nothing during the lockout"
    );
    driver.session_start().unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-e2e"), 1);
    assert!(!driver.is_locked_out());
}

/// A4, S3: 503 with Retry-After, a dropped connection, a lost answer, a slow answer:
/// every event is delivered exactly once.
pub fn a4_transient_faults_are_retried_and_delivered_exactly_once<D: Driver>() {
    let env = Env::new();
    env.admin.push_faults([
        Fault::Respond(FaultResponse::status(503).retry_after_secs(1)),
        Fault::close(),
        Fault::accept_then_fail(500),
        Fault::accept_then_close(),
        Fault::delay_ms(200),
        Fault::status(429),
    ]);
    let (driver, recorder) = start::<D>(Options::new(
        env.config("app-e2e").with_batch_limits(2, 128 * 1024),
    ));
    track_n(&driver, "e", 5);
    let settled = driver.flush_and_wait(WAIT);
    assert!(settled.settled && settled.pending == 0, "{settled:?}");
    let seen = accepted_seqs(&env);
    assert_eq!(seen.len(), 5);
    assert!(seen.values().all(|&n| n == 1), "exactly once: {seen:?}");
    assert_eq!(
        env.admin.duplicate_count(),
        2,
        "the two lost answers were retried under the same ids"
    );
    assert!(env.admin.pending_faults().is_empty());
    assert!(recorder.codes().is_empty());
    assert_eq!(driver.totals().acked, 5);
    let waited_for_retry_after = {
        let log = env.admin.request_log();
        log.len() >= 2
    };
    assert!(waited_for_retry_after);
}

/// A5: the server's body limit splits batches until they fit.
pub fn a5_too_large_batches_are_split_until_they_fit<D: Driver>() {
    let env = Env::with(ServerConfig::new().max_body_bytes(1_500));
    let (driver, _) = start::<D>(Options::new(env.config("app-e2e")));
    for i in 0..8 {
        driver
            .track("big", &json!({"i": i, "pad": "x".repeat(300)}))
            .unwrap();
    }
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-e2e"), 8);
    assert!(
        env.admin
            .request_log()
            .iter()
            .any(|r| r.response.status == Some(413))
    );
    assert!(env.admin.accepted_batches().len() >= 4);
    // A single event still too large is dropped, with the reason.
    driver
        .track("huge", &json!({"pad": "x".repeat(4_000)}))
        .unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let totals = driver.totals();
    assert_eq!((totals.acked, totals.dropped), (8, 1));
}

/// A6: a permanent refusal drops the batch and says why.
pub fn a6_a_permanent_refusal_drops_with_its_reason<D: Driver>() {
    let env = Env::new();
    env.admin.push_fault(Fault::status(422));
    let (driver, recorder) = start::<D>(Options::new(env.config("app-e2e")));
    track_n(&driver, "e", 2);
    assert!(driver.flush_and_wait(WAIT).settled);
    let drops: Vec<String> = recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Dropped(d) => Some(format!("{} {}", d.reason, d.events)),
            _ => None,
        })
        .collect();
    assert_eq!(drops, vec!["rejected (422) 2"]);
    assert_eq!(driver.totals().dropped, 2);
}

/// L1: after logout the old user's data still goes, with their token.
pub fn l1_logout_still_sends_the_old_users_data_with_their_token<D: Driver>() {
    let env = Env::new();
    // The server is slow to answer, so the logout happens while alice's data waits.
    env.admin.push_fault(Fault::delay_ms(300));
    let (driver, _) = start::<D>(Options::new(
        env.config("app-e2e").with_batch_limits(1, 128 * 1024),
    ));
    let alice = token("alice", 600, 1);
    driver.identify("alice").unwrap();
    assert_eq!(driver.pass_token(&alice, "alice"), Ok(Outcome::Applied));
    track_n(&driver, "a", 3);
    driver.logout().unwrap();
    driver.track("after", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let log = env.admin.request_log();
    let alice_requests: Vec<_> = log
        .iter()
        .filter(|r| r.body_json().is_some_and(|b| b["user"]["id"] == "alice"))
        .collect();
    assert_eq!(alice_requests.len(), 3);
    assert!(
        alice_requests
            .iter()
            .all(|r| r.bearer_token() == Some(alice.as_str()))
    );
    assert_eq!(env.admin.accepted_count("app-e2e"), 4);
}

/// L2: a 401 for the logged-out user's data deletes all of it, with one notice.
pub fn l2_a_401_after_logout_purges_the_old_users_data<D: Driver>() {
    let env = Env::new();
    env.admin
        .push_fault(Fault::jwt_401("TIME_CONSTRAINT_FAILURE"));
    let (driver, recorder) = start::<D>(Options::new(
        env.config("app-e2e").with_batch_limits(2, 128 * 1024),
    ));
    driver.identify("alice").unwrap();
    assert_eq!(
        driver.pass_token(&token("alice", 600, 1), "alice"),
        Ok(Outcome::Applied)
    );
    track_n(&driver, "a", 5);
    driver.logout().unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(recorder.codes(), vec!["TIME_CONSTRAINT_FAILURE"]);
    let totals = driver.totals();
    assert_eq!(
        (totals.tracked, totals.dropped, totals.pending()),
        (5, 5, 0)
    );
    assert_eq!(env.admin.accepted_count("app-e2e"), 0);
    assert_eq!(env.admin.request_log().len(), 1, "never retried");
}

/// D2: data pending when the process ends is delivered by the next one, once.
pub fn d2_a_restart_delivers_pending_data_once<D: Driver>() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(
        env.config("app-e2e")
            .with_flush_interval(Duration::from_secs(3600)),
    )
    .state_dir(dir.path());
    {
        let (driver, _) = start::<D>(options.clone());
        track_n(&driver, "before", 4);
        driver.close();
    }
    assert_eq!(env.admin.request_log().len(), 0, "nothing was flushed");
    let (driver, _) = start::<D>(options);
    driver.track("after", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    let seen = accepted_seqs(&env);
    assert_eq!(
        seen.keys().map(|k| k.2).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(seen.values().all(|&n| n == 1));
    assert_eq!(driver.totals().tracked, 5, "totals across runs");
}

/// D2: tokens, their rejected marks and the totals survive a restart.
pub fn d2_a_restart_keeps_tokens_and_totals<D: Driver>() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(env.config("app-e2e")).state_dir(dir.path());
    let bad = untrusted_token("alice", 1);
    let good = token("alice", 600, 2);
    {
        let (driver, _) = start::<D>(options.clone());
        driver.identify("alice").unwrap();
        assert_eq!(driver.pass_token(&bad, "alice"), Ok(Outcome::Applied));
        driver.track("a", &json!({})).unwrap();
        assert!(driver.flush_and_wait(WAIT).settled);
        assert_eq!(driver.pass_token(&good, "alice"), Ok(Outcome::Applied));
        assert!(driver.flush_and_wait(WAIT).settled);
        driver.track("b", &json!({})).unwrap();
        driver.close();
    }
    let (driver, recorder) = start::<D>(options);
    assert_eq!(
        driver.pass_token(&bad, "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::RejectedToken))
    );
    assert_eq!(
        driver.pass_token(&good, "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::SameToken))
    );
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-e2e"), 2);
    let totals = driver.totals();
    assert_eq!((totals.tracked, totals.acked), (2, 2));
    assert!(
        recorder.codes().is_empty(),
        "the restart told nothing again"
    );
}

/// D2: a second client on a state directory in use gets a clear error.
pub fn d2_a_state_directory_in_use_is_refused<D: Driver>() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(env.config("app-e2e")).state_dir(dir.path());
    let (_first, _) = start::<D>(options.clone());
    let second = D::start(options, Recorder::default());
    let error = second.err().unwrap_or_default();
    assert!(error.contains("in use"), "{error}");
}

/// W1: two workspaces, side by side, each with its own user, tokens, counter and data.
pub fn w1_two_workspaces_side_by_side<D: Driver>() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let (first, first_heard) =
        start::<D>(Options::new(env.config("app-one")).state_dir(dir.path().join("one")));
    let second_heard = Recorder::default();
    let second = first
        .add_workspace(
            Options::new(env.config("app-two")).state_dir(dir.path().join("two")),
            second_heard.clone(),
        )
        .unwrap();
    assert!(
        first
            .add_workspace(Options::new(env.config("app-two")), Recorder::default())
            .is_err()
    );
    first.identify("alice").unwrap();
    second.identify("alice").unwrap();
    assert_eq!(
        first.pass_token(&token("alice", 600, 1), "alice"),
        Ok(Outcome::Applied)
    );
    track_n(&first, "one", 3);
    track_n(&second, "two", 2);
    assert!(first.flush_and_wait(WAIT).settled);
    let _ = second.flush_and_wait(Duration::from_secs(1));
    assert_eq!(env.admin.accepted_count("app-one"), 3);
    assert_eq!(
        env.admin.accepted_count("app-two"),
        0,
        "no token in the second workspace"
    );
    assert_eq!(second_heard.codes(), vec!["TOKEN_NOT_AVAILABLE"]);
    assert!(first_heard.codes().is_empty());
    assert_eq!(
        second.pass_token(&token("alice", 600, 2), "alice"),
        Ok(Outcome::Applied)
    );
    assert!(second.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-two"), 2);
    assert_eq!((first.totals().tracked, second.totals().tracked), (3, 2));
}

/// LS1: a listener that panics does not stop the driver; the others still hear.
pub fn ls1_a_panicking_listener_does_not_stop_the_driver<D: Driver>() {
    let env = Env::new();
    let mut options = Options::new(env.config("app-e2e"));
    options.panicking_listener = true;
    let (driver, recorder) = start::<D>(options);
    driver.identify("alice").unwrap();
    driver.track("a", &json!({})).unwrap();
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(recorder.codes(), vec!["TOKEN_NOT_AVAILABLE"]);
    assert_eq!(
        driver.pass_token(&token("alice", 600, 1), "alice"),
        Ok(Outcome::Applied)
    );
    assert!(driver.flush_and_wait(WAIT).settled);
    assert_eq!(env.admin.accepted_count("app-e2e"), 1);
}

/// V1: passing a token with JWT disabled is an error in `Test`, ignored in `Live`.
pub fn v1_misuse_in_test_is_an_error_and_in_live_is_ignored<D: Driver>() {
    let env = Env::new();
    let test = env
        .config("app-test")
        .with_jwt(false)
        .with_environment(Environment::Test);
    let (driver, _) = start::<D>(Options::new(test));
    let error = driver
        .pass_token(&token("alice", 600, 1), "alice")
        .unwrap_err();
    assert!(error.contains("JWT disabled"), "{error}");
    let live = env.config("app-live").with_jwt(false);
    let (driver, _) = start::<D>(Options::new(live));
    assert_eq!(
        driver.pass_token(&token("alice", 600, 1), "alice"),
        Ok(Outcome::Ignored(IgnoredBecause::JwtDisabled))
    );
}
