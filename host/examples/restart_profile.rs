//! Profiling aid: writes 100 000 pending events, then opens and restores them 20 times.
//! `restart_profile compacted` keeps the store's default compaction policy; without it
//! the journal is never compacted. `reuse` restarts from
//! the previous run's directory, so that a profiler sees only the restarts.
use std::path::Path;
use std::time::Instant;

use authsync_core::{Action, Client, Config, Now};
use authsync_host::store::{FsyncPolicy, StateDir, StoreOptions};

fn main() {
    let compacted = std::env::args().any(|arg| arg == "compacted");
    let reuse = std::env::args().any(|arg| arg == "reuse");
    let options = StoreOptions {
        fsync: FsyncPolicy::Never,
        compact_after_bytes: if compacted {
            StoreOptions::default().compact_after_bytes
        } else {
            u64::MAX
        },
    };
    let config = Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1);
    let now = Now::new(0, 1_700_000_000_000);
    let dir = std::env::temp_dir().join(if compacted {
        "authsync-restart-profile-compacted"
    } else {
        "authsync-restart-profile-journal"
    });
    if !(reuse && dir.join("journal").exists()) {
        let _ = std::fs::remove_dir_all(&dir);
        write_pending_events(&dir, &config, options, now);
    }
    let start = Instant::now();
    for _ in 0..20 {
        let (store, recovered) = StateDir::open(&dir, options).unwrap();
        let client = Client::restore(
            config.clone(),
            now,
            recovered.snapshot.as_ref(),
            recovered.records,
        )
        .unwrap();
        assert_eq!(client.totals().pending(), 100_000);
        drop(store);
    }
    println!("{:?} per restart", start.elapsed() / 20);
}

fn write_pending_events(dir: &Path, config: &Config, options: StoreOptions, now: Now) {
    let (mut store, _) = StateDir::open(dir, options).unwrap();
    let mut client = Client::new(config.clone(), now).unwrap();
    let attrs = serde_json::json!({"screen": "catalog", "index": 7, "from_push": false});
    let mut records = Vec::new();
    for _ in 0..100_000 {
        let _ = client.handle_track(now, "screen_view", &attrs);
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                records.push(record);
            }
        }
        store.append(&records).unwrap();
        records.clear();
        if store.wants_compaction() {
            store.compact(&client.snapshot()).unwrap();
        }
    }
}
