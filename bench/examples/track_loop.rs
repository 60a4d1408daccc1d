//! Profiling aid: tracks events in a loop behind a request in flight, at a chosen depth
//! (`cargo run --release -p authsync-core --example track_loop -- 10000`), for perf or
//! callgrind.
use authsync_core::{Client, Config, Now};
use serde_json::json;

fn main() {
    eprintln!(
        "size of Step: {} bytes, Event: {}, Request: {}",
        size_of::<authsync_core::Step>(),
        size_of::<authsync_core::Event>(),
        size_of::<authsync_core::Request>()
    );
    let depth: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let now = Now::new(0, 1_700_000_000_000);
    let attrs = json!({"screen": "catalog", "index": 7, "from_push": false});
    for _ in 0..300 {
        let config = Config::new("bench-app", "http://127.0.0.1:9")
            .with_max_pending_events(1_000_000)
            .with_seed(1);
        let Ok(mut client) = Client::new(config, now) else {
            return;
        };
        for _ in 0..depth {
            let _ = client.handle_track(now, "screen_view", &attrs);
        }
        drain(&mut client);
        for _ in 0..1000 {
            let _ = client.handle_track(now, "screen_view", &attrs);
            drain(&mut client);
        }
    }
}

fn drain(client: &mut Client) {
    while let Some(event) = client.poll_event() {
        std::hint::black_box(event);
    }
    while let Some(step) = client.poll_step() {
        std::hint::black_box(step);
    }
}
