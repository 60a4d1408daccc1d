//! authsync in an async app, on smol: a short session with a token provider, its
//! timeline printed as it happens.
//!
//! `cargo run -p authsync-async --example async_quickstart` starts the reference server on
//! loopback (JWT required, test key) and reports to it; give an endpoint to report
//! elsewhere: `cargo run -p authsync-async --example async_quickstart -- http://127.0.0.1:8080`.

use std::time::Duration;

use authsync_async::{Client, Config, Event, JwtAuthenticationDetails, WorkspaceOptions};
use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{Enforcement, RefServer, ServerConfig, keys};
use serde_json::json;

fn token_for(identifier: &str) -> Option<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    mint(
        &keys::rsa_a(),
        &Claims::for_subject(identifier).exp(now + 600),
        &MintOptions::new(),
    )
    .ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = match std::env::args().nth(1) {
        Some(_) => None,
        None => Some(RefServer::start(
            ServerConfig::new()
                .with_key(keys::rsa_a().verify_key())
                .enforcement(Enforcement::Required)
                .access_log(false),
        )?),
    };
    let endpoint = std::env::args()
        .nth(1)
        .or_else(|| server.as_ref().map(RefServer::url))
        .unwrap_or_default();
    smol::block_on(async {
        let config = Config::new("example-app", endpoint.as_str())
            .with_jwt(true)
            .with_flush_interval(Duration::from_millis(200));
        let options = WorkspaceOptions::new(config)
            .token_provider(authsync_async::provider(|request| async move {
                smol::unblock(move || token_for(&request.identifier)).await
            }))
            .observer(|event| match event {
                Event::Sent {
                    batch_id,
                    events,
                    token_prefix: token,
                    ..
                } => {
                    println!(
                        "sent     {batch_id}: {events} event(s), token {}",
                        token.as_deref().unwrap_or("none")
                    );
                }
                Event::Answered {
                    status, summary, ..
                } => println!("answered {status} {summary}"),
                Event::Notice(notice) => {
                    println!("notice   {} for {:?}", notice.code, notice.identifier)
                }
                Event::Acked(ack) => {
                    println!("acked    {} ({} event(s))", ack.batch_id, ack.events)
                }
                other => println!("event    {other:?}"),
            });
        let client = Client::spawn(options).await?;
        client.session_start().await?;
        client.track("app_open", &json!({"cold": true})).await?;
        let _ = client.identify("alice").await?;
        client.track("purchase", &json!({"sku": "A1"})).await?;
        // No token yet: the listener hears TOKEN_NOT_AVAILABLE and the provider answers.
        let report = client.flush_and_wait(Duration::from_secs(10)).await?;
        let token = token_for("alice").unwrap_or_default();
        let _ = client
            .pass_authentication_details(&JwtAuthenticationDetails::new(token, "alice"))
            .await?;
        client.track("logout_tapped", &json!({})).await?;
        let _ = client.logout().await?;
        let reports = client.shutdown(Duration::from_secs(10)).await;
        println!(
            "settled after the first flush: {}; at shutdown: {reports:?}",
            report.settled
        );
        let totals = client.totals();
        println!(
            "tracked {} acked {} pending {}",
            totals.tracked,
            totals.acked,
            totals.pending()
        );
        if totals.pending() != 0 {
            return Err("events left pending".into());
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
