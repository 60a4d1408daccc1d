//! Helpers shared by the integration tests: a server with a fixed clock, a report
//! builder, and a ureq client that returns every status as a plain answer.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use authsync_refserver::keys::{self, TestKey};
use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{Clock, RefServer, ServerConfig};
use serde_json::{Value, json};

/// The fixed server clock of these tests.
pub const NOW: i64 = 1_700_000_000;

/// A server trusting the three test keys (with kids), enforcement required, clock at NOW.
pub fn server() -> RefServer {
    start(base_config())
}

pub fn base_config() -> ServerConfig {
    ServerConfig::default()
        .with_test_keys()
        .clock(Clock::Fixed(NOW))
}

pub fn start(config: ServerConfig) -> RefServer {
    RefServer::start(config).expect("server starts")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A token for `sub` by `key`, valid at NOW (exp NOW + 600, iat NOW).
pub fn token_by(key: &TestKey, sub: &str) -> String {
    mint(
        key,
        &Claims::for_subject(sub).exp(NOW + 600).iat(NOW),
        &MintOptions::default(),
    )
    .expect("mint")
}

/// A token for `sub` by rsa_a.
pub fn token(sub: &str) -> String {
    token_by(&keys::rsa_a(), sub)
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The JWT error code of a 401 body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {}", self.body))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a 401 with this code.
    pub fn assert_jwt(&self, code: &str) {
        assert_eq!(self.status, 401, "body: {}", self.body);
        assert_eq!(self.json()["error"]["type"], "jwt");
        assert_eq!(self.code(), code, "body: {}", self.body);
    }

    /// Asserts a 200 accepting `n` events, `duplicate` as given.
    pub fn assert_ok(&self, accepted: u64, duplicate: bool) {
        assert_eq!(self.status, 200, "body: {}", self.body);
        assert_eq!(
            self.json(),
            json!({"status": "ok", "accepted": accepted, "duplicate": duplicate})
        );
    }
}

fn read(mut response: http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str) -> Reply {
    read(agent().get(url).call().expect("GET answered"))
}

pub fn post_json(url: &str, body: &Value) -> Reply {
    read(
        agent()
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .expect("POST answered"),
    )
}

/// A report request under construction.
#[derive(Clone, Debug)]
pub struct Report {
    pub batch_id: String,
    pub app_id: String,
    pub user_type: String,
    pub user_id: String,
    pub events: usize,
    pub headers: Vec<(String, String)>,
    pub omit: Vec<String>,
    pub body: Option<Vec<u8>>,
}

impl Report {
    fn new(user_type: &str, user_id: &str) -> Self {
        Self {
            batch_id: "batch-1".to_owned(),
            app_id: "app-1".to_owned(),
            user_type: user_type.to_owned(),
            user_id: user_id.to_owned(),
            events: 2,
            headers: Vec::new(),
            omit: Vec::new(),
            body: None,
        }
    }

    pub fn identified(id: &str) -> Self {
        Self::new("identified", id)
    }

    pub fn anonymous(id: &str) -> Self {
        Self::new("anonymous", id)
    }

    pub fn batch(mut self, id: &str) -> Self {
        self.batch_id = id.to_owned();
        self
    }

    pub fn app(mut self, id: &str) -> Self {
        self.app_id = id.to_owned();
        self
    }

    pub fn events(mut self, n: usize) -> Self {
        self.events = n;
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Leaves out one of the default headers (Content-Type, X-App-Id, Idempotency-Key).
    pub fn omit(mut self, name: &str) -> Self {
        self.omit.push(name.to_ascii_lowercase());
        self
    }

    /// Sends these bytes instead of the built body (headers stay).
    pub fn raw_body(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    pub fn body_json(&self) -> Value {
        let events: Vec<Value> = (1..=self.events)
            .map(|i| json!({"seq": i, "name": format!("event-{i}"), "ts_ms": 1_700_000_000_000_i64 + i as i64, "attrs": {"i": i}}))
            .collect();
        json!({
            "batch_id": self.batch_id,
            "app_id": self.app_id,
            "user": {"type": self.user_type, "id": self.user_id},
            "events": events,
        })
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        self.body
            .clone()
            .unwrap_or_else(|| self.body_json().to_string().into_bytes())
    }

    pub fn try_send(&self, server: &RefServer) -> Result<Reply, ureq::Error> {
        let mut request = agent().post(server.report_url());
        for (name, value) in [
            ("content-type", "application/json"),
            ("x-app-id", self.app_id.as_str()),
            ("idempotency-key", self.batch_id.as_str()),
        ] {
            if !self.omit.iter().any(|o| o == name) {
                request = request.header(name, value);
            }
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request.send(&self.body_bytes()[..]).map(read)
    }

    pub fn send(&self, server: &RefServer) -> Reply {
        self.try_send(server).expect("the server answers")
    }
}
