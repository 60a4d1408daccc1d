//! One test per rule of the rules document (`docs/rules.md`), and the user complaints
//! it guards against, driving the public API only and asserting the exact outputs.
#![allow(unreachable_pub)]

mod support;

mod complaints;
mod config_users_tokens;
mod data_and_time;
mod host_loop;
mod journal;
mod logout;
mod responses;
mod sending;
mod sessions_and_misuse;
mod storage;
mod token_fetches;
