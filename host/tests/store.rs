//! The durable store (D2): recovery of torn tails, the lock, private files, compaction.

use std::fs;
use std::time::Duration;

use authsync_core::{Action, Client, Config, DamageKind, Now, Record};
use authsync_host::store::{FsyncPolicy, StateDir, StoreError, StoreOptions};
use serde_json::json;

fn config() -> Config {
    Config::new("app", "http://127.0.0.1:9")
        .with_seed(5)
        .with_batch_limits(3, 128 * 1024)
}

/// A client that tracked `events` events, and its records.
fn history(events: usize) -> (Client, Vec<Record>) {
    let mut client = Client::new(config(), Now::new(0, 0)).unwrap();
    let mut records = Vec::new();
    let mut drain = |client: &mut Client| {
        while let Some(action) = client.poll_action() {
            if let Action::Persist(record) = action {
                records.push(record);
            }
        }
    };
    drain(&mut client);
    for i in 0..events {
        client
            .handle_track(Now::new(i as u64, i as u64), "e", &json!({ "i": i }))
            .unwrap();
        drain(&mut client);
    }
    (client, records)
}

fn restore(recovered: authsync_host::store::Recovered) -> Client {
    Client::restore(
        config(),
        Now::new(0, 0),
        recovered.snapshot.as_ref(),
        recovered.records,
    )
    .unwrap()
}

#[test]
fn d2_records_written_are_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (client, records) = history(7);
    {
        let (mut store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(recovered.is_empty());
        for record in &records {
            store.append_one(record).unwrap();
        }
    }
    let (_store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(recovered.records, records);
    assert!(recovered.cut.is_none());
    assert_eq!(restore(recovered).snapshot(), client.snapshot());
}

#[test]
fn d2_a_torn_tail_is_cut_at_every_length_and_the_valid_prefix_recovered() {
    let (_, records) = history(4);
    let mut whole = Vec::new();
    let mut ends = Vec::new();
    for record in &records {
        record.encode(&mut whole);
        ends.push(whole.len());
    }
    for cut in 0..=whole.len() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("journal"), &whole[..cut]).unwrap();
        let (store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(recovered.records, records[..complete], "cut at {cut}");
        let valid = if complete == 0 { 0 } else { ends[complete - 1] };
        assert_eq!(store.journal_bytes(), valid as u64);
        match &recovered.cut {
            None => assert_eq!(valid, cut),
            Some(damage) => {
                assert_eq!((damage.offset, damage.remaining), (valid, cut - valid));
                assert_eq!(damage.kind, DamageKind::Truncated);
            }
        }
        drop(store);
        assert_eq!(
            fs::metadata(dir.path().join("journal")).unwrap().len(),
            valid as u64,
            "the tail is gone from disk"
        );
    }
}

#[test]
fn d2_a_damaged_frame_cuts_the_rest_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_, records) = history(3);
    let mut bytes = Vec::new();
    for record in &records {
        record.encode(&mut bytes);
    }
    let mut first = Vec::new();
    records[0].encode(&mut first);
    let flip = first.len() + 10;
    bytes[flip] ^= 0x40;
    fs::write(dir.path().join("journal"), &bytes).unwrap();
    let (_store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(recovered.records, records[..1]);
    let cut = recovered.cut.unwrap();
    assert_eq!(cut.kind, DamageKind::Checksum);
    assert_eq!(cut.offset, first.len());
}

#[test]
fn d2_a_second_client_on_the_same_directory_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, _) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    match StateDir::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::Locked { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = StateDir::open(dir.path(), StoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("in use by another client"), "{message}");
}

#[cfg(unix)]
#[test]
fn d2_files_holding_tokens_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (mut store, _) = StateDir::open(&state, StoreOptions::default()).unwrap();
    let (client, records) = history(2);
    store.append(&records).unwrap();
    store.compact(&client.snapshot()).unwrap();
    let mode = |name: &str| fs::metadata(state.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for file in ["journal", "snapshot", "lock"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[test]
fn d2_a_journal_left_world_readable_is_made_private_again() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    fs::write(&journal, b"").unwrap();
    fs::set_permissions(&journal, fs::Permissions::from_mode(0o644)).unwrap();
    let _store = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        fs::metadata(&journal).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn d2_compaction_keeps_the_state_and_empties_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (client, records) = history(10);
    let (mut store, _) = StateDir::open(
        dir.path(),
        StoreOptions {
            compact_after_bytes: 100,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.append(&records).unwrap();
    assert!(store.wants_compaction());
    store.compact(&client.snapshot()).unwrap();
    assert_eq!(store.journal_bytes(), 0);
    assert!(!store.wants_compaction());
    drop(store);
    let (_store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(recovered.records.is_empty());
    assert_eq!(restore(recovered).snapshot(), client.snapshot());
}

#[test]
fn d2_compaction_waits_for_a_quarter_of_the_snapshot_so_large_queues_stay_linear() {
    let dir = tempfile::tempdir().unwrap();
    let (client, records) = history(2_000);
    let snapshot = client.snapshot();
    let quarter = snapshot.as_bytes().len() as u64 / 4;
    let options = StoreOptions {
        compact_after_bytes: 100,
        ..StoreOptions::default()
    };
    let (mut store, _) = StateDir::open(dir.path(), options).unwrap();
    store.compact(&snapshot).unwrap();
    let mut appended = 0;
    while store.journal_bytes() <= quarter {
        assert!(
            !store.wants_compaction(),
            "{} journal bytes, past the fixed threshold but under a quarter of the snapshot",
            store.journal_bytes()
        );
        store.append(&records[appended..=appended]).unwrap();
        appended += 1;
    }
    assert!(store.wants_compaction());
    drop(store);
    // Reopened, the threshold comes from the snapshot on disk.
    let (store, _) = StateDir::open(dir.path(), options).unwrap();
    assert!(store.wants_compaction());
}

#[test]
fn d2_a_crash_between_snapshot_and_journal_truncation_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let (client, records) = history(10);
    // The snapshot was renamed into place, the journal not yet emptied, and a stale
    // temporary snapshot lies around.
    fs::write(dir.path().join("snapshot"), client.snapshot().as_bytes()).unwrap();
    fs::write(dir.path().join("snapshot.tmp"), b"half a snapshot").unwrap();
    let mut bytes = Vec::new();
    for record in &records {
        record.encode(&mut bytes);
    }
    fs::write(dir.path().join("journal"), &bytes).unwrap();
    let (_store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(!dir.path().join("snapshot.tmp").exists());
    assert_eq!(restore(recovered).snapshot(), client.snapshot());
}

#[test]
fn d2_a_damaged_snapshot_is_an_error_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("snapshot"), b"ASNP garbage").unwrap();
    let error = StateDir::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Snapshot { .. }), "{error:?}");
    assert_eq!(
        fs::read(dir.path().join("snapshot")).unwrap(),
        b"ASNP garbage"
    );
}

#[test]
fn d2_a_snapshot_read_in_pieces_is_checked_whole() {
    // Large enough to be read and checksummed in several pieces.
    let (client, _) = history(10_000);
    let snapshot = client.snapshot();
    assert!(snapshot.as_bytes().len() > 256 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    store.compact(&snapshot).unwrap();
    drop(store);
    let (store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(restore(recovered).snapshot(), snapshot);
    drop(store);

    let path = dir.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let error = StateDir::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        error.to_string().contains("checksum"),
        "a flipped bit in the last piece is caught: {error}"
    );
}

#[test]
fn fsync_policies_schedule_syncs() {
    let (_, records) = history(1);
    let dir = tempfile::tempdir().unwrap();
    let every = StoreOptions {
        fsync: FsyncPolicy::Every(Duration::from_secs(3600)),
        ..StoreOptions::default()
    };
    let (mut store, _) = StateDir::open(dir.path(), every).unwrap();
    assert_eq!(store.sync_due_at(), None);
    store.append(&records).unwrap();
    assert!(
        store.sync_due_at().is_some(),
        "an append waits for its sync"
    );
    store.sync().unwrap();
    assert_eq!(store.sync_due_at(), None);
    drop(store);

    for fsync in [FsyncPolicy::Always, FsyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = StateDir::open(
            dir.path(),
            StoreOptions {
                fsync,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store.append(&records).unwrap();
        assert_eq!(store.sync_due_at(), None, "{fsync:?} never waits");
    }
}
