//! Shrunk failing cases, kept as explicit step sequences, and the fuzz corpus replayed.

use std::path::Path;

use authsync_model::alphabet::{Code401, Reply, Step, User};
use authsync_model::model::Settings;
use authsync_model::run_scenario;
use authsync_model::scenario::Runner;

fn run(settings: Settings, steps: &[Step]) {
    if let Err(failure) = Runner::run_steps(settings, steps, Some(0)) {
        panic!("{failure}");
    }
}

/// Shrunk by proptest (JWT disabled): u1's 401 made u1 wait for the next session; u1
/// logged out, and overflow dropped all of u1's data, so the client forgot u1. Logged in
/// again, u1's new batch goes without waiting for a session. The ledger first kept the
/// wait forever; the core's choice (forgetting a logged-out user whose data is gone,
/// `DurableState::forget_if_done`) is what the model follows.
#[test]
fn a2_the_wait_for_a_session_ends_when_a_logged_out_user_is_forgotten() {
    let unauthorized = Step::Reply(Reply::Unauthorized(Code401::DecryptionFailed));
    run(
        Settings::jwt_disabled(),
        &[
            Step::Identify(User::U1),
            Step::Track,
            Step::Track,
            unauthorized,
            Step::Logout,
            Step::Track,
            Step::Flush,
            unauthorized,
            Step::Track,
            Step::Track,
            Step::Track,
            Step::Identify(User::U1),
            Step::Track,
            Step::Identify(User::U2),
        ],
    );
}

/// Every file of the fuzz crate's `sequence` corpus and artifacts, through the same
/// entry point as the fuzz target.
#[test]
fn the_fuzz_corpus_replays_without_a_failure() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for folder in ["corpus/sequence", "artifacts/sequence"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            println!("replaying {}", path.display());
            run_scenario(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 5,
        "the seed corpus is missing: {replayed} files replayed"
    );
}
