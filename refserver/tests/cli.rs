//! The binary: `--help`, bad arguments, and a real run with `--port 0`.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authsync_refserver::keys;
use authsync_refserver::mint::{Claims, MintOptions, mint};
use common::{NOW, agent};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_authsync-refserver");

fn fixture(name: &str) -> String {
    format!("{}/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts the binary and reads its first stdout line: the base URL.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

fn wait_exit(child: &mut Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post_report(url: &str, token: &str) -> (u16, Value) {
    let body = json!({"batch_id": "b1", "app_id": "app", "user": {"type": "identified", "id": "user-1"},
                      "events": [{"seq": 1, "name": "e", "ts_ms": 1, "attrs": {}}]});
    let mut response = agent()
        .post(format!("{url}/v1/report"))
        .header("Content-Type", "application/json")
        .header("X-App-Id", "app")
        .header("Idempotency-Key", "b1")
        .header("Authorization", format!("Bearer {token}"))
        .send(body.to_string().as_bytes())
        .unwrap();
    let status = response.status().as_u16();
    let json = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    (status, json)
}

#[test]
fn help_documents_keys_mode_leeway_and_port() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--key PATH[:KID]",
        "--test-keys",
        "--mode",
        "--leeway",
        "--port",
        "--bind",
        "--max-body",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn bad_arguments_exit_2_and_unusable_keys_exit_1() {
    for args in [
        &["--mode", "sometimes"][..],
        &["--port", "huge"],
        &["--what"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--help"));
    }
    let private = fixture("rsa-a.private.pem");
    let output = Command::new(BIN)
        .args(["--key", &private])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("private key"));
    let output = Command::new(BIN)
        .args(["--key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn serves_on_port_0_with_a_key_file_and_stops_on_admin_shutdown() {
    let key = format!("{}:backend-1", fixture("rsa-a.public.pem"));
    let (mut child, url) = spawn(&["--port", "0", "--key", &key, "--now", &NOW.to_string()]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"));

    let claims = Claims::for_subject("user-1").exp(NOW + 60);
    let good = mint(
        &keys::rsa_a(),
        &claims,
        &MintOptions::new().kid("backend-1"),
    )
    .unwrap();
    assert_eq!(
        post_report(&url, &good),
        (
            200,
            json!({"status": "ok", "accepted": 1, "duplicate": false})
        )
    );
    let foreign = mint(
        &keys::rsa_b(),
        &claims,
        &MintOptions::new().kid("backend-1"),
    )
    .unwrap();
    let (status, body) = post_report(&url, &foreign);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("INVALID_SIGNATURE"))
    );

    let mut stats = agent().get(format!("{url}/admin/stats")).call().unwrap();
    let stats: Value = serde_json::from_str(&stats.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(stats["accepted_events"], 1);

    agent()
        .post(format!("{url}/admin/shutdown"))
        .send(&b""[..])
        .unwrap();
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!(code, 0, "{stderr}");
    // The access log has one line per request and never a token.
    assert!(stderr.contains("POST /v1/report -> 200"), "{stderr}");
    assert!(!stderr.contains(&good[..40]));
    assert!(stderr.contains("stopped"));
}

#[cfg(unix)]
#[test]
fn stops_cleanly_on_sigterm() {
    let (mut child, url) = spawn(&["--test-keys", "--mode", "disabled", "--quiet"]);
    assert_eq!(post_report(&url, "ignored").0, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, stderr) = wait_exit(&mut child);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("POST"), "--quiet keeps the access log off");
}

#[test]
fn exit_on_stdin_eof_stops_when_the_parent_closes_stdin() {
    let (mut child, url) = spawn(&["--test-keys", "--exit-on-stdin-eof", "--quiet"]);
    assert_eq!(
        agent()
            .get(format!("{url}/admin/stats"))
            .call()
            .unwrap()
            .status(),
        200
    );
    drop(child.stdin.take());
    let (code, _) = wait_exit(&mut child);
    assert_eq!(code, 0);
}
