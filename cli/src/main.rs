//! `authsync`: see `authsync --help`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

const HELP: &str = "\
authsync: batched analytics sync with JWT authentication

usage:
  authsync demo              a reference server and a realistic session, on loopback
  authsync serve [OPTIONS]   run the reference ingestion server (see authsync serve --help)
  authsync run [OPTIONS] SCRIPT
                             run a JSON-lines scenario (see authsync run --help)
  authsync --version
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    match command.as_ref().and_then(|c| c.to_str()) {
        Some("demo") => authsync_cli::demo::main(rest),
        Some("serve") => authsync_refserver::cli::run_cli_as("authsync serve", rest),
        Some("run") => authsync_cli::run::main(rest),
        Some("--version" | "-V") => {
            println!("authsync {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("{HELP}");
            ExitCode::from(2)
        }
    }
}
