//! Verification keys: the PEM public keys the server trusts, each with an optional `kid`.
//!
//! The key type decides which algorithms it verifies (section 4 of the rules document): an RSA key
//! verifies RS256 and RS512, an EC P-256 key verifies ES256. Nothing else is accepted.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey};

/// A signing algorithm the server accepts: RS256, RS512 and ES256, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl Alg {
    /// Every accepted algorithm.
    pub const ALL: [Self; 3] = [Self::RS256, Self::RS512, Self::ES256];

    /// The JWS `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS512 => "RS512",
            Self::ES256 => "ES256",
        }
    }

    /// Parses a JWS `alg` value; JWS algorithm names are case-sensitive (RFC 7515).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// The kind of key that verifies this algorithm.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Self::RS256 | Self::RS512 => KeyKind::Rsa,
            Self::ES256 => KeyKind::P256,
        }
    }

    pub(crate) fn to_jwt(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::RS512 => Algorithm::RS512,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a public key, which fixes the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// An RSA key: RS256 and RS512.
    Rsa,
    /// An EC key on the P-256 curve: ES256.
    P256,
}

impl KeyKind {
    /// The algorithms a key of this kind verifies.
    pub fn algorithms(self) -> &'static [Alg] {
        match self {
            Self::Rsa => &[Alg::RS256, Alg::RS512],
            Self::P256 => &[Alg::ES256],
        }
    }

    /// A short name: `rsa` or `p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::P256 => "p256",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a verification key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text has no `-----BEGIN ...-----` line.
    #[error("not a PEM key (no -----BEGIN line)")]
    NotPem,
    /// A private key was given where a public key is needed.
    #[error(
        "this is a private key; the server needs the public key (openssl pkey -in KEY -pubout)"
    )]
    PrivateKey,
    /// A PEM public key of a kind or curve the protocol does not use.
    #[error("unsupported key: {0}")]
    Unsupported(String),
}

/// A public key the server verifies signatures with, and its optional `kid`.
///
/// A token whose header names a `kid` is checked with the keys of that `kid`; keys
/// configured without a `kid` are tried for any token (see `jwt_check`).
#[derive(Clone)]
pub struct VerifyKey {
    kid: Option<String>,
    kind: KeyKind,
    decoding: DecodingKey,
}

impl VerifyKey {
    /// Loads a PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`); its type
    /// (RSA or EC P-256) is detected.
    ///
    /// # Errors
    /// [`KeyError`] when the text is not a PEM public key of a supported type.
    pub fn from_pem(pem: &str, kid: Option<&str>) -> Result<Self, KeyError> {
        let label = pem_label(pem).ok_or(KeyError::NotPem)?;
        if label.contains("PRIVATE") {
            return Err(KeyError::PrivateKey);
        }
        let (kind, decoding) = if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
            (KeyKind::Rsa, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
            // An uncompressed SEC1 point on P-256 is 65 bytes; P-384 keys (97) would
            // load and then never verify an ES256 token, so refuse them up front.
            match key.try_get_as_bytes() {
                Ok(point) if point.len() == 65 => (KeyKind::P256, key),
                _ => {
                    return Err(KeyError::Unsupported(
                        "an EC key on a curve other than P-256".to_owned(),
                    ));
                }
            }
        } else {
            return Err(KeyError::Unsupported(format!(
                "a {label} that is neither an RSA nor an EC P-256 public key"
            )));
        };
        // jsonwebtoken parses the key material lazily, on each verification; probing
        // once with an empty signature turns a broken key into an error now instead
        // of an INVALID_SIGNATURE for every token later.
        let probe_alg = kind.algorithms()[0].to_jwt();
        if jsonwebtoken::crypto::verify("", b"probe", &decoding, probe_alg).is_err() {
            return Err(KeyError::Unsupported(format!(
                "the {label} does not hold a valid {kind} key"
            )));
        }
        Ok(Self {
            kid: kid.map(str::to_owned),
            kind,
            decoding,
        })
    }

    /// Reads and loads a PEM public key file, see [`VerifyKey::from_pem`].
    ///
    /// # Errors
    /// [`KeyError::Read`] when the file cannot be read, else as [`VerifyKey::from_pem`].
    pub fn from_file(path: &Path, kid: Option<&str>) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem, kid)
    }

    /// The same key with another `kid` (or none).
    #[must_use]
    pub fn with_kid(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(str::to_owned);
        self
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// True when this key verifies `signature_b64` (base64url) over `message` with `alg`.
    pub(crate) fn verifies(&self, alg: Alg, message: &[u8], signature_b64: &str) -> bool {
        alg.key_kind() == self.kind
            && matches!(
                jsonwebtoken::crypto::verify(signature_b64, message, &self.decoding, alg.to_jwt()),
                Ok(true)
            )
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The label of the first PEM block, e.g. `PUBLIC KEY`.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &pem[start..];
    let end = rest.find("-----")?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn loads_each_fixture_with_its_kind() {
        for key in keys::all() {
            let loaded = VerifyKey::from_pem(key.public_pem(), Some(key.kid())).unwrap();
            assert_eq!(loaded.kind(), key.kind());
            assert_eq!(loaded.kid(), Some(key.kid()));
        }
    }

    #[test]
    fn refuses_private_keys_and_garbage() {
        assert!(matches!(
            VerifyKey::from_pem(keys::rsa_a().private_pem(), None),
            Err(KeyError::PrivateKey)
        ));
        assert!(matches!(
            VerifyKey::from_pem("hello", None),
            Err(KeyError::NotPem)
        ));
        let broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            VerifyKey::from_pem(broken, None),
            Err(KeyError::Unsupported(_))
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = keys::rsa_a().verify_key();
        let text = format!("{key:?}");
        assert!(text.contains("test-rsa-a"));
        assert!(!text.contains("MII"));
    }
}
