//! Bring your own runtime: a complete host for `authsync-core` alone, in one loop,
//! with any HTTP client (ureq here) and a journal file of your own. What the drivers
//! do, without their threads: every decision stays in the core.
//!
//! `cargo run -p authsync-core --example own_runtime` starts the reference server on
//! loopback and tracks a few events to it.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_core::{
    Client, Config, Event, Now, Step, Storage, StorageFailure, StorageFailureKind, StoragePolicy,
    TransportFailure,
};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use bytes::Bytes;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )?;
    let place = tempfile::tempdir()?;
    let start = Instant::now();
    let now = || Now {
        mono_ms: start.elapsed().as_millis() as u64,
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let config = Config::new("own-runtime", server.url())
        .with_seed(2026)
        .with_flush_interval(Duration::from_millis(200))
        .with_storage(Storage::Durable(StoragePolicy::default()));
    let mut client = Client::new(config, now())?;
    let http = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut journal = OpenOptions::new()
        .create(true)
        .append(true)
        .open(place.path().join("journal.1"))?;

    client.handle_session_start(now());
    for screen in ["home", "catalog", "cart"] {
        client.handle_track(
            now(),
            "screen_view",
            &serde_json::json!({ "screen": screen }),
        )?;
    }
    while client.totals().pending() > 0 {
        // 1. Write what the inputs changed, and confirm it.
        while let Some(job) = client.poll_write() {
            let result = journal
                .write_all(&job.frames)
                .and_then(|()| {
                    if job.sync {
                        journal.sync_data()
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| StorageFailure {
                    kind: StorageFailureKind::Io,
                    message: e.to_string(),
                });
            client.handle_written(now(), job.id, result)?;
        }
        // 2. Tell what happened.
        while let Some(event) = client.poll_event() {
            match event {
                Event::Acked(ack) => println!("acked {} ({} events)", ack.batch_id, ack.events),
                Event::Notice(notice) => {
                    println!("notice {} for {:?}", notice.code, notice.identifier)
                }
                other => println!("{other:?}"),
            }
        }
        // 3. Perform each step and hand its result back.
        while let Some(step) = client.poll_step() {
            match step {
                Step::Send(request) => {
                    let answer = http.run(request.to_http().map(|body| body.to_vec()));
                    match answer {
                        Ok(response) => {
                            let (parts, mut body) = response.into_parts();
                            let bytes = body.read_to_vec().unwrap_or_default();
                            let response = http::Response::from_parts(parts, Bytes::from(bytes));
                            client.handle_response(now(), request.id, response)?;
                        }
                        Err(_) => client.handle_transport_failure(
                            now(),
                            request.id,
                            TransportFailure::Connect,
                        )?,
                    }
                }
                Step::Sync(job) => {
                    let result = journal.sync_data().map_err(|e| StorageFailure {
                        kind: StorageFailureKind::Io,
                        message: e.to_string(),
                    });
                    client.handle_synced(now(), job.id, result)?;
                }
                Step::Compact(job) => {
                    // A real host writes `job.snapshot()` atomically and drops the
                    // segments below `job.first_segment`; this one keeps its journal.
                    let size = job.snapshot().as_bytes().len() as u64;
                    client.handle_compacted(now(), job.id, Ok(size))?;
                }
                Step::FetchToken(_) | Step::CancelFetch(_) => {} // no token provider here
                Step::Finish { .. } => break,
                other => println!("a step this host does not know: {other:?}"),
            }
        }
        // 4. Sleep until the core's next deadline, then tell it the time.
        if client.has_output() {
            continue;
        }
        if let Some(wakeup) = client.poll_timeout() {
            std::thread::sleep(Duration::from_millis(
                wakeup.at_mono_ms.saturating_sub(now().mono_ms),
            ));
        }
        client.handle_timeout(now());
    }
    println!(
        "all {} events delivered; the server accepted {}",
        client.totals().acked,
        server.admin().accepted_count("own-runtime")
    );
    Ok(())
}
