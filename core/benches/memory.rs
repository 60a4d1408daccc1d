//! Heap bytes per pending event against the event's encoded size (goal: at most 1.5x).
//!
//! Not a timing: one run with dhat's counting allocator. Prints one JSON line that
//! `bench/run` reads.

use authsync_core::{Client, Config, FsyncPolicy, Now, Storage, StoragePolicy};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const PENDING: usize = 100_000;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let now = Now::new(0, 1_700_000_000_000);
    let config = Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1)
        .with_storage(Storage::Durable(StoragePolicy {
            fsync: FsyncPolicy::Never,
            compact_after_bytes: u64::MAX,
        }));
    let mut client = Client::new(config, now).unwrap_or_else(|e| panic!("{e}"));
    take_writes(&mut client, now);
    let before = dhat::HeapStats::get().curr_bytes;
    let mut encoded = 0usize;
    for i in 0..PENDING {
        let attrs = json!({"screen": "catalog", "index": i, "from_push": false});
        let _ = client.handle_track(now, "screen_view", &attrs);
        // The journal frame carries the event's encoded bytes: their size is the
        // event's encoded size. Frames are written and dropped by a host.
        encoded += take_writes(&mut client, now);
    }
    let held = dhat::HeapStats::get().curr_bytes - before;
    assert_eq!(client.totals().pending(), PENDING as u64);
    let per_event = held as f64 / PENDING as f64;
    let encoded_per_event = encoded as f64 / PENDING as f64;
    println!(
        "{}",
        json!({
            "figure": "memory per pending event",
            "held_bytes_per_event": per_event,
            "encoded_bytes_per_event": encoded_per_event,
            "ratio": per_event / encoded_per_event,
        })
    );
    drop(client);
}

/// Confirms every write job as a host would; returns the events' bytes they held.
fn take_writes(client: &mut Client, now: Now) -> usize {
    let mut encoded = 0;
    while let Some(job) = client.poll_write() {
        encoded += event_bytes(&job.frames);
        let _ = client.handle_written(now, job.id, Ok(()));
    }
    while client.poll_event().is_some() {}
    while client.poll_step().is_some() {}
    encoded
}

/// The event's JSON inside an event record frame: from its first `{` to its last `}`.
fn event_bytes(frame: &[u8]) -> usize {
    match (
        frame.iter().position(|&b| b == b'{'),
        frame.iter().rposition(|&b| b == b'}'),
    ) {
        (Some(start), Some(end)) if end > start => end - start + 1,
        _ => 0,
    }
}
