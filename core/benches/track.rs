//! The core's cost per event, as ratios against what it is built from and what users
//! would pick instead, measured side by side in one run.
//!
//! - `track_seal_encode/authsync` vs `/serde_json_baseline`: tracking 100 events,
//!   sealing them, building the request and taking its acknowledgement, against bare
//!   `serde_json::to_writer` of the same events into the same body shape (goal: at
//!   most 1.3x).
//! - `track_at_depth/10` vs `/10000`: one track with 10 or 10 000 events pending (goal:
//!   flat, at most 1.2x).
//! - `batcher/authsync` vs `/segment`: the same 100 events through segment's
//!   `Batcher` and into its batch message body (reported).

use std::hint::black_box;
use std::time::{Duration, Instant};

use authsync_core::{Client, Config, Now, Step};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde_json::{Value, json};

const EVENTS: usize = 100;

/// The events every side of a comparison gets: an app's typical screen and purchase
/// events with a handful of attributes.
fn events() -> Vec<(String, Value)> {
    (0..EVENTS)
        .map(|i| {
            if i % 5 == 0 {
                ("purchase".to_owned(), json!({"sku": format!("SKU-{i:05}"), "price": 19.99, "currency": "EUR", "qty": 1}))
            } else {
                ("screen_view".to_owned(), json!({"screen": "catalog", "index": i, "from_push": false}))
            }
        })
        .collect()
}

fn config() -> Config {
    Config::new("bench-app", "http://127.0.0.1:9")
        .with_batch_limits(EVENTS as u32, 128 * 1024)
        .with_max_pending_events(1_000_000)
        .with_seed(1)
}

/// Tracks the events, seals them, and returns the body the request carries; then
/// acknowledges it, so that the next round starts from the same empty queue.
fn authsync_batch(client: &mut Client, events: &[(String, Value)], now: Now) -> usize {
    for (name, attrs) in events {
        let _ = client.handle_track(now, name, attrs);
    }
    let mut sent = None;
    while let Some(step) = client.poll_step() {
        if let Step::Send(request) = step {
            sent = Some((request.id, request.body.len()));
        }
    }
    drain(client);
    let Some((id, body)) = sent else { return 0 };
    let ok = http::Response::builder()
        .status(200)
        .body(bytes::Bytes::new())
        .unwrap_or_default();
    let _ = client.handle_response(now, id, ok);
    drain(client);
    body
}

/// Takes every output a host would (the client keeps its state in memory here: the
/// journal's cost is the durable-track benchmark's).
fn drain(client: &mut Client) {
    while let Some(event) = client.poll_event() {
        black_box(event);
    }
    while let Some(step) = client.poll_step() {
        black_box(step);
    }
}

#[derive(Serialize)]
struct WireEvent<'a> {
    seq: u64,
    name: &'a str,
    ts_ms: u64,
    attrs: &'a Value,
}

/// The floor: the same events, serialized once with serde_json into the same body.
fn serde_json_batch(out: &mut Vec<u8>, events: &[(String, Value)], first_seq: u64) -> usize {
    out.clear();
    out.extend_from_slice(br#"{"batch_id":"0123456789abcdef-1","app_id":"bench-app","user":{"type":"anonymous","id":"anon-0123456789abcdef0123456789abcdef"},"events":["#);
    for (i, (name, attrs)) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let event = WireEvent {
            seq: first_seq + i as u64,
            name,
            ts_ms: 1_700_000_000_000,
            attrs,
        };
        let _ = serde_json::to_writer(&mut *out, &event);
    }
    out.extend_from_slice(b"]}");
    out.len()
}

fn track_seal_encode(c: &mut Criterion) {
    let events = events();
    let now = Now::new(0, 1_700_000_000_000);
    let mut group = c.benchmark_group("track_seal_encode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    // One long-lived client, as in an app: a fresh client per round also measured
    // its construction and the first touch of its buffers (page faults), which said
    // more about the machine's memory manager than about tracking.
    group.bench_function("authsync", |b| {
        let mut client = Client::new(config(), now).unwrap();
        drain(&mut client);
        b.iter(|| black_box(authsync_batch(&mut client, &events, now)));
    });
    group.bench_function("serde_json_baseline", |b| {
        let mut out = Vec::with_capacity(16 * 1024);
        b.iter(|| black_box(serde_json_batch(&mut out, &events, 1)));
    });
    group.finish();
}

/// A client with `depth` events pending behind a request in flight.
fn client_at_depth(depth: usize) -> Client {
    let now = Now::new(0, 1_700_000_000_000);
    let mut client = Client::new(config(), now).unwrap();
    for i in 0..depth {
        let _ = client.handle_track(
            now,
            "screen_view",
            &json!({"screen": "catalog", "index": i}),
        );
    }
    drain(&mut client);
    client
}

fn track_at_depth(c: &mut Criterion) {
    let mut group = c.benchmark_group("track_at_depth");
    group.throughput(Throughput::Elements(1));
    let attrs = json!({"screen": "catalog", "index": 7, "from_push": false});
    for depth in [10usize, 10_000] {
        group.bench_function(depth.to_string(), |b| {
            // Fresh clients every 1 000 tracks keep the depth within 10% of its name.
            b.iter_custom(|iters| {
                let now = Now::new(0, 1_700_000_000_000);
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(1_000);
                    let mut client = client_at_depth(depth);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        let _ = black_box(client.handle_track(now, "screen_view", &attrs));
                        drain(&mut client);
                    }
                    total += start.elapsed();
                    left -= chunk;
                }
                total
            });
        });
    }
    group.finish();
}

fn batcher(c: &mut Criterion) {
    use segment::message::{BatchMessage, Track, User};
    let events = events();
    let now = Now::new(0, 1_700_000_000_000);
    let mut group = c.benchmark_group("batcher");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("authsync", |b| {
        let mut client = Client::new(config(), now).unwrap();
        drain(&mut client);
        b.iter(|| black_box(authsync_batch(&mut client, &events, now)));
    });
    // segment's model: a new Batcher per batch.
    group.bench_function("segment", |b| {
        b.iter(|| {
            let mut batcher = segment::Batcher::new(None);
            batcher.without_auto_timestamp();
            for (name, attrs) in &events {
                let track = Track {
                    user: User::AnonymousId {
                        anonymous_id: "anon-0123456789abcdef0123456789abcdef".to_owned(),
                    },
                    event: name.clone(),
                    properties: attrs.clone(),
                    ..Track::default()
                };
                let _ = batcher.push(BatchMessage::Track(track));
            }
            let body = serde_json::to_vec(&batcher.into_message()).unwrap_or_default();
            black_box(body.len())
        });
    });
    group.finish();
}

criterion_group!(benches, track_seal_encode, track_at_depth, batcher);
criterion_main!(benches);
