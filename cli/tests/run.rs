//! `authsync run` (docs/rules.md, section 5), as an outside tool would drive it: the binary,
//! a script file, a reference server, and the JSON lines it prints.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{Enforcement, Fault, RefServer, ServerConfig, keys};
use serde_json::{Value, json};

const AUTHSYNC: &str = env!("CARGO_BIN_EXE_authsync");

fn server() -> RefServer {
    RefServer::start(
        ServerConfig::new()
            .with_key(keys::rsa_a().verify_key())
            .enforcement(Enforcement::Required)
            .access_log(false),
    )
    .unwrap()
}

fn token(identifier: &str, key: &keys::TestKey, serial: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = Claims::for_subject(identifier)
        .exp(now + 600)
        .claim("jti", json!(serial));
    mint(key, &claims, &MintOptions::new()).unwrap()
}

struct Run {
    status: i32,
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn events(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["event"] == kind).collect()
    }

    fn summary(&self) -> &Value {
        let last = self.lines.last().expect("a summary line");
        assert_eq!(
            last["event"], "summary",
            "the summary comes last: {}",
            self.stdout
        );
        last
    }

    fn acked_events(&self) -> u64 {
        self.events("acked")
            .iter()
            .map(|l| l["events"].as_u64().unwrap())
            .sum()
    }
}

fn run(dir: &Path, args: &[&str], script: &[Value]) -> Run {
    let path = dir.join("script.jsonl");
    let text: String = script.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&path, text).unwrap();
    run_script_file(args, &path)
}

fn run_script_file(args: &[&str], path: &Path) -> Run {
    let output = Command::new(AUTHSYNC)
        .arg("run")
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    parse(output)
}

fn parse(output: Output) -> Run {
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line {l:?}: {e}")))
        .collect();
    Run {
        status: output.status.code().unwrap_or(-1),
        lines,
        stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn tracks_flushes_settles_and_ends_with_the_summary() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let script = [
        json!({"op": "session_start"}),
        json!({"op": "track", "name": "app_open", "attrs": {"cold": true}}),
        json!({"op": "track", "name": "screen_view"}),
        json!({"op": "track", "name": "screen_view", "attrs": {"screen": "home"}}),
    ];
    let out = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-run"],
        &script,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.acked_events(), 3);
    assert_eq!(
        out.summary(),
        &json!({"event": "summary", "tracked": 3, "acked": 3, "dropped": 0, "pending": 0})
    );
    assert_eq!(server.admin().accepted_count("app-run"), 3);
    let acked = out.events("acked");
    assert!(acked[0]["batch_id"].as_str().unwrap().contains('-'));
}

#[test]
fn identified_data_goes_with_the_token_and_no_line_prints_it() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let alice = token("alice", &keys::rsa_a(), 1);
    let script = [
        json!({"op": "identify", "id": "alice"}),
        json!({"op": "token", "token": alice, "identifier": "alice"}),
        json!({"op": "track", "name": "purchase", "attrs": {"amount": 3}}),
    ];
    let out = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-run", "--jwt"],
        &script,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.acked_events(), 1);
    assert_eq!(
        server.admin().request_log()[0].bearer_token(),
        Some(alice.as_str())
    );
    assert!(!out.stdout.contains(&alice) && !out.stderr.contains(&alice));
}

#[test]
fn refused_operations_are_error_lines_and_the_script_goes_on() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let script = [
        json!({"op": "identify", "id": "alice"}),
        json!({"op": "token", "token": "not a jwt", "identifier": "alice"}),
        json!({"op": "track", "name": ""}),
        json!({"op": "token", "token": token("alice", &keys::rsa_a(), 1), "identifier": "alice"}),
        json!({"op": "track", "name": "ok"}),
    ];
    let out = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-run", "--jwt"],
        &script,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let errors = out.events("error");
    assert_eq!(errors.len(), 2, "{}", out.stdout);
    assert_eq!(errors[0]["line"], 2);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("visible ASCII")
    );
    assert_eq!(errors[1]["line"], 3);
    assert!(errors[1]["message"].as_str().unwrap().contains("name"));
    assert_eq!(out.summary()["acked"], 1);
}

#[test]
fn misuse_under_env_test_is_an_error_line_and_ignored_under_live() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let script = [
        json!({"op": "token", "token": token("alice", &keys::rsa_a(), 1), "identifier": "alice"}),
        json!({"op": "track", "name": "e"}),
    ];
    let test = run(
        dir.path(),
        &[
            "--endpoint",
            &server.url(),
            "--app-id",
            "app-run",
            "--env",
            "test",
        ],
        &script,
    );
    assert_eq!(test.status, 0, "{}", test.stderr);
    let errors = test.events("error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["line"], 1);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("JWT disabled")
    );
    let live = run(
        dir.path(),
        &[
            "--endpoint",
            &server.url(),
            "--app-id",
            "app-run",
            "--env",
            "live",
        ],
        &script,
    );
    assert!(live.events("error").is_empty(), "{}", live.stdout);
}

#[test]
fn a_bad_script_line_exits_2_naming_it_and_keeps_what_was_tracked() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let script_path = dir.path().join("bad.jsonl");
    std::fs::write(
        &script_path,
        "{\"op\":\"track\",\"name\":\"one\"}\n{\"op\":\"track\",\"name\":\"two\"}\n{not json\n{\"op\":\"track\",\"name\":\"never\"}\n",
    )
    .unwrap();
    let args = [
        "--endpoint",
        server.url().leak() as &str,
        "--app-id",
        "app-run",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let out = run_script_file(&args, &script_path);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
    assert_eq!(
        server.admin().request_log().len(),
        0,
        "no end-of-script flush"
    );

    for (line, expected) in [
        (json!({"op": "teleport"}), "unknown operation"),
        (json!({"op": "wait", "ms": "soon"}), "\"ms\""),
        (json!({"op": "identify"}), "\"id\""),
    ] {
        let out = run(
            dir.path(),
            &["--endpoint", &server.url(), "--app-id", "other"],
            &[line],
        );
        assert_eq!(out.status, 2);
        assert!(
            out.stderr.contains("line 1") && out.stderr.contains(expected),
            "{}",
            out.stderr
        );
    }

    let again = run(dir.path(), &args, &[]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(again.acked_events(), 2, "the first run's events were kept");
    assert_eq!(
        again.summary(),
        &json!({"event": "summary", "tracked": 2, "acked": 2, "dropped": 0, "pending": 0})
    );
}

#[test]
fn a_state_directory_keeps_its_seed_and_a_different_one_is_an_error() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let base = [
        "--endpoint",
        server.url().leak() as &str,
        "--app-id",
        "app-run",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let with_seed = |seed: &str| {
        let mut args = base.to_vec();
        args.extend(["--seed", seed]);
        run(dir.path(), &args, &[json!({"op": "track", "name": "e"})])
    };
    assert_eq!(with_seed("11").status, 0);
    let other = with_seed("12");
    assert_eq!(other.status, 2);
    assert!(other.stderr.contains("seed"), "{}", other.stderr);
    assert_eq!(with_seed("11").status, 0);
    let without = run(dir.path(), &base, &[json!({"op": "track", "name": "e"})]);
    assert_eq!(without.status, 0);
    assert_eq!(without.summary()["tracked"], 3);
    let batch_ids: std::collections::BTreeSet<String> = server
        .admin()
        .accepted_batches()
        .into_iter()
        .map(|b| b.batch_id.split('-').next().unwrap().to_owned())
        .collect();
    assert_eq!(batch_ids.len(), 1, "one install id across the runs");
}

#[test]
fn the_token_command_answers_notices_with_its_environment() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let log_file = dir.path().join("calls");
    std::fs::write(
        &token_file,
        format!("  {}\n", token("alice", &keys::rsa_a(), 1)),
    )
    .unwrap();
    let command = format!(
        "echo \"$AUTHSYNC_IDENTIFIER $AUTHSYNC_ERROR_CODE\" >> {}; cat {}",
        log_file.display(),
        token_file.display()
    );
    let script = [
        json!({"op": "identify", "id": "alice"}),
        json!({"op": "track", "name": "a"}),
        json!({"op": "flush"}),
        json!({"op": "settle", "timeout_ms": 5000}),
    ];
    let out = run(
        dir.path(),
        &[
            "--endpoint",
            &server.url(),
            "--app-id",
            "app-run",
            "--jwt",
            "--token-cmd",
            &command,
        ],
        &script,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let errors = out.events("auth_error");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0],
        &json!({"event": "auth_error", "code": "TOKEN_NOT_AVAILABLE", "identifier": "alice", "app_id": "app-run", "message": errors[0]["message"]})
    );
    assert_eq!(
        std::fs::read_to_string(&log_file).unwrap(),
        "alice TOKEN_NOT_AVAILABLE\n"
    );
    assert_eq!(out.acked_events(), 1);
}

#[test]
fn a_failing_token_command_is_a_warning_and_nothing_is_passed() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let script = [
        json!({"op": "identify", "id": "alice"}),
        json!({"op": "track", "name": "a"}),
        json!({"op": "flush"}),
        json!({"op": "settle", "timeout_ms": 3000}),
    ];
    for command in ["exit 3", "true"] {
        let out = run(
            dir.path(),
            &[
                "--endpoint",
                &server.url(),
                "--app-id",
                "app-run",
                "--jwt",
                "--token-cmd",
                command,
            ],
            &script,
        );
        assert_eq!(out.status, 0);
        assert!(out.stderr.contains("warning"), "{command}: {}", out.stderr);
        assert_eq!(out.summary()["pending"], 1);
    }
}

#[test]
fn failures_into_lockout_print_auth_errors_and_one_locked_out_line() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let mut script = vec![
        json!({"op": "identify", "id": "alice"}),
        json!({"op": "track", "name": "a"}),
        json!({"op": "flush"}),
    ];
    for serial in 0..11 {
        script.push(json!({"op": "token", "token": token("alice", &keys::rsa_b(), serial), "identifier": "alice"}));
        script.push(json!({"op": "settle", "timeout_ms": 3000}));
    }
    let out = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-run", "--jwt"],
        &script,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let codes: Vec<&str> = out
        .events("auth_error")
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    let mut expected = vec!["TOKEN_NOT_AVAILABLE"];
    expected.extend(["INVALID_SIGNATURE"; 10]);
    assert_eq!(
        codes, expected,
        "told once without a token, then once per rejected token"
    );
    assert_eq!(out.events("locked_out").len(), 1);
    assert_eq!(
        server.admin().request_log().len(),
        10,
        "nothing after the lockout"
    );
    assert_eq!(out.summary()["pending"], 1);
}

#[test]
fn drops_are_reported_with_their_reason_and_count() {
    let server = server();
    server.admin().push_fault(Fault::status(422));
    let dir = tempfile::tempdir().unwrap();
    let script = [
        json!({"op": "track", "name": "a"}),
        json!({"op": "track", "name": "b"}),
    ];
    let out = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-run"],
        &script,
    );
    assert_eq!(out.status, 0);
    let dropped = out.events("dropped");
    assert_eq!(
        dropped,
        vec![&json!({"event": "dropped", "reason": "rejected", "events": 2})]
    );
    assert_eq!(out.summary()["dropped"], 2);
}

#[test]
fn the_script_can_come_from_standard_input_and_runs_as_read() {
    let server = server();
    let mut child = Command::new(AUTHSYNC)
        .args([
            "run",
            "--endpoint",
            &server.url(),
            "--app-id",
            "app-run",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", json!({"op": "track", "name": "a"})).unwrap();
    writeln!(stdin, "{}", json!({"op": "flush"})).unwrap();
    stdin.flush().unwrap();
    // The first lines run before the script ends: the server sees them while stdin is open.
    let admin = server.admin();
    assert!(admin.wait_for_accepted(1, std::time::Duration::from_secs(10)));
    writeln!(stdin, "{}", json!({"op": "track", "name": "b"})).unwrap();
    drop(stdin);
    let out = parse(child.wait_with_output().unwrap());
    assert_eq!(out.status, 0);
    assert_eq!(out.summary()["acked"], 2);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run"],
        vec!["run", "--app-id", "a", "s.jsonl"],
        vec![
            "run",
            "--endpoint",
            "http://x",
            "--app-id",
            "a",
            "--env",
            "prod",
            "s",
        ],
        vec!["jump"],
    ] {
        let status = Command::new(AUTHSYNC).args(&args).output().unwrap().status;
        assert_eq!(status.code(), Some(2), "{args:?}");
    }
    let help = Command::new(AUTHSYNC)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--token-cmd"));
}

/// Whether any process's command line holds `marker`.
fn process_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
            .unwrap_or(false)
    })
}

#[test]
fn r2_a_token_command_that_hangs_or_forks_is_killed_at_its_timeout_and_the_run_ends() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    for (marker, command) in [
        ("3123.25", "sleep 3123.25"),
        ("3124.25", "sleep 3124.25 & sleep 3124.5; echo too-late"),
    ] {
        let started = std::time::Instant::now();
        let run = run(
            dir.path(),
            &[
                "--endpoint",
                &server.url(),
                "--app-id",
                "app-cmd",
                "--jwt",
                "--token-cmd",
                command,
                "--token-timeout",
                "300",
            ],
            &[
                json!({"op":"identify","id":"alice"}),
                json!({"op":"track","name":"e"}),
                json!({"op":"flush"}),
                json!({"op":"settle","timeout_ms":2000}),
            ],
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(12),
            "{command}: the run ends"
        );
        assert!(
            run.stderr.contains("did not answer in time") || run.stderr.contains("did not finish"),
            "{command}: {}",
            run.stderr
        );
        assert!(
            !process_with(marker),
            "{command}: a process was left behind"
        );
        assert_eq!(run.summary()["pending"], 1);
    }
}

#[test]
fn ignored_operations_are_ignored_lines_with_their_reason() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let alice = token("alice", &keys::rsa_a(), 1);
    let jwt = run(
        dir.path(),
        &[
            "--endpoint",
            &server.url(),
            "--app-id",
            "app-ignored",
            "--jwt",
        ],
        &[
            json!({"op":"logout"}),
            json!({"op":"identify","id":"alice"}),
            json!({"op":"identify","id":"alice"}),
            json!({"op":"token","token":alice,"identifier":"alice"}),
            json!({"op":"token","token":alice,"identifier":"alice"}),
        ],
    );
    assert_eq!(jwt.status, 0, "{}", jwt.stderr);
    let ignored: Vec<(u64, &str)> = jwt
        .events("ignored")
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ignored,
        vec![
            (1, "already_anonymous"),
            (3, "already_identified"),
            (5, "same_token")
        ]
    );
    let live = run(
        dir.path(),
        &["--endpoint", &server.url(), "--app-id", "app-live"],
        &[json!({"op":"token","token":alice,"identifier":"alice"})],
    );
    assert_eq!(live.events("ignored")[0]["reason"], "jwt_disabled");
}

#[test]
fn d5_damage_found_at_open_is_a_storage_line_and_on_stderr_and_nothing_is_swallowed() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = |app: &str| {
        vec![
            "--endpoint".to_owned(),
            server.url(),
            "--app-id".to_owned(),
            app.to_owned(),
            "--state-dir".to_owned(),
            state.display().to_string(),
            "--seed".to_owned(),
            "9".to_owned(),
        ]
    };
    let tracks: Vec<Value> = (0..10)
        .map(|i| json!({"op":"track","name":"e","attrs":{"i":i}}))
        .collect();
    let first_args = args("app-damage");
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let first = run(dir.path(), &first_args, &tracks);
    assert_eq!(first.acked_events(), 10, "{}", first.stderr);
    // Ten events acked, then one byte in the middle of the journal changed.
    let journal = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal")
        })
        .unwrap();
    let mut bytes = std::fs::read(&journal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&journal, bytes).unwrap();
    let more: Vec<Value> = (0..30)
        .map(|i| json!({"op":"track","name":"after","attrs":{"i":i}}))
        .collect();
    let second = run(dir.path(), &first_args, &more);
    let storage = second.events("storage");
    assert_eq!(storage.len(), 1, "{}", second.stdout);
    assert!(
        storage[0]["message"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{}",
        second.stdout
    );
    assert!(second.stderr.contains("storage"), "{}", second.stderr);
    // The 30 new events reach the server: no batch id of before was used again.
    assert_eq!(second.acked_events(), 30, "{}", second.stdout);
    assert!(
        second
            .events("acked")
            .iter()
            .all(|a| a["duplicate"] != true),
        "{}",
        second.stdout
    );
}

#[test]
fn section_5_a_line_over_1_mib_or_with_a_duplicate_key_or_unknown_field_exits_2() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--endpoint", &server.url(), "--app-id", "app-lines"];
    let long = format!(r#"{{"op":"track","name":"{}"}}"#, "x".repeat(1024 * 1024));
    for (bad, says) in [
        (long.as_str(), "longer than 1048576 bytes"),
        (r#"{"op":"identify","id":"a","id":"b"}"#, "appears twice"),
        (r#"{"op":"flush","now":true}"#, "no field \"now\""),
    ] {
        let path = dir.path().join("script.jsonl");
        std::fs::write(
            &path,
            format!("{{\"op\":\"track\",\"name\":\"kept\"}}\n{bad}\n"),
        )
        .unwrap();
        let run = run_script_file(&args, &path);
        assert_eq!(run.status, 2, "{says}: {}", run.stderr);
        assert!(
            run.stderr.contains("script line 2"),
            "{says}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
        assert_eq!(run.summary()["tracked"], 1, "the line before it ran");
    }
}

#[test]
fn c1_an_endpoint_with_a_bad_port_or_credentials_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for endpoint in ["http://127.0.0.1:99999", "http://user:pw@127.0.0.1:8080"] {
        let run = run(
            dir.path(),
            &["--endpoint", endpoint, "--app-id", "app-endpoint"],
            &[json!({"op":"track","name":"e"})],
        );
        assert_eq!(run.status, 2, "{endpoint}: {}", run.stderr);
        assert!(run.stderr.contains("invalid"), "{endpoint}: {}", run.stderr);
        assert!(
            !run.stderr.contains("pw@"),
            "no password printed: {}",
            run.stderr
        );
    }
}
