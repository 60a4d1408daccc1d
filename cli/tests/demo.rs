//! `authsync demo`, the main job: it must tell the whole story, agree with the
//! server's own count, and finish in well under 30 seconds.

use std::time::Duration;

use authsync_cli::demo::{Timeline, run};

#[test]
fn the_demo_tells_the_whole_story_and_the_server_confirms_it() {
    let summary = run(&Timeline::new(std::io::sink())).unwrap();
    assert_eq!(summary.server_accepted as u64, summary.totals.acked);
    assert_eq!(summary.totals.pending(), 0);
    assert!(summary.locked_out, "a burst of failures into lockout");
    assert_eq!(summary.purged, 2, "logout with a purge");
    for code in ["TIME_CONSTRAINT_FAILURE", "INVALID_SIGNATURE"] {
        assert!(
            summary.heard.iter().any(|c| c == code),
            "{code} in {:?}",
            summary.heard
        );
    }
    assert!(
        summary.elapsed < Duration::from_secs(30),
        "{:?}",
        summary.elapsed
    );
}

#[test]
fn the_demo_command_prints_a_timeline_and_totals() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_authsync"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "── 1.",
        "listener  heard TIME_CONSTRAINT_FAILURE",
        "lockout",
        "logged_out_auth_failure",
        "the server's own count confirms",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
