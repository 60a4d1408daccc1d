//! The durable store against the raw file operations it is built on, side by side.
//!
//! - `durable_track/*`: a track whose record is appended to the journal (fsync policy
//!   `never` and `every 100 ms`) against `write_all` of the same frame bytes to a file
//!   (goal: at least 0.5x the raw speed).
//! - `restart_100k/*`: opening a state directory with 100 000 pending events and
//!   restoring the client, against reading the journal file raw (goal: at most 3x).

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

fn now() -> Now {
    Now::new(0, 1_700_000_000_000)
}

/// One durable track: the core's step, then its records appended in one write.
fn durable_track(client: &mut Client, store: &mut StateDir, records: &mut Vec<Record>, i: u64) {
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
                    let start = Instant::now();
                    for i in 0..chunk {
                        durable_track(&mut client, &mut store, &mut records, i);
                    }
                    total += start.elapsed();
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
        let _ = client.handle_track(
            now(),
            "screen_view",
            &json!({"screen": "catalog", "index": 1234}),
        );
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
                left -= chunk;
            }
            total
        });
    });
    group.finish();
}

fn restart(c: &mut Criterion) {
    const PENDING: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = StateDir::open(dir.path(), options(FsyncPolicy::Never)).unwrap();
        let mut client = Client::new(config(), now()).unwrap();
        let mut records = Vec::new();
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                records.push(record);
            }
        }
        store.append(&records).unwrap();
        records.clear();
        for i in 0..PENDING {
            durable_track(&mut client, &mut store, &mut records, i);
        }
        assert_eq!(client.totals().pending(), PENDING);
    }
    let journal = dir.path().join("journal");
    let mut group = c.benchmark_group("restart_100k");
    group.sample_size(20);
    group.bench_function("authsync_open_restore", |b| {
        b.iter(|| {
            let (store, recovered) =
                StateDir::open(dir.path(), options(FsyncPolicy::Never)).unwrap();
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
    group.bench_function("raw_read", |b| {
        b.iter(|| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut File::open(&journal).unwrap(), &mut bytes).unwrap();
            black_box(bytes)
        });
    });
    group.finish();
}

criterion_group!(benches, durable, restart);
criterion_main!(benches);
