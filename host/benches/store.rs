//! The durable store against the raw file operations it is built on, side by side.
//!
//! - `durable_track/*`: a track whose record is appended to the journal (fsync policy
//!   `never` and `every 100 ms`) against `write_all` of the same frame bytes to a file
//!   (goal: at least 0.5x the raw speed).
//! - `restart_100k/*`: opening a state directory with 100 000 pending events and
//!   restoring the client, against reading its files raw (goal: at most 3x), as the
//!   store keeps them (compacted) and from a journal never compacted.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authsync_core::{Client, Config, FsyncPolicy, Now, Storage, StoragePolicy};
use authsync_host::{Engine, ManualClock, OsFileSystem, StateDir, Work, WorkspaceOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

/// Tracks per fresh state directory: the journal stays small and nothing overflows.
const CHUNK: u64 = 5_000;

fn config() -> Config {
    Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1)
}

fn policy(fsync: FsyncPolicy) -> StoragePolicy {
    StoragePolicy {
        fsync,
        compact_after_bytes: u64::MAX,
    }
}

fn typical_attrs() -> serde_json::Value {
    json!({"screen": "catalog", "index": 1234, "from_push": false})
}

fn now() -> Now {
    Now::new(0, 1_700_000_000_000)
}

fn options(dir: &std::path::Path, storage: StoragePolicy) -> WorkspaceOptions<()> {
    WorkspaceOptions::new(config())
        .state_dir(dir)
        .storage(storage)
        .seed(1)
}

/// A workspace on a fresh state directory in `dir`.
fn engine(dir: &std::path::Path, storage: StoragePolicy) -> Engine {
    Engine::open(options(dir, storage)).unwrap().0
}

/// The same on a clock that stands still, as the raw side and the benchmark of the
/// code before the driver loop read none: reading the system clock (two vDSO calls,
/// about 40 ns here) is the host's cost, the same in both, not the store's.
fn engine_on_a_still_clock(dir: &std::path::Path, storage: StoragePolicy) -> Engine {
    let still = Arc::new(ManualClock::new(now()));
    Engine::open(options(dir, storage).clock(still)).unwrap().0
}

/// Performs the storage steps a driver's thread would (syncs, compactions).
fn driver_steps(engine: &mut Engine) {
    while let Some(work) = engine.next_work() {
        match work {
            Work::Storage(task) => engine.storage_done(task.run()),
            Work::Tell(..) => engine.told(),
            _ => {}
        }
    }
}

fn durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_track");
    group.throughput(Throughput::Elements(1));
    for (name, fsync) in [
        ("journal_never", FsyncPolicy::Never),
        (
            "journal_every_100ms",
            FsyncPolicy::Every(Duration::from_millis(100)),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(CHUNK);
                    let dir = tempfile::tempdir().unwrap();
                    let mut engine = engine_on_a_still_clock(dir.path(), policy(fsync));
                    let attrs = typical_attrs();
                    let start = Instant::now();
                    for i in 0..chunk {
                        // One durable track: the core's step, then its frame appended
                        // in one write on this thread. The attributes are built once:
                        // building a `serde_json::Value` is the app's cost, and the
                        // raw side does not pay it either.
                        let _ = engine
                            .input(|client, now| client.handle_track(now, "screen_view", &attrs));
                        // A driver's thread performs what is due (a sync once the
                        // period is up, a compaction); every 256 tracks stands in
                        // for its timer.
                        if i % 256 == 255 {
                            driver_steps(&mut engine);
                        }
                    }
                    total += start.elapsed();
                    // Written back outside the measurement, so that one chunk's dirty
                    // pages do not slow the next (the raw side does the same).
                    engine.store().unwrap().sync().unwrap();
                    left -= chunk;
                }
                total
            });
        });
    }
    // The same bytes: the frame of one typical track record.
    let frame = {
        let config = config().with_storage(Storage::Durable(policy(FsyncPolicy::Never)));
        let mut client = Client::new(config, now()).unwrap();
        let mut frame = Vec::new();
        for _ in 0..2 {
            while let Some(job) = client.poll_write() {
                frame = job.frames.to_vec();
                client.handle_written(now(), job.id, Ok(())).unwrap();
            }
            let _ = client.handle_track(now(), "screen_view", &typical_attrs());
        }
        while let Some(job) = client.poll_write() {
            frame = job.frames.to_vec();
            client.handle_written(now(), job.id, Ok(())).unwrap();
        }
        frame
    };
    group.bench_function("raw_write_all", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(CHUNK);
                let dir = tempfile::tempdir().unwrap();
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.path().join("raw"))
                    .unwrap();
                let start = Instant::now();
                for _ in 0..chunk {
                    file.write_all(black_box(&frame)).unwrap();
                }
                total += start.elapsed();
                file.sync_data().unwrap();
                left -= chunk;
            }
            total
        });
    });
    group.finish();
}

/// A state directory with `pending` events tracked and never sent. With `compacted_at`,
/// a compaction runs at that event and none after it: the snapshot holds the events
/// before it and the journal the rest, whatever the frames' size (a compaction
/// policy's own cycle would leave a journal of any length up to its threshold).
fn state_with(pending: u64, compacted_at: Option<u64>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut tracked = 0;
    let mut track_until = |engine: &mut Engine, end: u64| {
        while tracked < end {
            let index = tracked;
            let _ = engine.input(|client, now| {
                client.handle_track(
                    now,
                    "screen_view",
                    &json!({"screen": "catalog", "index": index}),
                )
            });
            driver_steps(engine);
            tracked += 1;
        }
    };
    let never_compact = policy(FsyncPolicy::Never);
    let mut engine = engine(dir.path(), never_compact);
    if let Some(at) = compacted_at {
        track_until(&mut engine, at);
        finish(engine);
        let compact_now = StoragePolicy {
            compact_after_bytes: 0,
            ..never_compact
        };
        let mut compacting = self::engine(dir.path(), compact_now);
        track_until(&mut compacting, at + 1);
        finish(compacting);
        engine = self::engine(dir.path(), never_compact);
    }
    track_until(&mut engine, pending);
    assert_eq!(engine.client().totals().pending(), pending);
    finish(engine);
    dir
}

fn finish(mut engine: Engine) {
    engine.close();
    driver_steps(&mut engine);
}

fn read_raw(dir: &std::path::Path) -> usize {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "snapshot" || name.starts_with("journal") {
            let bytes = std::fs::read(&path).unwrap();
            total += bytes.len();
            black_box(bytes);
        }
    }
    total
}

/// Restarts with 100 000 pending events: as the store keeps them (a snapshot and the
/// journal since), and from a journal that was never compacted (the worst case), each
/// against reading the same files raw.
fn restart(c: &mut Criterion) {
    const PENDING: u64 = 100_000;
    let mut group = c.benchmark_group("restart_100k");
    group.sample_size(20);
    // As a store keeps them: a snapshot and the journal since (here 90 % and 10 %),
    // and a journal never compacted (the worst case).
    for (name, compacted_at) in [("compacted", Some(90_000)), ("journal_only", None)] {
        let dir = state_with(PENDING, compacted_at);
        let storage = policy(FsyncPolicy::Never);
        let config = config().with_storage(Storage::Durable(storage));
        group.bench_function(format!("authsync_{name}"), |b| {
            b.iter(|| {
                let (store, stored) =
                    StateDir::open(&OsFileSystem, dir.path(), storage.fsync, 2).unwrap();
                let (client, report) = Client::recover(config.clone(), now(), stored).unwrap();
                assert!(report.is_clean(), "{report}");
                assert_eq!(client.totals().pending(), PENDING);
                store.close(true);
                drop(store);
                black_box(client)
            });
        });
        group.bench_function(format!("raw_read_{name}"), |b| {
            b.iter(|| black_box(read_raw(dir.path())))
        });
    }
    group.finish();
}

criterion_group!(benches, durable, restart);
criterion_main!(benches);
