//! A process for the crash test: `crash-child ENDPOINT STATE_DIR track|drain`.
//!
//! `track` starts a session and tracks events forever, printing each event's seq on
//! its own line once `track` has returned (the promise under test: that event is
//! durable). `drain` sends what is pending and prints the totals.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use authsync_blocking::{Client, Config, FsyncPolicy, StoragePolicy, WorkspaceOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, state_dir, mode] = args.as_slice() else {
        eprintln!("usage: crash-child ENDPOINT STATE_DIR track|drain");
        return ExitCode::from(2);
    };
    let config = Config::new("app-crash", endpoint.as_str())
        .with_flush_interval(Duration::from_millis(30))
        .with_batch_limits(7, 128 * 1024)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(50));
    // Surviving kill -9 needs the write, not the sync: the kernel keeps the page.
    let store = StoragePolicy {
        fsync: FsyncPolicy::Never,
        compact_after_bytes: 16 * 1024,
    };
    let options = WorkspaceOptions::new(config)
        .state_dir(state_dir)
        .seed(99)
        .storage(store);
    let client = match Client::start(options) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("crash-child: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match mode.as_str() {
        "track" => {
            if client.session_start().is_err() {
                return ExitCode::from(1);
            }
            for i in 0u64.. {
                match client.track("tick", &serde_json::json!({ "i": i })) {
                    Ok(receipt) => {
                        if writeln!(stdout, "{}", receipt.seq)
                            .and_then(|()| stdout.flush())
                            .is_err()
                        {
                            return ExitCode::from(1);
                        }
                    }
                    Err(e) => {
                        eprintln!("crash-child: {e}");
                        return ExitCode::from(1);
                    }
                }
                std::thread::sleep(Duration::from_millis(i % 3));
            }
            ExitCode::SUCCESS
        }
        "drain" => {
            let report = client.flush_and_wait(Duration::from_secs(30));
            let totals = client.totals();
            let _ = writeln!(
                stdout,
                "settled={} tracked={} acked={} dropped={} pending={}",
                report.map(|r| r.settled).unwrap_or(false),
                totals.tracked,
                totals.acked,
                totals.dropped,
                totals.pending()
            );
            ExitCode::SUCCESS
        }
        _ => ExitCode::from(2),
    }
}
