//! The checked-in TEST keys: two RSA-2048 keys and one EC P-256 key.
//!
//! They live in `refserver/keys/` (see the README there), are public to anyone
//! who reads this repository, and exist only so that tests can mint tokens that the
//! reference server accepts. Never use them for anything real.

use std::fmt;

use crate::verify_key::{Alg, KeyKind, VerifyKey};

const RSA_A_PRIVATE: &str = include_str!("../keys/rsa-a.private.pem");
const RSA_A_PUBLIC: &str = include_str!("../keys/rsa-a.public.pem");
const RSA_B_PRIVATE: &str = include_str!("../keys/rsa-b.private.pem");
const RSA_B_PUBLIC: &str = include_str!("../keys/rsa-b.public.pem");
const P256_PRIVATE: &str = include_str!("../keys/p256.private.pem");
const P256_PUBLIC: &str = include_str!("../keys/p256.public.pem");

/// A TEST key pair with its `kid`: private PEM for minting, public PEM for the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TestKey {
    kid: &'static str,
    kind: KeyKind,
    private_pem: &'static str,
    public_pem: &'static str,
}

/// The first RSA-2048 test key, `kid` `test-rsa-a`.
pub fn rsa_a() -> TestKey {
    TestKey {
        kid: "test-rsa-a",
        kind: KeyKind::Rsa,
        private_pem: RSA_A_PRIVATE,
        public_pem: RSA_A_PUBLIC,
    }
}

/// The second RSA-2048 test key, `kid` `test-rsa-b` (for rotation tests).
pub fn rsa_b() -> TestKey {
    TestKey {
        kid: "test-rsa-b",
        kind: KeyKind::Rsa,
        private_pem: RSA_B_PRIVATE,
        public_pem: RSA_B_PUBLIC,
    }
}

/// The EC P-256 test key, `kid` `test-p256`.
pub fn p256() -> TestKey {
    TestKey {
        kid: "test-p256",
        kind: KeyKind::P256,
        private_pem: P256_PRIVATE,
        public_pem: P256_PUBLIC,
    }
}

/// All three test keys: [`rsa_a`], [`rsa_b`], [`p256`].
pub fn all() -> [TestKey; 3] {
    [rsa_a(), rsa_b(), p256()]
}

impl TestKey {
    /// The key's `kid`.
    pub fn kid(&self) -> &'static str {
        self.kid
    }

    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The algorithm [`crate::mint::mint`] uses by default: RS256 for RSA, ES256 for P-256.
    pub fn default_alg(&self) -> Alg {
        self.kind.algorithms()[0]
    }

    /// The private key, PKCS#8 PEM.
    pub fn private_pem(&self) -> &'static str {
        self.private_pem
    }

    /// The public key, SPKI PEM.
    pub fn public_pem(&self) -> &'static str {
        self.public_pem
    }

    /// The public key as a server verification key, with this key's `kid`.
    pub fn verify_key(&self) -> VerifyKey {
        self.load().with_kid(Some(self.kid))
    }

    /// The public key as a server verification key without a `kid` (tried for every token).
    pub fn verify_key_without_kid(&self) -> VerifyKey {
        self.load()
    }

    #[allow(clippy::expect_used)]
    fn load(&self) -> VerifyKey {
        // Compiled-in fixtures, not outside input: the unit tests load every one, so a
        // failure here means the fixture files themselves were damaged.
        VerifyKey::from_pem(self.public_pem, None).expect("checked-in test key must load")
    }
}

impl From<TestKey> for VerifyKey {
    fn from(key: TestKey) -> Self {
        key.verify_key()
    }
}

impl From<&TestKey> for VerifyKey {
    fn from(key: &TestKey) -> Self {
        key.verify_key()
    }
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
