//! Client configuration and its validation (C1).
//!
//! Owns the defaults of C1 (docs/rules.md) and the checks that make an invalid configuration a
//! typed error at construction. It knows nothing of state or time.

use std::time::Duration;

use crate::storage::Storage;

use http::Uri;

use crate::error::ConfigError;

/// Where the app runs: the original SDK's test and live instances. Decides how the
/// integration validator treats misuse (V1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Environment {
    /// A test workspace: misuse is a typed error while the validator is on.
    Test,
    /// A live workspace: misuse is ignored and reported as ignored.
    #[default]
    Live,
}

/// How a client behaves. Build with [`Config::new`] and the `with_*` methods; the core
/// checks it when a client is created ([`crate::Client::new`]).
///
/// ```
/// use std::time::Duration;
/// use authsync_core::{Config, Environment};
///
/// let config = Config::new("app-123", "https://ingest.example.com")
///     .with_jwt(true)
///     .with_environment(Environment::Test)
///     .with_flush_interval(Duration::from_secs(5))
///     .with_seed(42);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The workspace's app id (non-empty; sent as `X-App-Id`).
    pub app_id: String,
    /// Base URL of the ingestion server; requests go to `{endpoint}/v1/report`.
    pub endpoint: String,
    /// Whether identified users' batches carry a JWT (S4). Default false.
    pub jwt_enabled: bool,
    /// Test or live workspace (V1). Default live.
    pub environment: Environment,
    /// Whether misuse is reported as an error in the test environment (V1). Default on.
    pub integration_validator: bool,
    /// Events per batch before it is sealed (S1). Default 100.
    pub batch_max_events: u32,
    /// Request body bytes per batch before it is sealed (S1). Default 128 KiB.
    pub batch_max_bytes: u32,
    /// Time after a batch's first event when it is sealed (S1). Default 20 s.
    pub flush_interval: Duration,
    /// Pending events kept before the oldest are dropped (D3). Default 10 000.
    pub max_pending_events: u32,
    /// Consecutive authentication failures in a session before lockout (A3). Default 10.
    pub max_auth_failures: u32,
    /// First backoff ceiling after a transient failure (A4). Default 1 s.
    pub backoff_base: Duration,
    /// Largest backoff ceiling (A4). Default 5 min.
    pub backoff_cap: Duration,
    /// How long before a token's `exp` the app gets a notice to refresh it (R1); zero turns
    /// refresh-ahead off. Default 60 s.
    pub refresh_ahead: Duration,
    /// Seed for ids and jitter of a new install (U1, DT1). A restored client keeps the
    /// seed it was created with.
    pub seed: u64,
    /// Where the state lives (D2). Default: memory only.
    pub storage: Storage,
    /// Whether a token provider is asked for tokens (R2), and how long it may take.
    /// Default: no provider.
    pub token_provider_timeout: Option<Duration>,
}

/// Bounds that keep a batch able to hold at least one envelope and a small event.
const MIN_BATCH_BYTES: u32 = 1024;

impl Config {
    /// A configuration with C1's defaults (docs/rules.md).
    pub fn new(app_id: impl Into<String>, endpoint: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            endpoint: endpoint.into(),
            jwt_enabled: false,
            environment: Environment::Live,
            integration_validator: true,
            batch_max_events: 100,
            batch_max_bytes: 128 * 1024,
            flush_interval: Duration::from_secs(20),
            max_pending_events: 10_000,
            max_auth_failures: 10,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5 * 60),
            refresh_ahead: Duration::from_secs(60),
            seed: 0,
            storage: Storage::Memory,
            token_provider_timeout: None,
        }
    }

    /// Keeps the state in a store the host writes (D2), with this policy.
    #[must_use]
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// The host has a token provider (R2): the client asks it for a token on a notice
    /// about an identifier, one fetch at a time per identifier, and counts a fetch
    /// that takes longer than `timeout` as giving no token (default 30 s in the
    /// drivers).
    #[must_use]
    pub fn with_token_provider(mut self, timeout: Duration) -> Self {
        self.token_provider_timeout = Some(timeout);
        self
    }

    /// Turns JWT authentication on or off.
    #[must_use]
    pub fn with_jwt(mut self, enabled: bool) -> Self {
        self.jwt_enabled = enabled;
        self
    }

    /// Sets the environment.
    #[must_use]
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Turns the integration validator off (the original SDK's `disableIntegrationValidator()`).
    #[must_use]
    pub fn without_integration_validator(mut self) -> Self {
        self.integration_validator = false;
        self
    }

    /// Sets the batch limits.
    #[must_use]
    pub fn with_batch_limits(mut self, max_events: u32, max_bytes: u32) -> Self {
        self.batch_max_events = max_events;
        self.batch_max_bytes = max_bytes;
        self
    }

    /// Sets the flush interval.
    #[must_use]
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets the pending-event bound.
    #[must_use]
    pub fn with_max_pending_events(mut self, max: u32) -> Self {
        self.max_pending_events = max;
        self
    }

    /// Sets the lockout threshold.
    #[must_use]
    pub fn with_max_auth_failures(mut self, max: u32) -> Self {
        self.max_auth_failures = max;
        self
    }

    /// Sets the backoff base and cap.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Sets the refresh-ahead window (zero: off).
    #[must_use]
    pub fn with_refresh_ahead(mut self, window: Duration) -> Self {
        self.refresh_ahead = window;
        self
    }

    /// Sets the seed used by a new install.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every field; the same check [`crate::Client::new`] makes.
    ///
    /// # Errors
    /// The first field that is out of its range, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validated().map(|_| ())
    }

    pub(crate) fn validated(&self) -> Result<ValidConfig, ConfigError> {
        if self.app_id.is_empty() {
            return Err(ConfigError::EmptyAppId);
        }
        if http::HeaderValue::from_str(&self.app_id).is_err()
            || !self.app_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ConfigError::InvalidAppId);
        }
        let report_uri = report_uri(&self.endpoint)?;
        let checks: [(&'static str, bool, &'static str); 7] = [
            ("batch_max_events", self.batch_max_events >= 1, "at least 1"),
            (
                "batch_max_bytes",
                self.batch_max_bytes >= MIN_BATCH_BYTES,
                "at least 1024",
            ),
            (
                "flush_interval",
                self.flush_interval >= Duration::from_millis(1),
                "at least 1 ms",
            ),
            (
                "max_pending_events",
                self.max_pending_events >= 1,
                "at least 1",
            ),
            (
                "max_auth_failures",
                self.max_auth_failures >= 1,
                "at least 1",
            ),
            (
                "backoff_base",
                self.backoff_base >= Duration::from_millis(1),
                "at least 1 ms",
            ),
            (
                "backoff_cap",
                self.backoff_cap >= self.backoff_base,
                "at least backoff_base",
            ),
        ];
        if let Some((field, _, requirement)) = checks.iter().find(|(_, ok, _)| !ok) {
            return Err(ConfigError::OutOfRange { field, requirement });
        }
        Ok(ValidConfig {
            config: self.clone(),
            report_uri,
            flush_interval_ms: millis(self.flush_interval),
            backoff_base_ms: millis(self.backoff_base),
            backoff_cap_ms: millis(self.backoff_cap),
            refresh_ahead_ms: millis(self.refresh_ahead),
            token_fetch_timeout_ms: self.token_provider_timeout.map(millis),
        })
    }
}

/// A configuration that passed [`Config::validate`], with its durations in the
/// millisecond integers the core computes with.
#[derive(Clone, Debug)]
pub(crate) struct ValidConfig {
    pub(crate) config: Config,
    pub(crate) report_uri: Uri,
    pub(crate) flush_interval_ms: u64,
    pub(crate) backoff_base_ms: u64,
    pub(crate) backoff_cap_ms: u64,
    pub(crate) refresh_ahead_ms: u64,
    pub(crate) token_fetch_timeout_ms: Option<u64>,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `{endpoint}/v1/report`, for an `http` or `https` base URL without query or fragment.
fn report_uri(endpoint: &str) -> Result<Uri, ConfigError> {
    let invalid = |why: &'static str| ConfigError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        why,
    };
    let base: Uri = endpoint.parse().map_err(|_| invalid("not a URL"))?;
    match base.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("scheme must be http or https")),
    }
    let Some(authority) = base.authority() else {
        return Err(invalid("no host"));
    };
    if authority.host().is_empty() {
        return Err(invalid("no host"));
    }
    // Credentials in the URL would be dropped silently by every request, or leak
    // into logs: refused, not ignored.
    if let Some((_, host)) = authority.as_str().rsplit_once('@') {
        // Shown without them: the error would print the password otherwise.
        let scheme = base.scheme_str().unwrap_or("http");
        return Err(ConfigError::InvalidEndpoint {
            endpoint: format!("{scheme}://…@{host}"),
            why: "must not carry a user name or password",
        });
    }
    // `http::Uri` reads any digits as a port; a port is 1 to 65535.
    if let Some(port) = authority.as_str().rsplit_once(':').map(|(_, p)| p)
        && !authority.as_str().ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(invalid("port must be 1 to 65535"));
    }
    if base.query().is_some() || endpoint.contains('#') {
        return Err(invalid("must not have a query or fragment"));
    }
    let joined = format!("{}/v1/report", endpoint.trim_end_matches('/'));
    joined.parse().map_err(|_| invalid("not a URL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_defaults_match_the_spec() {
        let config = Config::new("app", "http://localhost:1");
        assert!(!config.jwt_enabled);
        assert_eq!(config.environment, Environment::Live);
        assert!(config.integration_validator);
        assert_eq!(config.batch_max_events, 100);
        assert_eq!(config.batch_max_bytes, 128 * 1024);
        assert_eq!(config.flush_interval, Duration::from_secs(20));
        assert_eq!(config.max_pending_events, 10_000);
        assert_eq!(config.max_auth_failures, 10);
        assert_eq!(config.backoff_base, Duration::from_secs(1));
        assert_eq!(config.backoff_cap, Duration::from_secs(300));
        assert_eq!(config.refresh_ahead, Duration::from_secs(60));
    }

    #[test]
    fn c1_an_endpoint_with_a_bad_port_or_credentials_is_refused() {
        for (endpoint, why) in [
            ("http://127.0.0.1:99999", "port must be 1 to 65535"),
            ("http://127.0.0.1:0", "port must be 1 to 65535"),
            ("http://127.0.0.1:", "port must be 1 to 65535"),
        ] {
            assert_eq!(
                Config::new("app", endpoint).validate(),
                Err(ConfigError::InvalidEndpoint {
                    endpoint: endpoint.to_owned(),
                    why
                }),
                "{endpoint}"
            );
        }
        for endpoint in ["https://user:secret@h.example", "https://user@h.example/x"] {
            let refused = Config::new("app", endpoint).validate().unwrap_err();
            assert_eq!(
                refused,
                ConfigError::InvalidEndpoint {
                    endpoint: "https://…@h.example".to_owned(),
                    why: "must not carry a user name or password"
                }
            );
            assert!(!refused.to_string().contains("secret"));
        }
        for fine in [
            "http://127.0.0.1:1",
            "http://127.0.0.1:65535",
            "https://[::1]",
            "https://[::1]:8443",
        ] {
            assert!(Config::new("app", fine).validate().is_ok(), "{fine}");
        }
    }

    #[test]
    fn c1_report_uri_joins_the_path() {
        let valid = Config::new("app", "https://h.example/base/")
            .validated()
            .unwrap();
        assert_eq!(valid.report_uri, "https://h.example/base/v1/report");
    }

    #[test]
    fn c1_invalid_configs_are_typed_errors() {
        let base = Config::new("app", "http://localhost:1");
        assert_eq!(
            Config::new("", "http://x").validate(),
            Err(ConfigError::EmptyAppId)
        );
        assert_eq!(
            Config::new("a b", "http://x").validate(),
            Err(ConfigError::InvalidAppId)
        );
        for endpoint in ["", "ftp://x", "/relative", "http://x/?q=1", "http://x/#f"] {
            assert!(
                matches!(
                    Config::new("app", endpoint).validate(),
                    Err(ConfigError::InvalidEndpoint { .. })
                ),
                "{endpoint}"
            );
        }
        let bad = [
            base.clone().with_batch_limits(0, 2048),
            base.clone().with_batch_limits(10, 10),
            base.clone().with_flush_interval(Duration::ZERO),
            base.clone().with_max_pending_events(0),
            base.clone().with_max_auth_failures(0),
            base.clone()
                .with_backoff(Duration::from_secs(2), Duration::from_secs(1)),
            base.with_backoff(Duration::ZERO, Duration::from_secs(1)),
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(ConfigError::OutOfRange { .. })),
                "{config:?}"
            );
        }
    }
}
