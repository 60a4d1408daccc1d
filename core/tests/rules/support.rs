//! A test driver for the core: feeds inputs at chosen times, keeps the journal the core
//! asks for, and reduces actions to what a user would check.
#![allow(dead_code)]

use authsync_core::{
    Action, Client, Config, Now, Owner, Record, Request, RequestId, TransportFailure,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::json;

/// Wall clock at the harness's start: 2023-11-14T22:13:20Z.
pub const T0_UNIX_MS: u64 = 1_700_000_000_000;

/// What an action means to a user, with nothing that varies between runs by design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Send {
        batch_id: String,
        owner: Owner,
        events: usize,
        bearer: Option<String>,
    },
    Notify {
        code: String,
        identifier: Option<String>,
        token: Option<String>,
    },
    Dropped {
        reason: &'static str,
        events: u64,
    },
    Acked {
        batch_id: String,
        events: usize,
    },
    LockedOut,
}

pub struct Harness {
    pub client: Client,
    pub config: Config,
    pub now: Now,
    pub journal: Vec<Record>,
    pub requests: Vec<Request>,
}

pub fn config() -> Config {
    Config::new("app-test", "http://127.0.0.1:9").with_seed(42)
}

pub fn jwt_config() -> Config {
    config().with_jwt(true)
}

/// A JWS-shaped token for `sub`, expiring at `exp` (Unix seconds); `n` tells tokens apart.
pub fn token(sub: &str, exp: u64, n: u32) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(json!({"sub": sub, "exp": exp, "n": n}).to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl{n}")
}

/// A token that expires a day after the harness's start.
pub fn good_token(sub: &str, n: u32) -> String {
    token(sub, T0_UNIX_MS / 1000 + 86_400, n)
}

pub fn anon(client: &Client) -> Owner {
    client.current_user().clone()
}

pub fn identified(id: &str) -> Owner {
    Owner::Identified(id.to_owned())
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let now = Now::new(1_000, T0_UNIX_MS);
        let client = Client::new(config.clone(), now).expect("valid config");
        let mut harness = Self {
            client,
            config,
            now,
            journal: Vec::new(),
            requests: Vec::new(),
        };
        let seen = harness.drain();
        assert!(
            seen.is_empty(),
            "a new client only persists its install: {seen:?}"
        );
        harness
    }

    /// Drains every action; keeps records and requests; returns what a user sees.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Some(action) = self.client.poll_action() {
            match action {
                Action::Persist(record) => self.journal.push(record),
                Action::Send(request) => {
                    seen.push(Seen::Send {
                        batch_id: request.batch_id.clone(),
                        owner: request.owner.clone(),
                        events: request.events,
                        bearer: request
                            .headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    });
                    self.requests.push(*request);
                }
                Action::Notify(notice) => seen.push(Seen::Notify {
                    code: notice.code.as_str().to_owned(),
                    identifier: notice.identifier.clone(),
                    token: notice.token.as_ref().map(|t| t.expose().to_owned()),
                }),
                Action::Dropped(drop) => seen.push(Seen::Dropped {
                    reason: drop.reason.as_str(),
                    events: drop.events,
                }),
                Action::Acked(ack) => seen.push(Seen::Acked {
                    batch_id: ack.batch_id,
                    events: ack.events,
                }),
                Action::LockedOut => seen.push(Seen::LockedOut),
                other => panic!("unexpected action {other:?}"),
            }
        }
        seen
    }

    pub fn advance(&mut self, ms: u64) -> Vec<Seen> {
        self.now = self.now.plus_ms(ms);
        self.client.handle_timeout(self.now);
        self.drain()
    }

    pub fn track(&mut self, name: &str) -> Vec<Seen> {
        self.client
            .handle_track(self.now, name, &json!({"k": name}))
            .expect("valid event");
        self.drain()
    }

    pub fn track_n(&mut self, n: usize) -> Vec<Seen> {
        let mut seen = Vec::new();
        for i in 0..n {
            seen.extend(self.track(&format!("e{i}")));
        }
        seen
    }

    pub fn identify(&mut self, id: &str) -> Vec<Seen> {
        let _ = self
            .client
            .handle_identify(self.now, id)
            .expect("valid identifier");
        self.drain()
    }

    pub fn pass_token(&mut self, token: &str, id: &str) -> Vec<Seen> {
        let _ = self
            .client
            .handle_authentication_details(self.now, token, id)
            .expect("valid token");
        self.drain()
    }

    pub fn flush(&mut self) -> Vec<Seen> {
        self.client.handle_flush(self.now);
        self.drain()
    }

    pub fn session_start(&mut self) -> Vec<Seen> {
        self.client.handle_session_start(self.now);
        self.drain()
    }

    pub fn logout(&mut self) -> Vec<Seen> {
        let _ = self.client.handle_logout(self.now);
        self.drain()
    }

    pub fn last_request(&self) -> &Request {
        self.requests.last().expect("a request was sent")
    }

    pub fn last_id(&self) -> RequestId {
        self.last_request().id
    }

    pub fn respond(&mut self, status: u16, headers: &[(&str, &str)], body: &str) -> Vec<Seen> {
        let id = self.last_id();
        self.respond_to(id, status, headers, body)
    }

    pub fn respond_to(
        &mut self,
        id: RequestId,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Vec<Seen> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .unwrap();
        self.client
            .handle_response(self.now, id, response)
            .expect("request in flight");
        self.drain()
    }

    pub fn ok(&mut self) -> Vec<Seen> {
        self.respond(
            200,
            &[],
            r#"{"status":"ok","accepted":1,"duplicate":false}"#,
        )
    }

    pub fn unauthorized(&mut self, code: &str) -> Vec<Seen> {
        let body = format!(r#"{{"error":{{"type":"jwt","code":"{code}","message":"nope"}}}}"#);
        self.respond(401, &[], &body)
    }

    pub fn transport_failure(&mut self) -> Vec<Seen> {
        let id = self.last_id();
        self.client
            .handle_transport_failure(self.now, id, TransportFailure::Connect)
            .expect("request in flight");
        self.drain()
    }

    /// A client restored from this harness's journal, at the harness's time.
    pub fn restored(&self) -> Client {
        Client::restore(self.config.clone(), self.now, None, self.journal.clone())
            .expect("restorable")
    }

    pub fn batch_id(&self, number: u64) -> String {
        format!("{}-{number}", self.client.install_id())
    }
}

pub fn send(batch_id: String, owner: Owner, events: usize, bearer: Option<&str>) -> Seen {
    Seen::Send {
        batch_id,
        owner,
        events,
        bearer: bearer.map(|t| format!("Bearer {t}")),
    }
}

pub fn notify(code: &str, identifier: Option<&str>, token: Option<&str>) -> Seen {
    Seen::Notify {
        code: code.to_owned(),
        identifier: identifier.map(str::to_owned),
        token: token.map(str::to_owned),
    }
}

pub fn acked(batch_id: String, events: usize) -> Seen {
    Seen::Acked { batch_id, events }
}

pub fn dropped(reason: &'static str, events: u64) -> Seen {
    Seen::Dropped { reason, events }
}
