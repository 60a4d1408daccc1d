//! One test per rule of SPEC.md section 3 (and the user complaints it guards against),
//! driving the public API only and asserting the exact actions.
#![allow(unreachable_pub)]

mod support;

mod complaints;
mod config_users_tokens;
mod data_and_time;
mod logout;
mod responses;
mod sending;
mod sessions_and_misuse;
