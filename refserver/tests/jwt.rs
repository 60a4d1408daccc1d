//! JWT verification through real HTTP: every error code, the order of the JWT checks,
//! rotation, algorithms, `typ`, `kid`, `sub` forms, leeway edges, enforcement modes.

mod common;

use authsync_refserver::keys::{self, TestKey};
use authsync_refserver::mint::{Claims, MintOptions, compact, mint, mint_with_header};
use authsync_refserver::{Alg, Clock, Enforcement, JwtErrorCode};
use common::{NOW, Report, base_config, server, start, token, token_by};
use serde_json::{Value, json};

fn valid_claims(sub: &str) -> Claims {
    Claims::for_subject(sub).exp(NOW + 600).iat(NOW)
}

fn minted(key: &TestKey, claims: &Claims, options: &MintOptions) -> String {
    mint(key, claims, options).unwrap()
}

/// Sends an identified batch of `user-1` with this token.
fn send_token(server: &authsync_refserver::RefServer, token: &str) -> common::Reply {
    Report::identified("user-1").bearer(token).send(server)
}

#[test]
fn token_not_available_without_a_token_or_with_an_empty_bearer() {
    let server = server();
    Report::identified("user-1")
        .send(&server)
        .assert_jwt("TOKEN_NOT_AVAILABLE");
    Report::identified("user-1")
        .header("Authorization", "Bearer")
        .send(&server)
        .assert_jwt("TOKEN_NOT_AVAILABLE");
    Report::identified("user-1")
        .header("Authorization", "Bearer    ")
        .send(&server)
        .assert_jwt("TOKEN_NOT_AVAILABLE");
}

#[test]
fn unknown_for_another_scheme_or_several_authorization_headers() {
    let server = server();
    Report::identified("user-1")
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send(&server)
        .assert_jwt("UNKNOWN");
    Report::identified("user-1")
        .bearer(&token("user-1"))
        .bearer(&token("user-1"))
        .send(&server)
        .assert_jwt("UNKNOWN");
}

#[test]
fn decryption_failed_for_what_is_not_a_decodable_jws() {
    let server = server();
    let good = token("user-1");
    let mut parts = good.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let not_json = base64_url(b"not json");
    let array = base64_url(b"[1,2]");
    let cases = [
        "garbage".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}!.{p}.{s}"),
        format!("{not_json}.{p}.{s}"),
        format!("{h}.{not_json}.{s}"),
        format!("{h}.{array}.{s}"),
        format!("{h}.{p}.{s}%%"),
    ];
    for case in cases {
        let reply = send_token(&server, &case);
        reply.assert_jwt("DECRYPTION_FAILED");
        assert!(
            !reply.body.contains(&case),
            "the message must not echo the token"
        );
    }
}

fn base64_url(bytes: &[u8]) -> String {
    // `compact` base64url-encodes the signature bytes as given: its last segment.
    compact(&Value::Null, &Value::Null, bytes)
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn header_type_incompatible_for_a_bad_alg_or_typ() {
    let server = server();
    let claims = valid_claims("user-1").to_json();
    let key = keys::rsa_a();
    let headers = [
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "rs256", "typ": "JWT"}),
        json!({"alg": "RS384", "typ": "JWT"}),
        json!({"typ": "JWT"}),
        json!({"alg": 256}),
        json!({"alg": "RS256", "typ": "JWS"}),
        json!({"alg": "RS256", "typ": 1}),
        json!({"alg": "RS256", "typ": "application/json"}),
    ];
    for header in headers {
        // Properly RS256-signed, so only the header is wrong.
        let token = mint_with_header(&key, Alg::RS256, &header, &claims).unwrap();
        send_token(&server, &token).assert_jwt("HEADER_TYPE_INCOMPATIBLE");
    }
    // Unsigned "none" tokens get the header code too, before any signature check.
    let none = compact(&json!({"alg": "none"}), &claims, b"");
    send_token(&server, &none).assert_jwt("HEADER_TYPE_INCOMPATIBLE");
}

#[test]
fn typ_is_jwt_in_any_case_or_absent() {
    let server = server();
    for (i, typ) in [Some("JWT"), Some("jwt"), Some("Jwt"), None]
        .into_iter()
        .enumerate()
    {
        let token = minted(
            &keys::rsa_a(),
            &valid_claims("user-1"),
            &MintOptions::new().typ(typ),
        );
        Report::identified("user-1")
            .batch(&format!("b{i}"))
            .bearer(&token)
            .send(&server)
            .assert_ok(2, false);
    }
}

#[test]
fn invalid_signature_for_a_foreign_key_a_tampered_token_or_an_unknown_kid() {
    // Only rsa_a is trusted here.
    let server = start(
        authsync_refserver::ServerConfig::default()
            .with_key(keys::rsa_a())
            .clock(Clock::Fixed(NOW)),
    );
    let claims = valid_claims("user-1");
    // Signed by a key the server does not trust, without a kid.
    let foreign = minted(&keys::rsa_b(), &claims, &MintOptions::new().without_kid());
    send_token(&server, &foreign).assert_jwt("INVALID_SIGNATURE");
    // Signed by rsa_b but claiming rsa_a's kid.
    let lying = minted(
        &keys::rsa_b(),
        &claims,
        &MintOptions::new().kid("test-rsa-a"),
    );
    send_token(&server, &lying).assert_jwt("INVALID_SIGNATURE");
    // A kid no configured key has.
    let unknown = minted(&keys::rsa_a(), &claims, &MintOptions::new().kid("nope"));
    send_token(&server, &unknown).assert_jwt("INVALID_SIGNATURE");
    // ES256, and no EC key configured.
    let ec = minted(&keys::p256(), &claims, &MintOptions::new().without_kid());
    send_token(&server, &ec).assert_jwt("INVALID_SIGNATURE");
    // A valid token whose payload was swapped for another subject's.
    let good = token("user-1");
    let other = token("user-2");
    let mut g = good.split('.');
    let mut o = other.split('.');
    let tampered = format!(
        "{}.{}.{}",
        g.next().unwrap(),
        o.nth(1).unwrap(),
        g.nth(1).unwrap()
    );
    Report::identified("user-2")
        .bearer(&tampered)
        .send(&server)
        .assert_jwt("INVALID_SIGNATURE");
    // An empty signature.
    let (message, _) = good.rsplit_once('.').unwrap();
    send_token(&server, &format!("{message}.")).assert_jwt("INVALID_SIGNATURE");

    // A server without any key refuses every token with INVALID_SIGNATURE.
    let keyless = start(authsync_refserver::ServerConfig::default().clock(Clock::Fixed(NOW)));
    send_token(&keyless, &good).assert_jwt("INVALID_SIGNATURE");
}

#[test]
fn payload_content_missing_without_sub_or_numeric_exp() {
    let server = server();
    let cases = [
        Claims::new().exp(NOW + 600),
        Claims::for_subject("user-1"),
        Claims::for_subject("user-1").claim("exp", json!("1700000600")),
        Claims::new().claim("sub", json!(42)).exp(NOW + 600),
        Claims::new()
            .claim("sub", json!({"key": "id"}))
            .exp(NOW + 600),
        Claims::new()
            .claim("sub", json!({"key": "id", "value": 7}))
            .exp(NOW + 600),
        valid_claims("user-1").claim("nbf", json!("soon")),
    ];
    for claims in cases {
        let token = minted(&keys::rsa_a(), &claims, &MintOptions::default());
        send_token(&server, &token).assert_jwt("PAYLOAD_CONTENT_MISSING");
    }
}

#[test]
fn time_constraint_failure_past_the_leeway_and_acceptance_at_its_edge() {
    // Default leeway: 30 s.
    let server = server();
    let key = keys::rsa_a();
    let cases: [(Claims, bool); 8] = [
        (Claims::for_subject("user-1").exp(NOW - 30), true),
        (Claims::for_subject("user-1").exp(NOW - 31), false),
        (
            Claims::for_subject("user-1").exp(NOW + 600).nbf(NOW + 30),
            true,
        ),
        (
            Claims::for_subject("user-1").exp(NOW + 600).nbf(NOW + 31),
            false,
        ),
        (
            Claims::for_subject("user-1").exp(NOW + 600).iat(NOW + 30),
            true,
        ),
        (
            Claims::for_subject("user-1").exp(NOW + 600).iat(NOW + 31),
            false,
        ),
        // Fractional NumericDates are numbers too.
        (
            Claims::for_subject("user-1").claim("exp", json!(NOW as f64 - 30.5)),
            false,
        ),
        (
            Claims::for_subject("user-1").claim("exp", json!(NOW as f64 - 29.5)),
            true,
        ),
    ];
    for (i, (claims, accepted)) in cases.into_iter().enumerate() {
        let token = minted(&key, &claims, &MintOptions::default());
        let reply = Report::identified("user-1")
            .batch(&format!("b{i}"))
            .bearer(&token)
            .send(&server);
        if accepted {
            reply.assert_ok(2, false);
        } else {
            reply.assert_jwt("TIME_CONSTRAINT_FAILURE");
        }
    }
}

#[test]
fn the_leeway_and_the_clock_are_configurable() {
    let server = start(base_config().leeway_secs(0));
    let key = keys::rsa_a();
    let at_now = minted(
        &key,
        &Claims::for_subject("user-1").exp(NOW),
        &MintOptions::default(),
    );
    let past = minted(
        &key,
        &Claims::for_subject("user-1").exp(NOW - 1),
        &MintOptions::default(),
    );
    Report::identified("user-1")
        .batch("b1")
        .bearer(&at_now)
        .send(&server)
        .assert_ok(2, false);
    Report::identified("user-1")
        .batch("b2")
        .bearer(&past)
        .send(&server)
        .assert_jwt("TIME_CONSTRAINT_FAILURE");

    // Moving the server clock a second back makes the same token pass.
    server.admin().set_clock(Clock::Fixed(NOW - 1));
    Report::identified("user-1")
        .batch("b2")
        .bearer(&past)
        .send(&server)
        .assert_ok(2, false);
    // And a leeway change through update_config takes effect at once.
    server.admin().set_clock(Clock::Fixed(NOW + 100));
    Report::identified("user-1")
        .batch("b3")
        .bearer(&at_now)
        .send(&server)
        .assert_jwt("TIME_CONSTRAINT_FAILURE");
    server.admin().update_config(|c| c.leeway_secs = 100);
    Report::identified("user-1")
        .batch("b3")
        .bearer(&at_now)
        .send(&server)
        .assert_ok(2, false);
}

#[test]
fn identifier_mismatch_for_another_subject_in_either_form() {
    let server = server();
    send_token(&server, &token("user-2")).assert_jwt("IDENTIFIER_MISMATCH");
    let object = minted(
        &keys::rsa_a(),
        &Claims::new().sub_object("user_id", "user-2").exp(NOW + 600),
        &MintOptions::default(),
    );
    send_token(&server, &object).assert_jwt("IDENTIFIER_MISMATCH");
}

#[test]
fn sub_in_object_form_is_accepted_whatever_its_key() {
    let server = server();
    for (i, key_name) in ["user_id", "email", ""].into_iter().enumerate() {
        let token = minted(
            &keys::rsa_a(),
            &Claims::new().sub_object(key_name, "user-1").exp(NOW + 600),
            &MintOptions::default(),
        );
        Report::identified("user-1")
            .batch(&format!("b{i}"))
            .bearer(&token)
            .send(&server)
            .assert_ok(2, false);
    }
}

#[test]
fn the_jwt_checks_run_in_the_spec_order() {
    let server = server();
    let key = keys::rsa_a();
    // Bad typ and a foreign signature: the header check comes first.
    let token = minted(
        &keys::rsa_b(),
        &valid_claims("user-1"),
        &MintOptions::new().typ(Some("JWS")),
    );
    let server_a = start(
        authsync_refserver::ServerConfig::default()
            .with_key(keys::rsa_a())
            .clock(Clock::Fixed(NOW)),
    );
    send_token(&server_a, &token).assert_jwt("HEADER_TYPE_INCOMPATIBLE");
    // No sub and a foreign signature: the signature comes first.
    let token = minted(
        &keys::rsa_b(),
        &Claims::new().exp(NOW + 600),
        &MintOptions::default(),
    );
    send_token(&server_a, &token).assert_jwt("INVALID_SIGNATURE");
    // Expired and without sub: missing claims come before time.
    let token = minted(
        &key,
        &Claims::new().exp(NOW - 1000),
        &MintOptions::default(),
    );
    send_token(&server, &token).assert_jwt("PAYLOAD_CONTENT_MISSING");
    // Expired and for another subject: time comes before the subject.
    let token = minted(
        &key,
        &Claims::for_subject("user-2").exp(NOW - 1000),
        &MintOptions::default(),
    );
    send_token(&server, &token).assert_jwt("TIME_CONSTRAINT_FAILURE");
}

#[test]
fn every_algorithm_verifies_with_its_key_type() {
    let server = server();
    let cases = [
        (keys::rsa_a(), Alg::RS256),
        (keys::rsa_a(), Alg::RS512),
        (keys::rsa_b(), Alg::RS512),
        (keys::p256(), Alg::ES256),
    ];
    for (i, (key, alg)) in cases.into_iter().enumerate() {
        let token = minted(&key, &valid_claims("user-1"), &MintOptions::new().alg(alg));
        Report::identified("user-1")
            .batch(&format!("b{i}"))
            .bearer(&token)
            .send(&server)
            .assert_ok(2, false);
        let batch = server.admin().accepted_batches().pop().unwrap();
        let auth = batch.auth.unwrap();
        assert_eq!(auth.alg, alg);
        assert_eq!(auth.key_kid.as_deref(), Some(key.kid()));
    }
}

#[test]
fn rotation_two_keys_with_and_without_kid() {
    let server = start(
        authsync_refserver::ServerConfig::default()
            .with_keys([keys::rsa_a(), keys::rsa_b()])
            .clock(Clock::Fixed(NOW)),
    );
    let mut n = 0;
    let mut send = |token: &str| {
        n += 1;
        Report::identified("user-1")
            .batch(&format!("b{n}"))
            .bearer(token)
            .send(&server)
    };
    for key in [keys::rsa_a(), keys::rsa_b()] {
        // With a kid, the named key verifies it.
        send(&token_by(&key, "user-1")).assert_ok(2, false);
        // Without a kid, each key is tried.
        let no_kid = minted(
            &key,
            &valid_claims("user-1"),
            &MintOptions::new().without_kid(),
        );
        send(&no_kid).assert_ok(2, false);
    }
    let kids: Vec<Option<String>> = server
        .admin()
        .accepted_batches()
        .into_iter()
        .map(|b| b.auth.unwrap().key_kid)
        .collect();
    assert_eq!(
        kids,
        ["test-rsa-a", "test-rsa-a", "test-rsa-b", "test-rsa-b"].map(|k| Some(k.to_owned()))
    );

    // Retire key A: its tokens now fail, B's still pass.
    server
        .admin()
        .update_config(|c| c.keys.retain(|k| k.kid() != Some("test-rsa-a")));
    send(&token_by(&keys::rsa_a(), "user-1")).assert_jwt("INVALID_SIGNATURE");
    let no_kid = minted(
        &keys::rsa_a(),
        &valid_claims("user-1"),
        &MintOptions::new().without_kid(),
    );
    send(&no_kid).assert_jwt("INVALID_SIGNATURE");
    send(&token_by(&keys::rsa_b(), "user-1")).assert_ok(2, false);
}

#[test]
fn keys_without_kid_stand_in_for_any_kid() {
    let server = start(
        authsync_refserver::ServerConfig::default()
            .with_key(keys::rsa_a().verify_key_without_kid())
            .clock(Clock::Fixed(NOW)),
    );
    let token = minted(
        &keys::rsa_a(),
        &valid_claims("user-1"),
        &MintOptions::new().kid("backend-2024"),
    );
    send_token(&server, &token).assert_ok(2, false);
    // But a key with a kid is only used for that kid.
    let named = start(
        authsync_refserver::ServerConfig::default()
            .with_key(keys::rsa_a())
            .clock(Clock::Fixed(NOW)),
    );
    send_token(&named, &token).assert_jwt("INVALID_SIGNATURE");
}

#[test]
fn anonymous_batches_are_accepted_without_a_token_in_both_modes() {
    for mode in [Enforcement::Required, Enforcement::Disabled] {
        let server = start(base_config().enforcement(mode));
        Report::anonymous("anon-1")
            .batch("b1")
            .send(&server)
            .assert_ok(2, false);
        // A token on an anonymous batch is ignored, even a broken one.
        Report::anonymous("anon-1")
            .batch("b2")
            .bearer("garbage")
            .send(&server)
            .assert_ok(2, false);
        Report::anonymous("anon-1")
            .batch("b3")
            .header("Authorization", "Basic abc")
            .send(&server)
            .assert_ok(2, false);
        assert_eq!(server.admin().accepted_batches()[0].auth, None, "{mode}");
    }
}

#[test]
fn enforcement_disabled_ignores_tokens_entirely() {
    let server = start(base_config().enforcement(Enforcement::Disabled));
    Report::identified("user-1")
        .batch("b1")
        .send(&server)
        .assert_ok(2, false);
    Report::identified("user-1")
        .batch("b2")
        .bearer("garbage")
        .send(&server)
        .assert_ok(2, false);
    Report::identified("user-1")
        .batch("b3")
        .bearer(&token("someone-else"))
        .send(&server)
        .assert_ok(2, false);
    // Switching it on at run time applies to the next request.
    server
        .admin()
        .update_config(|c| c.enforcement = Enforcement::Required);
    Report::identified("user-1")
        .batch("b4")
        .send(&server)
        .assert_jwt("TOKEN_NOT_AVAILABLE");
}

#[test]
fn every_server_side_code_is_covered_above() {
    // A guard: if a code is added, this list (and a test for it) must grow.
    let tested = [
        "DECRYPTION_FAILED",
        "HEADER_TYPE_INCOMPATIBLE",
        "TIME_CONSTRAINT_FAILURE",
        "PAYLOAD_CONTENT_MISSING",
        "INVALID_SIGNATURE",
        "IDENTIFIER_MISMATCH",
        "TOKEN_NOT_AVAILABLE",
        "UNKNOWN",
    ];
    let all: Vec<&str> = JwtErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(all, tested);
}
