//! Profiling aid for the `durable_track` benchmark: `N` durable tracks (fsync never),
//! for callgrind's instruction counts.
use authsync_core::{Action, Client, Config, Now};
use authsync_host::store::{FsyncPolicy, StateDir, StoreOptions};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let options = StoreOptions {
        fsync: FsyncPolicy::Never,
        compact_after_bytes: u64::MAX,
    };
    let dir = std::env::temp_dir().join(format!("authsync-durable-profile-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut store, _) = StateDir::open(&dir, options).unwrap();
    let now = Now::new(0, 1_700_000_000_000);
    let config = Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1);
    let mut client = Client::new(config, now).unwrap();
    let attrs = serde_json::json!({"screen": "catalog", "index": 1234, "from_push": false});
    let mut records = Vec::new();
    for _ in 0..n {
        let _ = client.handle_track(now, "screen_view", &attrs);
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                records.push(record);
            }
        }
        store.append(&records).unwrap();
        records.clear();
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
