//! The `journal` target.

use authsync_core::{Client, Config, FORMAT_VERSION, JournalReader, Now, Record, Snapshot};

/// Any bytes as a journal to recover, and as a snapshot.
///
/// The first byte picks how the rest is read. Even: the bytes are the journal as they
/// are, which exercises torn tails and checksums. Odd: the bytes are a list of
/// length-prefixed payloads that the body frames with correct checksums, so that the
/// fuzzer reaches the record decoder and restore's consistency checks behind the CRC.
///
/// # Panics
/// When reading does not stop at the first damaged frame, a record read does not
/// survive a write and a second read unchanged, or a restored state breaks
/// conservation.
pub fn journal(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        framed(rest)
    };
    let records = read(&bytes);
    let mut rewritten = Vec::new();
    for record in &records {
        record.encode(&mut rewritten);
    }
    assert_eq!(
        read(&rewritten),
        records,
        "a record changed through a write and a read"
    );

    let config = Config::new("fuzz", "http://127.0.0.1:9");
    let now = Now::new(0, 1_700_000_000_000);
    if let Ok(client) = Client::restore(config.clone(), now, None, records.clone()) {
        let totals = client.totals();
        assert_eq!(
            totals.tracked,
            totals.acked + totals.dropped + totals.pending(),
            "conservation after restore"
        );
    }
    if let Ok(snapshot) = Snapshot::from_bytes(rest.to_vec()) {
        let _ = Client::restore(config, now, Some(&snapshot), records);
    }
}

/// Reads a journal, checking the reader's own contract.
fn read(bytes: &[u8]) -> Vec<Record> {
    let mut reader = JournalReader::new(bytes);
    let mut records = Vec::new();
    let mut damaged = false;
    while let Some(item) = reader.next() {
        assert!(!damaged, "a record after the damage");
        match item {
            Ok(record) => records.push(record),
            Err(damage) => {
                assert_eq!(damage.offset + damage.remaining, bytes.len());
                assert_eq!(damage.offset, reader.valid_len());
                damaged = true;
            }
        }
    }
    assert!(reader.valid_len() <= bytes.len());
    assert!(damaged || reader.valid_len() == bytes.len());
    records
}

/// Frames length-prefixed payloads as journal frames with correct checksums.
fn framed(mut rest: &[u8]) -> Vec<u8> {
    let mut journal = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (chunk, next) = tail.split_at(take);
        let mut payload = Vec::with_capacity(chunk.len() + 1);
        payload.push(FORMAT_VERSION);
        payload.extend_from_slice(chunk);
        let frame_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        journal.extend_from_slice(&frame_len.to_le_bytes());
        journal.extend_from_slice(&crc32(&payload).to_le_bytes());
        journal.extend_from_slice(&payload);
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
        let record_bytes = framed(&[3, 1, 2, 3]);
        assert!(JournalReader::new(&record_bytes).next().is_some());
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
