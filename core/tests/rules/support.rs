//! A test driver for the core: feeds inputs at chosen times, keeps the journal the core
//! asks for, and reduces actions to what a user would check.
#![allow(dead_code)]

use std::collections::BTreeMap;

use authsync_core::{
    Client, Config, Event, FetchId, FsyncPolicy, Now, Owner, PreviousRun, Request, RequestId,
    Snapshot, Step, Storage, StorageFailure, StorageFailureKind, StoragePolicy, StoredSegment,
    StoredState, TokenFetch, TransportFailure,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::json;

/// Wall clock at the harness's start: 2023-11-14T22:13:20Z.
pub const T0_UNIX_MS: u64 = 1_700_000_000_000;

/// What an output means to a user, with nothing that varies between runs by design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Send {
        batch_id: String,
        owner: Owner,
        events: usize,
        bearer: Option<String>,
    },
    Notice {
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
    /// The token provider is asked for a token (R2).
    Fetch {
        identifier: String,
        code: String,
    },
    /// A fetch is stopped (R2).
    CancelFetch,
    /// A fetch gave nothing usable (R2).
    FetchFailed {
        identifier: String,
        reason: String,
    },
    /// Storage failed, healed or found damage (D4, D5).
    Storage(String),
    /// A compaction (or the rewrite that heals a failure) ran.
    Compacted,
    /// The client closed.
    Finish {
        clean: bool,
    },
}

/// A store in memory: the journal segments and the snapshot a host would keep.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    pub segments: BTreeMap<u64, Vec<u8>>,
    pub snapshot: Option<Vec<u8>>,
}

impl MemoryStore {
    /// What a host would read back from this store.
    pub fn stored(&self) -> StoredState {
        StoredState {
            snapshot: self
                .snapshot
                .clone()
                .map(|bytes| Snapshot::from_bytes(bytes).map_err(|e| e.to_string())),
            segments: self
                .segments
                .iter()
                .map(|(&number, bytes)| StoredSegment {
                    number,
                    bytes: Bytes::from(bytes.clone()),
                })
                .collect(),
            previous_run: PreviousRun::Clean,
            fresh_seed: 0xF4E5_0000,
        }
    }

    /// Every journal byte, segments in order.
    pub fn journal(&self) -> Vec<u8> {
        self.segments.values().flatten().copied().collect()
    }
}

pub struct Harness {
    pub client: Client,
    pub config: Config,
    pub now: Now,
    pub store: MemoryStore,
    pub requests: Vec<Request>,
    pub fetches: Vec<TokenFetch>,
    /// While set, every write fails this way (after appending `torn` of its bytes).
    pub write_failure: Option<(StorageFailure, usize)>,
    /// While set, every sync and compaction fails this way.
    pub disk_failure: Option<StorageFailure>,
}

/// A failure of the kind a full disk gives.
pub fn disk_full() -> StorageFailure {
    StorageFailure {
        kind: StorageFailureKind::NoSpace,
        message: "No space left on device (os error 28)".into(),
    }
}

/// The harness's storage: a durable store synced with every write, so that every
/// input's outputs come out before the harness returns.
pub fn durable() -> Storage {
    Storage::Durable(StoragePolicy {
        fsync: FsyncPolicy::Always,
        ..StoragePolicy::default()
    })
}

pub fn config() -> Config {
    Config::new("app-test", "http://127.0.0.1:9")
        .with_seed(42)
        .with_storage(durable())
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
        let mut harness = Self::around(client, config, now, MemoryStore::default());
        let seen = harness.drain();
        assert!(
            seen.is_empty(),
            "a new client only persists its install: {seen:?}"
        );
        harness
    }

    /// A harness around a client made elsewhere, with an empty store.
    pub fn around_client(client: Client, config: Config, now: Now) -> Self {
        Self::around(client, config, now, MemoryStore::default())
    }

    fn around(client: Client, config: Config, now: Now, store: MemoryStore) -> Self {
        Self {
            client,
            config,
            now,
            store,
            requests: Vec::new(),
            fetches: Vec::new(),
            write_failure: None,
            disk_failure: None,
        }
    }

    /// Carries out every output, as a host would, until there is none; keeps the
    /// store, requests and fetches; returns what a user sees, events before the work
    /// each round handed out.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(job) = self.client.poll_write() {
                progressed = true;
                let segment = self.store.segments.entry(job.segment).or_default();
                let result = match &self.write_failure {
                    Some((failure, torn)) => {
                        segment.extend_from_slice(&job.frames[..(*torn).min(job.frames.len())]);
                        Err(failure.clone())
                    }
                    None => {
                        segment.extend_from_slice(&job.frames);
                        Ok(())
                    }
                };
                self.client
                    .handle_written(self.now, job.id, result)
                    .expect("the write job out");
            }
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                seen.extend(seen_of(event));
            }
            while let Some(step) = self.client.poll_step() {
                progressed = true;
                match step {
                    Step::Send(request) => {
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
                    Step::FetchToken(fetch) => {
                        seen.push(Seen::Fetch {
                            identifier: fetch.identifier.clone(),
                            code: fetch.code.as_str().to_owned(),
                        });
                        self.fetches.push(fetch);
                    }
                    Step::CancelFetch(_) => seen.push(Seen::CancelFetch),
                    Step::Sync(job) => {
                        let result = self.disk_failure.clone().map_or(Ok(()), Err);
                        self.client
                            .handle_synced(self.now, job.id, result)
                            .expect("the sync job out");
                    }
                    Step::Compact(job) => {
                        let result = match &self.disk_failure {
                            Some(failure) => Err(failure.clone()),
                            None => {
                                let snapshot = job.snapshot();
                                let size = snapshot.as_bytes().len() as u64;
                                self.store.snapshot = Some(snapshot.as_bytes().to_vec());
                                self.store.segments.retain(|&n, _| n >= job.first_segment);
                                Ok(size)
                            }
                        };
                        seen.push(Seen::Compacted);
                        self.client
                            .handle_compacted(self.now, job.id, result)
                            .expect("the compaction out");
                    }
                    Step::Finish { clean } => seen.push(Seen::Finish { clean }),
                    other => panic!("unexpected step {other:?}"),
                }
            }
            if !progressed {
                return seen;
            }
        }
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

    /// A client recovered from this harness's store, at the harness's time.
    pub fn restored(&self) -> Client {
        self.restarted().client
    }

    /// A harness around a client recovered from this harness's store (a restart), its
    /// outputs not drained yet.
    pub fn restarted(&self) -> Self {
        self.restarted_at(self.now)
    }

    /// Like [`Harness::restarted`], at `now`.
    pub fn restarted_at(&self, now: Now) -> Self {
        let (client, report) =
            Client::recover(self.config.clone(), now, self.store.stored()).expect("recoverable");
        assert!(report.is_clean(), "{report}");
        Self::around(client, self.config.clone(), now, self.store.clone())
    }

    /// Answers the last token fetch.
    pub fn answer_fetch(&mut self, answer: authsync_core::TokenAnswer) -> Vec<Seen> {
        let id = self.fetches.last().expect("a fetch ran").id;
        self.answer_fetch_id(id, answer)
    }

    pub fn answer_fetch_id(
        &mut self,
        id: FetchId,
        answer: authsync_core::TokenAnswer,
    ) -> Vec<Seen> {
        let _ = self
            .client
            .handle_token_answer(self.now, id, answer)
            .expect("the fetch runs");
        self.drain()
    }

    pub fn batch_id(&self, number: u64) -> String {
        format!("{}-{number}", self.client.install_id())
    }
}

/// A client's whole state as bytes, without what says where its journal goes on
/// (a restart begins a new segment).
pub fn state_bytes(client: &Client) -> Vec<u8> {
    let mut bytes = client.snapshot().as_bytes().to_vec();
    bytes[13..25].fill(0);
    bytes
}

/// What a user sees of an event; nothing for the observers' timeline.
pub fn seen_of(event: Event) -> Option<Seen> {
    Some(match event {
        Event::Notice(notice) => Seen::Notice {
            code: notice.code.as_str().to_owned(),
            identifier: notice.identifier.clone(),
            token: notice.token.as_ref().map(|t| t.expose().to_owned()),
        },
        Event::Dropped(drop) => Seen::Dropped {
            reason: drop.reason.as_str(),
            events: drop.events,
        },
        Event::Acked(ack) => Seen::Acked {
            batch_id: ack.batch_id,
            events: ack.events,
        },
        Event::LockedOut => Seen::LockedOut,
        Event::TokenFetchFailed { identifier, reason } => Seen::FetchFailed {
            identifier,
            reason: reason.to_string(),
        },
        Event::Storage(notice) => Seen::Storage(notice.to_string()),
        _ => return None,
    })
}

pub fn send(batch_id: String, owner: Owner, events: usize, bearer: Option<&str>) -> Seen {
    Seen::Send {
        batch_id,
        owner,
        events,
        bearer: bearer.map(|t| format!("Bearer {t}")),
    }
}

pub fn notice(code: &str, identifier: Option<&str>, token: Option<&str>) -> Seen {
    Seen::Notice {
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
