//! The command line, shared by the `authsync-refserver` binary and `authsync serve`.
//!
//! [`run_cli`] parses the arguments (with `lexopt`), starts the server, prints
//! `listening on http://IP:PORT` as the first line on stdout, and serves until
//! SIGINT or SIGTERM, `POST /admin/shutdown` from loopback, or — with
//! `--exit-on-stdin-eof` — the end of standard input. Exit status: 0 after a clean
//! stop (and for `--help`), 1 when the server cannot start (a key file, the bind
//! address), 2 for bad arguments.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{
    Clock, DEFAULT_LEEWAY_SECS, DEFAULT_MAX_BODY_BYTES, Enforcement, ServerConfig,
};
use crate::server::{RefServer, StartError};
use crate::verify_key::{KeyError, VerifyKey};

/// A `--key PATH[:KID]` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The PEM public key file.
    pub path: PathBuf,
    /// Its `kid`, if given.
    pub kid: Option<String>,
}

impl KeySpec {
    /// Parses `PATH[:KID]`: the text after the last `:` is a `kid` when it is not
    /// empty and holds no `/` (so `dir:v2/key.pem` is a path).
    pub fn parse(arg: &str) -> Self {
        match arg.rsplit_once(':') {
            Some((path, kid)) if !path.is_empty() && !kid.is_empty() && !kid.contains('/') => {
                Self {
                    path: PathBuf::from(path),
                    kid: Some(kid.to_owned()),
                }
            }
            _ => Self {
                path: PathBuf::from(arg),
                kid: None,
            },
        }
    }
}

/// The parsed options.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CliOptions {
    /// `--bind ADDR` (default 127.0.0.1).
    pub bind: IpAddr,
    /// `--port N` (default 0: the OS picks one).
    pub port: u16,
    /// `--key PATH[:KID]`, repeatable.
    pub keys: Vec<KeySpec>,
    /// `--test-keys`.
    pub test_keys: bool,
    /// `--mode disabled|required` (default required).
    pub mode: Enforcement,
    /// `--leeway SECS` (default 30).
    pub leeway_secs: u64,
    /// `--max-body BYTES`.
    pub max_body_bytes: usize,
    /// `--now UNIX_SECS`: a fixed clock.
    pub now: Option<i64>,
    /// Not `--no-admin`.
    pub admin_routes: bool,
    /// `--quiet`: no access log.
    pub quiet: bool,
    /// `--exit-on-stdin-eof`.
    pub exit_on_stdin_eof: bool,
}

impl Default for CliOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            keys: Vec::new(),
            test_keys: false,
            mode: Enforcement::Required,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            now: None,
            admin_routes: true,
            quiet: false,
            exit_on_stdin_eof: false,
        }
    }
}

impl CliOptions {
    /// The server configuration these options describe (reads the key files).
    ///
    /// # Errors
    /// [`KeyError`] for the first key file that cannot be loaded.
    pub fn to_config(&self) -> Result<ServerConfig, KeyError> {
        let mut config = ServerConfig::default()
            .bind(SocketAddr::new(self.bind, self.port))
            .enforcement(self.mode)
            .leeway_secs(self.leeway_secs)
            .max_body_bytes(self.max_body_bytes)
            .admin_routes(self.admin_routes)
            .access_log(!self.quiet);
        if let Some(now) = self.now {
            config = config.clock(Clock::Fixed(now));
        }
        for spec in &self.keys {
            config = config.with_key(VerifyKey::from_file(&spec.path, spec.kid.as_deref())?);
        }
        if self.test_keys {
            config = config.with_test_keys();
        }
        Ok(config)
    }
}

/// What the arguments ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliCommand {
    /// `--help`.
    Help,
    /// Serve with these options.
    Run(CliOptions),
}

/// Bad arguments.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CliError(#[from] lexopt::Error);

/// Parses the arguments that follow the program (or subcommand) name.
///
/// # Errors
/// [`CliError`] for an unknown option, a missing or invalid value.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<CliCommand, CliError> {
    use lexopt::prelude::*;

    let mut options = CliOptions::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(CliCommand::Help),
            Short('p') | Long("port") => options.port = parser.value()?.parse()?,
            Long("bind") => options.bind = parser.value()?.parse()?,
            Long("key") => {
                let value = parser.value()?.string()?;
                options.keys.push(KeySpec::parse(&value));
            }
            Long("test-keys") => options.test_keys = true,
            Long("mode") => options.mode = parser.value()?.parse()?,
            Long("leeway") => options.leeway_secs = parser.value()?.parse()?,
            Long("max-body") => options.max_body_bytes = parser.value()?.parse()?,
            Long("now") => options.now = Some(parser.value()?.parse()?),
            Long("no-admin") => options.admin_routes = false,
            Short('q') | Long("quiet") => options.quiet = true,
            Long("exit-on-stdin-eof") => options.exit_on_stdin_eof = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(CliCommand::Run(options))
}

/// The `--help` text, naming the program as `program`.
pub fn help_text(program: &str) -> String {
    format!(
        "\
{program}: the authsync reference ingestion server (wire protocol v1), for tests and demos.

It answers POST /v1/report as section 4 of the rules document says, verifying JWTs (RS256, RS512, ES256)
with the public keys it is given, and offers test-only admin routes on loopback.

Usage: {program} [OPTIONS]

Options:
  -p, --port N            TCP port; 0 (the default) lets the OS pick one. The address is
                          printed as the first line on stdout: listening on http://IP:PORT
      --bind ADDR         IP address to listen on (default 127.0.0.1). Admin routes are
                          served to loopback peers only, whatever the address.
      --key PATH[:KID]    Trust this PEM public key (repeatable, for rotation). The type is
                          detected: an RSA key verifies RS256 and RS512, an EC P-256 key
                          ES256. With KID, tokens whose header names that kid use this key;
                          a key without KID is tried for any token.
      --test-keys         Trust the checked-in TEST keys (kids test-rsa-a, test-rsa-b,
                          test-p256). They are public: never use them for anything real.
      --mode MODE         Token enforcement: required (default) or disabled. Under required,
                          identified batches need a valid token; anonymous batches are
                          accepted without one in every mode.
      --leeway SECS       Clock leeway for exp, nbf and iat (default {DEFAULT_LEEWAY_SECS}).
      --max-body BYTES    Bodies over this get 413 (default {DEFAULT_MAX_BODY_BYTES}).
      --now UNIX_SECS     Use a fixed clock for the time checks (deterministic tests).
      --no-admin          Do not serve the /admin routes.
  -q, --quiet             No access log (one line per request on stderr, never a token).
      --exit-on-stdin-eof Also stop when standard input ends (to die with a parent).
  -h, --help              Show this help.

It stops on SIGINT or SIGTERM, on POST /admin/shutdown, or with --exit-on-stdin-eof when
stdin ends. Exit status: 0 after a clean stop, 1 if it cannot start, 2 for bad arguments.

Admin routes (loopback peers only): GET /admin/requests, /admin/events, /admin/batches,
/admin/stats, /admin/faults, /admin/config; POST /admin/faults, DELETE /admin/faults,
PATCH /admin/config, POST /admin/reset, POST /admin/shutdown. See the crate README.

Example: {program} --test-keys --port 8080
"
    )
}

/// Runs the command line with the arguments after the program name, as
/// `authsync-refserver`. See the module documentation.
pub fn run_cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    run_cli_as("authsync-refserver", args)
}

/// [`run_cli`] under another program name, e.g. `authsync serve`, for messages and help.
pub fn run_cli_as(program: &str, args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match parse_args(args) {
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "{program}: {err}\nTry '{program} --help'."
            );
            ExitCode::from(2)
        }
        Ok(CliCommand::Help) => {
            let _ = std::io::stdout().write_all(help_text(program).as_bytes());
            ExitCode::SUCCESS
        }
        Ok(CliCommand::Run(options)) => match serve(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                let _ = writeln!(std::io::stderr(), "{program}: {err}");
                ExitCode::from(1)
            }
        },
    }
}

/// Why [`serve`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A key file could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Starts the server with `options`, prints `listening on URL` on stdout, and blocks
/// until it is stopped (see the module documentation).
///
/// # Errors
/// [`ServeError`] when it cannot start.
pub fn serve(options: &CliOptions) -> Result<(), ServeError> {
    let config = options.to_config()?;
    if config.enforcement == Enforcement::Required && config.keys.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: --mode required without --key or --test-keys: every token will get INVALID_SIGNATURE"
        );
    }
    // Handlers go in before the address is printed, so that whoever reads it can
    // signal at once without killing the process by the default action.
    let signals = signals::install().map_err(ServeError::Signals)?;
    let server = RefServer::start(config)?;
    let admin = server.admin();
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {}", server.url());
        let _ = stdout.flush();
    }
    let on_signal = admin.clone();
    let spawned = std::thread::Builder::new()
        .name("refserver-signals".to_owned())
        .spawn(move || {
            signals.wait();
            on_signal.request_shutdown();
        });
    if spawned.is_err() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: no signal thread; stop with POST /admin/shutdown"
        );
    }
    if options.exit_on_stdin_eof {
        let on_eof = admin;
        let _ = std::thread::Builder::new()
            .name("refserver-stdin".to_owned())
            .spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                on_eof.request_shutdown();
            });
    }
    server.wait();
    let _ = writeln!(std::io::stderr(), "stopped");
    Ok(())
}

/// SIGINT and SIGTERM, through tokio's signal support (no unsafe code here).
mod signals {
    use tokio::runtime::Runtime;

    pub(super) struct Signals {
        runtime: Runtime,
        #[cfg(unix)]
        interrupt: tokio::signal::unix::Signal,
        #[cfg(unix)]
        terminate: tokio::signal::unix::Signal,
    }

    pub(super) fn install() -> std::io::Result<Signals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let _guard = runtime.enter();
            let interrupt = signal(SignalKind::interrupt())?;
            let terminate = signal(SignalKind::terminate())?;
            drop(_guard);
            Ok(Signals {
                runtime,
                interrupt,
                terminate,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals { runtime })
        }
    }

    impl Signals {
        /// Blocks until SIGINT or SIGTERM.
        pub(super) fn wait(self) {
            #[cfg(unix)]
            {
                let Self {
                    runtime,
                    mut interrupt,
                    mut terminate,
                } = self;
                runtime.block_on(async {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                });
            }
            #[cfg(not(unix))]
            {
                let _ = self.runtime.block_on(tokio::signal::ctrl_c());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_every_option() {
        let CliCommand::Run(o) = parse_args(args(&[
            "--port",
            "8080",
            "--bind",
            "::1",
            "--key",
            "a.pem:k1",
            "--key",
            "dir:x/b.pem",
            "--test-keys",
            "--mode",
            "disabled",
            "--leeway",
            "5",
            "--max-body",
            "100",
            "--now",
            "1700000000",
            "--no-admin",
            "-q",
            "--exit-on-stdin-eof",
        ]))
        .unwrap() else {
            panic!("not run")
        };
        assert_eq!(o.port, 8080);
        assert_eq!(o.bind.to_string(), "::1");
        assert_eq!(
            o.keys,
            vec![
                KeySpec {
                    path: "a.pem".into(),
                    kid: Some("k1".into())
                },
                KeySpec {
                    path: "dir:x/b.pem".into(),
                    kid: None
                },
            ]
        );
        assert!(o.test_keys && o.quiet && o.exit_on_stdin_eof && !o.admin_routes);
        assert_eq!(o.mode, Enforcement::Disabled);
        assert_eq!(
            (o.leeway_secs, o.max_body_bytes, o.now),
            (5, 100, Some(1_700_000_000))
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        for bad in [
            &["--mode", "maybe"][..],
            &["--port", "x"],
            &["--port"],
            &["--frobnicate"],
            &["extra"],
        ] {
            assert!(parse_args(args(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_args(args(&["--help"])).unwrap(), CliCommand::Help);
    }

    #[test]
    fn help_documents_the_main_options() {
        let help = help_text("authsync serve");
        for needle in [
            "--key",
            "--test-keys",
            "--mode",
            "--leeway",
            "--port",
            "authsync serve",
        ] {
            assert!(help.contains(needle), "{needle}");
        }
    }
}
