//! The world a suite runs in: a reference server on loopback, fast timers, and the
//! app backend's token minting.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_core::Config;
use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{Admin, Enforcement, RefServer, ServerConfig, keys};

/// A reference server that trusts the `rsa_a` test key and requires tokens.
pub struct Env {
    /// The running server.
    pub server: RefServer,
    /// Its admin handle.
    pub admin: Admin,
}

impl Env {
    /// Starts the server.
    ///
    /// # Panics
    /// When the server cannot start: the test cannot run.
    #[must_use]
    pub fn new() -> Self {
        Self::with(ServerConfig::new())
    }

    /// Starts the server with `config`, adding the `rsa_a` key and `required` mode.
    ///
    /// # Panics
    /// When the server cannot start.
    #[must_use]
    pub fn with(config: ServerConfig) -> Self {
        let server = RefServer::start(
            config
                .with_key(keys::rsa_a().verify_key())
                .enforcement(Enforcement::Required)
                .access_log(false),
        )
        .unwrap_or_else(|e| panic!("reference server: {e}"));
        let admin = server.admin();
        Self { server, admin }
    }

    /// A client configuration for `app_id` against this server, JWT on, with timers
    /// short enough for tests: flush after 100 ms, backoff from 20 ms to 200 ms.
    #[must_use]
    pub fn config(&self, app_id: &str) -> Config {
        Config::new(app_id, self.server.url())
            .with_jwt(true)
            .with_flush_interval(Duration::from_millis(100))
            .with_backoff(Duration::from_millis(20), Duration::from_millis(200))
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// Unix seconds now.
#[must_use]
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A token the server accepts for `identifier`, expiring `exp_in` seconds from now,
/// made distinct by `serial`.
///
/// # Panics
/// When the test key cannot sign.
#[must_use]
pub fn token(identifier: &str, exp_in: i64, serial: u32) -> String {
    signed(&keys::rsa_a(), identifier, exp_in, serial)
}

/// A token signed with a key the server does not trust (`INVALID_SIGNATURE`).
///
/// # Panics
/// When the test key cannot sign.
#[must_use]
pub fn untrusted_token(identifier: &str, serial: u32) -> String {
    signed(&keys::rsa_b(), identifier, 600, serial)
}

fn signed(key: &keys::TestKey, identifier: &str, exp_in: i64, serial: u32) -> String {
    let now = unix_now();
    let claims = Claims::for_subject(identifier)
        .iat(now)
        .exp(now + exp_in)
        .claim("jti", serde_json::json!(serial));
    mint(key, &claims, &MintOptions::new()).unwrap_or_else(|e| panic!("mint: {e}"))
}

/// Polls `condition` until it holds or `timeout` passes; whether it held.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
