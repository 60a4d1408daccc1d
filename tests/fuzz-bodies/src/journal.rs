//! The `journal` target: any bytes as a store to recover (D2, D5).

use authsync_core::{
    Client, Config, FsyncPolicy, Now, PreviousRun, Snapshot, Storage, StoragePolicy, StoredSegment,
    StoredState,
};
use bytes::Bytes;

/// Any bytes as a store to recover.
///
/// The first byte picks how the rest is read:
/// - `0`: the bytes as a journal segment (and as a snapshot), as they are: torn tails,
///   checksums, the search for the next whole frame;
/// - `1`: length-prefixed payloads framed with correct checksums, so that the fuzzer
///   reaches the record decoder and the recovery's consistency checks behind the CRC;
/// - `2`: a real history, written by a client, then damaged where the bytes say
///   (flipped bytes, a cut): recovery must keep a consistent state, report the
///   damage, and never hand out an id again.
///
/// # Panics
/// When recovery panics, breaks conservation, hides damage, or would reuse an id.
pub fn journal(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => recover_any(rest),
        1 => recover_any(&framed(rest)),
        _ => damaged_history(rest),
    }
}

fn config() -> Config {
    Config::new("fuzz", "http://127.0.0.1:9")
        .with_seed(3)
        .with_batch_limits(3, 128 * 1024)
        .with_storage(Storage::Durable(StoragePolicy {
            fsync: FsyncPolicy::Always,
            ..StoragePolicy::default()
        }))
}

fn now() -> Now {
    Now::new(0, 1_700_000_000_000)
}

fn stored(journal: &[u8], snapshot: Option<&[u8]>) -> StoredState {
    StoredState {
        snapshot: snapshot
            .map(|bytes| Snapshot::from_bytes(bytes.to_vec()).map_err(|e| e.to_string())),
        segments: vec![StoredSegment {
            number: 1,
            bytes: Bytes::copy_from_slice(journal),
        }],
        previous_run: PreviousRun::Clean,
        fresh_seed: 11,
    }
}

/// Recovers `bytes` as a journal, and as a snapshot before it.
fn recover_any(bytes: &[u8]) {
    for snapshot in [None, Some(bytes)] {
        if let Ok((client, _)) = Client::recover(config(), now(), stored(bytes, snapshot)) {
            conserved(&client);
        }
    }
}

fn conserved(client: &Client) {
    let totals = client.totals();
    assert_eq!(
        totals.tracked,
        totals.acked + totals.dropped + totals.pending(),
        "conservation after recovery"
    );
}

/// A journal written by a client: `events` tracked by two users, some sent and
/// acknowledged. Returns the journal and the highest seq handed out.
fn history(events: u8) -> (Vec<u8>, u64) {
    let Ok(mut client) = Client::new(config(), now()) else {
        return (Vec::new(), 0);
    };
    let mut journal = Vec::new();
    let mut high = 0;
    for i in 0..events {
        if i == events / 2 {
            let _ = client.handle_identify(now(), "alice");
        }
        if let Ok(receipt) = client.handle_track(now(), "e", &serde_json::json!({ "i": i })) {
            high = receipt.seq;
        }
        loop {
            let Some(job) = client.poll_write() else {
                break;
            };
            journal.extend_from_slice(&job.frames);
            let _ = client.handle_written(now(), job.id, Ok(()));
        }
        while let Some(step) = client.poll_step() {
            if let authsync_core::Step::Send(request) = step {
                let ok = http::Response::new(Bytes::new());
                let _ = client.handle_response(now(), request.id, ok);
            }
        }
        while client.poll_event().is_some() {}
    }
    (journal, high)
}

/// A real history, damaged by `rest`: its first byte is the number of events, then
/// `(offset: u16, xor: u8)` triples flip bytes, and a trailing odd byte cuts the
/// journal at that fraction.
fn damaged_history(rest: &[u8]) {
    let Some((&events, mut edits)) = rest.split_first() else {
        return;
    };
    let (whole, high) = history(events % 24 + 1);
    let mut damaged = whole.clone();
    while let [a, b, xor, tail @ ..] = edits {
        let at = usize::from(u16::from_le_bytes([*a, *b])) % damaged.len().max(1);
        if let Some(byte) = damaged.get_mut(at) {
            *byte ^= xor;
        }
        edits = tail;
    }
    if let [cut] = edits {
        damaged.truncate(damaged.len() * usize::from(*cut) / 255);
    }
    let Ok((mut client, report)) = Client::recover(config(), now(), stored(&damaged, None)) else {
        panic!("a damaged journal of this app was refused instead of recovered");
    };
    conserved(&client);
    if damaged != whole && !whole.starts_with(&damaged) {
        assert!(!report.is_clean(), "damage was not reported");
    }
    if !report.is_clean() && !report.started_over {
        let next = client
            .handle_track(now(), "after", &serde_json::json!({}))
            .map(|receipt| receipt.seq)
            .unwrap_or(u64::MAX);
        assert!(
            next > high,
            "seq {next} handed out again after damage (had {high})"
        );
    }
}

/// Frames length-prefixed payloads as journal frames with correct checksums; each
/// payload's first byte is its layout.
fn framed(mut rest: &[u8]) -> Vec<u8> {
    let mut journal = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (payload, next) = tail.split_at(take);
        let frame_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        journal.extend_from_slice(&frame_len.to_le_bytes());
        journal.extend_from_slice(&crc32(payload).to_le_bytes());
        journal.extend_from_slice(payload);
        rest = next;
    }
    journal
}

/// CRC-32 (IEEE), bit by bit: slow and obviously right, as a test oracle should be.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_crc_is_the_journals() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let (journal, _) = history(3);
        let len = u32::from_le_bytes([journal[0], journal[1], journal[2], journal[3]]) as usize;
        let crc = u32::from_le_bytes([journal[4], journal[5], journal[6], journal[7]]);
        assert_eq!(crc32(&journal[8..8 + len]), crc);
    }

    #[test]
    fn d5_a_history_damaged_anywhere_recovers_and_never_reuses_a_seq() {
        for at in 0..600u16 {
            let [a, b] = at.to_le_bytes();
            damaged_history(&[9, a, b, 0x41]);
        }
        for cut in 0..=255u8 {
            damaged_history(&[9, cut]);
        }
    }
}
