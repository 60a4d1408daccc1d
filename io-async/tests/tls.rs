//! `https://` endpoints go through rustls: a server that does not speak TLS is a
//! transport failure, retried with backoff, never a success.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authsync_async::{Client, Config, Event, WorkspaceOptions};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};
use serde_json::json;

#[test]
fn an_https_endpoint_without_tls_fails_the_handshake_and_is_retried() {
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap();
    let endpoint = server.url().replace("http://", "https://");
    let failures = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&failures);
    smol::block_on(async {
        let config = Config::new("app-tls", endpoint)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let options = WorkspaceOptions::new(config).observer(move |event| {
            if matches!(event, Event::TransportFailed { .. }) {
                *seen.lock().unwrap() += 1;
            }
        });
        let client = Client::spawn(options).await.unwrap();
        client.track("e", &json!({})).await.unwrap();
        let report = client
            .flush_and_wait(Duration::from_millis(600))
            .await
            .unwrap();
        assert_eq!(report.pending_events, 1);
        assert_eq!(client.totals().acked, 0);
    });
    assert!(
        *failures.lock().unwrap() >= 2,
        "retried after each failed handshake"
    );
    assert_eq!(server.admin().accepted_count("app-tls"), 0);
}
