//! `track` latency on the app's thread while the driver works beside it: a store of
//! 100 000 pending events compacting, and a slow server holding each request 200 ms.
//! Reports p50, p99 and p99.9 of one `track` call, and p99.9 / p50 (goal: at most 10):
//! the app's thread does only its own append; compaction, syncs and sends are the
//! driver's.
//!
//! Not a Criterion benchmark: a distribution of single calls, printed as one JSON line
//! that `bench/run` reads.

use std::time::{Duration, Instant};

use authsync_blocking::{Client, Config, FsyncPolicy, StoragePolicy, WorkspaceOptions};
use authsync_refserver::faults::Fault;
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use serde_json::json;

const STORED: u64 = 100_000;
const MEASURED: usize = 40_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn main() {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = Config::new("bench-latency", server.url())
        .with_max_pending_events(1_000_000)
        .with_flush_interval(Duration::from_secs(3_600));
    // Knobs for finding where the tail comes from (not for the reported figure).
    let knob = |name: &str| std::env::var(name).is_ok();
    let storage = StoragePolicy {
        fsync: if knob("LATENCY_FSYNC_NEVER") {
            FsyncPolicy::Never
        } else {
            FsyncPolicy::Every(Duration::from_millis(100))
        },
        compact_after_bytes: if knob("LATENCY_NO_COMPACTION") {
            u64::MAX
        } else {
            1024 * 1024
        },
    };
    let options = || {
        WorkspaceOptions::new(config.clone())
            .state_dir(state.path())
            .storage(storage)
            .seed(3)
    };
    let attrs = json!({"screen": "catalog", "index": 1234, "from_push": false});
    // A store of 100 000 pending events, built without a server answering.
    {
        let client = Client::start(options()).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..STORED {
            let _ = client.track("screen_view", &attrs);
        }
        client.close(Duration::from_secs(30));
    }
    // The server holds every request 200 ms.
    if !knob("LATENCY_FAST_SERVER") {
        server
            .admin()
            .push_faults((0..10_000).map(|_| Fault::Delay(Duration::from_millis(200))));
    }
    let client = Client::start(options().session_on_launch(true)).unwrap_or_else(|e| panic!("{e}"));
    let _ = client.flush();
    let mut latencies = Vec::with_capacity(MEASURED);
    for _ in 0..MEASURED {
        let started = Instant::now();
        let _ = client.track("screen_view", &attrs);
        latencies.push(started.elapsed());
    }
    client.close(Duration::from_secs(5));
    latencies.sort();
    let (p50, p99, p999) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
    );
    println!(
        "{}",
        json!({
            "figure": "track latency while compacting 100 000 events and sending to a slow server",
            "p50_ns": p50.as_nanos() as u64,
            "p99_ns": p99.as_nanos() as u64,
            "p999_ns": p999.as_nanos() as u64,
            "ratio": p999.as_secs_f64() / p50.as_secs_f64(),
        })
    );
}
