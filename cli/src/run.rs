//! `authsync run`: the `authsync run` section of the rules document (docs/rules.md, section 5), to the letter.
//!
//! Choices where the section is silent, documented in `authsync run --help`:
//! blank script lines are skipped; `attrs` may be left out (`{}`); without
//! `--state-dir` the state lives in memory for the run; the token command is not run
//! for notices without an identifier (anonymous data), since nothing could be done
//! with its token; exit status 1 when the client cannot start (state directory in use
//! or unreadable), 2 for bad options, a bad script line, or a `--seed` that differs
//! from the state directory's.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authsync_blocking::{
    Client, Config, Environment, Error, Event, JwtAuthenticationDetails, Outcome, StartError,
    WorkspaceOptions,
};

use crate::output::JsonLines;
use crate::script::{Op, parse_line};
use crate::token_command;

/// How long the end of a script waits for everything to be sent.
const FINAL_SETTLE: Duration = Duration::from_secs(10);

/// The options of `authsync run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// `--endpoint URL`.
    pub endpoint: String,
    /// `--app-id ID`.
    pub app_id: String,
    /// `--jwt`.
    pub jwt: bool,
    /// `--env test|live` (default live).
    pub environment: Environment,
    /// `--state-dir DIR`.
    pub state_dir: Option<PathBuf>,
    /// `--token-cmd CMD`.
    pub token_cmd: Option<String>,
    /// `--seed N`.
    pub seed: Option<u64>,
    /// `--token-timeout MS`: how long the token command may run (default 30 s).
    pub token_timeout: Option<Duration>,
    /// `-v`: the library's log on stderr.
    pub verbose: bool,
    /// The script's path; `-` for standard input.
    pub script: PathBuf,
}

/// The help text.
pub const HELP: &str = "\
authsync run: run a JSON-lines scenario against an ingestion server

usage: authsync run --endpoint URL --app-id ID [--jwt] [--env test|live]
                    [--state-dir DIR] [--token-cmd CMD] [--token-timeout MS]
                    [--seed N] [-v] SCRIPT

SCRIPT holds one operation per line (`-` reads standard input), run as read:
  {\"op\":\"track\",\"name\":\"...\",\"attrs\":{...}}   attrs may be left out
  {\"op\":\"identify\",\"id\":\"...\"}
  {\"op\":\"token\",\"token\":\"...\",\"identifier\":\"...\"}
  {\"op\":\"logout\"}  {\"op\":\"session_start\"}  {\"op\":\"flush\"}
  {\"op\":\"wait\",\"ms\":N}
  {\"op\":\"settle\",\"timeout_ms\":N}  until nothing more can be sent
Blank lines are skipped. At the end: flush, settle (10 s at most), exit 0.

stdout: JSON lines: acked, auth_error, dropped, locked_out, error, ignored, storage,
transport_failure, and last summary. A script line that is not valid JSON, has a
duplicate key or a field its operation does not have, is longer than 1 MiB, or is not
a known, well-formed operation ends the run: exit 2, the line named on stderr.
--state-dir DIR   keep the state (queue, tokens, totals) across runs; without it,
                  the state lives in memory for this run
--token-cmd CMD   run through `sh -c` on every listener notice about an identifier,
                  with AUTHSYNC_IDENTIFIER and AUTHSYNC_ERROR_CODE set; its trimmed
                  stdout is passed in as that identifier's new token; a command
                  still running after --token-timeout (default 30000 ms) is killed
                  with every process it started, and gives no token
--seed N          the seed of a new state directory (an existing one keeps its own;
                  a different N is an error)
-v                the library's log on stderr (or RUST_LOG=debug)
exit status: 0 done; 2 bad options, bad script line (named on stderr) or seed
mismatch; 1 the client could not start (state directory in use or unreadable)
";

/// A usage error: printed with the help's first line, exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parses the arguments after `run`.
///
/// # Errors
/// [`UsageError`] naming the bad or missing option.
pub fn parse_args(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Option<RunOptions>, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut parser = lexopt::Parser::from_args(args);
    let (mut endpoint, mut app_id, mut state_dir, mut token_cmd, mut seed, mut script) =
        (None, None, None, None, None, None);
    let mut token_timeout = None;
    let mut verbose = false;
    let mut jwt = false;
    let mut environment = Environment::Live;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Long("help") | Short('h') => return Ok(None),
            Long("endpoint") => {
                endpoint = Some(parser.value().map_err(usage)?.string().map_err(usage)?)
            }
            Long("app-id") => {
                app_id = Some(parser.value().map_err(usage)?.string().map_err(usage)?)
            }
            Long("jwt") => jwt = true,
            Long("env") => {
                environment = match parser
                    .value()
                    .map_err(usage)?
                    .string()
                    .map_err(usage)?
                    .as_str()
                {
                    "test" => Environment::Test,
                    "live" => Environment::Live,
                    other => {
                        return Err(UsageError(format!(
                            "--env must be test or live, not {other:?}"
                        )));
                    }
                }
            }
            Long("state-dir") => state_dir = Some(PathBuf::from(parser.value().map_err(usage)?)),
            Long("token-cmd") => {
                token_cmd = Some(parser.value().map_err(usage)?.string().map_err(usage)?)
            }
            Long("token-timeout") => {
                let ms: u64 = parser.value().map_err(usage)?.parse().map_err(usage)?;
                token_timeout = Some(Duration::from_millis(ms));
            }
            Short('v') | Long("verbose") => verbose = true,
            Long("seed") => {
                seed = Some(
                    parser
                        .value()
                        .map_err(usage)?
                        .parse::<u64>()
                        .map_err(usage)?,
                )
            }
            Value(path) if script.is_none() => script = Some(PathBuf::from(path)),
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let missing = |what: &str| UsageError(format!("missing {what}"));
    Ok(Some(RunOptions {
        endpoint: endpoint.ok_or_else(|| missing("--endpoint URL"))?,
        app_id: app_id.ok_or_else(|| missing("--app-id ID"))?,
        jwt,
        environment,
        state_dir,
        token_cmd,
        seed,
        token_timeout,
        verbose,
        script: script.ok_or_else(|| missing("SCRIPT"))?,
    }))
}

/// `authsync run ARGS`, writing JSON lines to stdout and diagnostics to stderr.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match parse_args(args) {
        Ok(Some(options)) => {
            crate::logging::init(options.verbose);
            run(&options, &JsonLines::new(io::stdout()))
        }
        Ok(None) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Err(UsageError(message)) => {
            eprintln!(
                "authsync run: {message}\n{}",
                HELP.lines().nth(2).unwrap_or_default()
            );
            ExitCode::from(2)
        }
    }
}

/// Runs a scenario with `options`, writing its JSON lines to `out`.
pub fn run(options: &RunOptions, out: &JsonLines) -> ExitCode {
    let reader: Box<dyn BufRead> = if options.script.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        match File::open(&options.script) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(e) => {
                eprintln!(
                    "authsync run: cannot read {}: {e}",
                    options.script.display()
                );
                return ExitCode::from(2);
            }
        }
    };
    let client = match start(options, out) {
        Ok(client) => client,
        Err(e @ StartError::SeedMismatch { .. }) => {
            eprintln!("authsync run: {e}");
            return ExitCode::from(2);
        }
        Err(e @ StartError::Config(_)) => {
            eprintln!("authsync run: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("authsync run: {e}");
            return ExitCode::from(1);
        }
    };
    let mut reader = reader;
    let mut number = 0;
    loop {
        number += 1;
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => break,
            Err(message) => Err(message),
        };
        let op = match line.and_then(|l| parse_line(&l).map_err(|e| e.to_string())) {
            Ok(Some(op)) => op,
            Ok(None) => continue,
            Err(message) => {
                eprintln!("authsync run: script line {number}: {message}");
                // No end-of-script flush: what was tracked stays pending in the state.
                client.close(Duration::from_secs(2));
                token_command::kill_all();
                out.summary(client.totals());
                return ExitCode::from(2);
            }
        };
        match execute(&client, op) {
            Ok(Some(Outcome::Ignored(because))) => out.ignored(number, because),
            Ok(_) => {}
            // D4: the change was taken and is kept in memory; the storage line has said
            // why (and stderr).
            Err(Error::NotStored { .. }) => {}
            Err(refused) => out.refused(number, &refused.to_string()),
        }
    }
    let _ = client.flush_and_wait(FINAL_SETTLE);
    client.close(Duration::from_secs(2));
    token_command::kill_all();
    out.summary(client.totals());
    ExitCode::SUCCESS
}

/// The next script line without its line end, read no further than the longest line
/// allowed (section 5: 1 MiB), so that an endless line cannot exhaust memory; `None`
/// at the end of the script.
fn read_line(reader: &mut dyn BufRead) -> Result<Option<String>, String> {
    let limit = crate::script::MAX_LINE_BYTES as u64 + 2;
    let mut bytes = Vec::new();
    let read = reader
        .take(limit)
        .read_until(b'\n', &mut bytes)
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    } else if read as u64 == limit {
        return Err(crate::script::ScriptError::TooLong.to_string());
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "not valid UTF-8".to_owned())
}

fn start(options: &RunOptions, out: &JsonLines) -> Result<Client, StartError> {
    let config = Config::new(options.app_id.clone(), options.endpoint.clone())
        .with_jwt(options.jwt)
        .with_environment(options.environment);
    let lines = out.clone();
    let mut workspace = WorkspaceOptions::new(config).observer(move |event| {
        match event {
            Event::TokenFetchFailed { identifier, reason } => {
                eprintln!("authsync run: warning: token command for {identifier:?}: {reason}");
            }
            Event::Storage(notice) => eprintln!("authsync run: storage: {notice}"),
            Event::TransportFailed { batch_id, failure } => {
                eprintln!("authsync run: warning: batch {batch_id}: {failure:?}; it is retried");
            }
            _ => {}
        }
        lines.event(event);
    });
    if let Some(dir) = &options.state_dir {
        workspace = workspace.state_dir(dir);
    }
    if let Some(seed) = options.seed {
        workspace = workspace.seed(seed);
    }
    if let Some(timeout) = options.token_timeout {
        workspace = workspace.token_timeout(timeout);
    }
    if let Some(command) = options.token_cmd.clone() {
        workspace = workspace.token_provider(authsync_blocking::provider(move |request| {
            token_command::run(&command, request)
        }));
    }
    Client::start(workspace)
}

/// Carries out one operation: the library's outcome when it has one, `Err` when it
/// refused it.
fn execute(client: &Client, op: Op) -> Result<Option<Outcome>, Error> {
    match op {
        Op::Track { name, attrs } => client.track(&name, &attrs).map(|_| None),
        Op::Identify { id } => client.identify(&id).map(Some),
        Op::Token { token, identifier } => client
            .pass_authentication_details(&JwtAuthenticationDetails::new(token, identifier))
            .map(Some),
        Op::Logout => client.logout().map(Some),
        Op::SessionStart => client.session_start().map(|()| None),
        Op::Flush => client.flush().map(|()| None),
        Op::Wait { ms } => {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(None)
        }
        Op::Settle { timeout_ms } => {
            let _ = client.wait_settled(Duration::from_millis(timeout_ms));
            Ok(None)
        }
    }
}
