//! Events per second delivered to the reference server on loopback: the async driver
//! against a raw hyper-on-smol loop posting the same pre-encoded batches over one
//! kept-alive connection to the same server (goal: at least 0.85x the raw rate).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authsync_async::{Client, Config, WorkspaceOptions};
use authsync_core::{Client as Core, Now, Step};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use smol_hyper::rt::FuturesIo;

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
    let mut core = Core::new(config, now).unwrap();
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

async fn raw_round(
    authority: &str,
    batches: &[(String, Bytes)],
    executor: &Arc<smol::Executor<'static>>,
) {
    let stream = smol::net::TcpStream::connect(authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(FuturesIo::new(stream))
        .await
        .unwrap();
    executor
        .spawn(async move {
            let _ = connection.await;
        })
        .detach();
    for (batch_id, body) in batches {
        let request = http::Request::post("/v1/report")
            .header("host", authority)
            .header("content-type", "application/json")
            .header("x-app-id", "bench-app")
            .header("idempotency-key", batch_id.as_str())
            .body(Full::new(body.clone()))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        black_box(response.into_body().collect().await.unwrap().to_bytes());
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
    let authority = url.trim_start_matches("http://").to_owned();
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
    group.bench_function("raw_hyper_smol", |b| {
        let executor = Arc::new(smol::Executor::new());
        b.iter_custom(|iters| {
            smol::block_on(executor.run(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    admin.reset();
                    let start = Instant::now();
                    raw_round(&authority, &batches, &executor).await;
                    total += start.elapsed();
                    assert_eq!(admin.accepted_count("bench-app"), BATCHES * PER_BATCH);
                }
                total
            }))
        });
    });
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
