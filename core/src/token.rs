//! Tokens: the secret type, their shape check (T1) and the unverified `exp` reader (R1).
//!
//! A [`Token`] never prints itself whole (T3): `Debug` and `Display` show a short
//! prefix. Only [`Token::expose`] gives the full string, for the listener and for the
//! `Authorization` header. This module does not verify signatures: the server decides
//! (S6); the client only reads `exp` to warn early.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::TokenError;

/// Largest token accepted (T1): 8 KiB, a common HTTP header limit.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Characters shown by `Debug`/`Display` before the ellipsis (T3).
pub(crate) const SHOWN_PREFIX: usize = 8;

/// A JWT in compact form, treated as a secret.
///
/// ```
/// use authsync_core::Token;
/// let token = Token::parse("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln").unwrap();
/// assert_eq!(format!("{token:?}"), "Token(eyJhbGci…)");
/// assert_eq!(token.expose(), "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(Arc<str>);

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Persisted tokens are checked again: a damaged record must not smuggle a malformed
/// token into a header.
impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Token {
    /// Checks the shape of a JWS compact string (T1): non-empty, at most 8 KiB,
    /// visible ASCII only, three non-empty base64url segments.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that failed; the token is not echoed.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        check_shape(token)?;
        Ok(Self(Arc::from(token)))
    }

    /// The whole token. Call only to hand it to the server or to the app's listener.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The short, non-secret prefix that logs may show.
    #[must_use]
    pub fn redacted(&self) -> String {
        let prefix: String = self.0.chars().take(SHOWN_PREFIX).collect();
        format!("{prefix}…")
    }

    /// The `exp` claim in Unix seconds, read without verifying the signature.
    /// `None` when the payload is not base64url JSON or has no numeric `exp`.
    #[must_use]
    pub fn unverified_expiry(&self) -> Option<u64> {
        unverified_expiry(&self.0).ok().flatten()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.redacted())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn check_shape(token: &str) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong { len: token.len() });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::NotVisibleAscii);
    }
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        let base64url = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if segment.is_empty() || !base64url {
            return Err(TokenError::NotJws);
        }
    }
    if segments != 3 {
        return Err(TokenError::NotJws);
    }
    Ok(())
}

/// Reads a token's `exp` claim (Unix seconds) without verifying it, as the seed asks of
/// an app at launch ("check if the token has expired on subsequent app launches").
///
/// Returns `Ok(None)` for a well-formed token without a numeric `exp`.
///
/// ```
/// // header {"alg":"none"}, payload {"sub":"u","exp":1700000000}
/// let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
/// assert_eq!(authsync_core::unverified_expiry(token), Ok(Some(1_700_000_000)));
/// ```
///
/// # Errors
/// [`TokenError`] when the string is not a JWS compact token, or its payload is not
/// base64url-encoded JSON ([`TokenError::UnreadablePayload`]).
pub fn unverified_expiry(token: &str) -> Result<Option<u64>, TokenError> {
    check_shape(token)?;
    let payload = token.split('.').nth(1).ok_or(TokenError::NotJws)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::UnreadablePayload)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::UnreadablePayload)?;
    let serde_json::Value::Object(claims) = claims else {
        return Err(TokenError::UnreadablePayload);
    };
    Ok(claims.get("exp").and_then(exp_seconds))
}

/// `exp` is a NumericDate: integer or fractional seconds. Negative or non-finite values
/// are no usable expiry.
fn exp_seconds(value: &serde_json::Value) -> Option<u64> {
    if let Some(seconds) = value.as_u64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?;
    if seconds.is_finite() && seconds >= 0.0 {
        // Truncation is intended: expiry is compared at second precision.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(seconds.min(u64::MAX as f64) as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jws(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn t1_shapes_that_are_refused() {
        let long = format!("a.b.{}", "c".repeat(MAX_TOKEN_BYTES));
        let cases: [(&str, TokenError); 8] = [
            ("", TokenError::Empty),
            ("abc", TokenError::NotJws),
            ("a.b", TokenError::NotJws),
            ("a.b.c.d", TokenError::NotJws),
            ("a..c", TokenError::NotJws),
            ("a.b.c=", TokenError::NotJws),
            ("a.b c.d", TokenError::NotVisibleAscii),
            ("a.é.c", TokenError::NotVisibleAscii),
        ];
        for (token, expected) in cases {
            assert_eq!(Token::parse(token).unwrap_err(), expected, "{token:?}");
        }
        assert_eq!(
            Token::parse(&long).unwrap_err(),
            TokenError::TooLong { len: long.len() }
        );
        assert!(Token::parse("a-b.c_d.e0").is_ok());
        assert_eq!(MAX_TOKEN_BYTES, 8 * 1024);
        let longest = format!("a.b.{}", "c".repeat(MAX_TOKEN_BYTES - 4));
        assert!(Token::parse(&longest).is_ok(), "exactly 8 KiB is allowed");
    }

    #[test]
    fn t3_debug_and_display_show_a_prefix_only() {
        let token = Token::parse(&jws(r#"{"sub":"secret-user"}"#)).unwrap();
        let shown = format!("{token:?} {token}");
        assert!(!shown.contains(token.expose()));
        assert!(shown.contains("eyJhbGci…"));
        assert_eq!(token.to_string(), "eyJhbGci…");
    }

    #[test]
    fn r1_expiry_is_read_without_verifying() {
        assert_eq!(unverified_expiry(&jws(r#"{"exp":12}"#)), Ok(Some(12)));
        assert_eq!(unverified_expiry(&jws(r#"{"exp":12.9}"#)), Ok(Some(12)));
        assert_eq!(unverified_expiry(&jws(r#"{"exp":-1}"#)), Ok(None));
        assert_eq!(unverified_expiry(&jws(r#"{"exp":"12"}"#)), Ok(None));
        assert_eq!(unverified_expiry(&jws(r#"{"sub":"u"}"#)), Ok(None));
        assert_eq!(
            unverified_expiry(&jws("[1]")),
            Err(TokenError::UnreadablePayload)
        );
        assert_eq!(unverified_expiry("a.!!!.c"), Err(TokenError::NotJws));
        assert_eq!(
            unverified_expiry("a.bad.c"),
            Err(TokenError::UnreadablePayload)
        );
    }
}
