//! Profiling aid: writes a journal of 100 000 pending events, then opens and restores
//! it 20 times.
use std::time::Instant;

use authsync_core::{Action, Client, Config, Now};
use authsync_host::store::{FsyncPolicy, StateDir, StoreOptions};

fn main() {
    let options = StoreOptions {
        fsync: FsyncPolicy::Never,
        compact_after_bytes: u64::MAX,
    };
    let config = Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1);
    let now = Now::new(0, 1_700_000_000_000);
    let dir = std::env::temp_dir().join("authsync-restart-profile");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let (mut store, _) = StateDir::open(&dir, options).unwrap();
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
        }
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                records.push(record);
            }
        }
        store.append(&records).unwrap();
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
