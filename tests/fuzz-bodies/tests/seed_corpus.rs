//! Writes the small seed corpus of the response, token, journal and script targets
//! (the sequence target's seeds come from the model crate). Run it when the formats
//! change: `cargo test -p authsync-fuzz-bodies --test seed_corpus -- --ignored`.

use std::path::Path;

use authsync_core::{Client, Config, FsyncPolicy, Now, Step, Storage, StoragePolicy};
use serde_json::json;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A real journal: a session with tokens, a rejection, a split and a logout.
fn journal_bytes() -> Vec<u8> {
    let mut now = Now::new(0, 1_700_000_000_000);
    let config = Config::new("fuzz", "http://127.0.0.1:9")
        .with_jwt(true)
        .with_batch_limits(2, 4096)
        .with_seed(4)
        .with_storage(Storage::Durable(StoragePolicy {
            fsync: FsyncPolicy::Always,
            ..StoragePolicy::default()
        }));
    let mut client = Client::new(config, now).unwrap();
    let mut journal = Vec::new();
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDYwMH0.c2ln";
    let answer = |client: &mut Client, journal: &mut Vec<u8>, status: u16, now: Now| {
        let mut sent = None;
        loop {
            let Some(job) = client.poll_write() else {
                break;
            };
            journal.extend_from_slice(&job.frames);
            client.handle_written(now, job.id, Ok(())).unwrap();
        }
        while client.poll_event().is_some() {}
        while let Some(step) = client.poll_step() {
            if let Step::Send(request) = step {
                sent = Some(request.id);
            }
        }
        if let Some(id) = sent {
            let response = http::Response::builder()
                .status(status)
                .body(bytes::Bytes::new())
                .unwrap();
            client.handle_response(now, id, response).unwrap();
        }
    };
    let _ = client.handle_identify(now, "alice");
    let _ = client.handle_authentication_details(now, token, "alice");
    for i in 0..5 {
        let _ = client.handle_track(now, "e", &json!({ "i": i }));
    }
    answer(&mut client, &mut journal, 413, now);
    answer(&mut client, &mut journal, 401, now);
    now = now.plus_ms(1000);
    client.handle_session_start(now);
    let _ = client.handle_logout(now);
    answer(&mut client, &mut journal, 200, now);
    answer(&mut client, &mut journal, 503, now);
    answer(&mut client, &mut journal, 200, now);
    journal
}

#[test]
#[ignore = "writes files: run by hand when the formats change"]
fn write_seed_corpus() {
    let journal = journal_bytes();
    write("journal", "whole", &[&[0u8][..], &journal].concat());
    write(
        "journal",
        "torn",
        &[&[0u8][..], &journal[..journal.len() - 3]].concat(),
    );
    write("journal", "framed", &[0x01, 3, 4, 1, 2, 5, 3, 2, 3, 4, 5]);
    write(
        "journal",
        "snapshot-header",
        b"\x00ASNP\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    );
    write("journal", "history-flipped", &[0x02, 9, 40, 0, 0x41]);
    write("journal", "history-cut", &[0x02, 12, 200]);

    for (name, line) in [
        (
            "track",
            r#"{"op":"track","name":"a","attrs":{"k":[1,2,{"x":null}]}}"#,
        ),
        ("identify", r#"{"op":"identify","id":"alice"}"#),
        (
            "token",
            r#"{"op":"token","token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.c2ln","identifier":"u"}"#,
        ),
        ("logout", r#"{"op":"logout"}"#),
        ("session", r#"{"op":"session_start"}"#),
        ("flush", r#"{"op":"flush"}"#),
        ("wait", r#"{"op":"wait","ms":5}"#),
        ("settle", r#"{"op":"settle","timeout_ms":100}"#),
        ("mistyped", r#"{"op":"wait","ms":-1.5e3}"#),
        ("not-json", "{\"op\":"),
    ] {
        write("script", name, line.as_bytes());
    }

    let token = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDYwMH0.c2ln";
    write(
        "token",
        "valid",
        &[&[token.len() as u8][..], token, b"\x05alice"].concat(),
    );
    write("token", "spaces", b"\x07a b.c.d\x05alice");
    write("token", "empty", b"");

    for (name, bytes) in [
        ("ok", &[0u8, 0, 0xC8, 0, 0, 0][..]),
        (
            "unauthorized",
            &[
                1, 0, 0x2D, 1, 1, 0, 40, b'{', b'"', b'e', b'r', b'r', b'o', b'r', b'"', b':',
                b'{', b'}', b'}',
            ][..],
        ),
        ("failures", &[1, 1, 2, 1, 0, 0xFF, 0xFF, 1, 1, 1][..]),
        (
            "retry-after",
            &[0, 0, 0xF7, 1, 0, 2, b'3', b'0', 0, 0, 0, 0][..],
        ),
    ] {
        write("response", name, bytes);
    }
}
