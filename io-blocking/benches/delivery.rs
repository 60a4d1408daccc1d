//! Events per second delivered to the reference server on loopback: the blocking
//! driver (track, batch, send, feed back) against a raw ureq loop posting the same
//! pre-encoded batches to the same server (goal: at least 0.85x the raw rate).
//!
//! The server is reset before every measured round, so both sides do the same work
//! there (no deduplicated answers). The driver keeps its state in memory: the journal
//! has benchmarks of its own.

use std::hint::black_box;
use std::time::{Duration, Instant};

use authsync_blocking::{Client, Config, WorkspaceOptions};
use authsync_core::{Now, Step};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const BATCHES: usize = 20;
const PER_BATCH: usize = 100;

fn attrs(i: usize) -> serde_json::Value {
    json!({"screen": "catalog", "index": i, "from_push": false})
}

/// The batches the driver would send, encoded once by the core.
fn pre_encoded(url: &str) -> Vec<(String, bytes::Bytes)> {
    let now = Now::new(0, 1_700_000_000_000);
    let config = Config::new("bench-app", url)
        .with_max_pending_events(1_000_000)
        .with_seed(99);
    let mut core = authsync_core::Client::new(config, now).unwrap();
    let mut batches = Vec::new();
    for i in 0..BATCHES * PER_BATCH {
        let _ = core.handle_track(now, "screen_view", &attrs(i));
        while core.poll_event().is_some() {}
        while let Some(step) = core.poll_step() {
            if let Step::Send(request) = step {
                batches.push((request.batch_id.clone(), request.body.clone()));
                let ok = http::Response::builder()
                    .status(200)
                    .body(bytes::Bytes::new())
                    .unwrap();
                let _ = core.handle_response(now, request.id, ok);
                while core.poll_event().is_some() {}
            }
        }
    }
    assert_eq!(batches.len(), BATCHES);
    batches
}

fn delivery(c: &mut Criterion) {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap();
    let admin = server.admin();
    let url = server.url();
    let batches = pre_encoded(&url);
    // The app's attribute values, built before the clock starts: building them is the
    // app's cost, not the library's, and the raw side does not pay it either.
    let app_attrs: Vec<serde_json::Value> = (0..BATCHES * PER_BATCH).map(attrs).collect();
    let mut group = c.benchmark_group("blocking_delivery");
    group.throughput(Throughput::Elements((BATCHES * PER_BATCH) as u64));
    group.sample_size(30);
    group.bench_function("authsync_blocking", |b| {
        let mut seed = 0;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                admin.reset();
                seed += 1;
                let config =
                    Config::new("bench-app", url.as_str()).with_max_pending_events(1_000_000);
                let client = Client::start(WorkspaceOptions::new(config).seed(seed)).unwrap();
                let start = Instant::now();
                for attrs in &app_attrs {
                    client.track("screen_view", attrs).unwrap();
                }
                let report = client.flush_and_wait(Duration::from_secs(60)).unwrap();
                total += start.elapsed();
                assert!(report.settled && report.totals.acked == (BATCHES * PER_BATCH) as u64);
                client.close(Duration::from_secs(5));
            }
            total
        });
    });
    group.bench_function("raw_ureq", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let report = format!("{url}/v1/report");
            for _ in 0..iters {
                admin.reset();
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let start = Instant::now();
                for (batch_id, body) in &batches {
                    let mut response = agent
                        .post(&report)
                        .header("content-type", "application/json")
                        .header("x-app-id", "bench-app")
                        .header("idempotency-key", batch_id)
                        .send(&body[..])
                        .unwrap();
                    black_box(response.body_mut().read_to_vec().unwrap());
                }
                total += start.elapsed();
                assert_eq!(admin.accepted_count("bench-app"), BATCHES * PER_BATCH);
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
