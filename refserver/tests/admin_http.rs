//! The admin HTTP routes, as an out-of-process test would use them.

mod common;

use std::time::Duration;

use authsync_refserver::keys;
use common::{NOW, Report, agent, base_config, get, post_json, server, start, token};
use serde_json::{Value, json};

fn admin_url(server: &authsync_refserver::RefServer, route: &str) -> String {
    format!("{}/admin/{route}", server.url())
}

#[test]
fn faults_queued_over_http_hit_the_next_requests_in_order() {
    let server = server();
    let reply = post_json(
        &admin_url(&server, "faults"),
        &json!([
            {"kind": "status", "status": 503, "retry_after_secs": 3},
            {"kind": "status", "status": 429, "retry_after_date": "Wed, 21 Oct 2015 07:28:00 GMT"},
            {"kind": "jwt_401", "code": "INVALID_SIGNATURE"},
            {"kind": "status", "status": 502, "body_text": "<html>bad gateway</html>"},
            {"kind": "delay", "ms": 50},
            {"kind": "close"},
            {"kind": "accept_then_fail", "status": 503},
            {"kind": "accept_then_close"},
        ]),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"queued": 8, "pending": 8}));
    let pending = get(&admin_url(&server, "faults")).json();
    assert_eq!(pending["pending"][0], "respond 503 (Retry-After: 3)");
    assert_eq!(pending["pending"].as_array().unwrap().len(), 8);

    let r = Report::anonymous("anon-1");
    let reply = r.send(&server);
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (503, Some("3"))
    );
    let reply = r.send(&server);
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (429, Some("Wed, 21 Oct 2015 07:28:00 GMT"))
    );
    r.send(&server).assert_jwt("INVALID_SIGNATURE");
    let reply = r.send(&server);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (502, "<html>bad gateway</html>")
    );
    r.clone().batch("delayed").send(&server).assert_ok(2, false);
    assert!(r.try_send(&server).is_err());
    assert_eq!(r.clone().batch("atf").send(&server).status, 503);
    assert!(r.clone().batch("atc").try_send(&server).is_err());
    r.clone().batch("atf").send(&server).assert_ok(2, true);
    r.batch("atc").send(&server).assert_ok(2, true);

    let stats = get(&admin_url(&server, "stats")).json();
    assert_eq!(stats["accepted_events"], 6);
    assert_eq!(stats["duplicates"], 2);
    assert_eq!(stats["faults_applied"], 8);
    assert_eq!(stats["accepted_by_app"], json!({"app-1": 6}));

    let reply = agent()
        .delete(&admin_url(&server, "faults"))
        .call()
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[test]
fn bad_faults_are_refused_with_400() {
    let server = server();
    for bad in [
        json!({"kind": "explode"}),
        json!({"kind": "status"}),
        json!("x"),
    ] {
        let reply = post_json(&admin_url(&server, "faults"), &bad);
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.json()["error"]["type"], "invalid_request");
    }
    assert!(server.admin().pending_faults().is_empty());
}

#[test]
fn the_request_log_events_and_batches_as_json() {
    let server = server();
    let t = token("user-1");
    Report::identified("user-1")
        .bearer(&t)
        .send(&server)
        .assert_ok(2, false);

    let log = get(&admin_url(&server, "requests")).json();
    let entry = &log[0];
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/v1/report");
    let headers = entry["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["authorization", format!("Bearer {t}")])));
    assert!(headers.contains(&json!(["x-app-id", "app-1"])));
    let body: Value = serde_json::from_str(entry["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["batch_id"], "batch-1");
    assert_eq!(entry["response"]["status"], 200);
    assert_eq!(entry["fault"], Value::Null);
    // Admin requests themselves are not logged.
    assert_eq!(log.as_array().unwrap().len(), 1);

    let events = get(&admin_url(&server, "events")).json();
    assert_eq!(events[1]["seq"], 2);
    assert_eq!(
        events[1]["user"],
        json!({"type": "identified", "id": "user-1"})
    );
    assert_eq!(events[1]["app_id"], "app-1");
    let batches = get(&admin_url(&server, "batches")).json();
    assert_eq!(batches[0]["events"], 2);
    assert_eq!(batches[0]["auth"]["key_kid"], "test-rsa-a");
    assert_eq!(batches[0]["auth"]["alg"], "RS256");

    let reply = post_json(&admin_url(&server, "reset"), &json!({}));
    assert_eq!(reply.status, 200);
    assert_eq!(get(&admin_url(&server, "events")).json(), json!([]));
}

#[test]
fn the_config_can_be_read_and_changed_over_http() {
    let server = start(base_config().leeway_secs(30));
    let config = get(&admin_url(&server, "config")).json();
    assert_eq!(config["mode"], "required");
    assert_eq!(config["leeway_secs"], 30);
    assert_eq!(config["clock"], json!({"type": "fixed", "unix": NOW}));
    assert_eq!(config["now"], NOW);
    assert_eq!(config["keys"].as_array().unwrap().len(), 3);

    let patch = |body: Value| {
        let mut response = agent()
            .patch(&admin_url(&server, "config"))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        let status = response.status().as_u16();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        (status, body)
    };
    // Only rsa_b, under another kid; mode disabled; another clock.
    let (status, config) = patch(json!({
        "keys": [{"pem": keys::rsa_b().public_pem(), "kid": "rotated"}],
        "mode": "disabled",
        "clock": {"fixed": NOW + 5},
        "leeway_secs": 0,
        "max_body_bytes": 4096,
    }));
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["keys"], json!([{"kid": "rotated", "kind": "rsa"}]));
    assert_eq!(config["mode"], "disabled");
    assert_eq!(config["now"], NOW + 5);
    Report::identified("user-1")
        .batch("b1")
        .send(&server)
        .assert_ok(2, false);

    let (status, _) = patch(json!({"mode": "required"}));
    assert_eq!(status, 200);
    Report::identified("user-1")
        .batch("b2")
        .bearer(&token("user-1"))
        .send(&server)
        .assert_jwt("INVALID_SIGNATURE");

    // A bad patch changes nothing at all.
    for bad in [
        json!({"mode": "sometimes", "leeway_secs": 99}),
        json!({"keys": [{"pem": "nope"}]}),
        json!({"keys": [{"pem": keys::rsa_a().private_pem()}]}),
        json!({"clock": "tomorrow"}),
        json!({"colour": "blue"}),
    ] {
        let (status, body) = patch(bad.clone());
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let config = get(&admin_url(&server, "config")).json();
    assert_eq!(config["leeway_secs"], 0);
    assert_eq!(config["mode"], "required");

    let (status, config) = patch(json!({"test_keys": true, "clock": "system"}));
    assert_eq!(status, 200);
    assert_eq!(config["keys"].as_array().unwrap().len(), 4);
    assert_eq!(config["clock"], json!({"type": "system"}));
}

#[test]
fn post_admin_mint_signs_tokens_the_server_accepts() {
    let server = server();
    let minted = post_json(&admin_url(&server, "mint"), &json!({"sub": "user-1"}));
    assert_eq!(minted.status, 200, "{}", minted.body);
    let minted = minted.json();
    assert_eq!(minted["kid"], "test-rsa-a");
    assert_eq!(minted["exp"], NOW + 600, "exp follows the server's clock");
    let t = minted["token"].as_str().unwrap().to_owned();
    Report::identified("user-1")
        .bearer(&t)
        .send(&server)
        .assert_ok(2, false);
    let batches = get(&admin_url(&server, "batches")).json();
    assert_eq!(batches[0]["auth"]["subject"], "user-1");

    // Two tokens for one subject differ (a `jti` each), as a token after a 401 must.
    let again = post_json(&admin_url(&server, "mint"), &json!({"sub": "user-1"})).json();
    assert_ne!(again["token"], minted["token"]);

    // Another key, an expired token, extra claims.
    let p256 = post_json(
        &admin_url(&server, "mint"),
        &json!({"sub": "user-2", "kid": "test-p256", "claims": {"scope": "x"}}),
    )
    .json();
    assert_eq!(p256["kid"], "test-p256");
    Report::identified("user-2")
        .batch("b2")
        .bearer(p256["token"].as_str().unwrap())
        .send(&server)
        .assert_ok(2, false);
    let expired = post_json(
        &admin_url(&server, "mint"),
        &json!({"sub": "user-3", "ttl_secs": -3600}),
    )
    .json();
    Report::identified("user-3")
        .batch("b3")
        .bearer(expired["token"].as_str().unwrap())
        .send(&server)
        .assert_jwt("TIME_CONSTRAINT_FAILURE");

    for bad in [
        json!({}),
        json!({"sub": 7}),
        json!({"sub": "u", "kid": "nope"}),
        json!({"sub": "u", "ttl_secs": "long"}),
        json!({"sub": "u", "claims": []}),
        json!({"sub": "u", "colour": "blue"}),
        json!("u"),
    ] {
        let reply = post_json(&admin_url(&server, "mint"), &bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
    assert_eq!(get(&admin_url(&server, "mint")).status, 405);
    // Admin routes are never logged: the minted tokens are not in the request log.
    assert_eq!(server.admin().request_log().len(), 3);
}

#[test]
fn unknown_admin_routes_and_methods() {
    let server = server();
    assert_eq!(get(&admin_url(&server, "nothing")).status, 404);
    let reply = agent().delete(&admin_url(&server, "stats")).call().unwrap();
    assert_eq!(reply.status(), 405);
}

#[test]
fn admin_routes_can_be_switched_off() {
    let server = start(base_config().admin_routes(false));
    let reply = get(&admin_url(&server, "stats"));
    assert_eq!(reply.status, 404);
    // Then /admin is just another unknown path, logged like any request.
    assert_eq!(server.admin().request_log().len(), 1);
}

#[test]
fn post_admin_shutdown_stops_the_server_cleanly() {
    let server = server();
    let url = server.url();
    let reply = post_json(&admin_url(&server, "shutdown"), &json!({}));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "stopping");
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.wait();
        let _ = done.send(());
    });
    waited
        .recv_timeout(Duration::from_secs(10))
        .expect("the server thread ends");
    assert!(agent().get(&format!("{url}/admin/stats")).call().is_err());
}

#[test]
fn shutdown_and_drop_free_the_port() {
    let server = server();
    let addr = server.local_addr();
    // A keep-alive connection is open when it stops.
    Report::anonymous("anon-1")
        .send(&server)
        .assert_ok(2, false);
    server.shutdown();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    let again = authsync_refserver::RefServer::start(base_config().bind(addr)).unwrap();
    drop(again);
}
