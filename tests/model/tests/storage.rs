//! Storage failure as an input of the explorer (D1, D4, D5): every state within a
//! depth of track, flush, answers, the disk going down and coming back, time and
//! restarts. `AUTHSYNC_STORAGE_DEPTH=N` explores deeper.

use authsync_model::storage::explore_storage;

#[test]
fn no_stored_event_is_lost_nothing_leaves_before_it_is_durable_and_no_id_is_reused() {
    let depth = std::env::var("AUTHSYNC_STORAGE_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(8);
    let report = explore_storage(depth);
    println!(
        "storage explorer, depth {depth}: {} states, {} transitions",
        report.states, report.transitions
    );
    if let Some((steps, what)) = &report.failure {
        panic!("after {steps:?}: {what}");
    }
    assert!(
        report.states > 10_000,
        "the explorer went nowhere: {}",
        report.states
    );
}
