//! Every type that appears in a driver's public API, for the drivers to re-export
//! whole (`pub use authsync_host::vocabulary::*`): an app imports from its driver
//! alone, and can switch drivers without new imports.

pub use authsync_core::{
    AckNotice, AuthDetailsError, AuthNotice, Config, ConfigError, Damage, DamageKind, DropNotice,
    DropReason, Environment, ErrorCode, Event, EventError, FetchFailure, FsyncPolicy,
    IdentifyError, IgnoredBecause, MAX_ATTRIBUTES_BYTES, MAX_EVENT_NAME_BYTES,
    MAX_IDENTIFIER_BYTES, MAX_TOKEN_BYTES, Now, Outcome, Owner, RecoveryReport, RestoreError,
    StorageFailure, StorageFailureKind, StorageNotice, StoragePolicy, Token, TokenError, Totals,
    TrackReceipt, TransportFailure,
};

pub use crate::{
    Cancellation, Clock, DEFAULT_TOKEN_TIMEOUT, Directory, Error, Fault, FileSystem, HttpOptions,
    HttpTransport, JwtAuthenticationDetails, Listener, Listeners, ManualClock, Observer, Operation,
    OsFileSystem, PendingReport, SimulatedDisk, StartError, StoreError, StoreFile, SystemClock,
    TokenRequest, UreqTransport,
};
