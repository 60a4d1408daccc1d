//! authsync in a threaded app: start a client, identify a user, pass their token,
//! track, and shut down with everything delivered.
//!
//! `cargo run -p authsync-blocking --example quickstart` starts the reference server on
//! loopback first (in an app, `endpoint` is your ingestion server and the token comes
//! from your backend).

use std::time::Duration;

use authsync_blocking::{Client, Config, JwtAuthenticationDetails, WorkspaceOptions};
use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{RefServer, ServerConfig, keys};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = RefServer::start(ServerConfig::new().with_test_keys().access_log(false))?;
    let state = tempfile::tempdir()?;

    // Your backend signs the user's token; here, the reference server's test key.
    let in_ten_minutes = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64
        + 600;
    let backend_token = move |user: &str| {
        mint(
            &keys::rsa_a(),
            &Claims::for_subject(user).exp(in_ten_minutes),
            &MintOptions::new(),
        )
        .ok()
    };

    let config = Config::new("quickstart-app", server.url()).with_jwt(true);
    let provider_token = backend_token;
    let client = Client::start(
        WorkspaceOptions::new(config)
            .state_dir(state.path())
            .session_on_launch(true)
            // Asked when a token is missing, rejected or about to expire.
            .token_provider(authsync_blocking::provider(move |request| {
                provider_token(&request.identifier)
            })),
    )?;
    client.register_authentication_listener(|notice| {
        println!(
            "listener: {} for {:?}: {}",
            notice.code, notice.identifier, notice.message
        );
    });

    client.track("app_open", &json!({"cold_start": true}))?;
    let _ = client.identify("user-42")?;
    let token = backend_token("user-42").ok_or("no token")?;
    let _ = client.pass_authentication_details(&JwtAuthenticationDetails::new(token, "user-42"))?;
    client.track("purchase", &json!({"sku": "A1", "price": 9.5}))?;

    let reports = client.shutdown(Duration::from_secs(10));
    let totals = client.totals();
    println!(
        "tracked {}, acknowledged {}, pending {}; the server accepted {}",
        totals.tracked,
        totals.acked,
        reports[0].1.pending_events,
        server.admin().accepted_count("quickstart-app")
    );
    Ok(())
}
