//! The bounded-exhaustive explorer: every abstract state up to a depth, model and core
//! compared, every invariant checked.
//!
//! CI explores to [`CI_DEPTH`]; the full depth is one command (see the README's testing
//! section):
//!
//! ```sh
//! AUTHSYNC_EXPLORE_DEPTH=10 cargo test --release -p authsync-model --test explore -- --nocapture
//! ```

use authsync_model::explore::{CI_DEPTH, explore};
use authsync_model::model::Settings;

fn depth() -> usize {
    std::env::var("AUTHSYNC_EXPLORE_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(CI_DEPTH)
}

/// JWT on, batches of 2, 4 pending events at most, lockout after 3 failures: full
/// batches, overflow, splits, rejections, logout purges and the lockout are all within
/// reach of depth 10.
#[test]
fn every_reachable_state_agrees_with_the_model_and_keeps_the_invariants() {
    let report = explore(Settings::explorer(), depth());
    println!("explorer, JWT enabled: {report}");
    assert!(report.failure.is_none(), "{report}");
    assert!(report.states > 1_000, "the explorer went nowhere: {report}");
}

/// JWT disabled: 401s make owners wait for the next session instead of a token.
#[test]
fn every_reachable_state_with_jwt_disabled_agrees_with_the_model() {
    let settings = Settings {
        jwt: false,
        ..Settings::explorer()
    };
    let report = explore(settings, depth().min(CI_DEPTH));
    println!("explorer, JWT disabled: {report}");
    assert!(report.failure.is_none(), "{report}");
}
