//! Events per second delivered to the reference server on loopback: the async driver
//! against what a smol app would write by hand with the same HTTP stack, a loop
//! posting the same pre-encoded batches with one ureq agent on smol's blocking pool
//! (goal: at least 0.85x the raw rate).

use std::hint::black_box;
use std::time::{Duration, Instant};

use authsync_async::{Client, Config, WorkspaceOptions};
use authsync_core::{Now, Step};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const BATCHES: usize = 20;
const PER_BATCH: usize = 100;

fn attrs(i: usize) -> serde_json::Value {
    json!({"screen": "catalog", "index": i, "from_push": false})
}

fn pre_encoded(url: &str) -> Vec<(String, Bytes)> {
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
                    .body(Bytes::new())
                    .unwrap();
                let _ = core.handle_response(now, request.id, ok);
                while core.poll_event().is_some() {}
            }
        }
    }
    assert_eq!(batches.len(), BATCHES);
    batches
}

async fn raw_round(report: &str, batches: &[(String, Bytes)]) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for (batch_id, body) in batches {
        let (agent, report, batch_id, body) = (
            agent.clone(),
            report.to_owned(),
            batch_id.clone(),
            body.clone(),
        );
        let answer = smol::unblock(move || {
            let mut response = agent
                .post(&report)
                .header("content-type", "application/json")
                .header("x-app-id", "bench-app")
                .header("idempotency-key", &batch_id)
                .send(&body[..])
                .unwrap();
            response.body_mut().read_to_vec().unwrap()
        })
        .await;
        black_box(answer);
    }
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
    let report = format!("{url}/v1/report");
    let batches = pre_encoded(&url);
    // The app's attribute values, built before the clock starts: building them is the
    // app's cost, not the library's, and the raw side does not pay it either.
    let app_attrs: Vec<serde_json::Value> = (0..BATCHES * PER_BATCH).map(attrs).collect();
    let mut group = c.benchmark_group("async_delivery");
    group.throughput(Throughput::Elements((BATCHES * PER_BATCH) as u64));
    group.sample_size(30);
    group.bench_function("authsync_async", |b| {
        let mut seed = 0;
        b.iter_custom(|iters| {
            smol::block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    admin.reset();
                    seed += 1;
                    let config =
                        Config::new("bench-app", url.as_str()).with_max_pending_events(1_000_000);
                    let client = Client::spawn(WorkspaceOptions::new(config).seed(seed))
                        .await
                        .unwrap();
                    let start = Instant::now();
                    for attrs in &app_attrs {
                        client.track("screen_view", attrs).await.unwrap();
                    }
                    let report = client
                        .flush_and_wait(Duration::from_secs(60))
                        .await
                        .unwrap();
                    total += start.elapsed();
                    assert!(report.settled && report.totals.acked == (BATCHES * PER_BATCH) as u64);
                    client.close(Duration::from_secs(5)).await;
                }
                total
            })
        });
    });
    group.bench_function("raw_ureq_unblock", |b| {
        b.iter_custom(|iters| {
            smol::block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    admin.reset();
                    let start = Instant::now();
                    raw_round(&report, &batches).await;
                    total += start.elapsed();
                    assert_eq!(admin.accepted_count("bench-app"), BATCHES * PER_BATCH);
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
