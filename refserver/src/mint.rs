//! Token minting for tests: sign claims with a TEST key's private half.
//!
//! [`mint`] makes the usual tokens (valid, expired, wrong subject, wrong key); the
//! lower-level [`mint_with_header`], [`sign_with_pem`] and [`compact`] make the odd
//! ones (any header, any key, unsigned or garbage parts) that negative tests need.
//! Signing is done by `jsonwebtoken`; nothing here touches the crypto itself.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::keys::TestKey;
use crate::verify_key::{Alg, KeyKind};

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The algorithm needs another kind of key.
    #[error("{alg} cannot be signed with a {kind} key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Alg,
        /// The kind of key given.
        kind: KeyKind,
    },
    /// The private key could not be loaded.
    #[error("cannot load the private key: {0}")]
    Key(String),
    /// The header or the claims could not be serialized.
    #[error("cannot serialize the token: {0}")]
    Json(#[from] serde_json::Error),
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What the `kid` header of a minted token holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KidHeader {
    /// The signing key's own `kid` (the default).
    #[default]
    FromKey,
    /// No `kid` header: the server tries each key.
    Omit,
    /// This `kid`, whatever key signs (for unknown or misleading `kid` tests).
    Value(String),
}

/// Header choices for [`mint`]. The default: the key's `kid`, `typ: "JWT"`, the key's
/// default algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintOptions {
    /// The `kid` header.
    pub kid: KidHeader,
    /// The `typ` header; `None` leaves it out.
    pub typ: Option<String>,
    /// The algorithm; `None` is the key's default (RS256 for RSA, ES256 for P-256).
    pub alg: Option<Alg>,
}

impl Default for MintOptions {
    fn default() -> Self {
        Self {
            kid: KidHeader::FromKey,
            typ: Some("JWT".to_owned()),
            alg: None,
        }
    }
}

impl MintOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// No `kid` header.
    #[must_use]
    pub fn without_kid(mut self) -> Self {
        self.kid = KidHeader::Omit;
        self
    }

    /// This `kid` header, whatever key signs.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = KidHeader::Value(kid.into());
        self
    }

    /// This `typ` header (`None`: no `typ`).
    #[must_use]
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// This algorithm (it must fit the key: RS256/RS512 for RSA, ES256 for P-256).
    #[must_use]
    pub fn alg(mut self, alg: Alg) -> Self {
        self.alg = Some(alg);
        self
    }
}

/// A JWT claims set under construction; serializes as the JSON object it holds.
///
/// ```
/// use authsync_refserver::mint::Claims;
/// let claims = Claims::for_subject("user-1").exp(1_700_000_600).iat(1_700_000_000);
/// assert_eq!(claims.to_json()["sub"], "user-1");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// No claims at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// A claims set with `sub` set to `subject`.
    pub fn for_subject(subject: impl Into<String>) -> Self {
        Self::new().subject(subject)
    }

    /// `sub` as a string.
    #[must_use]
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", Value::String(subject.into()))
    }

    /// `sub` in its object form `{"key": key, "value": value}`.
    #[must_use]
    pub fn sub_object(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut object = Map::new();
        object.insert("key".to_owned(), Value::String(key.into()));
        object.insert("value".to_owned(), Value::String(value.into()));
        self.claim("sub", Value::Object(object))
    }

    /// `exp`, in Unix seconds.
    #[must_use]
    pub fn exp(self, unix_secs: i64) -> Self {
        self.claim("exp", Value::from(unix_secs))
    }

    /// `nbf`, in Unix seconds.
    #[must_use]
    pub fn nbf(self, unix_secs: i64) -> Self {
        self.claim("nbf", Value::from(unix_secs))
    }

    /// `iat`, in Unix seconds.
    #[must_use]
    pub fn iat(self, unix_secs: i64) -> Self {
        self.claim("iat", Value::from(unix_secs))
    }

    /// Any claim, replacing one of the same name.
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.0.insert(name.into(), value);
        self
    }

    /// Removes a claim.
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }

    /// The claims as a JSON value.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Mints a compact JWS (`header.payload.signature`) signed by a TEST key.
///
/// `claims` is anything serializable to a JSON object: a [`Claims`] or a
/// `serde_json::json!` value.
///
/// # Errors
/// [`MintError`] when the algorithm does not fit the key or serialization fails.
///
/// ```
/// use authsync_refserver::keys;
/// use authsync_refserver::mint::{mint, Claims, MintOptions};
///
/// let token = mint(
///     &keys::rsa_a(),
///     &Claims::for_subject("user-1").exp(1_700_000_600),
///     &MintOptions::default(),
/// )
/// .unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn mint(
    key: &TestKey,
    claims: &impl Serialize,
    options: &MintOptions,
) -> Result<String, MintError> {
    let alg = options.alg.unwrap_or_else(|| key.default_alg());
    let mut header = Map::new();
    header.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
    if let Some(typ) = &options.typ {
        header.insert("typ".to_owned(), Value::String(typ.clone()));
    }
    match &options.kid {
        KidHeader::FromKey => {
            header.insert("kid".to_owned(), Value::String(key.kid().to_owned()));
        }
        KidHeader::Omit => {}
        KidHeader::Value(kid) => {
            header.insert("kid".to_owned(), Value::String(kid.clone()));
        }
    }
    mint_with_header(key, alg, &Value::Object(header), claims)
}

/// Signs `claims` with a TEST key under exactly the given `header` (which may lie about
/// its `alg`, carry odd `typ` values, and so on); `alg` is what actually signs.
///
/// # Errors
/// [`MintError`] when the algorithm does not fit the key or serialization fails.
pub fn mint_with_header(
    key: &TestKey,
    alg: Alg,
    header: &Value,
    claims: &impl Serialize,
) -> Result<String, MintError> {
    if alg.key_kind() != key.kind() {
        return Err(MintError::AlgorithmMismatch {
            alg,
            kind: key.kind(),
        });
    }
    sign_with_pem(key.private_pem(), alg, header, claims)
}

/// Signs `claims` under `header` with any PEM private key (PKCS#8, or PKCS#1 for RSA),
/// e.g. to check what an app's own backend would mint.
///
/// # Errors
/// [`MintError::Key`] when the PEM is not a private key for `alg`.
pub fn sign_with_pem(
    private_pem: &str,
    alg: Alg,
    header: &Value,
    claims: &impl Serialize,
) -> Result<String, MintError> {
    let key = match alg.key_kind() {
        KeyKind::Rsa => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
        KeyKind::P256 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
    }
    .map_err(|err| MintError::Key(err.to_string()))?;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg.to_jwt())
        .map_err(|err| MintError::Sign(err.to_string()))?;
    Ok(format!("{message}.{signature}"))
}

/// Builds a compact token from parts without signing: base64url of the header JSON,
/// of the claims JSON, and of `signature` as given (e.g. empty, or garbage bytes).
pub fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn mints_with_each_key_and_algorithm() {
        let claims = Claims::for_subject("u").exp(10);
        for key in keys::all() {
            for alg in key.kind().algorithms() {
                let token = mint(&key, &claims, &MintOptions::new().alg(*alg)).unwrap();
                assert_eq!(token.split('.').count(), 3);
            }
        }
    }

    #[test]
    fn refuses_an_algorithm_the_key_cannot_sign() {
        let err = mint(
            &keys::rsa_a(),
            &Claims::new(),
            &MintOptions::new().alg(Alg::ES256),
        )
        .unwrap_err();
        assert!(matches!(err, MintError::AlgorithmMismatch { .. }));
    }
}
