//! JWT verification in the exact order and with the exact codes of section 4 of the rules document.
//!
//! `jsonwebtoken`'s own `decode` validates in its own order and reports its own
//! errors, so only its signature primitive is used here: the header is read first,
//! the signature is checked with `jsonwebtoken::crypto::verify`, then the claims, the
//! time and the subject are checked here. The order is:
//!
//! 1. decode — three base64url segments, header and payload JSON objects, else
//!    `DECRYPTION_FAILED`;
//! 2. header — `alg` present and one of RS256, RS512, ES256; `typ`, if present, `JWT`
//!    in any case; else `HEADER_TYPE_INCOMPATIBLE`;
//! 3. signature — a `kid` selects the keys with that `kid` (keys configured without a
//!    `kid` stand in when none has it); without a `kid` every key is tried; no key
//!    verifying it (or an unknown `kid`) is `INVALID_SIGNATURE`;
//! 4. claims present — `sub` (a string, or `{"key", "value"}` with a string `value`)
//!    and a numeric `exp`, and `nbf`/`iat` numeric when present, else
//!    `PAYLOAD_CONTENT_MISSING`;
//! 5. time — `exp + leeway < now`, `nbf - leeway > now` or `iat - leeway > now` is
//!    `TIME_CONSTRAINT_FAILURE` (so `exp == now - leeway` still passes);
//! 6. subject — the `sub` value differs from the batch's user id: `IDENTIFIER_MISMATCH`.
//!
//! Before all that, the `Authorization` header: none, an empty value or an empty
//! `Bearer` is `TOKEN_NOT_AVAILABLE`; a scheme other than `Bearer` (or several
//! `Authorization` headers) is `UNKNOWN`. No message here ever holds the token.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde_json::{Map, Value};

use crate::config::{Enforcement, ServerConfig};
use crate::verify_key::{Alg, VerifyKey};
use crate::wire::{User, UserKind};

/// The JWT error codes of section 4 of the rules document (the server-side ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JwtErrorCode {
    /// 4000: not a decodable JWS.
    DecryptionFailed,
    /// 4001: `alg` missing or not allowed, or `typ` not `JWT`.
    HeaderTypeIncompatible,
    /// 4010: `exp` passed, or `nbf`/`iat` in the future, beyond the leeway.
    TimeConstraintFailure,
    /// No `sub`, or no numeric `exp`.
    PayloadContentMissing,
    /// No configured key verifies the signature, or the `kid` is unknown.
    InvalidSignature,
    /// `sub` is not the batch's user id.
    IdentifierMismatch,
    /// An identified batch came without a token while enforcement is required.
    TokenNotAvailable,
    /// Anything else (here: an `Authorization` scheme other than `Bearer`).
    Unknown,
}

impl JwtErrorCode {
    /// Every code.
    pub const ALL: [Self; 8] = [
        Self::DecryptionFailed,
        Self::HeaderTypeIncompatible,
        Self::TimeConstraintFailure,
        Self::PayloadContentMissing,
        Self::InvalidSignature,
        Self::IdentifierMismatch,
        Self::TokenNotAvailable,
        Self::Unknown,
    ];

    /// The wire name, e.g. `INVALID_SIGNATURE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DecryptionFailed => "DECRYPTION_FAILED",
            Self::HeaderTypeIncompatible => "HEADER_TYPE_INCOMPATIBLE",
            Self::TimeConstraintFailure => "TIME_CONSTRAINT_FAILURE",
            Self::PayloadContentMissing => "PAYLOAD_CONTENT_MISSING",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::IdentifierMismatch => "IDENTIFIER_MISMATCH",
            Self::TokenNotAvailable => "TOKEN_NOT_AVAILABLE",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The number the iOS reference publishes, for the three that have one.
    pub fn number(self) -> Option<u16> {
        match self {
            Self::DecryptionFailed => Some(4000),
            Self::HeaderTypeIncompatible => Some(4001),
            Self::TimeConstraintFailure => Some(4010),
            _ => None,
        }
    }
}

impl fmt::Display for JwtErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed authentication: the code and a message (which never holds the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtFailure {
    /// The code sent in the 401 body.
    pub code: JwtErrorCode,
    /// A human-readable reason.
    pub message: String,
}

impl JwtFailure {
    fn new(code: JwtErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedToken {
    /// The token's algorithm.
    pub alg: Alg,
    /// The `kid` of the configured key that verified it, if that key has one.
    pub key_kid: Option<String>,
    /// The subject (the `sub` string, or the `value` of its object form).
    pub subject: String,
}

/// Verifies `token` for a batch of identified user `user_id`, with the checks of the
/// module documentation, at Unix time `now` with `leeway_secs` of leeway.
///
/// # Errors
/// The first failed check, as a [`JwtFailure`].
pub fn verify_token(
    token: &str,
    user_id: &str,
    keys: &[VerifyKey],
    now: i64,
    leeway_secs: u64,
) -> Result<VerifiedToken, JwtFailure> {
    let decoded = decode(token)?;
    let alg = check_header(&decoded.header)?;
    let key = check_signature(&decoded, alg, keys)?;
    let claims = check_claims(&decoded.payload)?;
    check_time(&claims, now, leeway_secs)?;
    if claims.subject != user_id {
        return Err(JwtFailure::new(
            JwtErrorCode::IdentifierMismatch,
            "the token's sub is not the batch's user id",
        ));
    }
    Ok(VerifiedToken {
        alg,
        key_kid: key.kid().map(str::to_owned),
        subject: claims.subject,
    })
}

/// Authenticates a batch: `Ok(None)` when no token is needed (enforcement disabled,
/// or an anonymous batch, whose token is ignored), `Ok(Some(_))` for a verified token.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    user: &User,
    config: &ServerConfig,
) -> Result<Option<VerifiedToken>, JwtFailure> {
    if config.enforcement == Enforcement::Disabled || user.kind == UserKind::Anonymous {
        return Ok(None);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(JwtFailure::new(
            JwtErrorCode::TokenNotAvailable,
            "no Authorization header on an identified batch",
        ));
    };
    if values.next().is_some() {
        return Err(JwtFailure::new(
            JwtErrorCode::Unknown,
            "several Authorization headers",
        ));
    }
    let token = bearer_token(value.as_bytes())?;
    verify_token(
        token,
        &user.id,
        &config.keys,
        config.clock.now_unix(),
        config.leeway_secs,
    )
    .map(Some)
}

fn bearer_token(value: &[u8]) -> Result<&str, JwtFailure> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(JwtFailure::new(
            JwtErrorCode::TokenNotAvailable,
            "empty Authorization header",
        ));
    }
    let split = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(JwtFailure::new(
            JwtErrorCode::Unknown,
            "the Authorization scheme is not Bearer",
        ));
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Err(JwtFailure::new(
            JwtErrorCode::TokenNotAvailable,
            "empty Bearer token",
        ));
    }
    std::str::from_utf8(token).map_err(|_| {
        JwtFailure::new(
            JwtErrorCode::DecryptionFailed,
            "the token is not a decodable JWS (not ASCII)",
        )
    })
}

struct Decoded<'a> {
    header: Map<String, Value>,
    payload: Map<String, Value>,
    /// `header.payload`, the signed bytes.
    message: &'a str,
    signature: &'a str,
}

fn decode(token: &str) -> Result<Decoded<'_>, JwtFailure> {
    let fail = |why: &str| {
        JwtFailure::new(
            JwtErrorCode::DecryptionFailed,
            format!("the token is not a decodable JWS: {why}"),
        )
    };
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(fail("not three dot-separated segments"));
    };
    let json_object = |segment: &str, what: &str| -> Result<Map<String, Value>, JwtFailure> {
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| fail(&format!("the {what} is not base64url")))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(fail(&format!("the {what} is not a JSON object"))),
        }
    };
    let header_map = json_object(header, "header")?;
    let payload_map = json_object(payload, "payload")?;
    if URL_SAFE_NO_PAD.decode(signature).is_err() {
        return Err(fail("the signature is not base64url"));
    }
    Ok(Decoded {
        header: header_map,
        payload: payload_map,
        message: &token[..header.len() + 1 + payload.len()],
        signature,
    })
}

fn check_header(header: &Map<String, Value>) -> Result<Alg, JwtFailure> {
    let fail = |message: String| JwtFailure::new(JwtErrorCode::HeaderTypeIncompatible, message);
    let alg = match header.get("alg") {
        None => return Err(fail("the header has no alg".to_owned())),
        Some(Value::String(name)) => Alg::from_name(name).ok_or_else(|| {
            fail(format!(
                "alg {name:?} is not allowed (allowed: RS256, RS512, ES256)"
            ))
        })?,
        Some(_) => return Err(fail("alg is not a string".to_owned())),
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => {}
        Some(other) => return Err(fail(format!("typ {other} is not JWT"))),
    }
    Ok(alg)
}

fn check_signature<'k>(
    decoded: &Decoded<'_>,
    alg: Alg,
    keys: &'k [VerifyKey],
) -> Result<&'k VerifyKey, JwtFailure> {
    let fail = |message: String| JwtFailure::new(JwtErrorCode::InvalidSignature, message);
    if keys.is_empty() {
        return Err(fail("the server has no verification key".to_owned()));
    }
    let candidates: Vec<&VerifyKey> = match decoded.header.get("kid") {
        None => keys.iter().collect(),
        Some(Value::String(kid)) => {
            let named: Vec<&VerifyKey> = keys.iter().filter(|k| k.kid() == Some(kid)).collect();
            if named.is_empty() {
                let unnamed: Vec<&VerifyKey> = keys.iter().filter(|k| k.kid().is_none()).collect();
                if unnamed.is_empty() {
                    return Err(fail(format!("unknown kid {kid:?}")));
                }
                unnamed
            } else {
                named
            }
        }
        Some(_) => return Err(fail("kid is not a string".to_owned())),
    };
    candidates
        .into_iter()
        .find(|key| key.verifies(alg, decoded.message.as_bytes(), decoded.signature))
        .ok_or_else(|| fail(format!("no configured key verifies this {alg} signature")))
}

struct CheckedClaims {
    subject: String,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
}

fn check_claims(payload: &Map<String, Value>) -> Result<CheckedClaims, JwtFailure> {
    let fail = |message: &str| JwtFailure::new(JwtErrorCode::PayloadContentMissing, message);
    let subject = match payload.get("sub") {
        None => return Err(fail("the token has no sub")),
        Some(Value::String(sub)) => sub.clone(),
        Some(Value::Object(object)) => match object.get("value") {
            Some(Value::String(value)) => value.clone(),
            _ => return Err(fail("the sub object has no string value")),
        },
        Some(_) => return Err(fail("sub is neither a string nor {key, value}")),
    };
    let number = |name: &str| -> Result<Option<f64>, JwtFailure> {
        match payload.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(fail(&format!("{name} is not a number"))),
        }
    };
    let exp = number("exp")?.ok_or_else(|| fail("the token has no exp"))?;
    Ok(CheckedClaims {
        subject,
        exp,
        nbf: number("nbf")?,
        iat: number("iat")?,
    })
}

#[allow(clippy::cast_precision_loss)]
fn check_time(claims: &CheckedClaims, now: i64, leeway_secs: u64) -> Result<(), JwtFailure> {
    // Unix seconds and leeways are far below 2^53, where f64 is still exact, and the
    // claims may legitimately be fractional (RFC 7519 NumericDate).
    let now = now as f64;
    let leeway = leeway_secs as f64;
    let fail = |message: String| JwtFailure::new(JwtErrorCode::TimeConstraintFailure, message);
    if claims.exp + leeway < now {
        return Err(fail(format!(
            "the token expired at {} (now {now}, leeway {leeway_secs} s)",
            claims.exp
        )));
    }
    if let Some(nbf) = claims.nbf
        && nbf - leeway > now
    {
        return Err(fail(format!(
            "the token is not valid before {nbf} (now {now}, leeway {leeway_secs} s)"
        )));
    }
    if let Some(iat) = claims.iat
        && iat - leeway > now
    {
        return Err(fail(format!(
            "the token was issued in the future, at {iat} (now {now}, leeway {leeway_secs} s)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(b"Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token(b"bearer   abc  ").unwrap(), "abc");
        assert_eq!(
            bearer_token(b"Bearer").unwrap_err().code,
            JwtErrorCode::TokenNotAvailable
        );
        assert_eq!(
            bearer_token(b"Bearer   ").unwrap_err().code,
            JwtErrorCode::TokenNotAvailable
        );
        assert_eq!(
            bearer_token(b"").unwrap_err().code,
            JwtErrorCode::TokenNotAvailable
        );
        assert_eq!(
            bearer_token(b"Basic dXNlcjpwdw==").unwrap_err().code,
            JwtErrorCode::Unknown
        );
        assert_eq!(
            bearer_token(b"Bearerabc").unwrap_err().code,
            JwtErrorCode::Unknown
        );
    }

    #[test]
    fn codes_have_their_wire_names_and_numbers() {
        assert_eq!(JwtErrorCode::DecryptionFailed.number(), Some(4000));
        assert_eq!(JwtErrorCode::HeaderTypeIncompatible.number(), Some(4001));
        assert_eq!(JwtErrorCode::TimeConstraintFailure.number(), Some(4010));
        for code in JwtErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
    }
}
