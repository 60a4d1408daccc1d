//! The durable store against the raw file operations it is built on, side by side.
//!
//! - `durable_track/*`: a track whose record is appended to the journal (fsync policy
//!   `never` and `every 100 ms`) against `write_all` of the same frame bytes to a file
//!   (goal: at least 0.5x the raw speed).
//! - `restart_100k/*`: opening a state directory with 100 000 pending events and
//!   restoring the client, against reading its files raw (goal: at most 3x), as the
//!   store keeps them (compacted) and from a journal never compacted.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use authsync_core::{Action, Client, Config, Now, Record};
use authsync_host::store::{FsyncPolicy, StateDir, StoreOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

/// Tracks per fresh state directory: the journal stays small and nothing overflows.
const CHUNK: u64 = 5_000;

fn config() -> Config {
    Config::new("bench-app", "http://127.0.0.1:9")
        .with_max_pending_events(1_000_000)
        .with_seed(1)
}

fn options(fsync: FsyncPolicy) -> StoreOptions {
    StoreOptions {
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

/// One durable track: the core's step, then its records appended in one write. The
/// attributes are built by the caller once: building a `serde_json::Value` is the
/// app's cost, not the library's, and the raw side does not pay it either.
fn durable_track(
    client: &mut Client,
    store: &mut StateDir,
    records: &mut Vec<Record>,
    attrs: &serde_json::Value,
) {
    let _ = client.handle_track(now(), "screen_view", attrs);
    while let Some(action) = client.poll_action() {
        if let Action::Persist(record) = action {
            records.push(record);
        }
    }
    let _ = store.append(records);
    records.clear();
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
                    let (mut store, _) = StateDir::open(dir.path(), options(fsync)).unwrap();
                    let mut client = Client::new(config(), now()).unwrap();
                    let mut records = Vec::new();
                    while let Some(Action::Persist(record)) = client.poll_action() {
                        records.push(record);
                    }
                    store.append(&records).unwrap();
                    records.clear();
                    let attrs = typical_attrs();
                    let start = Instant::now();
                    for i in 0..chunk {
                        durable_track(&mut client, &mut store, &mut records, &attrs);
                        // A driver syncs when the policy's period is up; checking every
                        // 256 tracks stands in for its timer.
                        if i % 256 == 255 {
                            store.sync_if_due().unwrap();
                        }
                    }
                    total += start.elapsed();
                    // Written back outside the measurement, so that one chunk's dirty
                    // pages do not slow the next (the raw side does the same).
                    store.sync().unwrap();
                    left -= chunk;
                }
                total
            });
        });
    }
    // The same bytes: the frame of one typical track record.
    let frame = {
        let mut client = Client::new(config(), now()).unwrap();
        while client.poll_action().is_some() {}
        let _ = client.handle_track(now(), "screen_view", &typical_attrs());
        let mut frame = Vec::new();
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                record.encode(&mut frame);
            }
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

/// A state directory with `pending` events tracked and never sent.
fn state_with(pending: u64, options: StoreOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = StateDir::open(dir.path(), options).unwrap();
    let mut client = Client::new(config(), now()).unwrap();
    let mut records = Vec::new();
    while let Some(action) = client.poll_action() {
        if let Action::Persist(record) = action {
            records.push(record);
        }
    }
    store.append(&records).unwrap();
    records.clear();
    for i in 0..pending {
        let _ = client.handle_track(
            now(),
            "screen_view",
            &json!({"screen": "catalog", "index": i}),
        );
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
    assert_eq!(client.totals().pending(), pending);
    dir
}

fn read_raw(dir: &std::path::Path) -> usize {
    let mut total = 0;
    for name in ["snapshot", "journal"] {
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(dir.join(name)) {
            std::io::Read::read_to_end(&mut file, &mut bytes).unwrap();
        }
        total += bytes.len();
        black_box(bytes);
    }
    total
}

/// Restarts with 100 000 pending events: as the store keeps them (a snapshot written
/// by the default compaction policy, and the journal since), and from a journal that was never
/// compacted (the worst case), each against reading the same files raw.
fn restart(c: &mut Criterion) {
    const PENDING: u64 = 100_000;
    let mut group = c.benchmark_group("restart_100k");
    group.sample_size(20);
    for (name, options) in [
        (
            "compacted",
            StoreOptions {
                fsync: FsyncPolicy::Never,
                ..StoreOptions::default()
            },
        ),
        ("journal_only", options(FsyncPolicy::Never)),
    ] {
        let dir = state_with(PENDING, options);
        group.bench_function(format!("authsync_{name}"), |b| {
            b.iter(|| {
                let (store, recovered) = StateDir::open(dir.path(), options).unwrap();
                let client = Client::restore(
                    config(),
                    now(),
                    recovered.snapshot.as_ref(),
                    recovered.records,
                )
                .unwrap();
                assert_eq!(client.totals().pending(), PENDING);
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
