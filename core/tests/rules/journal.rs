//! The journal's pipeline as a host sees it (D2, D4): which job is out, when a sync
//! or a compaction is due, what a failure says and how it heals. Driven on a bare
//! client, job by job.

use std::time::Duration;

use authsync_core::{
    Client, CompactJob, Config, Event, FsyncPolicy, Now, Step, Storage, StorageNotice,
    StoragePolicy, StoredSegment, StoredState, SyncJob, UnknownJob, WakeReason, WriteJob,
};
use serde_json::json;

use crate::support::{T0_UNIX_MS, config, disk_full};

fn at(mono_ms: u64) -> Now {
    Now::new(mono_ms, T0_UNIX_MS + mono_ms)
}

fn durable(fsync: FsyncPolicy, compact_after_bytes: u64) -> Config {
    let policy = StoragePolicy {
        fsync,
        compact_after_bytes,
    };
    config()
        .with_storage(Storage::Durable(policy))
        .with_batch_limits(1_000, 512 * 1024)
}

fn client_with(fsync: FsyncPolicy, compact_after_bytes: u64) -> Client {
    let mut client = Client::new(durable(fsync, compact_after_bytes), at(0)).expect("valid config");
    confirm_writes(&mut client, at(0));
    client
}

fn confirm_writes(client: &mut Client, now: Now) -> u64 {
    let mut bytes = 0;
    while let Some(job) = client.poll_write() {
        bytes += job.frames.len() as u64;
        client.handle_written(now, job.id, Ok(())).unwrap();
    }
    bytes
}

fn track(client: &mut Client, now: Now) -> WriteJob {
    client
        .handle_track(now, "e", &json!({"pad": "x".repeat(40)}))
        .unwrap();
    client.poll_write().expect("the track's record")
}

/// A client whose first track took its journal past a 100-byte threshold, with the
/// compaction that followed out with the host.
fn compaction_out(fsync: FsyncPolicy) -> (Client, CompactJob) {
    let mut client = client_with(fsync, 100);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    let Some(Step::Compact(compaction)) = client.poll_step() else {
        panic!("past 100 bytes");
    };
    (client, compaction)
}

fn storage_failures(client: &mut Client) -> Vec<u64> {
    std::iter::from_fn(|| client.poll_event())
        .filter_map(|event| match event {
            Event::Storage(StorageNotice::Failed { from_lsn, .. }) => Some(from_lsn),
            _ => None,
        })
        .collect()
}

#[test]
fn d4_a_confirmation_for_a_job_that_is_not_out_is_refused() {
    let now = at(0);
    let mut client = client_with(FsyncPolicy::Always, u64::MAX);
    let first = track(&mut client, now);
    assert!(
        first.sync,
        "fsync always: the host syncs before it confirms"
    );
    client.handle_written(now, first.id, Ok(())).unwrap();
    let second = track(&mut client, now);
    assert_ne!(first.id, second.id);
    assert_eq!(
        client.handle_written(now, first.id, Ok(())),
        Err(UnknownJob),
        "a stale confirmation"
    );
    assert!(
        client.written_lsn() < client.lsn(),
        "the second is still out"
    );
    client.handle_written(now, second.id, Ok(())).unwrap();
    assert_eq!(client.written_lsn(), client.lsn());

    let mut periodic = client_with(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX);
    assert!(
        !track(&mut periodic, now).sync,
        "a periodic sync comes as a step"
    );
}

#[test]
fn d2_a_compaction_is_due_once_the_journal_outgrows_its_threshold() {
    let mut client = client_with(FsyncPolicy::Never, 2_000);
    let mut journal = 0;
    loop {
        let now = at(journal);
        let job = track(&mut client, now);
        journal += job.frames.len() as u64;
        client.handle_written(now, job.id, Ok(())).unwrap();
        let compact = matches!(client.poll_step(), Some(Step::Compact(_)));
        assert_eq!(
            compact,
            journal > 2_000,
            "{journal} bytes written (the install's records aside)"
        );
        if compact {
            break;
        }
    }
}

#[test]
fn d2_a_compaction_is_due_once_the_journal_has_too_many_segments() {
    // Four segments, as four short runs leave them: the install, then one event each.
    let mut writer = Client::new(durable(FsyncPolicy::Always, u64::MAX), at(0)).unwrap();
    let mut segments = Vec::new();
    for i in 0..4u64 {
        if i > 0 {
            writer.handle_track(at(i), "e", &json!({ "i": i })).unwrap();
        }
        let job = writer.poll_write().expect("a record to write");
        segments.push(StoredSegment {
            number: i + 1,
            bytes: job.frames.clone(),
        });
        writer.handle_written(at(i), job.id, Ok(())).unwrap();
    }
    let stored = StoredState {
        segments,
        ..StoredState::default()
    };
    let config = durable(FsyncPolicy::Always, u64::MAX);
    let (mut client, report) = Client::recover(config, at(10), stored).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(client.totals().tracked, 3);
    assert!(
        !matches!(client.poll_step(), Some(Step::Compact(_))),
        "four segments are not too many"
    );
    let job = track(&mut client, at(10));
    assert_eq!(job.segment, 5);
    client.handle_written(at(10), job.id, Ok(())).unwrap();
    assert!(
        matches!(client.poll_step(), Some(Step::Compact(_))),
        "a fifth segment is"
    );
}

#[test]
fn d4_the_compaction_job_and_write_job_say_what_they_hold() {
    let mut client = client_with(FsyncPolicy::Never, 1);
    let job = track(&mut client, at(0));
    let text = format!("{job:?}");
    assert!(
        text.starts_with("WriteJob {") && text.contains(&format!("segment: {}", job.segment)),
        "{text}"
    );
    assert!(
        text.contains(&format!("bytes: {}", job.frames.len())),
        "{text}"
    );
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    let Some(Step::Compact(compaction)) = client.poll_step() else {
        panic!("past its threshold of one byte");
    };
    assert_eq!(compaction.lsn(), client.lsn());
    let text = format!("{compaction:?}");
    assert!(
        text.contains(&format!("lsn: {}", client.lsn())) && text.starts_with("CompactJob {"),
        "{text}"
    );
}

#[test]
fn d4_a_failure_names_the_first_record_not_stored_and_backs_off_longer_each_time() {
    let mut client = client_with(FsyncPolicy::Always, u64::MAX);
    let stored = client.written_lsn();
    let job = track(&mut client, at(0));
    client
        .handle_written(at(0), job.id, Err(disk_full()))
        .unwrap();
    assert_eq!(storage_failures(&mut client), vec![stored + 1]);
    let mut now = 0;
    for delay in [200, 400, 800] {
        let wakeup = client.poll_timeout().expect("a retry");
        assert_eq!(wakeup.reason, WakeReason::StorageRetry);
        assert_eq!(wakeup.at_mono_ms, now + delay);
        now += delay;
        client.handle_timeout(at(now));
        let Some(Step::Compact(heal)) = client.poll_step() else {
            panic!("the heal is due");
        };
        client
            .handle_compacted(at(now), heal.id, Err(disk_full()))
            .unwrap();
        let _ = storage_failures(&mut client);
    }
}

#[test]
fn d4_a_compaction_that_ends_while_storage_is_broken_does_not_heal_it() {
    let mut client = client_with(FsyncPolicy::Always, 1);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    let Some(Step::Compact(compaction)) = client.poll_step() else {
        panic!("past its threshold");
    };
    // A write fails while the (ordinary) compaction runs.
    let job = track(&mut client, at(1));
    client
        .handle_written(at(1), job.id, Err(disk_full()))
        .unwrap();
    assert!(client.is_storage_broken());
    client
        .handle_compacted(at(2), compaction.id, Ok(100))
        .unwrap();
    assert!(
        client.is_storage_broken(),
        "its snapshot predates the failed record"
    );
    assert!(client.unstored().is_some());
    let told: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(
        !told.contains(&Event::Storage(StorageNotice::Resumed)),
        "{told:?}"
    );
}

/// A client whose write failed at 100 ms while the sync of what was written before
/// (at 0 ms, the period being 100 ms) is still out; its heal is due at 300 ms.
fn broken_while_a_sync_is_out() -> (Client, SyncJob) {
    let mut client = client_with(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    client.handle_timeout(at(100));
    let Some(Step::Sync(sync)) = client.poll_step() else {
        panic!("the period is over");
    };
    let job = track(&mut client, at(100));
    client
        .handle_written(at(100), job.id, Err(disk_full()))
        .unwrap();
    (client, sync)
}

#[test]
fn d4_the_heal_waits_for_a_sync_still_out() {
    let (mut client, sync) = broken_while_a_sync_is_out();
    client.handle_timeout(at(300));
    assert!(
        client.poll_step().is_none(),
        "no rewrite while a sync of the old files is out"
    );
    // The heal is due at 300 but waits for that sync: a wake-up for it now, again and
    // again, would spin until the sync's confirmation comes.
    assert!(
        client.poll_timeout().is_none_or(|w| w.at_mono_ms > 300),
        "{:?}",
        client.poll_timeout()
    );
    client.handle_synced(at(300), sync.id, Ok(())).unwrap();
    assert!(matches!(client.poll_step(), Some(Step::Compact(_))));
}

#[test]
fn d2_records_written_during_a_sync_get_a_sync_of_their_own_and_nothing_else_does() {
    let mut client = client_with(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    client.handle_timeout(at(100));
    let Some(Step::Sync(sync)) = client.poll_step() else {
        panic!("the period is over");
    };
    let job = track(&mut client, at(150));
    client.handle_written(at(150), job.id, Ok(())).unwrap();
    client.handle_synced(at(160), sync.id, Ok(())).unwrap();
    let next = client.poll_timeout().expect("the later record's sync");
    assert_eq!((next.reason, next.at_mono_ms), (WakeReason::Sync, 260));
    client.handle_timeout(at(260));
    let Some(Step::Sync(sync)) = client.poll_step() else {
        panic!("the second sync");
    };
    client.handle_synced(at(270), sync.id, Ok(())).unwrap();
    assert!(
        client
            .poll_timeout()
            .is_none_or(|wakeup| wakeup.reason != WakeReason::Sync),
        "everything is synced: {:?}",
        client.poll_timeout()
    );
}

#[test]
fn d2_a_large_snapshot_raises_the_compaction_threshold_to_a_quarter_of_its_size() {
    let (mut client, compaction) = compaction_out(FsyncPolicy::Never);
    // The host reports the snapshot it wrote: 40 000 bytes.
    client
        .handle_compacted(at(1), compaction.id, Ok(40_000))
        .unwrap();
    let mut journal = 0;
    while journal <= 10_000 {
        assert!(
            !matches!(client.poll_step(), Some(Step::Compact(_))),
            "{journal} bytes: not yet a quarter of the snapshot"
        );
        let job = track(&mut client, at(2));
        journal += job.frames.len() as u64;
        client.handle_written(at(2), job.id, Ok(())).unwrap();
    }
    assert!(matches!(client.poll_step(), Some(Step::Compact(_))));
}

#[test]
fn d4_a_failed_compaction_is_tried_again_after_its_backoff_and_not_before() {
    let (mut client, compaction) = compaction_out(FsyncPolicy::Never);
    client
        .handle_compacted(at(10), compaction.id, Err(disk_full()))
        .unwrap();
    assert!(!client.is_storage_broken(), "appends go on");
    let retry = client.poll_timeout().expect("a retry");
    assert_eq!(
        (retry.reason, retry.at_mono_ms),
        (WakeReason::StorageRetry, 210)
    );
    client.handle_timeout(at(209));
    assert!(client.poll_step().is_none(), "not before its backoff");
    client.handle_timeout(at(210));
    assert!(matches!(client.poll_step(), Some(Step::Compact(_))));
}

/// Every step the client hands out now, in order.
fn steps(client: &mut Client) -> Vec<Step> {
    std::iter::from_fn(|| client.poll_step()).collect()
}

fn finished(steps: &[Step]) -> Option<bool> {
    steps.iter().find_map(|step| match step {
        Step::Finish { clean } => Some(*clean),
        _ => None,
    })
}

#[test]
fn d2_a_close_syncs_everything_written_before_it_finishes_clean() {
    let mut client = client_with(FsyncPolicy::Every(Duration::from_secs(60)), u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_close(at(10));
    let out = steps(&mut client);
    assert_eq!(finished(&out), None, "a write is out");
    let Some(Step::Sync(first)) = out.into_iter().next() else {
        panic!("the close syncs what is written (the install's records) at once");
    };
    client.handle_written(at(20), job.id, Ok(())).unwrap();
    assert!(client.poll_write().is_none());
    assert!(steps(&mut client).is_empty(), "one sync out at a time");
    client.handle_synced(at(30), first.id, Ok(())).unwrap();
    let out = steps(&mut client);
    assert_eq!(
        finished(&out),
        None,
        "the track's record is written, not synced"
    );
    let Some(Step::Sync(second)) = out.into_iter().next() else {
        panic!("the record written during the first sync gets a sync of its own");
    };
    client.handle_synced(at(40), second.id, Ok(())).unwrap();
    assert_eq!(finished(&steps(&mut client)), Some(true));
}

#[test]
fn d2_a_close_of_a_synced_store_finishes_clean_at_once_without_a_sync() {
    let mut client = client_with(FsyncPolicy::Always, u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    steps(&mut client);
    client.handle_close(at(10));
    confirm_writes(&mut client, at(10));
    let out = steps(&mut client);
    assert!(
        !out.iter().any(|s| matches!(s, Step::Sync(_))),
        "nothing to sync: {out:?}"
    );
    assert_eq!(finished(&out), Some(true));
}

#[test]
fn d2_a_close_waits_for_a_compaction_out_even_when_everything_is_synced() {
    let (mut client, compaction) = compaction_out(FsyncPolicy::Always);
    client.handle_close(at(10));
    confirm_writes(&mut client, at(10));
    assert_eq!(
        finished(&steps(&mut client)),
        None,
        "the compaction's files are still being written"
    );
    let size = compaction.snapshot().as_bytes().len() as u64;
    client
        .handle_compacted(at(20), compaction.id, Ok(size))
        .unwrap();
    assert_eq!(finished(&steps(&mut client)), Some(true));
}

#[test]
fn d4_a_close_with_broken_storage_waits_for_the_sync_still_out_then_finishes_unclean() {
    let (mut client, sync) = broken_while_a_sync_is_out();
    client.handle_close(at(110));
    assert_eq!(finished(&steps(&mut client)), None, "a sync is out");
    client.handle_synced(at(120), sync.id, Ok(())).unwrap();
    assert_eq!(
        finished(&steps(&mut client)),
        Some(false),
        "a record was never stored"
    );
}

#[test]
fn d2_a_close_of_a_memory_only_client_finishes_at_once() {
    let mut client = Client::new(config(), at(0)).expect("valid config");
    client.handle_track(at(0), "e", &json!({})).unwrap();
    confirm_writes(&mut client, at(0));
    client.handle_close(at(10));
    confirm_writes(&mut client, at(10));
    let out = steps(&mut client);
    assert!(!out.iter().any(|s| matches!(s, Step::Sync(_))), "{out:?}");
    assert_eq!(finished(&out), Some(true), "nothing to write or sync");
}

#[test]
fn d2_the_sync_period_runs_from_the_first_record_written_after_the_last_sync() {
    let mut client = client_with(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    client.handle_timeout(at(100));
    let Some(Step::Sync(sync)) = client.poll_step() else {
        panic!("the period is over");
    };
    client.handle_synced(at(110), sync.id, Ok(())).unwrap();
    let job = track(&mut client, at(160));
    client.handle_written(at(160), job.id, Ok(())).unwrap();
    let next = client.poll_timeout().expect("the new record's sync");
    assert_eq!(
        (next.reason, next.at_mono_ms),
        (WakeReason::Sync, 260),
        "a period from the record, not from the last sync"
    );
}

#[test]
fn d2_no_sync_wake_up_is_announced_while_a_sync_is_out() {
    let mut client = client_with(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX);
    let job = track(&mut client, at(0));
    client.handle_written(at(0), job.id, Ok(())).unwrap();
    // A request waits for its batch to be synced: the sync starts before the period.
    client.handle_flush(at(10));
    confirm_writes(&mut client, at(10));
    let sync = std::iter::from_fn(|| client.poll_step())
        .find_map(|step| match step {
            Step::Sync(job) => Some(job),
            _ => None,
        })
        .expect("a flush does not wait for the period");
    assert!(
        client
            .poll_timeout()
            .is_none_or(|wakeup| wakeup.reason != WakeReason::Sync),
        "its confirmation is the next input: {:?}",
        client.poll_timeout()
    );
    client.handle_synced(at(20), sync.id, Ok(())).unwrap();
    assert!(matches!(client.poll_step(), Some(Step::Send(_))));
}

#[test]
fn d5_a_recovery_report_names_only_the_losses_it_has() {
    let mut writer = Client::new(durable(FsyncPolicy::Always, u64::MAX), at(0)).unwrap();
    writer.handle_track(at(1), "e", &json!({})).unwrap();
    let mut journal = Vec::new();
    while let Some(job) = writer.poll_write() {
        journal.extend_from_slice(&job.frames);
        writer.handle_written(at(1), job.id, Ok(())).unwrap();
    }
    // A write cut short: a few bytes of a frame that never finished.
    journal.extend_from_slice(&[0x2a, 0x00, 0x00]);
    let stored = StoredState {
        segments: vec![StoredSegment {
            number: 1,
            bytes: journal.into(),
        }],
        ..StoredState::default()
    };
    let config = durable(FsyncPolicy::Always, u64::MAX);
    let (client, report) = Client::recover(config, at(10), stored).unwrap();
    assert_eq!(client.totals().tracked, 1, "every whole record is kept");
    let text = report.to_string();
    assert!(text.contains("journal.1"), "the damage is named: {text}");
    assert!(
        !text.contains("record(s) lost"),
        "no record was lost, and the report does not say one was: {text}"
    );
}

#[test]
fn d4_with_a_sync_period_a_batch_sealed_by_its_size_waits_for_the_periods_fsync() {
    let config = durable(FsyncPolicy::Every(Duration::from_millis(100)), u64::MAX)
        .with_batch_limits(2, 512 * 1024);
    let mut client = Client::new(config, at(0)).unwrap();
    confirm_writes(&mut client, at(0));
    for ms in [10, 20] {
        client.handle_track(at(ms), "e", &json!({})).unwrap();
        confirm_writes(&mut client, at(ms));
    }
    // Sealed at 20 ms by its size: tracking fast must not cost an fsync per batch.
    let out: Vec<Step> = std::iter::from_fn(|| client.poll_step()).collect();
    assert!(
        out.is_empty(),
        "no sync before the period, no send: {out:?}"
    );
    let wake = client.poll_timeout().expect("the period's sync");
    assert_eq!(wake.reason, WakeReason::Sync);
    client.handle_timeout(at(wake.at_mono_ms));
    let Some(Step::Sync(sync)) = client.poll_step() else {
        panic!("the period is over");
    };
    assert!(
        client.poll_step().is_none(),
        "nothing is sent before the sync"
    );
    client
        .handle_synced(at(wake.at_mono_ms), sync.id, Ok(()))
        .unwrap();
    let Some(Step::Send(request)) = client.poll_step() else {
        panic!("synced: the batch goes");
    };
    assert_eq!(request.events, 2);
}

#[test]
fn s1_a_write_confirmed_after_the_flush_interval_seals_the_batch_it_waited_in() {
    // A confirmation is an input like any other: time it brings runs the timers,
    // even when nothing waits for the record it confirms.
    let config = durable(FsyncPolicy::Never, u64::MAX).with_flush_interval(Duration::from_secs(1));
    let mut client = Client::new(config, at(0)).unwrap();
    confirm_writes(&mut client, at(0));
    let job = track(&mut client, at(10));
    assert!(client.poll_step().is_none(), "the batch is open");
    client.handle_written(at(1_500), job.id, Ok(())).unwrap();
    confirm_writes(&mut client, at(1_500));
    assert!(
        matches!(client.poll_step(), Some(Step::Send(_))),
        "sealed by its interval at the confirmation's time, and sent"
    );
}

#[test]
fn t3_a_lent_write_shows_its_length_not_its_bytes() {
    let mut client = client_with(FsyncPolicy::Always, u64::MAX);
    client
        .handle_track(at(1), "e", &json!({"pin": "4921"}))
        .unwrap();
    let mut shown = String::new();
    assert!(client.write_pending(at(1), |write| {
        shown = format!("{write:?}");
        assert!(write.sync, "fsync always: the write syncs");
        Ok(())
    }));
    assert!(
        shown.contains("bytes") && !shown.contains("4921"),
        "{shown}"
    );
}
