//! The library's log on stderr, for `authsync run -v` or `RUST_LOG=LEVEL`: the `log`
//! facade's records as `authsync: LEVEL target: message` lines.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "authsync: {} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// Sends the library's log to stderr at `RUST_LOG`'s level, or at `debug` when
/// `verbose`; nothing otherwise.
pub fn init(verbose: bool) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok());
    let level = match (from_env, verbose) {
        (Some(level), _) => level,
        (None, true) => LevelFilter::Debug,
        (None, false) => return,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
        log::debug!("logging at {}", level.to_level().unwrap_or(Level::Error));
    }
}
