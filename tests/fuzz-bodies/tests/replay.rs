//! Replays every checked-in fuzz input on stable: the corpus (`fuzz/corpus/<target>/`)
//! and every crash artifact ever found (`fuzz/artifacts/<target>/`), so a fixed crash
//! stays fixed.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for folder in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "{target}: no corpus to replay");
    eprintln!("{target}: {replayed} inputs replayed");
}

#[test]
fn sequence_corpus_replays() {
    replay("sequence", authsync_fuzz_bodies::sequence);
}

#[test]
fn response_corpus_replays() {
    replay("response", authsync_fuzz_bodies::response);
}

#[test]
fn token_corpus_replays() {
    replay("token", authsync_fuzz_bodies::token);
}

#[test]
fn journal_corpus_replays() {
    replay("journal", authsync_fuzz_bodies::journal);
}

#[test]
fn script_corpus_replays() {
    replay("script", authsync_fuzz_bodies::script);
}
