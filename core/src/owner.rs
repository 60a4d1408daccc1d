//! Owners: who an event belongs to, fixed when it is tracked (section 2).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest identifier accepted by `identify` and `pass_authentication_details`.
pub const MAX_IDENTIFIER_BYTES: usize = 1024;

/// The user an event belongs to.
///
/// ```
/// use authsync_core::Owner;
/// let owner = Owner::Identified("user-1".into());
/// assert_eq!(owner.identifier(), Some("user-1"));
/// assert_eq!(owner.to_string(), "identified:user-1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Owner {
    /// A user the app has not identified, with an id drawn from the install's seed (U1).
    Anonymous(String),
    /// A user the app identified (U2); their data is authenticated with a JWT (S4).
    Identified(String),
}

impl Owner {
    /// The identifier of an identified owner; `None` when anonymous.
    #[must_use]
    pub fn identifier(&self) -> Option<&str> {
        match self {
            Self::Anonymous(_) => None,
            Self::Identified(id) => Some(id),
        }
    }

    /// The id sent as `user.id` on the wire.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Anonymous(id) | Self::Identified(id) => id,
        }
    }

    /// The `user.type` sent on the wire.
    #[must_use]
    pub const fn wire_type(&self) -> &'static str {
        match self {
            Self::Anonymous(_) => "anonymous",
            Self::Identified(_) => "identified",
        }
    }
}

/// A checksum of `owner`, written in every journal frame: recovery proves with it that
/// a record found after a lost one was made for the user the state says is current
/// (D5).
pub(crate) fn owner_tag(owner: &Owner) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(owner.wire_type().as_bytes());
    hasher.update(b":");
    hasher.update(owner.id().as_bytes());
    hasher.finalize()
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.wire_type(), self.id())
    }
}
