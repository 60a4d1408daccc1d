//! Profiling aid for the `track_seal_encode` benchmark, for callgrind's instruction
//! counts (repeatable on a busy machine):
//! `valgrind --tool=callgrind target/release/examples/track_vs_serde authsync|serde`
use authsync_core::{Client, Config, Now, Step};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
struct WireEvent<'a> {
    seq: u64,
    name: &'a str,
    ts_ms: u64,
    attrs: &'a Value,
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let events: Vec<(String, Value)> = (0..100)
        .map(|i| {
            (
                "screen_view".to_owned(),
                json!({"screen": "catalog", "index": i, "from_push": false}),
            )
        })
        .collect();
    let now = Now::new(0, 1_700_000_000_000);
    let mut total = 0;
    let mut out = Vec::with_capacity(16 * 1024);
    let rounds: u64 = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let config = Config::new("bench-app", "http://127.0.0.1:9")
        .with_batch_limits(100, 128 * 1024)
        .with_seed(1);
    let Ok(mut client) = Client::new(config, now) else {
        return;
    };
    while client.poll_event().is_some() {}
    for round in 0..rounds {
        if mode == "serde" {
            out.clear();
            for (i, (name, attrs)) in events.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let event = WireEvent {
                    seq: round * 100 + i as u64,
                    name,
                    ts_ms: 1_700_000_000_000,
                    attrs,
                };
                let _ = serde_json::to_writer(&mut out, &event);
            }
            total += out.len();
        } else {
            // As the benchmark: one long-lived client, each batch acknowledged.
            for (name, attrs) in &events {
                let _ = client.handle_track(now, name, attrs);
            }
            let mut sent = None;
            while let Some(step) = client.poll_step() {
                if let Step::Send(request) = step {
                    total += request.body.len();
                    sent = Some(request.id);
                }
            }
            if let Some(id) = sent {
                let ok = http::Response::new(bytes::Bytes::new());
                let _ = client.handle_response(now, id, ok);
                while client.poll_event().is_some() {}
                while client.poll_step().is_some() {}
            }
        }
    }
    println!("{total}");
}
