//! D1, D2, D3, DT1, DT2, R1, and time going backwards.

use authsync_core::{Client, Now, RestoreError, WakeReason};
use serde_json::json;

use crate::support::*;

/// A session that goes through most rules: tokens, a rejection, a backoff, a split,
/// a logout and a lockout.
fn eventful(h: &mut Harness) {
    let token = good_token("alice", 1);
    h.track_n(3);
    h.identify("alice");
    h.pass_token(&token, "alice");
    h.track_n(4);
    h.flush();
    h.respond(503, &[("retry-after", "2")], "");
    h.advance(2_000);
    h.respond(413, &[], "");
    h.unauthorized("INVALID_SIGNATURE");
    h.track_n(2);
    h.pass_token(&good_token("alice", 2), "alice");
    h.ok();
    h.ok();
    h.respond(400, &[], "");
}

#[test]
fn d1_every_event_is_acked_dropped_or_pending_and_drops_are_reported() {
    let mut h = Harness::new(
        jwt_config()
            .with_batch_limits(2, 128 * 1024)
            .with_max_pending_events(6),
    );
    let mut reported_drops = 0;
    let mut acked = 0;
    let mut check = |seen: Vec<Seen>, h: &Harness| {
        for s in seen {
            match s {
                Seen::Dropped { events, .. } => reported_drops += events,
                Seen::Acked { events, .. } => acked += events as u64,
                _ => {}
            }
        }
        let totals = h.client.totals();
        assert_eq!(
            totals.tracked,
            totals.acked + totals.dropped + totals.pending()
        );
        assert_eq!(
            totals.dropped, reported_drops,
            "every drop has a drop action"
        );
        assert_eq!(totals.acked, acked, "every ack has an ack action, once");
    };
    let seen = h.track_n(9);
    check(seen, &h);
    let seen = h.ok();
    check(seen, &h);
    h.identify("alice");
    let seen = h.track_n(3);
    check(seen, &h);
    let seen = h.logout();
    check(seen, &h);
    let seen = h.respond(413, &[], "");
    check(seen, &h);
    let seen = h.respond(422, &[], "");
    check(seen, &h);
    assert!(reported_drops > 0 && acked > 0);
}

#[test]
fn d2_restore_from_the_journal_reproduces_the_state_exactly() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    eventful(&mut h);
    let restored = h.restored();
    assert_eq!(state_bytes(&restored), state_bytes(&h.client));
    assert_eq!(restored.totals(), h.client.totals());
    assert_eq!(restored.current_user(), h.client.current_user());
    assert_eq!(restored.auth_failures(), h.client.auth_failures());
}

#[test]
fn d2_snapshot_plus_later_records_reproduces_the_state_and_skips_what_it_includes() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    h.track_n(3);
    let snapshot = h.client.snapshot();
    eventful(&mut h);
    // Records the snapshot already holds are read again, as after a crash between
    // writing a snapshot and removing the segments it covers.
    h.store.snapshot = Some(snapshot.as_bytes().to_vec());
    let restored = h.restored();
    assert_eq!(state_bytes(&restored), state_bytes(&h.client));
}

#[test]
fn d2_tokens_rejected_marks_counter_lockout_backoff_and_ids_survive_a_restart() {
    let mut h = Harness::new(jwt_config().with_max_auth_failures(2));
    let first = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&first, "alice");
    h.track("e");
    h.flush();
    h.unauthorized("UNKNOWN");
    // The rejected mark survives: passing the rejected token again sends nothing.
    let mut restored = h.restored();
    assert_eq!(
        restored.handle_authentication_details(h.now, &first, "alice"),
        Ok(authsync_core::Outcome::Ignored(
            authsync_core::IgnoredBecause::RejectedToken
        ))
    );
    let second = good_token("alice", 2);
    h.pass_token(&second, "alice");
    h.unauthorized("UNKNOWN");
    let restored = h.restored();
    assert!(restored.is_locked_out());
    assert_eq!(restored.install_id(), h.client.install_id());

    // A backoff deadline survives in wall-clock terms.
    let mut h = Harness::new(config());
    h.track("e");
    h.flush();
    h.respond(503, &[("retry-after", "120")], "");
    h.now = Now::new(h.now.mono_ms + 20_000, h.now.unix_ms + 20_000);
    let later = Now::new(5, h.now.unix_ms);
    let mut restored = h.restarted_at(later);
    let wakeup = restored.client.poll_timeout().unwrap();
    assert_eq!(
        (wakeup.at_mono_ms, wakeup.reason),
        (5 + 100_000, WakeReason::Backoff)
    );
    assert_eq!(restored.drain(), vec![]);
    assert_eq!(restored.advance(99_999), vec![], "still backing off");
    assert!(
        restored
            .advance(1)
            .iter()
            .any(|s| matches!(s, Seen::Send { batch_id, .. } if *batch_id == h.batch_id(1)))
    );
}

#[test]
fn d2_a_restart_sends_the_in_flight_batch_again_under_the_same_id() {
    let mut h = Harness::new(config());
    h.track("e");
    h.flush();
    let before = h.last_request().clone();
    let mut restored = h.restarted();
    restored.drain();
    assert_eq!(restored.requests.len(), 1);
    assert_eq!(
        (&restored.requests[0].batch_id, &restored.requests[0].body),
        (&before.batch_id, &before.body)
    );
}

#[test]
fn d2_the_journal_round_trips_and_another_apps_store_is_refused() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    eventful(&mut h);
    assert_eq!(state_bytes(&h.restored()), state_bytes(&h.client));
    let other_app = authsync_core::Config::new("someone-else", "http://127.0.0.1:9");
    assert!(matches!(
        Client::recover(other_app, h.now, h.store.stored()).unwrap_err(),
        RestoreError::AppIdMismatch { .. }
    ));
}

#[test]
fn d2_tracking_writes_one_small_record_whatever_the_queue_holds() {
    let mut h = Harness::new(config().with_max_pending_events(20_000));
    let size_of_track = |h: &mut Harness| {
        h.client.handle_track(h.now, "e", &json!({"k": 1})).unwrap();
        let mut bytes = 0;
        while let Some(job) = h.client.poll_write() {
            bytes += job.frames.len();
            h.client.handle_written(h.now, job.id, Ok(())).unwrap();
        }
        bytes
    };
    let first = size_of_track(&mut h);
    h.track_n(9_997);
    let near_ten_thousandth = size_of_track(&mut h);
    // Only the digits of the sequence numbers grow.
    assert!(
        near_ten_thousandth <= first + 8,
        "{first} vs {near_ten_thousandth} bytes"
    );
}

#[test]
fn d3_past_the_bound_the_oldest_events_are_dropped() {
    let mut h = Harness::new(
        config()
            .with_batch_limits(2, 128 * 1024)
            .with_max_pending_events(5),
    );
    let owner = anon(&h.client);
    assert_eq!(
        h.track_n(2),
        vec![send(h.batch_id(1), owner.clone(), 2, None)]
    );
    assert_eq!(h.track_n(3), vec![]);
    // Sixth event: the batch in flight is never cut; the next oldest event goes.
    assert_eq!(h.track("e5"), vec![dropped("overflow", 1)]);
    assert_eq!(h.client.totals().pending(), 5);
    assert_eq!(
        h.ok(),
        vec![acked(h.batch_id(1), 2), send(h.batch_id(2), owner, 1, None)]
    );
    let body: serde_json::Value = serde_json::from_slice(&h.last_request().body).unwrap();
    assert_eq!(
        body["events"][0]["seq"], 4,
        "seq 3, the oldest not in flight, went"
    );
}

#[test]
fn d3_a_batch_the_server_may_have_seen_is_dropped_whole() {
    let mut h = Harness::new(
        config()
            .with_batch_limits(2, 128 * 1024)
            .with_max_pending_events(4),
    );
    h.track_n(2);
    h.respond(503, &[("retry-after", "60")], "");
    h.track_n(2);
    assert_eq!(
        h.track("x"),
        vec![dropped("overflow", 2)],
        "attempted batch 1 goes whole"
    );
    assert_eq!(h.client.totals().pending(), 3);
}

#[test]
fn dt1_the_same_inputs_give_byte_identical_actions() {
    let run = || {
        let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
        eventful(&mut h);
        let journal = h.store.journal();
        let requests: Vec<_> = h
            .requests
            .iter()
            .map(|r| format!("{:?} {:?}", r.to_http(), r.body))
            .collect();
        (journal, requests)
    };
    assert_eq!(run(), run());
}

#[test]
fn dt2_poll_timeout_is_always_ahead_and_moves_forward_after_a_timeout() {
    let mut h = Harness::new(jwt_config().with_batch_limits(3, 128 * 1024));
    h.identify("alice");
    h.pass_token(&token("alice", T0_UNIX_MS / 1000 + 600, 1), "alice");
    h.track("e");
    let mut wakes = 0;
    while let Some(wakeup) = h.client.poll_timeout() {
        assert!(
            wakeup.at_mono_ms > h.now.mono_ms,
            "a wakeup in the past is a busy loop"
        );
        h.now = Now::new(
            wakeup.at_mono_ms,
            h.now.unix_ms + (wakeup.at_mono_ms - h.now.mono_ms),
        );
        h.client.handle_timeout(h.now);
        let seen = h.drain();
        if seen.iter().any(|s| matches!(s, Seen::Send { .. })) {
            h.respond(503, &[], "");
        }
        wakes += 1;
        if wakes > 50 {
            break;
        }
    }
    assert!(wakes > 3);
    // Calling early is harmless.
    let before = h.client.poll_timeout();
    h.client.handle_timeout(h.now);
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.client.poll_timeout(), before);
}

#[test]
fn r1_refresh_ahead_warns_once_per_token_and_the_mark_survives_a_restart() {
    let mut h = Harness::new(jwt_config());
    let expiring = token("alice", T0_UNIX_MS / 1000 + 120, 1);
    h.identify("alice");
    assert_eq!(h.pass_token(&expiring, "alice"), vec![]);
    let wakeup = h.client.poll_timeout().unwrap();
    assert_eq!(
        (wakeup.at_mono_ms, wakeup.reason),
        (h.now.mono_ms + 60_000, WakeReason::RefreshAhead)
    );
    assert_eq!(h.advance(59_999), vec![]);
    assert_eq!(
        h.advance(1),
        vec![notice("TOKEN_EXPIRING", Some("alice"), Some(&expiring))]
    );
    assert_eq!(h.advance(600_000), vec![], "once for that token");
    let mut restored = h.restarted();
    assert!(
        restored
            .drain()
            .iter()
            .all(|s| !matches!(s, Seen::Notice { .. })),
        "the mark survives a restart"
    );
    // A new token gets its own warning.
    let next = token("alice", h.now.unix_ms / 1000 + 30, 2);
    assert_eq!(
        h.pass_token(&next, "alice"),
        vec![notice("TOKEN_EXPIRING", Some("alice"), Some(&next))]
    );
}

#[test]
fn r1_only_tokens_that_matter_and_only_when_enabled() {
    let mut h = Harness::new(jwt_config());
    let soon = token("bob", T0_UNIX_MS / 1000 + 10, 1);
    assert_eq!(
        h.pass_token(&soon, "bob"),
        vec![],
        "bob is not current and has no data"
    );
    assert_eq!(
        h.identify("bob"),
        vec![notice("TOKEN_EXPIRING", Some("bob"), Some(&soon))]
    );

    let mut off = Harness::new(jwt_config().with_refresh_ahead(std::time::Duration::ZERO));
    off.identify("bob");
    assert_eq!(off.pass_token(&soon, "bob"), vec![]);
    assert_eq!(off.client.poll_timeout(), None);
}

#[test]
fn time_going_backwards_or_to_the_extremes_never_panics() {
    let mut h = Harness::new(jwt_config());
    let token = good_token("alice", 1);
    h.identify("alice");
    h.pass_token(&token, "alice");
    for now in [
        Now::new(0, 0),
        Now::new(u64::MAX, u64::MAX),
        Now::new(3, 1),
        Now::new(u64::MAX - 1, 0),
    ] {
        h.now = now;
        h.track("e");
        h.flush();
        if h.client.outlook().in_flight {
            h.respond(503, &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")], "");
        }
        h.client.handle_timeout(now);
        h.drain();
        if let Some(wakeup) = h.client.poll_timeout() {
            assert!(wakeup.at_mono_ms >= now.mono_ms.min(u64::MAX - 1));
        }
    }
    let totals = h.client.totals();
    assert_eq!(totals.tracked, 4);
}

#[test]
fn d1_drop_reasons_owners_and_damage_print_as_the_spec_names_them() {
    use authsync_core::{DamageKind, DropReason, Owner};
    assert_eq!(
        DropReason::Rejected { status: 400 }.to_string(),
        "rejected (400)"
    );
    assert_eq!(DropReason::Overflow.to_string(), "overflow");
    assert_eq!(
        DropReason::LoggedOutAuthFailure.to_string(),
        "logged_out_auth_failure"
    );
    assert_eq!(
        Owner::Anonymous("anon-1".into()).to_string(),
        "anonymous:anon-1"
    );
    assert_eq!(DamageKind::Truncated.to_string(), "truncated frame");
    assert_eq!(
        DamageKind::UnknownVersion(9).to_string(),
        "unknown format version 9"
    );
}

#[test]
fn dt2_the_outlook_says_when_the_next_request_would_go() {
    let mut h = Harness::new(jwt_config());
    assert_eq!(
        h.client.outlook().next_send_mono_ms,
        None,
        "nothing pending"
    );
    h.track("e");
    assert_eq!(
        h.client.outlook().next_send_mono_ms,
        Some(h.now.mono_ms + 20_000),
        "when the flush interval runs out"
    );
    h.flush();
    assert!(h.client.outlook().in_flight);
    h.respond(503, &[("retry-after", "30")], "");
    let outlook = h.client.outlook();
    assert!(!outlook.in_flight);
    assert_eq!(outlook.next_send_mono_ms, Some(h.now.mono_ms + 30_000));
    h.advance(30_000);
    h.ok();
    h.identify("alice");
    h.track("a");
    h.flush();
    assert_eq!(
        h.client.outlook().next_send_mono_ms,
        None,
        "waiting for a token sends nothing"
    );
}

#[test]
fn r1_the_notice_says_whether_the_token_expired_or_is_about_to() {
    let mut h = Harness::new(jwt_config());
    h.identify("alice");
    let notices = |h: &mut Harness, exp: u64, n: u32| {
        let outcome =
            h.client
                .handle_authentication_details(h.now, &token("alice", exp, n), "alice");
        assert_eq!(outcome, Ok(authsync_core::Outcome::Applied));
        while let Some(job) = h.client.poll_write() {
            h.client.handle_written(h.now, job.id, Ok(())).unwrap();
        }
        std::iter::from_fn(|| h.client.poll_event())
            .filter_map(|event| match event {
                authsync_core::Event::Notice(n) => Some(n.message),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let past = notices(&mut h, T0_UNIX_MS / 1000 - 10, 1);
    assert!(past[0].contains("expired at"), "{past:?}");
    let soon = notices(&mut h, T0_UNIX_MS / 1000 + 10, 2);
    assert!(soon[0].contains("expires at"), "{soon:?}");
}

#[test]
fn a4_a_backoff_for_data_that_was_dropped_wakes_no_one() {
    let mut h = Harness::new(
        config()
            .with_batch_limits(3, 128 * 1024)
            .with_max_pending_events(2),
    );
    h.track_n(2);
    h.flush();
    h.respond(503, &[("retry-after", "5")], "");
    assert_eq!(h.client.poll_timeout().unwrap().reason, WakeReason::Backoff);
    assert_eq!(h.track("x"), vec![dropped("overflow", 2)]);
    assert_eq!(
        h.client.poll_timeout().map(|w| w.reason),
        Some(WakeReason::FlushInterval),
        "the backed-off batch is gone; only the open batch's interval remains"
    );
}

#[test]
fn v2_attributes_of_exactly_32_kib_are_accepted() {
    assert_eq!(authsync_core::MAX_ATTRIBUTES_BYTES, 32 * 1024);
    let mut h = Harness::new(config());
    // `{"k":"…"}` is 8 bytes around the value.
    let fits = json!({ "k": "x".repeat(32 * 1024 - 8) });
    let over = json!({ "k": "x".repeat(32 * 1024 - 7) });
    assert!(h.client.handle_track(h.now, "e", &fits).is_ok());
    assert!(h.client.handle_track(h.now, "e", &over).is_err());
}

#[test]
fn r1_a_token_of_someone_without_data_is_not_warned_about_while_others_track() {
    let mut h = Harness::new(jwt_config());
    h.track("anonymous data in the open batch");
    let expired = token("bob", T0_UNIX_MS / 1000 - 10, 1);
    assert_eq!(
        h.pass_token(&expired, "bob"),
        vec![],
        "bob is neither current nor has pending data"
    );
}

#[test]
fn d2_a_snapshot_after_acks_and_drops_restores_exactly() {
    let mut h = Harness::new(jwt_config().with_batch_limits(2, 128 * 1024));
    eventful(&mut h);
    let totals = h.client.totals();
    assert!(totals.acked > 0 && totals.dropped > 0 && totals.acked != totals.dropped);
    h.store.snapshot = Some(h.client.snapshot().as_bytes().to_vec());
    h.store.segments.clear();
    let restored = h.restored();
    assert_eq!(state_bytes(&restored), state_bytes(&h.client));
    assert_eq!(restored.totals(), totals);
}

#[test]
fn d2_snapshot_files_are_checked_before_use() {
    use authsync_core::Snapshot;
    let h = Harness::new(config());
    let good = h.client.snapshot().as_bytes().to_vec();
    assert!(Snapshot::from_bytes(good.clone()).is_ok());
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    assert!(Snapshot::from_bytes(wrong_magic).is_err());
    let mut wrong_version = good.clone();
    wrong_version[4] = 9;
    let refused = Snapshot::from_bytes(wrong_version).unwrap_err();
    assert!(refused.to_string().contains("version"), "{refused}");
    assert!(
        Snapshot::from_bytes(good[..5].to_vec()).is_err(),
        "cut inside the header"
    );
    // A header with an empty payload is well-formed (its state is not, on recovery,
    // which reports it as damage and starts over).
    let mut header_only = good[..21].to_vec();
    header_only.extend_from_slice(&0u32.to_le_bytes());
    let header_only = Snapshot::from_bytes(header_only).unwrap();
    assert_eq!(header_only.lsn(), h.client.lsn());
    let stored = authsync_core::StoredState {
        snapshot: Some(Ok(header_only.clone())),
        ..authsync_core::StoredState::default()
    };
    let (_, report) = Client::recover(h.config.clone(), h.now, stored).unwrap();
    assert!(report.started_over && report.loss_unknown, "{report}");
    let shown = format!("{header_only:?}");
    assert!(
        shown.contains("lsn: 1") && shown.contains("bytes: 25"),
        "{shown}"
    );
}

#[test]
fn d3_acknowledged_events_no_longer_count_against_the_bound() {
    let mut h = Harness::new(
        config()
            .with_batch_limits(2, 128 * 1024)
            .with_max_pending_events(4),
    );
    h.track_n(2);
    h.ok();
    let seen = h.track_n(4);
    assert!(
        seen.iter().all(|s| !matches!(s, Seen::Dropped { .. })),
        "four pending events fit: {seen:?}"
    );
    assert_eq!(h.client.totals().pending(), 4);
}
