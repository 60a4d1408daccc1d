//! Server configuration: keys, enforcement, leeway, body limit, clock, bind address.
//!
//! Everything but `bind` can be changed while the server runs (through
//! [`crate::Admin::set_config`] or `PATCH /admin/config`); each request reads the
//! configuration once, when it arrives.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keys::TestKey;
use crate::verify_key::VerifyKey;

/// The default leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// The default body limit: 512 KiB, four times the clients' default batch size.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;

/// Whether identified batches must carry a valid token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Enforcement {
    /// Tokens are ignored entirely.
    Disabled,
    /// Identified batches need a valid token; anonymous batches never do.
    #[default]
    Required,
}

impl Enforcement {
    /// `disabled` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An enforcement name other than `disabled` or `required`.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode {0:?} (expected disabled or required)")]
pub struct ParseEnforcementError(String);

impl FromStr for Enforcement {
    type Err = ParseEnforcementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disabled" => Ok(Self::Disabled),
            "required" => Ok(Self::Required),
            other => Err(ParseEnforcementError(other.to_owned())),
        }
    }
}

/// The server's "now" for the `exp`, `nbf` and `iat` checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always this Unix time, in seconds (deterministic time-edge tests).
    Fixed(i64),
    /// The system clock shifted by this many seconds (a skewed server).
    Offset(i64),
}

impl Clock {
    /// The current Unix time in seconds by this clock.
    pub fn now_unix(self) -> i64 {
        match self {
            Self::System => system_now(),
            Self::Fixed(secs) => secs,
            Self::Offset(delta) => system_now().saturating_add(delta),
        }
    }
}

fn system_now() -> i64 {
    // A system clock before 1970 is a broken machine; 0 keeps the server answering.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Everything the server is configured with.
///
/// ```
/// use authsync_refserver::{keys, Clock, Enforcement, ServerConfig};
/// let config = ServerConfig::default()
///     .with_keys([keys::rsa_a(), keys::rsa_b()])
///     .enforcement(Enforcement::Required)
///     .leeway_secs(10)
///     .clock(Clock::Fixed(1_700_000_000));
/// assert_eq!(config.keys.len(), 2);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen; read only at start. Default `127.0.0.1:0` (the OS picks a port).
    pub bind: SocketAddr,
    /// The trusted public keys.
    pub keys: Vec<VerifyKey>,
    /// Token enforcement. Default [`Enforcement::Required`].
    pub enforcement: Enforcement,
    /// Leeway for `exp`, `nbf` and `iat`, in seconds. Default 30.
    pub leeway_secs: u64,
    /// Bodies longer than this get 413. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The clock for the time checks. Default [`Clock::System`].
    pub clock: Clock,
    /// Serve the `/admin/*` routes (to loopback peers only). Default true.
    pub admin_routes: bool,
    /// Write one line per request to stderr (no tokens). Default false.
    pub access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            keys: Vec::new(),
            enforcement: Enforcement::Required,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Clock::System,
            admin_routes: true,
            access_log: false,
        }
    }
}

impl ServerConfig {
    /// The defaults: loopback, any port, no keys, enforcement required, 30 s leeway.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds these keys (a [`TestKey`] converts with its `kid`).
    #[must_use]
    pub fn with_keys<K: Into<VerifyKey>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Adds one key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<VerifyKey>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Adds the three checked-in TEST keys, with their `kid`s.
    #[must_use]
    pub fn with_test_keys(self) -> Self {
        self.with_keys(crate::keys::all().iter().map(TestKey::verify_key))
    }

    /// Sets the enforcement.
    #[must_use]
    pub fn enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }

    /// Sets the leeway, in seconds.
    #[must_use]
    pub fn leeway_secs(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// Sets the body limit, in bytes.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the bind address.
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets the port, keeping the bind IP.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.bind.set_port(port);
        self
    }

    /// Serves the admin routes or not.
    #[must_use]
    pub fn admin_routes(mut self, on: bool) -> Self {
        self.admin_routes = on;
        self
    }

    /// Writes an access log line per request to stderr, or not.
    #[must_use]
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }
}
