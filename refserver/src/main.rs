//! `authsync-refserver`: the reference ingestion server on the command line.
//! Everything is in the library's `cli` module, shared with `authsync serve`.

fn main() -> std::process::ExitCode {
    authsync_refserver::cli::run_cli(std::env::args_os().skip(1))
}
