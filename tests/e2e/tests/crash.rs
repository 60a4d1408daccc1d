//! D2 under fire: a child process tracks and syncs while this test kills it with
//! SIGKILL at random instants and restarts it on the same state directory. At the end
//! the server must hold every event whose `track` returned, exactly once.
//!
//! 50 kill points by default; `AUTHSYNC_CRASH_KILLS=500 cargo test -p authsync-e2e
//! --test crash` for a longer run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use authsync_e2e::env::Env;
use authsync_refserver::{Enforcement, Fault, ServerConfig};

const CHILD: &str = env!("CARGO_BIN_EXE_crash-child");

/// xorshift64*: the kill instants, reproducible from the printed seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn d2_every_event_whose_track_returned_arrives_exactly_once_across_kill_9() {
    let kills: u64 = std::env::var("AUTHSYNC_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut rng: u64 = std::env::var("AUTHSYNC_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE);
    eprintln!("crash test: {kills} kills, seed {rng}");
    let env = Env::with(ServerConfig::new().enforcement(Enforcement::Disabled));
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let endpoint = env.server.url();
    let mut confirmed = BTreeSet::new();

    for kill in 0..kills {
        // Lost answers make the child retry under the same batch ids across restarts.
        if next(&mut rng).is_multiple_of(4) {
            env.admin.push_fault(Fault::accept_then_close());
        }
        let mut child = Command::new(CHILD)
            .args([endpoint.as_str(), state_dir.to_str().unwrap(), "track"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            // Only whole lines count: a seq cut by the kill was not confirmed.
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.parse::<u64>().ok())
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_millis(5 + next(&mut rng) % 60));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "kill {kill}: the child was killed, not done"
        );
        confirmed.extend(reader.join().unwrap());
    }

    let drain = Command::new(CHILD)
        .args([endpoint.as_str(), state_dir.to_str().unwrap(), "drain"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&drain.stdout);
    assert!(
        drain.status.success() && report.contains("settled=true") && report.contains("pending=0"),
        "{report}"
    );

    let mut accepted: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for event in env.admin.accepted_events() {
        accepted.entry(event.seq).or_default().push(event.batch_id);
    }
    let twice: Vec<_> = accepted
        .iter()
        .filter(|(_, batches)| batches.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "events accepted under two batch ids: {twice:?}"
    );
    let missing: Vec<_> = confirmed
        .iter()
        .filter(|seq| !accepted.contains_key(seq))
        .collect();
    assert!(
        missing.is_empty(),
        "tracked, confirmed, never delivered: {missing:?}"
    );
    assert!(
        confirmed.len() > kills as usize,
        "the children tracked something: {}",
        confirmed.len()
    );
    let highest = accepted.keys().next_back().copied().unwrap_or(0);
    assert_eq!(
        accepted.len() as u64,
        highest,
        "seqs 1..={highest} all arrived, none skipped"
    );
    eprintln!(
        "crash test: {} events confirmed, {} accepted, {} duplicate answers",
        confirmed.len(),
        accepted.len(),
        env.admin.duplicate_count()
    );
}
