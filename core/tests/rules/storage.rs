//! D4 (storage failure), D5 (damage found at open), and the order of a close: the
//! store as an input of the core, failing and coming back.

use authsync_core::{
    Client, FsyncPolicy, Now, PreviousRun, Storage, StoragePolicy, StoredSegment, StoredState,
    Unstored, WakeReason,
};
use bytes::Bytes;

use crate::support::*;

fn storage_notices(seen: &[Seen]) -> Vec<&str> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Storage(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn d4_a_failed_write_is_never_acted_on_and_the_store_heals_by_a_full_rewrite() {
    let mut h = Harness::new(config().with_batch_limits(1, 128 * 1024));
    let owner = anon(&h.client);
    h.write_failure = Some((disk_full(), 7));
    // The event's record (and its batch's seal) cannot be written: no request.
    let seen = h.track("lost-for-now");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        storage_notices(&seen)[0].contains("no space left"),
        "{seen:?}"
    );
    assert!(h.requests.is_empty(), "D4: nothing depending on it leaves");
    assert_eq!(h.client.unstored(), Some(Unstored { from_lsn: 2 }));
    // Nothing more is appended after the torn frame, and nothing spins.
    let torn = h.store.journal().len();
    assert_eq!(h.track("also-unstored"), vec![]);
    assert_eq!(h.store.journal().len(), torn);
    let wakeup = h.client.poll_timeout().unwrap();
    assert_eq!(wakeup.reason, WakeReason::StorageRetry);
    assert_eq!(wakeup.at_mono_ms, h.now.mono_ms + 200);
    // Still full at the retry: the rewrite fails too, and the next wait doubles.
    h.write_failure = None;
    h.disk_failure = Some(disk_full());
    let seen = h.advance(200);
    assert_eq!(seen[0], Seen::Compacted);
    assert_eq!(
        h.client.poll_timeout().unwrap().at_mono_ms,
        h.now.mono_ms + 400
    );
    // The disk comes back: the whole state is rewritten, the torn segment dropped,
    // and the held batches go, in order, without a restart.
    h.disk_failure = None;
    let seen = h.advance(400);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.contains(&Seen::Compacted));
    assert!(seen.contains(&Seen::Storage(
        "storage works again; everything is stored".into()
    )));
    assert!(seen.contains(&send(h.batch_id(1), owner, 1, None)));
    assert_eq!(h.client.unstored(), None);
    h.ok();
    assert_eq!(h.client.outlook().next_send_mono_ms, Some(h.now.mono_ms));
    // A restart finds everything: the rewrite holds both events.
    let restarted = h.restored();
    assert_eq!(restarted.totals().tracked, 2);
    assert_eq!(restarted.totals().acked, 1);
}

#[test]
fn d4_batches_already_stored_keep_being_sent_while_the_disk_is_full() {
    let mut h = Harness::new(config().with_batch_limits(1, 128 * 1024));
    let owner = anon(&h.client);
    h.track("stored-1");
    h.track("stored-2");
    assert_eq!(h.requests.len(), 1);
    h.write_failure = Some((disk_full(), 0));
    // The 200's records cannot be written: the ack is not told yet, but the next
    // stored batch still goes.
    let seen = h.ok();
    assert!(
        seen.contains(&send(h.batch_id(2), owner, 1, None)),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Acked { .. })),
        "an ack is told once it is stored: {seen:?}"
    );
    h.write_failure = None;
    let seen = h.advance(200);
    assert!(seen.contains(&acked(h.batch_id(1), 1)), "{seen:?}");
}

#[test]
fn d4_a_failed_sync_distrusts_what_was_written_and_rewrites_it() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Every(std::time::Duration::from_millis(100)),
        ..StoragePolicy::default()
    };
    let mut h = Harness::new(config().with_storage(Storage::Durable(policy)));
    h.track("e");
    h.disk_failure = Some(authsync_core::StorageFailure {
        kind: authsync_core::StorageFailureKind::Io,
        message: "Input/output error (os error 5)".into(),
    });
    let seen = h.advance(100);
    assert!(storage_notices(&seen)[0].contains("I/O error"), "{seen:?}");
    assert!(h.client.is_storage_broken());
    // A flush seals the batch, but it does not leave before it is stored again.
    h.flush();
    assert!(h.requests.is_empty());
    h.disk_failure = None;
    let seen = h.advance(200);
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Send { .. })),
        "{seen:?}"
    );
}

#[test]
fn d4_a_request_waits_for_its_batch_to_be_synced_and_asks_for_the_sync() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Every(std::time::Duration::from_secs(60)),
        ..StoragePolicy::default()
    };
    let mut h = Harness::new(config().with_storage(Storage::Durable(policy)));
    h.track("e");
    // The seal is written; the send asks for a sync at once instead of waiting 60 s.
    let owner = anon(&h.client);
    assert_eq!(h.flush(), vec![send(h.batch_id(1), owner, 1, None)]);
}

#[test]
fn d4_a_failed_compaction_leaves_the_journal_and_is_tried_again() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Always,
        compact_after_bytes: 2_000,
    };
    let mut h = Harness::new(
        config()
            .with_storage(Storage::Durable(policy))
            .with_batch_limits(100, 128 * 1024),
    );
    h.disk_failure = Some(disk_full());
    let seen = h.track_n(30);
    assert!(seen.contains(&Seen::Compacted), "{seen:?}");
    assert!(
        storage_notices(&seen)[0].contains("compaction failed"),
        "{seen:?}"
    );
    assert!(!h.client.is_storage_broken(), "appends go on");
    assert_eq!(h.client.unstored(), None);
    h.disk_failure = None;
    let seen = h.advance(200);
    assert_eq!(seen, vec![Seen::Compacted]);
    assert!(h.store.snapshot.is_some());
    assert_eq!(h.restored().totals().tracked, 30);
}

#[test]
fn d4_the_close_syncs_and_finishes_once_the_request_in_flight_is_answered() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Every(std::time::Duration::from_secs(60)),
        ..StoragePolicy::default()
    };
    let mut h = Harness::new(config().with_storage(Storage::Durable(policy)));
    h.track("e");
    h.flush();
    h.track("pending");
    h.client.handle_close(h.now);
    assert_eq!(h.drain(), vec![], "the request in flight is waited for");
    let seen = h.ok();
    assert_eq!(
        seen,
        vec![acked(h.batch_id(1), 1), Seen::Finish { clean: true }],
        "no new request after a close"
    );
    assert_eq!(h.restored().totals().pending(), 1);
}

#[test]
fn d4_a_close_with_broken_storage_finishes_unclean() {
    let mut h = Harness::new(config());
    h.write_failure = Some((disk_full(), 0));
    h.track("e");
    h.client.handle_close(h.now);
    assert_eq!(h.drain(), vec![Seen::Finish { clean: false }]);
}

/// A harness with some history: anonymous events, alice's batches, acks.
fn history() -> Harness {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    h.track_n(3);
    h.ok();
    h.identify("alice");
    h.pass_token(&good_token("alice", 1), "alice");
    h.track_n(4);
    h.ok();
    h.ok();
    h.track_n(3);
    h
}

fn recover(h: &Harness, stored: StoredState) -> (Client, authsync_core::RecoveryReport) {
    Client::recover(h.config.clone(), h.now, stored).unwrap()
}

fn one_segment(bytes: Vec<u8>) -> StoredState {
    StoredState {
        segments: vec![StoredSegment {
            number: 1,
            bytes: Bytes::from(bytes),
        }],
        previous_run: PreviousRun::Clean,
        fresh_seed: 99,
        ..StoredState::default()
    }
}

#[test]
fn d5_a_flipped_byte_loses_only_its_frame_is_reported_and_ids_jump() {
    let h = history();
    let journal = h.store.journal();
    let tracked = h.client.totals().tracked;
    // The last event's frame ends the journal; flip a byte of an event in the middle.
    let middle = journal.len() / 2;
    let mut damaged = journal;
    damaged[middle] ^= 0x20;
    let (client, report) = recover(&h, one_segment(damaged));
    assert!(!report.is_clean());
    assert_eq!(report.damage.len(), 1, "{report}");
    assert!(report.lost_records >= 1, "{report}");
    let kept = client.totals().tracked;
    assert!(kept + report.lost_events <= tracked, "{report}");
    assert!(
        kept >= tracked - 2,
        "loss bounded to the damaged frame: {report}"
    );
    let to = report.ids_advanced_to.expect("ids jump");
    assert_eq!(to, 1 << 32);
    // New events get seqs and batch ids no install has used.
    let mut after = Harness::around_client(client, h.config.clone(), h.now);
    let seen = after.drain();
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Storage(text) if text.contains("bytes unreadable"))),
        "{seen:?}"
    );
    after.track("new");
    after.client.handle_flush(after.now);
    after.drain();
    while after.client.outlook().in_flight {
        after.ok();
    }
    let carrying_new = after
        .requests
        .iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("\"name\":\"new\""))
        .expect("the new event was sent");
    let body: serde_json::Value = serde_json::from_slice(&carrying_new.body).unwrap();
    let new_event = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "new")
        .unwrap();
    assert_eq!(new_event["seq"].as_u64(), Some(to));
    let number: u64 = carrying_new
        .batch_id
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(number >= to, "{}", carrying_new.batch_id);
}

#[test]
fn d5_every_byte_flipped_and_every_cut_is_survived_reported_and_never_reuses_an_id() {
    let h = history();
    let journal = h.store.journal();
    let state = state_bytes(&h.client);
    let high_seq = h.client.totals().tracked;
    let mut campaigns = 0;
    let variants = (0..journal.len())
        .map(|at| {
            let mut damaged = journal.clone();
            damaged[at] ^= 0x5a;
            damaged
        })
        .chain((0..journal.len()).map(|cut| journal[..cut].to_vec()));
    for damaged in variants {
        campaigns += 1;
        let (client, report) = recover(&h, one_segment(damaged.clone()));
        if damaged == journal {
            continue;
        }
        if report.is_clean() {
            // A cut at a frame boundary loses whole records without damage: only
            // the tail, which a crash may take (the calls it held had not returned).
            assert!(journal.starts_with(&damaged));
            continue;
        }
        assert_ne!(state_bytes(&client), state, "damage is never silent");
        let totals = client.totals();
        assert_eq!(
            totals.tracked,
            totals.acked + totals.dropped + totals.pending(),
            "D1"
        );
        if !report.started_over {
            let to = report.ids_advanced_to.expect("ids jump after damage");
            assert!(to > high_seq);
        }
    }
    assert_eq!(campaigns, 2 * journal.len());
    println!(
        "damaged journals tried: {campaigns} ({} byte flips, {} cuts)",
        journal.len(),
        journal.len()
    );
}

#[test]
fn d5_a_torn_tail_is_cut_and_reported() {
    let h = history();
    let journal = h.store.journal();
    let (client, report) = recover(&h, one_segment(journal[..journal.len() - 3].to_vec()));
    assert_eq!(report.damage.len(), 1);
    assert!(report.damage[0].1.at_end);
    assert_eq!(client.totals().tracked, h.client.totals().tracked - 1);
}

#[test]
fn d5_a_damaged_snapshot_without_the_install_record_starts_a_new_install() {
    let mut h = history();
    h.store.snapshot = Some(h.client.snapshot().as_bytes().to_vec());
    h.store.segments.clear();
    let mut damaged = h.store.snapshot.clone().unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    h.store.snapshot = Some(damaged);
    let stored = h.store.stored();
    let (client, report) = recover(&h, stored);
    assert!(report.started_over && report.loss_unknown, "{report}");
    assert_ne!(client.install_id(), h.client.install_id(), "a fresh seed");
    assert_eq!(client.totals().tracked, 0);
}

#[test]
fn d5_segments_a_snapshot_covers_are_skipped_even_when_damaged() {
    let mut h = history();
    let snapshot = h.client.snapshot();
    let first_segment = snapshot.first_segment();
    h.store.snapshot = Some(snapshot.as_bytes().to_vec());
    // An older segment, left by a compaction interrupted before it removed it, with
    // a torn tail: nothing is lost.
    let mut stale = h.store.journal();
    stale.truncate(stale.len() - 5);
    h.store.segments.clear();
    h.store.segments.insert(first_segment - 1, stale);
    let (client, report) = recover(&h, h.store.stored());
    assert!(report.is_clean(), "{report}");
    assert_eq!(state_bytes(&client), state_bytes(&h.client));
}

#[test]
fn d5_a_run_that_did_not_close_with_a_periodic_fsync_reports_its_window() {
    let h = history();
    let mut stored = one_segment(h.store.journal());
    stored.previous_run =
        PreviousRun::Unclean(FsyncPolicy::Every(std::time::Duration::from_millis(100)));
    let (client, report) = recover(&h, stored);
    assert_eq!(report.unsynced_window_ms, Some(100));
    assert!(report.to_string().contains("last 100 ms"), "{report}");
    assert_eq!(
        report.ids_advanced_to, None,
        "nothing sent can have been lost"
    );
    assert_eq!(state_bytes(&client), state_bytes(&h.client));
    let mut clean = one_segment(h.store.journal());
    clean.previous_run = PreviousRun::Unclean(FsyncPolicy::Always);
    assert!(recover(&h, clean).1.is_clean());
}

#[test]
fn d5_an_empty_store_is_a_new_install_and_nothing_to_report() {
    let h = Harness::new(config());
    let (client, report) = recover(&h, StoredState::default());
    assert!(report.is_clean());
    assert_eq!(client.totals().tracked, 0);
    let _ = Now::new(0, 0);
}

#[test]
fn d5_after_damage_new_events_are_sent_with_a_periodic_fsync() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Every(std::time::Duration::from_millis(100)),
        ..StoragePolicy::default()
    };
    let mut h = Harness::new(config().with_storage(Storage::Durable(policy)));
    for i in 0..10 {
        h.track(&format!("e{i}"));
    }
    h.flush();
    h.ok();
    h.advance(100);
    let mut journal = h.store.journal();
    let middle = journal.len() / 2;
    journal[middle] ^= 0x55;
    let (client, report) = recover(&h, one_segment(journal));
    assert!(!report.is_clean());
    let mut after = Harness::around_client(client, h.config.clone(), h.now);
    after.drain();
    for i in 0..5 {
        after.track(&format!("after{i}"));
    }
    let seen = after.flush();
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Send { events: 5, .. })),
        "{seen:?}"
    );
}

#[test]
fn d4_a_seal_written_while_a_sync_is_out_gets_a_sync_of_its_own() {
    use authsync_core::Step;
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Every(std::time::Duration::from_millis(100)),
        ..StoragePolicy::default()
    };
    let config = config().with_storage(Storage::Durable(policy));
    let mut client = Client::new(config, Now::new(0, 0)).unwrap();
    let write = |client: &mut Client, now: Now| {
        while let Some(job) = client.poll_write() {
            client.handle_written(now, job.id, Ok(())).unwrap();
        }
    };
    write(&mut client, Now::new(0, 0));
    let _ = client
        .handle_track(Now::new(0, 0), "e", &serde_json::json!({}))
        .unwrap();
    write(&mut client, Now::new(0, 0));
    client.handle_timeout(Now::new(100, 100));
    let Some(Step::Sync(out)) = client.poll_step() else {
        panic!("the periodic sync")
    };
    // The app flushes while that sync is out.
    client.handle_flush(Now::new(101, 101));
    write(&mut client, Now::new(101, 101));
    assert!(client.poll_step().is_none(), "one sync at a time");
    client
        .handle_synced(Now::new(102, 102), out.id, Ok(()))
        .unwrap();
    let Some(Step::Sync(next)) = client.poll_step() else {
        panic!("a sync for the seal")
    };
    client
        .handle_synced(Now::new(103, 103), next.id, Ok(()))
        .unwrap();
    assert!(matches!(client.poll_step(), Some(Step::Send(_))));
}

#[test]
fn d2_after_a_compaction_removed_every_segment_a_restart_writes_where_the_snapshot_looks() {
    let policy = StoragePolicy {
        fsync: FsyncPolicy::Always,
        compact_after_bytes: 300,
    };
    let mut h = Harness::new(
        config()
            .with_storage(Storage::Durable(policy))
            .with_batch_limits(1, 128 * 1024),
    );
    h.track("e0");
    h.ok();
    h.track_n(3);
    assert!(h.store.snapshot.is_some(), "a compaction ran");
    // A compaction whose snapshot covers everything, and no segment left.
    h.store.snapshot = Some(h.client.snapshot().as_bytes().to_vec());
    let first = h.client.snapshot().first_segment();
    h.store.segments.clear();
    let mut restarted = h.restarted();
    restarted.drain();
    restarted.track("e1");
    assert!(
        restarted.store.segments.keys().all(|&n| n >= first),
        "segment {:?} is below the snapshot's first segment {first}",
        restarted.store.segments.keys().collect::<Vec<_>>()
    );
    assert!(first > 1);
    assert_eq!(
        restarted.restored().totals().tracked,
        5,
        "the new event is read back"
    );
}

/// A journal's frames, as written: length, checksum, payload.
fn frames(journal: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < journal.len() {
        let len = u32::from_le_bytes(journal[at..at + 4].try_into().unwrap()) as usize;
        frames.push(journal[at..at + 8 + len].to_vec());
        at += 8 + len;
    }
    frames
}

fn segments(parts: &[(u64, Vec<u8>)]) -> StoredState {
    StoredState {
        segments: parts
            .iter()
            .map(|(number, bytes)| StoredSegment {
                number: *number,
                bytes: Bytes::from(bytes.clone()),
            })
            .collect(),
        previous_run: PreviousRun::Clean,
        fresh_seed: 99,
        ..StoredState::default()
    }
}

#[test]
fn d5_a_missing_segment_is_a_hole_counted_exactly_and_the_records_after_it_proven() {
    let mut h = Harness::new(config().with_batch_limits(100, 128 * 1024));
    h.track_n(10);
    let frames = frames(&h.store.journal());
    // The install's records, then one frame per tracked event.
    let events_from = frames.len() - 10;
    let (before, rest) = frames.split_at(events_from + 3);
    let (missing, after) = rest.split_at(3);
    assert_eq!(missing.len(), 3);
    let stored = segments(&[(1, before.concat()), (3, after.concat())]);
    let (client, report) = recover(&h, stored);
    assert!(
        report.damage.is_empty(),
        "a missing file is no damaged byte"
    );
    assert_eq!(report.lost_records, 3, "{report}");
    assert_eq!(report.lost_events, 0, "what the hole held is unknown");
    assert!(report.lost_anything());
    assert_eq!(report.ids_advanced_to, Some(1 << 32));
    assert_eq!(
        report.to_string(),
        format!(
            "3 record(s) lost or not proven to belong; ids go on from {}, so none is used twice",
            1u64 << 32
        )
    );
    assert_eq!(
        client.totals().tracked,
        7,
        "the events after the hole are kept"
    );
    assert_eq!(client.totals().pending(), 7);
}

#[test]
fn d5_records_after_a_hole_that_cannot_prove_their_owner_are_lost_and_counted() {
    let mut h = Harness::new(config().with_batch_limits(100, 128 * 1024));
    h.track("anonymous");
    let before_identify = frames(&h.store.journal()).len();
    h.identify("alice");
    let identified = frames(&h.store.journal()).len();
    h.track("alice-1");
    h.track("alice-2");
    let frames = frames(&h.store.journal());
    // alice's identify is gone: her events' owner tags prove nothing.
    let stored = segments(&[
        (1, frames[..before_identify].concat()),
        (3, frames[identified..].concat()),
    ]);
    let hole = (identified - before_identify) as u64;
    let (client, report) = recover(&h, stored);
    assert!(report.damage.is_empty());
    assert_eq!(report.lost_records, hole + 2, "{report}");
    assert_eq!(report.lost_events, 2, "{report}");
    assert_eq!(report.lost_seqs, Some(2..=3), "{report}");
    assert!(
        report.to_string().starts_with(&format!(
            "{} record(s) lost or not proven to belong, 2 of them tracked events (seqs 2..=3)",
            hole + 2
        )),
        "{report}"
    );
    assert_eq!(report.ids_advanced_to, Some(1 << 32));
    assert_eq!(client.totals().tracked, 1);
}

#[test]
fn d5_a_second_recovery_jumps_above_the_first() {
    let h = history();
    let mut journal = h.store.journal();
    let middle = journal.len() / 2;
    journal[middle] ^= 0x20;
    let (client, report) = recover(&h, one_segment(journal));
    assert_eq!(report.ids_advanced_to, Some(1 << 32));
    let mut after = Harness::around_client(client, h.config.clone(), h.now);
    after.drain();
    after.track_n(3);
    assert!(
        after.store.snapshot.is_some(),
        "the damage was rewritten away"
    );
    let last = *after.store.segments.keys().last().unwrap();
    let segment = after.store.segments.get_mut(&last).unwrap();
    let at = segment.len() / 2;
    segment[at] ^= 0x20;
    let (_, second) = recover(&after, after.store.stored());
    assert!(!second.is_clean(), "{second}");
    assert_eq!(second.ids_advanced_to, Some(2 << 32), "{second}");
}

#[test]
fn d5_appends_after_a_recovery_go_to_a_segment_of_their_own() {
    let mut h = Harness::new(config().with_batch_limits(100, 128 * 1024));
    h.track_n(6);
    let frames = frames(&h.store.journal());
    let half = frames.len() / 2;
    let stored = segments(&[(1, frames[..half].concat()), (2, frames[half..].concat())]);
    let (mut client, report) = recover(&h, stored);
    assert!(report.is_clean(), "{report}");
    client
        .handle_track(h.now, "next", &serde_json::json!({}))
        .unwrap();
    assert_eq!(client.poll_write().expect("the track's record").segment, 3);
}

/// `frame` with its event's seq replaced by `seq`, its length and checksum made right
/// again: a frame no store of this build writes, but a hostile one could.
fn with_seq(frame: &[u8], seq: u64) -> Vec<u8> {
    let payload = &frame[8..];
    let key = b"{\"seq\":";
    let at = payload
        .windows(key.len())
        .position(|w| w == key)
        .expect("an event frame")
        + key.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let mut edited = payload[..at].to_vec();
    edited.extend_from_slice(seq.to_string().as_bytes());
    edited.extend_from_slice(&payload[at + digits..]);
    let mut out = (edited.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&edited).to_le_bytes());
    out.extend_from_slice(&edited);
    out
}

#[test]
fn d5_a_frame_holding_an_id_past_any_a_store_can_issue_is_damage() {
    let mut h = Harness::new(config().with_batch_limits(100, 128 * 1024));
    h.track_n(3);
    let mut frames = frames(&h.store.journal());
    let last = frames.len() - 1;
    frames[last] = with_seq(&frames[last], 1 << 62);
    let (client, report) = recover(&h, one_segment(frames.concat()));
    assert_eq!(report.damage.len(), 1, "{report}");
    assert_eq!(
        report.damage[0].1.kind,
        authsync_core::DamageKind::Undecodable
    );
    assert_eq!(client.totals().tracked, 2);
    assert_eq!(
        report.ids_advanced_to,
        Some(1 << 32),
        "ids stay far from overflowing: {report}"
    );
    // Just below the ceiling is a seq like any other.
    let mut frames = self::frames(&h.store.journal());
    frames[last] = with_seq(&frames[last], (1 << 62) - 1);
    let (client, report) = recover(&h, one_segment(frames.concat()));
    assert!(report.damage.is_empty(), "{report}");
    assert_eq!(client.totals().tracked, 3);
}

#[test]
fn d2_an_event_of_the_largest_size_is_written_and_read_back() {
    let mut h = Harness::new(config().with_batch_limits(100, 512 * 1024));
    let large = "x".repeat(authsync_core::MAX_ATTRIBUTES_BYTES - 64);
    h.client
        .handle_track(h.now, "large", &serde_json::json!({ "blob": large }))
        .unwrap();
    h.drain();
    let (client, report) = recover(&h, one_segment(h.store.journal()));
    assert!(report.is_clean(), "{report}");
    assert_eq!(client.totals().tracked, 1);
}

#[test]
fn d5_a_snapshot_read_in_pieces_of_any_size_verifies() {
    let mut h = history();
    h.client.handle_flush(h.now);
    let snapshot = h.client.snapshot();
    let bytes = snapshot.as_bytes();
    for size in 1..=16 {
        let mut verifier = authsync_core::SnapshotVerifier::new();
        for piece in bytes.chunks(size) {
            verifier.update(piece);
        }
        let read = verifier
            .finish(bytes.to_vec())
            .unwrap_or_else(|e| panic!("pieces of {size}: {e}"));
        assert_eq!(read, snapshot, "pieces of {size}");
    }
}

#[test]
fn d5_a_report_says_something_was_lost_for_each_kind_of_loss() {
    use authsync_core::RecoveryReport;
    assert!(!RecoveryReport::default().lost_anything());
    let counted = RecoveryReport {
        lost_records: 1,
        ..RecoveryReport::default()
    };
    let unknown = RecoveryReport {
        loss_unknown: true,
        ..RecoveryReport::default()
    };
    let new_install = RecoveryReport {
        started_over: true,
        ..RecoveryReport::default()
    };
    for report in [counted, unknown, new_install] {
        assert!(report.lost_anything(), "{report}");
    }
    let window = RecoveryReport {
        unsynced_window_ms: Some(100),
        ..RecoveryReport::default()
    };
    assert!(!window.lost_anything(), "a window is a risk, not a loss");
}
