//! Authentication error codes: the wire names of section 4 of the rules document, and the client-only
//! `TOKEN_EXPIRING` (R1).

use std::fmt;

/// Why authentication failed, as the server (or, for client-side codes, the core)
/// reports it.
///
/// ```
/// use authsync_core::ErrorCode;
/// assert_eq!(ErrorCode::from_wire("TIME_CONSTRAINT_FAILURE"), ErrorCode::TimeConstraintFailure);
/// assert_eq!(ErrorCode::TimeConstraintFailure.numeric(), Some(4010));
/// assert_eq!(ErrorCode::from_wire("NEW_CODE").as_str(), "NEW_CODE");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `DECRYPTION_FAILED` (4000): not a decodable JWS.
    DecryptionFailed,
    /// `HEADER_TYPE_INCOMPATIBLE` (4001): `alg` not allowed or `typ` not JWT.
    HeaderTypeIncompatible,
    /// `TIME_CONSTRAINT_FAILURE` (4010): `exp` passed, or `nbf`/`iat` in the future.
    TimeConstraintFailure,
    /// `PAYLOAD_CONTENT_MISSING`: no `sub` or no `exp`.
    PayloadContentMissing,
    /// `INVALID_SIGNATURE`: no configured key verifies it.
    InvalidSignature,
    /// `IDENTIFIER_MISMATCH`: `sub` is not the batch's user.
    IdentifierMismatch,
    /// `TOKEN_NOT_AVAILABLE`: an identified batch without a token (server- or
    /// client-side, S5).
    TokenNotAvailable,
    /// `UNKNOWN`: the server said so, or its 401 carried no readable code.
    Unknown,
    /// `TOKEN_EXPIRING` (client-only, R1): the token's `exp` is near or past.
    TokenExpiring,
    /// A code this version does not know, kept as the server sent it (V3).
    Other(String),
}

impl ErrorCode {
    /// Maps a wire name; anything unknown is kept raw.
    #[must_use]
    pub fn from_wire(code: &str) -> Self {
        match code {
            "DECRYPTION_FAILED" => Self::DecryptionFailed,
            "HEADER_TYPE_INCOMPATIBLE" => Self::HeaderTypeIncompatible,
            "TIME_CONSTRAINT_FAILURE" => Self::TimeConstraintFailure,
            "PAYLOAD_CONTENT_MISSING" => Self::PayloadContentMissing,
            "INVALID_SIGNATURE" => Self::InvalidSignature,
            "IDENTIFIER_MISMATCH" => Self::IdentifierMismatch,
            "TOKEN_NOT_AVAILABLE" => Self::TokenNotAvailable,
            "UNKNOWN" => Self::Unknown,
            "TOKEN_EXPIRING" => Self::TokenExpiring,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Maps the numeric codes the iOS reference publishes; others are kept raw.
    #[must_use]
    pub fn from_numeric(code: i64) -> Self {
        match code {
            4000 => Self::DecryptionFailed,
            4001 => Self::HeaderTypeIncompatible,
            4010 => Self::TimeConstraintFailure,
            other => Self::Other(other.to_string()),
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::DecryptionFailed => "DECRYPTION_FAILED",
            Self::HeaderTypeIncompatible => "HEADER_TYPE_INCOMPATIBLE",
            Self::TimeConstraintFailure => "TIME_CONSTRAINT_FAILURE",
            Self::PayloadContentMissing => "PAYLOAD_CONTENT_MISSING",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::IdentifierMismatch => "IDENTIFIER_MISMATCH",
            Self::TokenNotAvailable => "TOKEN_NOT_AVAILABLE",
            Self::Unknown => "UNKNOWN",
            Self::TokenExpiring => "TOKEN_EXPIRING",
            Self::Other(raw) => raw,
        }
    }

    /// The numeric value, for the three codes the iOS reference publishes.
    #[must_use]
    pub const fn numeric(&self) -> Option<u16> {
        match self {
            Self::DecryptionFailed => Some(4000),
            Self::HeaderTypeIncompatible => Some(4001),
            Self::TimeConstraintFailure => Some(4010),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_name_round_trips() {
        let all = [
            ErrorCode::DecryptionFailed,
            ErrorCode::HeaderTypeIncompatible,
            ErrorCode::TimeConstraintFailure,
            ErrorCode::PayloadContentMissing,
            ErrorCode::InvalidSignature,
            ErrorCode::IdentifierMismatch,
            ErrorCode::TokenNotAvailable,
            ErrorCode::Unknown,
            ErrorCode::TokenExpiring,
        ];
        for code in all {
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::from_numeric(4001),
            ErrorCode::HeaderTypeIncompatible
        );
        assert_eq!(
            ErrorCode::from_numeric(4011),
            ErrorCode::Other("4011".into())
        );
        assert_eq!(ErrorCode::InvalidSignature.numeric(), None);
    }
}
