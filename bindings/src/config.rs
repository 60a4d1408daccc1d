//! [`ClientConfig`]: the driver's `Config` and `WorkspaceOptions` as one record. Fields
//! left out keep the driver's defaults; the core checks every value when the client
//! starts.

use std::time::Duration;

use authsync_blocking::{Config, WorkspaceOptions};

/// Test or live workspace (V1): the original SDK's `initializeDefaultTestInstance` /
/// `initializeDefaultLiveInstance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Environment {
    /// Misuse is an error (while the integration validator is on).
    Test,
    /// Misuse is ignored and reported as ignored.
    Live,
}

impl From<Environment> for authsync_blocking::Environment {
    fn from(environment: Environment) -> Self {
        match environment {
            Environment::Test => Self::Test,
            Environment::Live => Self::Live,
        }
    }
}

/// How a client starts.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ClientConfig {
    /// The workspace's app id (sent as `X-App-Id`).
    pub app_id: String,
    /// Base URL of the ingestion server; batches go to `{endpoint}/v1/report`.
    pub endpoint: String,
    /// Test or live workspace.
    pub environment: Environment,
    /// Whether identified users' batches carry a JWT (S4).
    #[uniffi(default = false)]
    pub jwt_enabled: bool,
    /// Where the state lives (created if missing, private to the user); `None`: in
    /// memory only, lost when the client ends.
    #[uniffi(default = None)]
    pub state_dir: Option<String>,
    /// The seed of a new install (tests, reproducible runs); `None`: the OS's
    /// randomness. A state directory holding another seed is refused.
    #[uniffi(default = None)]
    pub seed: Option<u64>,
    /// Start a session when the client starts (SS1 leaves sessions to the app).
    #[uniffi(default = false)]
    pub session_on_launch: bool,
    /// The original SDK's `disableIntegrationValidator()`: misuse is ignored even in `Test`.
    #[uniffi(default = false)]
    pub disable_integration_validator: bool,
    /// Time after a batch's first event when it is sealed (S1); default 20 s.
    #[uniffi(default = None)]
    pub flush_interval_ms: Option<u64>,
    /// Events per batch before it is sealed (S1); default 100.
    #[uniffi(default = None)]
    pub batch_max_events: Option<u32>,
    /// Consecutive authentication failures in a session before a lockout (A3);
    /// default 10.
    #[uniffi(default = None)]
    pub max_auth_failures: Option<u32>,
    /// First backoff ceiling after a transient failure (A4); default 1 s.
    #[uniffi(default = None)]
    pub backoff_base_ms: Option<u64>,
    /// Largest backoff ceiling (A4); default 5 min.
    #[uniffi(default = None)]
    pub backoff_cap_ms: Option<u64>,
    /// How long the token provider may take (R2); default 30 s.
    #[uniffi(default = None)]
    pub token_timeout_ms: Option<u64>,
}

impl ClientConfig {
    /// The driver's options for this record (without listener, provider or transport).
    pub(crate) fn options(&self) -> WorkspaceOptions {
        let ms = Duration::from_millis;
        let mut config = Config::new(self.app_id.clone(), self.endpoint.clone())
            .with_jwt(self.jwt_enabled)
            .with_environment(self.environment.into());
        if let Some(interval) = self.flush_interval_ms {
            config = config.with_flush_interval(ms(interval));
        }
        if let Some(events) = self.batch_max_events {
            let bytes = config.batch_max_bytes;
            config = config.with_batch_limits(events, bytes);
        }
        if let Some(failures) = self.max_auth_failures {
            config = config.with_max_auth_failures(failures);
        }
        if self.backoff_base_ms.is_some() || self.backoff_cap_ms.is_some() {
            let base = self.backoff_base_ms.map_or(config.backoff_base, ms);
            let cap = self.backoff_cap_ms.map_or(config.backoff_cap, ms);
            config = config.with_backoff(base, cap);
        }
        let mut options = WorkspaceOptions::new(config).session_on_launch(self.session_on_launch);
        if self.disable_integration_validator {
            options = options.disable_integration_validator();
        }
        if let Some(dir) = &self.state_dir {
            options = options.state_dir(dir);
        }
        if let Some(seed) = self.seed {
            options = options.seed(seed);
        }
        if let Some(timeout) = self.token_timeout_ms {
            options = options.token_timeout(ms(timeout));
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig {
            app_id: "app-1".into(),
            endpoint: "http://127.0.0.1:9".into(),
            environment: Environment::Test,
            jwt_enabled: true,
            state_dir: Some("/tmp/x".into()),
            seed: Some(7),
            session_on_launch: true,
            disable_integration_validator: true,
            flush_interval_ms: Some(250),
            batch_max_events: Some(5),
            max_auth_failures: Some(3),
            backoff_base_ms: Some(10),
            backoff_cap_ms: None,
            token_timeout_ms: Some(1500),
        }
    }

    #[test]
    fn every_field_reaches_the_driver_options() {
        let options = config().options();
        let core = &options.config;
        assert_eq!((core.app_id.as_str(), core.jwt_enabled), ("app-1", true));
        assert_eq!(core.environment, authsync_blocking::Environment::Test);
        assert!(!core.integration_validator);
        assert_eq!(core.flush_interval, Duration::from_millis(250));
        assert_eq!(core.batch_max_events, 5);
        assert_eq!(core.max_auth_failures, 3);
        assert_eq!(core.backoff_base, Duration::from_millis(10));
        assert_eq!(core.backoff_cap, Config::new("a", "http://h").backoff_cap);
        assert_eq!(options.state_dir.as_deref(), Some("/tmp/x".as_ref()));
        assert_eq!(options.seed, Some(7));
        assert!(options.session_on_launch);
        assert_eq!(options.token_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn fields_left_out_keep_the_driver_defaults() {
        let bare = ClientConfig {
            environment: Environment::Live,
            jwt_enabled: false,
            state_dir: None,
            seed: None,
            session_on_launch: false,
            disable_integration_validator: false,
            flush_interval_ms: None,
            batch_max_events: None,
            max_auth_failures: None,
            backoff_base_ms: None,
            backoff_cap_ms: None,
            token_timeout_ms: None,
            ..config()
        };
        let options = bare.options();
        let defaults: WorkspaceOptions =
            WorkspaceOptions::new(Config::new("app-1", "http://127.0.0.1:9"));
        assert_eq!(options.config, defaults.config);
        assert_eq!(options.state_dir, None);
        assert_eq!(options.token_timeout, defaults.token_timeout);
    }
}
