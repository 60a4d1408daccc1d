//! Storage failure as an input (D1, D2, D4, D5), explored exhaustively.
//!
//! A client keeps its state in a simulated store whose writes, syncs and compactions
//! fail while the disk is down. The alphabet mixes the app, the server and the disk:
//! track, flush, the server's 200 and 503, the disk going down and coming back, time
//! passing, and the process dying (recovering from what the disk holds). Every state
//! reachable within a depth is checked:
//!
//! - **D1**: tracked = acked + dropped + pending, and every event whose `track`
//!   returned success is delivered once the disk is back and everything is sent, even
//!   across deaths of the process;
//! - **no send before durable**: the batch of every request that leaves is one the
//!   disk would give back to a new process, with the same events;
//! - **no id reused**: the server never sees a batch id again with other events, nor
//!   an event under two batch ids.
//!
//! It judges no rule of sending or authentication (that is the model's, in
//! [`crate::explore`]); only what storage must never do.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use authsync_core::{
    Client, Config, FsyncPolicy, Now, PreviousRun, Step, Storage, StorageFailure,
    StorageFailureKind, StoragePolicy, StoredSegment, StoredState,
};
use bytes::Bytes;

/// The alphabet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageInput {
    /// Track an event.
    Track,
    /// Flush.
    Flush,
    /// The server answers the request in flight with 200.
    Ok,
    /// The server answers it with 503.
    Unavailable,
    /// The disk fails every write, sync and compaction until it comes back.
    DiskDown,
    /// The disk works again.
    DiskUp,
    /// Time passes: storage retries and backoffs run out.
    Wait,
    /// The process dies; a new one recovers from what the disk holds.
    Restart,
}

const ALPHABET: [StorageInput; 8] = [
    StorageInput::Track,
    StorageInput::Flush,
    StorageInput::Ok,
    StorageInput::Unavailable,
    StorageInput::DiskDown,
    StorageInput::DiskUp,
    StorageInput::Wait,
    StorageInput::Restart,
];

fn config() -> Config {
    Config::new("app-storage", "http://127.0.0.1:9")
        .with_seed(9)
        .with_batch_limits(2, 128 * 1024)
        .with_backoff(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(400),
        )
        .with_storage(Storage::Durable(StoragePolicy {
            fsync: FsyncPolicy::Always,
            compact_after_bytes: 600,
        }))
}

fn full() -> StorageFailure {
    StorageFailure {
        kind: StorageFailureKind::NoSpace,
        message: "disk down".into(),
    }
}

/// The server: what it accepted, and what broke the rules on arrival.
#[derive(Clone, Debug, Default, Hash)]
struct Server {
    batches: BTreeMap<String, Vec<u64>>,
}

impl Server {
    fn receive(&mut self, batch_id: &str, seqs: Vec<u64>) -> Result<(), String> {
        if let Some(first) = self.batches.get(batch_id) {
            return if *first == seqs {
                Ok(())
            } else {
                Err(format!(
                    "{batch_id} came again with other events: {first:?}, then {seqs:?}"
                ))
            };
        }
        for (other, events) in &self.batches {
            if let Some(seq) = seqs.iter().find(|s| events.contains(s)) {
                return Err(format!(
                    "seq {seq} came under {other} and again under {batch_id}"
                ));
            }
        }
        self.batches.insert(batch_id.to_owned(), seqs);
        Ok(())
    }
}

fn seqs_of(body: &[u8]) -> Vec<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["events"]
                .as_array()
                .map(|events| events.iter().filter_map(|e| e["seq"].as_u64()).collect())
        })
        .unwrap_or_default()
}

/// A client, the disk, the server, and what the app was told was stored.
#[derive(Clone)]
struct World {
    client: Client,
    /// Segments and snapshot as the disk holds them (every write synced).
    segments: BTreeMap<u64, Vec<u8>>,
    snapshot: Option<Vec<u8>>,
    disk_up: bool,
    now: Now,
    server: Server,
    /// Seqs whose `track` returned success.
    stored: BTreeSet<u64>,
    in_flight: Option<(authsync_core::RequestId, String, Vec<u64>)>,
}

impl World {
    fn new() -> Result<Self, String> {
        let now = Now::new(1_000, 1_700_000_000_000);
        let client = Client::new(config(), now).map_err(|e| e.to_string())?;
        let mut world = Self {
            client,
            segments: BTreeMap::new(),
            snapshot: None,
            disk_up: true,
            now,
            server: Server::default(),
            stored: BTreeSet::new(),
            in_flight: None,
        };
        world.pump(false)?;
        Ok(world)
    }

    fn stored_state(&self) -> StoredState {
        StoredState {
            snapshot: self
                .snapshot
                .clone()
                .map(|bytes| authsync_core::Snapshot::from_bytes(bytes).map_err(|e| e.to_string())),
            segments: self
                .segments
                .iter()
                .map(|(&number, bytes)| StoredSegment {
                    number,
                    bytes: Bytes::from(bytes.clone()),
                })
                .collect(),
            previous_run: PreviousRun::Unclean(FsyncPolicy::Always),
            fresh_seed: 10,
        }
    }

    /// Performs every output; `check` says whether sends are checked to be durable.
    fn pump(&mut self, check: bool) -> Result<(), String> {
        loop {
            while let Some(job) = self.client.poll_write() {
                let result = if self.disk_up {
                    self.segments
                        .entry(job.segment)
                        .or_default()
                        .extend_from_slice(&job.frames);
                    Ok(())
                } else {
                    Err(full())
                };
                self.client
                    .handle_written(self.now, job.id, result)
                    .map_err(|e| e.to_string())?;
            }
            while self.client.poll_event().is_some() {}
            let Some(step) = self.client.poll_step() else {
                return Ok(());
            };
            match step {
                Step::Send(request) => {
                    let seqs = seqs_of(&request.body);
                    if check {
                        self.check_durable(&request.batch_id, &seqs)?;
                    }
                    self.in_flight = Some((request.id, request.batch_id.clone(), seqs));
                }
                Step::Sync(job) => {
                    let result = if self.disk_up { Ok(()) } else { Err(full()) };
                    self.client
                        .handle_synced(self.now, job.id, result)
                        .map_err(|e| e.to_string())?;
                }
                Step::Compact(job) => {
                    let result = if self.disk_up {
                        let snapshot = job.snapshot();
                        self.snapshot = Some(snapshot.as_bytes().to_vec());
                        self.segments.retain(|&n, _| n >= job.first_segment);
                        Ok(snapshot.as_bytes().len() as u64)
                    } else {
                        Err(full())
                    };
                    self.client
                        .handle_compacted(self.now, job.id, result)
                        .map_err(|e| e.to_string())?;
                }
                other => return Err(format!("unexpected step {other:?}")),
            }
        }
    }

    /// No send before durable: a process started from the disk now has this batch.
    fn check_durable(&self, batch_id: &str, seqs: &[u64]) -> Result<(), String> {
        let (client, _) = Client::recover(config(), self.now, self.stored_state())
            .map_err(|e| format!("the disk does not recover before {batch_id} leaves: {e}"))?;
        let mut probe = Self {
            client,
            segments: self.segments.clone(),
            snapshot: self.snapshot.clone(),
            disk_up: true,
            now: self.now,
            server: Server::default(),
            stored: BTreeSet::new(),
            in_flight: None,
        };
        probe.deliver_all()?;
        match probe.server.batches.get(batch_id) {
            Some(found) if found.as_slice() == seqs => Ok(()),
            found => Err(format!(
                "{batch_id} {seqs:?} left before it was durable: a new process has {found:?}"
            )),
        }
    }

    /// Answers and waits until everything is sent.
    fn deliver_all(&mut self) -> Result<(), String> {
        self.client.handle_flush(self.now);
        for _ in 0..100 {
            self.pump(false)?;
            if let Some((id, batch_id, seqs)) = self.in_flight.take() {
                self.server.receive(&batch_id, seqs)?;
                let ok = http::Response::builder()
                    .status(200)
                    .body(Bytes::new())
                    .map_err(|e| e.to_string())?;
                self.client
                    .handle_response(self.now, id, ok)
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if self.client.totals().pending() == 0 && !self.client.is_storage_broken() {
                return Ok(());
            }
            self.now = self.now.plus_ms(1_000);
            self.client.handle_timeout(self.now);
        }
        Err("the queue did not drain".into())
    }

    fn apply(&mut self, input: StorageInput) -> Result<(), String> {
        match input {
            StorageInput::Track => {
                let receipt = self
                    .client
                    .handle_track(self.now, "e", &serde_json::json!({}))
                    .map_err(|e| e.to_string())?;
                self.pump(true)?;
                if self.client.written_lsn() >= self.client.lsn() {
                    self.stored.insert(receipt.seq);
                }
                return self.invariants();
            }
            StorageInput::Flush => self.client.handle_flush(self.now),
            StorageInput::Ok | StorageInput::Unavailable => {
                let Some((id, batch_id, seqs)) = self.in_flight.take() else {
                    return Ok(());
                };
                let status = if input == StorageInput::Ok { 200 } else { 503 };
                if status == 200 {
                    self.server.receive(&batch_id, seqs)?;
                }
                let response = http::Response::builder()
                    .status(status)
                    .body(Bytes::new())
                    .map_err(|e| e.to_string())?;
                self.client
                    .handle_response(self.now, id, response)
                    .map_err(|e| e.to_string())?;
            }
            StorageInput::DiskDown => self.disk_up = false,
            StorageInput::DiskUp => self.disk_up = true,
            StorageInput::Wait => {
                self.now = self.now.plus_ms(500);
                self.client.handle_timeout(self.now);
            }
            StorageInput::Restart => {
                let (client, _) = Client::recover(config(), self.now, self.stored_state())
                    .map_err(|e| format!("the disk does not recover: {e}"))?;
                self.client = client;
                self.in_flight = None;
            }
        }
        self.pump(true)?;
        self.invariants()
    }

    /// D1, and eventual delivery of every stored event with the disk back.
    fn invariants(&self) -> Result<(), String> {
        let totals = self.client.totals();
        if totals.tracked != totals.acked + totals.dropped + totals.pending() {
            return Err(format!("D1: totals do not add up: {totals:?}"));
        }
        let mut after = self.clone();
        after.disk_up = true;
        after.deliver_all()?;
        let delivered: BTreeSet<u64> = after.server.batches.values().flatten().copied().collect();
        let lost: Vec<&u64> = self.stored.difference(&delivered).collect();
        if lost.is_empty() {
            Ok(())
        } else {
            Err(format!("D1: stored events never delivered: {lost:?}"))
        }
    }

    fn abstract_state(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.client.snapshot().as_bytes().hash(&mut hasher);
        self.client.written_lsn().hash(&mut hasher);
        self.client.is_storage_broken().hash(&mut hasher);
        self.segments.hash(&mut hasher);
        self.snapshot.hash(&mut hasher);
        self.disk_up.hash(&mut hasher);
        self.server.hash(&mut hasher);
        self.stored.hash(&mut hasher);
        self.in_flight
            .as_ref()
            .map(|(_, b, s)| (b, s))
            .hash(&mut hasher);
        hasher.finish()
    }
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct StorageReport {
    /// Distinct states visited.
    pub states: usize,
    /// Transitions tried.
    pub transitions: usize,
    /// The first failure: the inputs that led to it, and what broke.
    pub failure: Option<(Vec<StorageInput>, String)>,
}

/// Explores every state reachable within `depth` inputs.
#[must_use]
pub fn explore_storage(depth: usize) -> StorageReport {
    let mut report = StorageReport {
        states: 1,
        transitions: 0,
        failure: None,
    };
    let root = match World::new() {
        Ok(world) => world,
        Err(e) => {
            report.failure = Some((Vec::new(), e));
            return report;
        }
    };
    let mut seen = HashSet::new();
    seen.insert(root.abstract_state());
    let mut frontier = vec![(root, Vec::new())];
    for _ in 0..depth {
        let mut next = Vec::new();
        for (world, path) in &frontier {
            for input in ALPHABET {
                report.transitions += 1;
                let mut child = world.clone();
                let mut steps: Vec<StorageInput> = path.clone();
                steps.push(input);
                if let Err(e) = child.apply(input) {
                    report.failure = Some((steps, e));
                    return report;
                }
                if seen.insert(child.abstract_state()) {
                    report.states += 1;
                    next.push((child, steps));
                }
            }
        }
        frontier = next;
    }
    report
}
