//! Profiling aid: delivers 2 000 events to an in-process reference server with the async
//! driver and prints when the first batches were sent and answered.
//! `cargo run --release -p authsync-async --example async_delivery_timeline [lines]`
//! prints `lines` sent/answered lines (default 6).
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authsync_async::{Client, Config, Event, WorkspaceOptions};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};

fn main() {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap();
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let config = Config::new("bench-app", server.url()).with_max_pending_events(1_000_000);
    smol::block_on(async {
        let options = WorkspaceOptions::new(config)
            .seed(1)
            .observer(move |event| {
                let what = match event {
                    Event::Sent { .. } => "sent",
                    Event::Answered { .. } => "answered",
                    _ => return,
                };
                sink.lock().unwrap().push((start.elapsed(), what));
            });
        let client = Client::spawn(options).await.unwrap();
        let t0 = start.elapsed();
        for i in 0..2000 {
            client
                .track(
                    "screen_view",
                    &serde_json::json!({"screen": "catalog", "index": i}),
                )
                .await
                .unwrap();
        }
        let t1 = start.elapsed();
        let report = client
            .flush_and_wait(Duration::from_secs(60))
            .await
            .unwrap();
        let t2 = start.elapsed();
        println!(
            "track start {t0:?} tracked {t1:?} settled {t2:?} acked {}",
            report.totals.acked
        );
    });
    for (at, what) in log.lock().unwrap().iter().take(
        std::env::args()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(6),
    ) {
        println!("{at:?} {what}");
    }
}
