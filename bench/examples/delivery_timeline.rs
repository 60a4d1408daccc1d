//! Profiling aid: delivers 2 000 events to an in-process reference server and prints
//! when the first batches were sent and answered (a slow round trip shows here first).
//! `cargo run --release -p authsync-blocking --example delivery_timeline [lines]`
//! prints `lines` sent/answered lines (default 6); `EVENTS=n` tracks n events, and
//! `DELAY_FIRST=1` holds the first request 5 ms at the server, so that the requests
//! after it run with tracking over.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authsync_blocking::{Client, Config, Event, WorkspaceOptions};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};

fn main() {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap();
    if std::env::var_os("DELAY_FIRST").is_some() {
        server
            .admin()
            .push_fault(authsync_refserver::Fault::Delay(Duration::from_millis(5)));
    }
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let config = Config::new("bench-app", server.url()).with_max_pending_events(1_000_000);
    let client = Client::start(
        WorkspaceOptions::new(config)
            .seed(1)
            .observer(move |event| {
                let what = match event {
                    Event::Sent { .. } => "sent",
                    Event::Answered { .. } => "answered",
                    _ => return,
                };
                sink.lock().unwrap().push((start.elapsed(), what));
            }),
    )
    .unwrap();
    let t0 = start.elapsed();
    for i in 0..std::env::var("EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
    {
        client
            .track(
                "screen_view",
                &serde_json::json!({"screen": "catalog", "index": i}),
            )
            .unwrap();
    }
    let t1 = start.elapsed();
    let report = client.flush_and_wait(Duration::from_secs(60)).unwrap();
    let t2 = start.elapsed();
    println!(
        "track start {t0:?} tracked {t1:?} settled {t2:?} acked {}",
        report.totals.acked
    );
    for (at, what) in log.lock().unwrap().iter().take(
        std::env::args()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(6),
    ) {
        println!("{at:?} {what}");
    }
}
