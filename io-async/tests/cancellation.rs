//! What only an async API can get wrong: futures dropped half-way, a client dropped
//! mid-send, and running without smol's executor.

use std::time::Duration;

use authsync_async::{Client, Config, WorkspaceOptions};
use authsync_refserver::{Enforcement, Fault, RefServer, ServerConfig};
use serde_json::json;
use smol::future::FutureExt as _;

fn server() -> RefServer {
    RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap()
}

fn options(server: &RefServer, dir: &std::path::Path) -> WorkspaceOptions {
    let config = Config::new("app-async", server.url())
        .with_flush_interval(Duration::from_secs(3600))
        .with_backoff(Duration::from_millis(20), Duration::from_millis(200));
    WorkspaceOptions::new(config).state_dir(dir).seed(3)
}

#[test]
fn a_track_future_dropped_after_its_first_poll_is_still_accepted_and_written() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    smol::block_on(async {
        let (client, driver) = Client::start(options(&server, dir.path())).await.unwrap();
        let driver = smol::spawn(driver);
        for i in 0..5 {
            // One poll runs the core step; the future is then dropped unfinished.
            let _ = smol::future::poll_once(client.track("dropped", &json!({ "i": i }))).await;
        }
        assert_eq!(client.totals().tracked, 5);
        client.close(Duration::from_secs(5)).await;
        driver.await;
    });
    smol::block_on(async {
        let (client, driver) = Client::start(options(&server, dir.path())).await.unwrap();
        smol::spawn(driver).detach();
        assert_eq!(
            client.totals().tracked,
            5,
            "every accepted event was written"
        );
        let report = client
            .flush_and_wait(Duration::from_secs(10))
            .await
            .unwrap();
        assert!(report.settled && report.pending_events == 0);
    });
    let seqs: Vec<u64> = server
        .admin()
        .accepted_events()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_client_dropped_mid_send_loses_nothing_and_sends_nothing_twice() {
    let server = server();
    let admin = server.admin();
    let dir = tempfile::tempdir().unwrap();
    admin.push_fault(Fault::delay_ms(400));
    smol::block_on(async {
        let (client, driver) = Client::start(options(&server, dir.path())).await.unwrap();
        let driver = smol::spawn(driver);
        for i in 0..3 {
            client.track("e", &json!({ "i": i })).await.unwrap();
        }
        client.flush().await.unwrap();
        assert!(
            smol::unblock({
                let admin = admin.clone();
                move || admin.wait_for_requests(1, Duration::from_secs(5))
            })
            .await
        );
        drop(client);
        // The driver finishes the request in flight, writes its outcome, and ends.
        driver.await;
    });
    smol::block_on(async {
        let (client, driver) = Client::start(options(&server, dir.path())).await.unwrap();
        smol::spawn(driver).detach();
        let report = client
            .flush_and_wait(Duration::from_secs(10))
            .await
            .unwrap();
        assert!(report.settled && report.pending_events == 0, "{report:?}");
        assert_eq!(client.totals().acked, 3);
    });
    let seqs: Vec<u64> = admin.accepted_events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3], "once each");
}

#[test]
fn it_runs_without_smols_executor_with_only_the_async_io_reactor() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    // futures-lite's block_on is a bare parker: no smol executor anywhere.
    let acked = smol::future::block_on(async {
        let (client, driver) = Client::start(options(&server, dir.path())).await.unwrap();
        let work = async {
            client.track("e", &json!({})).await.unwrap();
            let report = client
                .flush_and_wait(Duration::from_secs(10))
                .await
                .unwrap();
            client.close(Duration::from_secs(5)).await;
            report.totals.acked
        };
        // Both run on this one thread: the work, and the driver until it finishes.
        smol::future::zip(work, driver).await.0
    });
    assert_eq!(acked, 1);
    assert_eq!(server.admin().accepted_count("app-async"), 1);
}

#[test]
fn notices_are_a_stream_too() {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Required)
            .access_log(false),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    smol::block_on(async {
        let config = Config::new("app-async", server.url()).with_jwt(true);
        let client = Client::spawn(WorkspaceOptions::new(config).state_dir(dir.path()))
            .await
            .unwrap();
        let notices = client.notices();
        let _ = client.identify("alice").await.unwrap();
        client.track("e", &json!({})).await.unwrap();
        client.flush().await.unwrap();
        let notice = notices
            .recv()
            .or(async {
                smol::Timer::after(Duration::from_secs(10)).await;
                Err(smol::channel::RecvError)
            })
            .await
            .unwrap();
        assert_eq!(notice.code.as_str(), "TOKEN_NOT_AVAILABLE");
        assert_eq!(notice.identifier.as_deref(), Some("alice"));
    });
}
