//! The bodies of the fuzz targets in `fuzz/`, as ordinary functions.
//!
//! `cargo fuzz run <target>` calls them through three-line wrappers; `cargo test`
//! replays every checked-in corpus file and crash artifact through them on stable
//! (`tests/replay.rs`). Each body panics only when a property fails, with a message
//! saying which.
//!
//! | target | what it feeds | what must hold |
//! |---|---|---|
//! | [`sequence`] | inputs and answers, drawn from the model's state | the model and the core agree; every invariant after every step |
//! | [`response`] | any status, headers and body for the request in flight | no panic; the totals add up; the batch is acked, kept or dropped with a notice |
//! | [`token`] | any token and identifier strings; the unverified `exp` reader | a refused token stores and sends nothing; no output shows an accepted token whole |
//! | [`journal`] | any bytes as a journal, and as a snapshot | no panic; the readable prefix re-encodes to the same bytes and restores or is refused with a typed error |
//! | [`script`] | any bytes as an `authsync run` script line | no panic; a token never shows in an operation's `Debug` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod journal;
mod response;
mod token;

pub use journal::journal;
pub use response::response;
pub use token::token;

/// The `sequence` target: a whole run drawn from the bytes, model and core side by side.
pub fn sequence(data: &[u8]) {
    authsync_model::run_scenario(data);
}

/// The `script` target: one `authsync run` script line.
///
/// # Panics
/// When a token op's `Debug` renders more of the token than its 8-character prefix.
pub fn script(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(Some(authsync_script::Op::Token { token, .. })) = authsync_script::parse_line(&line) {
        // The identifier is shown as it is; render the token alone and compare exactly.
        let alone = authsync_script::Op::Token {
            token: token.clone(),
            identifier: String::new(),
        };
        let prefix: String = token.chars().take(8).collect();
        assert_eq!(
            format!("{alone:?}"),
            format!("Token {{ token: {prefix}…, identifier: \"\" }}"),
            "Debug of a token op renders more than the token's prefix"
        );
    }
}
