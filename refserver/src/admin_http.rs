//! The admin HTTP routes, for out-of-process tests. Served to loopback peers only
//! (others get the ordinary 404), and not logged in the request log.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /admin/requests` | the request log |
//! | `GET /admin/events` | accepted events |
//! | `GET /admin/batches` | accepted batches |
//! | `GET /admin/stats` | counters |
//! | `GET /admin/faults` | waiting faults, described |
//! | `POST /admin/faults` | queue faults (see [`crate::Fault::list_from_json`]) |
//! | `DELETE /admin/faults` | drop waiting faults |
//! | `GET /admin/config` | the configuration |
//! | `PATCH /admin/config` | change it (also `POST`, `PUT`) |
//! | `POST /admin/reset` | forget data, dedupe store, faults |
//! | `POST /admin/shutdown` | stop the server |
//! | `POST /admin/mint` | a token signed by a TEST key (see [`mint_json`]) |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::admin::Admin;
use crate::config::{Clock, Enforcement, ServerConfig};
use crate::faults::Fault;
use crate::keys;
use crate::mint::{Claims, MintOptions, mint};
use crate::report::Outcome;
use crate::state::Shared;
use crate::verify_key::VerifyKey;

const ROUTES: [&str; 9] = [
    "/admin/requests",
    "/admin/events",
    "/admin/batches",
    "/admin/stats",
    "/admin/faults",
    "/admin/config",
    "/admin/reset",
    "/admin/shutdown",
    "/admin/mint",
];

pub(crate) fn handle(shared: &Arc<Shared>, method: &Method, path: &str, body: &[u8]) -> Outcome {
    let admin = Admin::new(Arc::clone(shared));
    match (method.as_str(), path) {
        ("GET", "/admin/requests") => ok(&admin.request_log()),
        ("GET", "/admin/events") => ok(&admin.accepted_events()),
        ("GET", "/admin/batches") => ok(&admin.accepted_batches()),
        ("GET", "/admin/stats") => ok(&admin.stats()),
        ("GET", "/admin/faults") => ok(&faults_json(&admin)),
        ("POST", "/admin/faults") => {
            match parse_json(body).and_then(|v| Fault::list_from_json(&v)) {
                Ok(faults) => {
                    let queued = faults.len();
                    admin.push_faults(faults);
                    ok(&json!({"queued": queued, "pending": admin.pending_faults().len()}))
                }
                Err(message) => bad_request(&message),
            }
        }
        ("DELETE", "/admin/faults") => {
            admin.clear_faults();
            ok(&json!({"pending": 0}))
        }
        ("GET", "/admin/config") => ok(&config_json(&admin.config())),
        ("PATCH" | "POST" | "PUT", "/admin/config") => {
            match parse_json(body).and_then(|v| patched(admin.config(), &v)) {
                Ok(config) => {
                    admin.set_config(config);
                    ok(&config_json(&admin.config()))
                }
                Err(message) => bad_request(&message),
            }
        }
        ("POST", "/admin/reset") => {
            admin.reset();
            ok(&json!({"status": "ok"}))
        }
        ("POST", "/admin/mint") => match parse_json(body).and_then(|v| mint_json(&admin, &v)) {
            Ok(minted) => ok(&minted),
            Err(message) => bad_request(&message),
        },
        ("POST", "/admin/shutdown") => {
            admin.request_shutdown();
            ok(&json!({"status": "stopping"}))
        }
        (_, route) if ROUTES.contains(&route) => Outcome::error(
            405,
            "method_not_allowed",
            &format!("{method} is not served on {route}"),
        ),
        _ => Outcome::error(404, "not_found", &format!("no admin route {path}")),
    }
}

fn ok(value: &impl Serialize) -> Outcome {
    match serde_json::to_vec(value) {
        Ok(body) => Outcome::json(200, body),
        Err(err) => Outcome::error(500, "internal", &err.to_string()),
    }
}

fn bad_request(message: &str) -> Outcome {
    Outcome::error(400, "invalid_request", message)
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))
}

/// Tokens minted over HTTP so far: each carries a `jti` of its own, so that two
/// tokens for the same subject always differ (a new token after a rejected one).
static MINTED: AtomicU64 = AtomicU64::new(0);

/// `POST /admin/mint`: a token for a process that cannot sign itself (tests of the
/// Python bindings), signed with a checked-in TEST key whether or not the server
/// trusts it. Body: `sub` (string, required), `ttl_secs` (`exp` is the server's now
/// plus this, negative for an expired token; default 600), `kid` (`test-rsa-a`, the
/// default, `test-rsa-b` or `test-p256`), `claims` (an object of claims that replace
/// the defaults). Defaults: `sub`, `exp`, `iat` (the server's now) and a unique `jti`.
/// Answers `{"token", "kid", "exp"}`.
fn mint_json(admin: &Admin, request: &Value) -> Result<Value, String> {
    let Value::Object(request) = request else {
        return Err("the mint request must be a JSON object".to_owned());
    };
    for field in request.keys() {
        if !["sub", "ttl_secs", "kid", "claims"].contains(&field.as_str()) {
            return Err(format!("unknown mint field {field:?}"));
        }
    }
    let sub = request
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("sub must be a string")?;
    let ttl = match request.get("ttl_secs") {
        None => 600,
        Some(ttl) => ttl.as_i64().ok_or("ttl_secs must be an integer")?,
    };
    let key = match request.get("kid") {
        None => keys::rsa_a(),
        Some(kid) => {
            let kid = kid.as_str().ok_or("kid must be a string")?;
            keys::all()
                .into_iter()
                .find(|key| key.kid() == kid)
                .ok_or_else(|| format!("no TEST key has kid {kid:?}"))?
        }
    };
    let now = admin.config().clock.now_unix();
    let exp = now.saturating_add(ttl);
    let serial = MINTED.fetch_add(1, Ordering::Relaxed);
    let mut claims = Claims::for_subject(sub)
        .exp(exp)
        .iat(now)
        .claim("jti", Value::String(format!("admin-mint-{now}-{serial}")));
    match request.get("claims") {
        None => {}
        Some(Value::Object(extra)) => {
            for (name, value) in extra {
                claims = claims.claim(name.clone(), value.clone());
            }
        }
        Some(_) => return Err("claims must be an object".to_owned()),
    }
    let token = mint(&key, &claims, &MintOptions::new()).map_err(|err| err.to_string())?;
    Ok(json!({"token": token, "kid": key.kid(), "exp": exp}))
}

fn faults_json(admin: &Admin) -> Value {
    let pending: Vec<String> = admin.pending_faults().iter().map(Fault::describe).collect();
    json!({ "pending": pending })
}

fn config_json(config: &ServerConfig) -> Value {
    let clock = match config.clock {
        Clock::System => json!({"type": "system"}),
        Clock::Fixed(unix) => json!({"type": "fixed", "unix": unix}),
        Clock::Offset(secs) => json!({"type": "offset", "secs": secs}),
    };
    let keys: Vec<Value> = config
        .keys
        .iter()
        .map(|k| json!({"kid": k.kid(), "kind": k.kind().as_str()}))
        .collect();
    json!({
        "bind": config.bind.to_string(),
        "mode": config.enforcement.as_str(),
        "leeway_secs": config.leeway_secs,
        "max_body_bytes": config.max_body_bytes,
        "clock": clock,
        "now": config.clock.now_unix(),
        "keys": keys,
        "admin_routes": config.admin_routes,
        "access_log": config.access_log,
    })
}

/// Applies a config patch; all of it or nothing. Fields: `mode`, `leeway_secs`,
/// `max_body_bytes`, `clock` (`"system"`, `{"fixed": SECS}` or `{"offset": SECS}`),
/// `keys` (replaces the keys: `[{"pem": "...", "kid": "..."}]`), `test_keys` (true adds
/// the three TEST keys), `access_log`.
fn patched(mut config: ServerConfig, patch: &Value) -> Result<ServerConfig, String> {
    let Value::Object(patch) = patch else {
        return Err("the config patch must be a JSON object".to_owned());
    };
    for (field, value) in patch {
        match field.as_str() {
            "mode" => {
                config.enforcement = value
                    .as_str()
                    .ok_or("mode must be a string")?
                    .parse::<Enforcement>()
                    .map_err(|err| err.to_string())?;
            }
            "leeway_secs" => {
                config.leeway_secs = value.as_u64().ok_or("leeway_secs must be an integer")?;
            }
            "max_body_bytes" => {
                config.max_body_bytes = value
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or("max_body_bytes must be an integer")?;
            }
            "clock" => config.clock = parse_clock(value)?,
            "keys" => {
                let items = value.as_array().ok_or("keys must be an array")?;
                config.keys = items.iter().map(parse_key).collect::<Result<_, _>>()?;
            }
            "test_keys" => {
                if value.as_bool().ok_or("test_keys must be a boolean")? {
                    config = config.with_test_keys();
                }
            }
            "access_log" => {
                config.access_log = value.as_bool().ok_or("access_log must be a boolean")?;
            }
            other => return Err(format!("unknown config field {other:?}")),
        }
    }
    Ok(config)
}

fn parse_clock(value: &Value) -> Result<Clock, String> {
    let bad = || "clock must be \"system\", {\"fixed\": SECS} or {\"offset\": SECS}".to_owned();
    match value {
        Value::String(s) if s == "system" => Ok(Clock::System),
        Value::Object(o) if o.len() == 1 => {
            if let Some(v) = o.get("fixed") {
                v.as_i64().map(Clock::Fixed).ok_or_else(bad)
            } else if let Some(v) = o.get("offset") {
                v.as_i64().map(Clock::Offset).ok_or_else(bad)
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

fn parse_key(value: &Value) -> Result<VerifyKey, String> {
    let pem = value
        .get("pem")
        .and_then(Value::as_str)
        .ok_or("each key needs a pem string")?;
    let kid = match value.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err("kid must be a string".to_owned()),
    };
    VerifyKey::from_pem(pem, kid).map_err(|err| err.to_string())
}
