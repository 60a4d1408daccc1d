//! The `authsync` command: `demo` (the main job), `serve` (the reference server) and
//! `run` (the scenario command of section 5 of the rules document).
//!
//! A library as well as a binary so that the tests and the `script` fuzz target reach
//! the same code the command runs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod demo;
pub mod logging;
pub mod output;
pub mod run;
pub mod token_command;

pub use authsync_script as script;
