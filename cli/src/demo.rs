//! `authsync demo`: the main job. An embedded reference server on loopback, and a
//! realistic session against it through the blocking driver, printed as a timeline:
//! what the app did, what was sent, what the server answered, what the listener heard.
//!
//! The app's backend is simulated by a token provider that signs tokens with the
//! reference server's test key. Timers are shortened (flush every 300 ms, backoff from
//! 100 ms, lockout after 5 failures) so the whole story takes seconds.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authsync_blocking::{
    Client, Config, Environment, Event, JwtAuthenticationDetails, Owner, Totals, WorkspaceOptions,
};
use authsync_refserver::mint::{Claims, MintOptions, mint};
use authsync_refserver::{Clock, Enforcement, Fault, FaultResponse, RefServer, ServerConfig, keys};
use serde_json::json;

const APP_ID: &str = "demo-app";
const WAIT: Duration = Duration::from_secs(10);

/// What the demo did, for its test and its last lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoSummary {
    /// The client's totals at the end.
    pub totals: Totals,
    /// Events the server accepted for the demo's app id.
    pub server_accepted: usize,
    /// Codes the authentication listener heard, in order.
    pub heard: Vec<String>,
    /// Whether a lockout began.
    pub locked_out: bool,
    /// Events deleted after a logged-out user's 401.
    pub purged: u64,
    /// Wall time of the whole demo.
    pub elapsed: Duration,
}

/// A demo that could not run.
#[derive(Debug)]
pub struct DemoError(String);

impl Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(what: &str) -> impl FnOnce(&dyn Display) -> DemoError + '_ {
    move |e| DemoError(format!("{what}: {e}"))
}

/// `authsync demo`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    if !args.is_empty() {
        println!(
            "authsync demo: no options; it starts a reference server on loopback and runs a session against it"
        );
        return if args.iter().any(|a| a == "--help" || a == "-h") {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    let timeline = Timeline::new(std::io::stdout());
    match run(&timeline) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authsync demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `  1.234s  who       what`.
#[derive(Clone)]
pub struct Timeline {
    start: Instant,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Timeline {
    /// A timeline written to `out`, its clock starting now.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            start: Instant::now(),
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    fn say(&self, who: &str, what: impl Display) {
        let at = self.start.elapsed().as_secs_f64();
        self.line(&format!("{at:>8.3}s  {who:<9} {what}"));
    }

    fn chapter(&self, title: &str) {
        self.line(&format!("\n── {title}"));
    }
}

/// The app's backend: signs tokens with the key the server trusts, unless it is
/// misconfigured; its clock can be set to agree with a server whose clock runs ahead.
struct Backend {
    misconfigured: AtomicBool,
    clock_offset_secs: AtomicI64,
    minted: AtomicU64,
}

impl Backend {
    fn token_for(&self, identifier: &str) -> Option<String> {
        let now = unix_now() + self.clock_offset_secs.load(Ordering::SeqCst);
        let key = if self.misconfigured.load(Ordering::SeqCst) {
            keys::rsa_b()
        } else {
            keys::rsa_a()
        };
        // A token id makes every token distinct, as real backends' do: a token equal to
        // one the server rejected would be ignored by the client (A2).
        let serial = self.minted.fetch_add(1, Ordering::SeqCst);
        let claims = Claims::for_subject(identifier)
            .iat(now)
            .exp(now + 600)
            .claim("jti", json!(format!("demo-{serial}")));
        mint(&key, &claims, &MintOptions::new()).ok()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn owner_label(owner: &Owner) -> String {
    match owner {
        Owner::Anonymous(id) => format!("anonymous {}", id.chars().take(13).collect::<String>()),
        Owner::Identified(id) => id.clone(),
    }
}

fn batch_label(batch_id: &str) -> String {
    format!("#{}", batch_id.rsplit('-').next().unwrap_or(batch_id))
}

fn narrate(timeline: &Timeline, event: &Event) {
    match event {
        Event::Sent {
            batch_id,
            owner,
            events,
            token_prefix: token,
        } => timeline.say(
            "sent",
            format!(
                "batch {} — {events} event(s) of {}, {}",
                batch_label(batch_id),
                owner_label(owner),
                token
                    .as_ref()
                    .map_or("no token".to_owned(), |t| format!("Bearer {t}"))
            ),
        ),
        Event::Answered {
            batch_id,
            status,
            summary,
        } => {
            timeline.say(
                "server",
                format!("{status} for batch {} {summary}", batch_label(batch_id)),
            );
        }
        Event::TransportFailed { batch_id, failure } => {
            timeline.say(
                "network",
                format!(
                    "no answer for batch {} ({failure:?}); backing off",
                    batch_label(batch_id)
                ),
            );
        }
        Event::Acked(ack) => timeline.say(
            "acked",
            format!(
                "batch {} ({} event(s){})",
                batch_label(&ack.batch_id),
                ack.events,
                if ack.duplicate {
                    ", the server had it already"
                } else {
                    ""
                }
            ),
        ),
        Event::Dropped(drop) => timeline.say(
            "dropped",
            format!(
                "{} event(s) of {}: {}",
                drop.events,
                owner_label(&drop.owner),
                drop.reason
            ),
        ),
        Event::LockedOut => timeline.say(
            "lockout",
            "too many authentication failures: nothing is sent until the next session",
        ),
        Event::TokenFetchFailed { identifier, reason } => {
            timeline.say("backend", format!("no token for {identifier}: {reason}"));
        }
        Event::Storage(notice) => timeline.say("storage", notice.to_string()),
        _ => {}
    }
}

/// Runs the demo, narrating to `timeline`.
///
/// # Errors
/// [`DemoError`] when the server or the client cannot start, or the story does not
/// end as it should (the server's count disagrees with the client's).
pub fn run(timeline: &Timeline) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    let server = RefServer::start(
        ServerConfig::new()
            .with_key(keys::rsa_a().verify_key())
            .enforcement(Enforcement::Required)
            .access_log(false),
    )
    .map_err(|e| fail("cannot start the reference server")(&e))?;
    let admin = server.admin();
    let state = tempfile::tempdir().map_err(|e| fail("cannot create a state directory")(&e))?;
    timeline.line(&format!(
        "authsync demo — reference server on {} (JWT required, RS256 test key); state in {}",
        server.url(),
        state.path().display()
    ));

    let backend = Arc::new(Backend {
        misconfigured: AtomicBool::new(false),
        clock_offset_secs: AtomicI64::new(0),
        minted: AtomicU64::new(0),
    });
    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let locked_out = Arc::new(AtomicBool::new(false));
    let purged = Arc::new(AtomicU64::new(0));

    let config = Config::new(APP_ID, server.url())
        .with_jwt(true)
        .with_environment(Environment::Test)
        .with_flush_interval(Duration::from_millis(300))
        .with_batch_limits(4, 128 * 1024)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .with_max_auth_failures(5);
    let provider_backend = Arc::clone(&backend);
    let provider_timeline = timeline.clone();
    let listener_timeline = timeline.clone();
    let listener_heard = Arc::clone(&heard);
    let observer_timeline = timeline.clone();
    let observer_locked = Arc::clone(&locked_out);
    let observer_purged = Arc::clone(&purged);
    let options = WorkspaceOptions::new(config)
        .state_dir(state.path())
        .seed(2024)
        .authentication_listener(move |notice| {
            listener_heard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(notice.code.to_string());
            listener_timeline.say(
                "listener",
                format!(
                    "heard {} for {}: {} (token {})",
                    notice.code,
                    notice.identifier.as_deref().unwrap_or("anonymous data"),
                    notice.message,
                    notice
                        .token
                        .as_ref()
                        .map_or("none".to_owned(), ToString::to_string)
                ),
            );
        })
        .token_provider(authsync_blocking::provider(move |request| {
            let token = provider_backend.token_for(&request.identifier);
            provider_timeline.say(
                "backend",
                format!(
                    "minted a new token for {} (asked after {})",
                    request.identifier, request.code
                ),
            );
            token
        }))
        .observer(move |event| {
            match event {
                Event::LockedOut => observer_locked.store(true, Ordering::SeqCst),
                Event::Dropped(drop) => {
                    observer_purged.fetch_add(drop.events, Ordering::SeqCst);
                }
                _ => {}
            }
            narrate(&observer_timeline, event);
        });
    let client = Client::start(options).map_err(|e| fail("cannot start the client")(&e))?;
    let app = |what: &str| timeline.say("app", what);
    let track = |name: &str, attrs: serde_json::Value| -> Result<(), DemoError> {
        app(&format!("track {name} {attrs}"));
        client.track(name, &attrs).map_err(|e| fail("track")(&e))?;
        Ok(())
    };
    let settle = || client.flush_and_wait(WAIT).map_err(|e| fail("flush")(&e));

    timeline.chapter("1. Anonymous browsing: no token, no Authorization header");
    app("session start");
    client.session_start().map_err(|e| fail("session")(&e))?;
    track("app_open", json!({"cold_start": true}))?;
    track("screen_view", json!({"screen": "home"}))?;
    track("screen_view", json!({"screen": "catalog"}))?;
    settle()?;

    timeline.chapter("2. Login: the app identifies alice and passes her token");
    app("identify alice");
    let _ = client.identify("alice").map_err(|e| fail("identify")(&e))?;
    let token = backend
        .token_for("alice")
        .ok_or_else(|| DemoError("cannot mint a token".into()))?;
    app("pass_authentication_details(alice's token from the backend)");
    let _ = client
        .pass_authentication_details(&JwtAuthenticationDetails::new(token, "alice"))
        .map_err(|e| fail("token")(&e))?;
    track("login", json!({"method": "password"}))?;
    track("add_to_cart", json!({"sku": "B-42", "qty": 1}))?;
    settle()?;

    timeline.chapter("3. The server's clock runs an hour ahead: alice's token has expired there");
    admin.update_config(|c| c.clock = Clock::Offset(3600));
    backend.clock_offset_secs.store(3600, Ordering::SeqCst);
    track(
        "purchase",
        json!({"sku": "B-42", "amount": 19.9, "currency": "EUR"}),
    )?;
    settle()?;
    admin.update_config(|c| c.clock = Clock::System);
    backend.clock_offset_secs.store(0, Ordering::SeqCst);

    timeline.chapter(
        "4. A key rotation gone wrong: a burst of failures into lockout, then the next session",
    );
    backend.misconfigured.store(true, Ordering::SeqCst);
    let bad = backend
        .token_for("alice")
        .ok_or_else(|| DemoError("cannot mint a token".into()))?;
    app("pass_authentication_details(a token signed with the wrong key)");
    let _ = client
        .pass_authentication_details(&JwtAuthenticationDetails::new(bad, "alice"))
        .map_err(|e| fail("token")(&e))?;
    track("screen_view", json!({"screen": "orders"}))?;
    settle()?;
    timeline.say("app", format!("locked out: {}", client.is_locked_out()));
    backend.misconfigured.store(false, Ordering::SeqCst);
    timeline.say("backend", "the signing key is fixed");
    let good = backend
        .token_for("alice")
        .ok_or_else(|| DemoError("cannot mint a token".into()))?;
    app("pass_authentication_details(a fresh token, at the next launch)");
    let _ = client
        .pass_authentication_details(&JwtAuthenticationDetails::new(good, "alice"))
        .map_err(|e| fail("token")(&e))?;
    app("session start");
    client.session_start().map_err(|e| fail("session")(&e))?;
    settle()?;

    timeline
        .chapter("5. Server trouble: 503 with Retry-After, a dropped connection, a lost answer");
    admin.push_faults([
        Fault::Respond(FaultResponse::status(503).retry_after_secs(1)),
        Fault::close(),
        Fault::accept_then_fail(500),
    ]);
    track("screen_view", json!({"screen": "checkout"}))?;
    track("checkout_started", json!({"items": 1}))?;
    settle()?;

    timeline
        .chapter("6. Logout: alice's last batch is refused after she left, so her data is deleted");
    admin.push_fault(Fault::jwt_401("TIME_CONSTRAINT_FAILURE"));
    track("settings_opened", json!({}))?;
    track("logout_tapped", json!({}))?;
    let purged_before = purged.load(Ordering::SeqCst);
    app("logout");
    let _ = client.logout().map_err(|e| fail("logout")(&e))?;
    settle()?;
    let purged_at_logout = purged.load(Ordering::SeqCst) - purged_before;
    track("app_background", json!({}))?;
    settle()?;

    let reports = client.shutdown(WAIT);
    let totals = client.totals();
    let server_accepted = admin.accepted_count(APP_ID);
    timeline.chapter("Totals");
    timeline.line(&format!(
        "  client:  tracked {}  acked {}  dropped {}  pending {}",
        totals.tracked,
        totals.acked,
        totals.dropped,
        totals.pending()
    ));
    timeline.line(&format!(
        "  server:  accepted {server_accepted} event(s) for {APP_ID}, {} duplicate answer(s)",
        admin.duplicate_count()
    ));
    let consistent = u64::try_from(server_accepted).is_ok_and(|n| n == totals.acked)
        && totals.pending() == 0
        && reports.iter().all(|(_, report)| report.settled);
    timeline.line(if consistent {
        "  the server's own count confirms every acknowledged event, and nothing is pending"
    } else {
        "  MISMATCH between the client and the server"
    });
    if !consistent {
        return Err(DemoError(
            "the server's count does not match the client's".into(),
        ));
    }
    let heard = heard.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Ok(DemoSummary {
        totals,
        server_accepted,
        heard,
        locked_out: locked_out.load(Ordering::SeqCst),
        purged: purged_at_logout,
        elapsed: started.elapsed(),
    })
}
