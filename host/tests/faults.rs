//! The store under faults (D4, D5), SQLite's way: a scenario run once for every I/O
//! operation it performs, with that operation failing (disk full, I/O error,
//! read-only, a torn write), and once for every point at which the machine can lose
//! power. After each run the store is reopened on the same disk and drained, and:
//!
//! - every event whose `track` returned success reaches the server (D1, D2);
//! - no event reaches it under two batch ids, and no batch id comes with other
//!   content (D5: the server's deduplication never swallows a new event);
//! - every request that leaves is already on the disk: a power loss at that moment
//!   would still have its batch (D4: nothing is sent before it is durable).
//!
//! The loop here is `Engine`'s, the one both drivers run (`next_work`, each result
//! handed back), driven synchronously over a `ManualClock`, so that every run is exact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use authsync_core::{Client, Config, FsyncPolicy, Now, RecoveryReport, Storage, StoragePolicy};
use authsync_host::{
    Clock, Engine, Error, Fault, ManualClock, SimulatedDisk, Work, WorkspaceOptions,
};
use bytes::Bytes;
use serde_json::Value;

const DIR: &str = "/state";

fn policy(fsync: FsyncPolicy) -> StoragePolicy {
    StoragePolicy {
        fsync,
        compact_after_bytes: 1_500,
    }
}

fn config(fsync: FsyncPolicy) -> Config {
    Config::new("app-faults", "http://127.0.0.1:9")
        .with_seed(77)
        .with_batch_limits(3, 128 * 1024)
        .with_storage(Storage::Durable(policy(fsync)))
}

/// The ingestion server: deduplicates by batch id, remembers what it accepted.
#[derive(Default)]
struct Server {
    /// Batch id → its events' seqs, as first accepted.
    batches: BTreeMap<String, Vec<u64>>,
    /// Violations seen on arrival.
    violations: Vec<String>,
}

impl Server {
    fn receive(&mut self, batch_id: &str, body: &Bytes) {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let seqs: Vec<u64> = parsed["events"]
            .as_array()
            .map(|events| events.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default();
        match self.batches.get(batch_id) {
            Some(first) if *first != seqs => self.violations.push(format!(
                "batch {batch_id} came again with other events: {first:?} then {seqs:?}"
            )),
            Some(_) => {}
            None => {
                for (other, events) in &self.batches {
                    if let Some(seq) = seqs.iter().find(|s| events.contains(s)) {
                        self.violations.push(format!(
                            "seq {seq} came under {other} and again under {batch_id}"
                        ));
                    }
                }
                self.batches.insert(batch_id.to_owned(), seqs);
            }
        }
    }

    fn seqs(&self) -> BTreeSet<u64> {
        self.batches.values().flatten().copied().collect()
    }
}

/// A host on a simulated disk and a manual clock, running `Engine`'s loop: the one
/// both drivers run.
struct Host {
    engine: Engine,
    clock: ManualClock,
    disk: SimulatedDisk,
    fsync: FsyncPolicy,
    /// Seqs whose `track` returned success.
    stored: BTreeSet<u64>,
    finished: bool,
    /// Whether each request is checked to be durable (not in the probe itself).
    checks_durability: bool,
}

impl Host {
    fn open(disk: &SimulatedDisk, fsync: FsyncPolicy, now: Now) -> Option<(Self, RecoveryReport)> {
        let clock = ManualClock::new(now);
        let options: WorkspaceOptions<()> = WorkspaceOptions::new(config(fsync))
            .state_dir(DIR)
            .storage(policy(fsync))
            .file_system(Arc::new(disk.clone()))
            .seed(77)
            .clock(Arc::new(clock.clone()));
        let (engine, _) = Engine::open(options).ok()?;
        let report = engine.recovery_report().clone();
        let host = Self {
            engine,
            clock,
            disk: disk.clone(),
            fsync,
            stored: BTreeSet::new(),
            finished: false,
            checks_durability: true,
        };
        Some((host, report))
    }

    fn client(&self) -> &Client {
        self.engine.client()
    }

    fn now(&self) -> Now {
        self.clock.now()
    }

    fn track(&mut self, i: u64) {
        let tracked = self
            .engine
            .input(|client, now| client.handle_track(now, "e", &serde_json::json!({ "i": i })));
        match tracked {
            Ok(receipt) => {
                self.stored.insert(receipt.expect("a valid event").seq);
            }
            Err(Error::NotStored { .. }) => {}
            Err(other) => panic!("track: {other}"),
        }
    }

    /// Performs all the work there is, answering requests from `server`.
    fn pump(&mut self, server: &mut Server) {
        while let Some(work) = self.engine.next_work() {
            match work {
                Work::Tell(..) => self.engine.told(),
                Work::Send(request) => {
                    if self.checks_durability {
                        self.check_durable(&request.batch_id, server);
                    }
                    server.receive(&request.batch_id, &request.body);
                    let ok = http::Response::builder()
                        .status(200)
                        .body(Bytes::from_static(br#"{"status":"ok"}"#))
                        .unwrap();
                    self.engine.answered(request.id, Ok(ok));
                }
                Work::Storage(task) => {
                    let done = task.run();
                    self.engine.storage_done(done);
                }
                Work::Finish { clean } => {
                    self.engine.finish(clean);
                    self.finished = true;
                }
                other => panic!("unexpected work {other:?}"),
            }
        }
    }

    /// D4: a power loss now would keep the batch about to be sent.
    fn check_durable(&self, batch_id: &str, server: &mut Server) {
        let crashed = SimulatedDisk::default();
        for name in self.disk.names(Path::new(DIR)) {
            if let Some(bytes) = self.disk.durable_contents(Path::new(DIR), &name) {
                crashed.set_contents(Path::new(DIR), &name, bytes);
            }
        }
        let Some((restored, _)) = Self::open(&crashed, self.fsync, self.now()) else {
            server
                .violations
                .push(format!("no store after a power loss before {batch_id}"));
            return;
        };
        let mut probe = Server::default();
        let mut restored = restored;
        restored.checks_durability = false;
        restored.drain(&mut probe);
        if !probe.batches.contains_key(batch_id) {
            server.violations.push(format!(
                "{batch_id} was sent before it was durable: a power loss would lose it"
            ));
        }
    }

    fn advance(&mut self, ms: u64, server: &mut Server) {
        self.clock.advance(ms);
        self.pump(server);
    }

    /// Sends everything, waiting out backoffs and storage retries.
    fn drain(&mut self, server: &mut Server) {
        let _ = self.engine.input(|client, now| client.handle_flush(now));
        for _ in 0..200 {
            self.pump(server);
            if self.client().totals().pending() == 0 && !self.client().is_storage_broken() {
                return;
            }
            self.advance(1_000, server);
        }
    }

    fn close(&mut self, server: &mut Server) {
        self.engine.close();
        self.pump(server);
    }
}

/// The scenario: a restart, compactions, acks, a clean close.
fn scenario(disk: &SimulatedDisk, fsync: FsyncPolicy, server: &mut Server) -> BTreeSet<u64> {
    let start = Now::new(1_000, 1_700_000_000_000);
    let mut stored = BTreeSet::new();
    let Some((mut host, _)) = Host::open(disk, fsync, start) else {
        return stored;
    };
    for i in 0..7 {
        host.track(i);
        host.pump(server);
    }
    host.advance(150, server);
    stored.append(&mut host.stored);
    // A process that ends without closing.
    let now = host.now();
    drop(host);
    let Some((mut host, _)) = Host::open(disk, fsync, now.plus_ms(10)) else {
        return stored;
    };
    for i in 7..20 {
        host.track(i);
        host.pump(server);
        if i % 5 == 0 {
            host.advance(300, server);
        }
    }
    host.advance(300, server);
    host.close(server);
    stored.append(&mut host.stored);
    stored
}

/// Reopens the disk after a run, drains everything, and checks the invariants.
fn verify(
    disk: &SimulatedDisk,
    fsync: FsyncPolicy,
    server: &mut Server,
    stored: &BTreeSet<u64>,
    what: &str,
) {
    disk.heal();
    let (mut host, _) = Host::open(disk, fsync, Now::new(900_000, 1_700_001_000_000))
        .unwrap_or_else(|| panic!("{what}: the store does not open after the run"));
    host.drain(server);
    let delivered = server.seqs();
    let lost: Vec<&u64> = stored.difference(&delivered).collect();
    assert!(
        lost.is_empty(),
        "{what}: events whose track returned were lost: {lost:?}"
    );
    assert!(
        server.violations.is_empty(),
        "{what}: {:?}",
        server.violations
    );
}

fn operations_of_a_clean_run(fsync: FsyncPolicy) -> usize {
    let disk = SimulatedDisk::default();
    let mut server = Server::default();
    let stored = scenario(&disk, fsync, &mut server);
    assert_eq!(
        stored.len(),
        20,
        "every track stored in a run without faults"
    );
    let operations = disk.operations().len();
    verify(&disk, fsync, &mut server, &stored, "a clean run");
    operations
}

#[test]
fn d4_a_fault_at_every_io_operation_loses_nothing_stored_and_reuses_no_id() {
    let mut tried = 0;
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Every(Duration::from_millis(100)),
    ] {
        let operations = operations_of_a_clean_run(fsync);
        for at in 0..operations {
            for fault in Fault::ALL {
                let disk = SimulatedDisk::default();
                disk.fail_operation(at, fault);
                let mut server = Server::default();
                let stored = scenario(&disk, fsync, &mut server);
                verify(
                    &disk,
                    fsync,
                    &mut server,
                    &stored,
                    &format!("{fault:?} at operation {at} ({fsync:?})"),
                );
                tried += 1;
            }
        }
    }
    println!("fault points tried: {tried}");
    assert!(tried > 400, "{tried}");
}

#[test]
fn d4_a_disk_that_stays_full_resumes_without_a_restart_once_freed() {
    let disk = SimulatedDisk::default();
    let mut server = Server::default();
    let start = Now::new(1_000, 1_700_000_000_000);
    let (mut host, _) = Host::open(&disk, FsyncPolicy::Always, start).unwrap();
    for i in 0..4 {
        host.track(i);
        host.pump(&mut server);
    }
    disk.fail_every_operation_from_now(Fault::NoSpace);
    for i in 4..10 {
        host.track(i);
        host.pump(&mut server);
    }
    assert!(host.client().is_storage_broken());
    assert_eq!(host.stored.len(), 4, "tracks on a full disk say so");
    // Nothing spins: while full, the core waits a growing backoff between tries.
    let before = disk.operations().len();
    host.advance(10_000, &mut server);
    let tries = disk.operations().len() - before;
    assert!(tries < 40, "{tries} operations in 10 s of a full disk");
    disk.heal();
    host.drain(&mut server);
    assert!(!host.client().is_storage_broken());
    let delivered = server.seqs();
    assert!(
        (1..=10).all(|seq| delivered.contains(&seq)),
        "{delivered:?}"
    );
    assert!(server.violations.is_empty(), "{:?}", server.violations);
    // A failed compaction left no temporary file to keep the disk full.
    assert!(
        !disk
            .names(Path::new(DIR))
            .contains(&"snapshot.tmp".to_owned())
    );
}

#[test]
fn d2_d4_power_loss_at_every_point_loses_nothing_stored_with_fsync_always() {
    let operations = operations_of_a_clean_run(FsyncPolicy::Always);
    let mut cuts = 0;
    for at in 0..operations {
        for tear in [None, Some(3)] {
            let disk = SimulatedDisk::default();
            // From operation `at` on nothing reaches the disk; then the power goes.
            disk.fail_operation_and_all_after(at, Fault::Io);
            let mut server = Server::default();
            let stored = scenario(&disk, FsyncPolicy::Always, &mut server);
            disk.lose_power(tear);
            verify(
                &disk,
                FsyncPolicy::Always,
                &mut server,
                &stored,
                &format!("power lost at {at}, tear {tear:?}"),
            );
            cuts += 1;
        }
    }
    println!("power-loss cuts tried: {cuts}");
}

#[test]
fn d4_power_loss_with_a_periodic_fsync_loses_at_most_the_last_period_and_says_so() {
    let disk = SimulatedDisk::default();
    let mut server = Server::default();
    let fsync = FsyncPolicy::Every(Duration::from_millis(100));
    let start = Now::new(1_000, 1_700_000_000_000);
    let (mut host, _) = Host::open(&disk, fsync, start).unwrap();
    host.track(0);
    host.pump(&mut server);
    host.advance(100, &mut server);
    let synced = host.stored.clone();
    // Tracked within the period, not sealed, not sent: only the page cache has it.
    host.track(1);
    host.pump(&mut server);
    disk.lose_power(None);
    drop(host);
    let (host, report) = Host::open(&disk, fsync, start.plus_ms(5_000)).unwrap();
    assert_eq!(report.unsynced_window_ms, Some(100), "{report}");
    assert_eq!(
        host.client().totals().tracked as usize,
        synced.len(),
        "only the last period went"
    );
    drop(host);
    verify(&disk, fsync, &mut server, &synced, "periodic power loss");
}

#[test]
fn d4_the_markers_of_a_run_are_synced_only_where_a_power_loss_must_be_reported() {
    let start = Now::new(1_000, 1_700_000_000_000);
    for fsync in [
        FsyncPolicy::Every(Duration::from_millis(100)),
        FsyncPolicy::Always,
        FsyncPolicy::Never,
    ] {
        let disk = SimulatedDisk::default();
        let mut server = Server::default();
        let (mut host, _) = Host::open(&disk, fsync, start).unwrap();
        host.track(0);
        host.close(&mut server);
        drop(host);
        // A clean close's marker is not synced: a power loss after it brings back
        // the running marker, and the next open reports a loss that may have been,
        // never a clean run that was not.
        disk.lose_power(None);
        let (host, report) = Host::open(&disk, fsync, start.plus_ms(5_000)).unwrap();
        let periodic = matches!(fsync, FsyncPolicy::Every(_));
        assert_eq!(
            report.unsynced_window_ms,
            periodic.then_some(100),
            "{fsync:?}: {report}"
        );
        drop(host);
        // A run that never closes: with a sync period its running marker was synced
        // at open, so the loss it may have caused is reported.
        disk.lose_power(None);
        let (host, report) = Host::open(&disk, fsync, start.plus_ms(9_000)).unwrap();
        assert_eq!(
            report.unsynced_window_ms,
            periodic.then_some(100),
            "{fsync:?}: {report}"
        );
        if fsync != FsyncPolicy::Never {
            assert_eq!(
                host.client().totals().tracked,
                1,
                "{fsync:?}: the close synced it"
            );
        }
    }
}

#[test]
#[ignore = "prints the operations of a clean run"]
fn print_operations() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Every(Duration::from_millis(100)),
    ] {
        let disk = SimulatedDisk::default();
        let mut server = Server::default();
        let _ = scenario(&disk, fsync, &mut server);
        println!(
            "{fsync:?}: {:?}",
            disk.operations().iter().take(20).collect::<Vec<_>>()
        );
    }
}
