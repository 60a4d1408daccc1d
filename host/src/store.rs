//! The durable store of one workspace (D2, D4–D6): a state directory that holds the
//! core's journal segments and snapshot, and carries out the core's storage work.
//!
//! Layout of a state directory (0700; files 0600, since they hold tokens):
//! - `lock`: locked while a client uses the directory, so that a second one gets
//!   [`StoreError::Locked`]; it also says whether the last run closed cleanly;
//! - `journal.N`: journal segments, appended in order; every start, failure and
//!   compaction begins a new one, so nothing is ever appended after a torn frame
//!   (`journal`, the single journal of earlier versions, reads as segment 0);
//! - `snapshot`: the whole state at one record, replaced atomically (written to
//!   `snapshot.tmp`, synced, renamed, the directory synced); segments it covers are
//!   removed after it.
//!
//! The store decides nothing: which frames to append, when to sync or compact, and
//! what a failure means are the core's. It moves bytes, and says how an operation
//! failed.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use authsync_core::{
    CompactJob, FsyncPolicy, PendingWrite, PreviousRun, SnapshotVerifier, StorageFailure,
    StorageFailureKind, StoredSegment, StoredState, WriteJob,
};
use bytes::Bytes;
use thiserror::Error;

use crate::fs::{Directory, FileSystem, StoreFile};

const LOCK_FILE: &str = "lock";
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TEMP_FILE: &str = "snapshot.tmp";
const LEGACY_JOURNAL_FILE: &str = "journal";
const SEGMENT_PREFIX: &str = "journal.";

/// A store that cannot be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another client (in this or another process) holds the directory.
    #[error("state directory {path} is in use by another client")]
    Locked {
        /// The state directory.
        path: PathBuf,
    },
    /// The directory, or a file in it, is not the user's own private file: D6
    /// refuses it.
    #[error("state directory {path} is refused: {why}")]
    Refused {
        /// The state directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A file operation failed.
    #[error("state directory {path}: {action}: {source}")]
    Io {
        /// The state directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// The journal segment files open for appending, and what waits for a sync.
#[derive(Default)]
struct Segments {
    current: Option<(u64, Arc<dyn StoreFile>)>,
    /// Segments written to since their last sync.
    unsynced: BTreeMap<u64, Arc<dyn StoreFile>>,
    /// A segment was created since the directory's last sync.
    directory_unsynced: bool,
}

/// An open state directory, held exclusively. Its methods take `&self`: appends
/// (the app's thread), syncs and compactions (the driver's) run at the same time.
///
/// ```
/// use authsync_core::{Client, Config, Now, Storage, StoragePolicy};
/// use authsync_host::{OsFileSystem, StateDir};
///
/// let place = tempfile::tempdir().unwrap();
/// let policy = StoragePolicy::default();
/// let (store, stored) = StateDir::open(&OsFileSystem, place.path(), policy.fsync, 1).unwrap();
/// let config = Config::new("app", "http://127.0.0.1:9").with_storage(Storage::Durable(policy));
/// let (mut client, _) = Client::recover(config.clone(), Now::new(0, 0), stored).unwrap();
/// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
/// while let Some(job) = client.poll_write() {
///     let result = store.append(&job);
///     client.handle_written(Now::new(0, 0), job.id, result).unwrap();
/// }
/// store.close(true);
/// drop(store);
///
/// let (_store, stored) = StateDir::open(&OsFileSystem, place.path(), policy.fsync, 2).unwrap();
/// let (restored, report) = Client::recover(config, Now::new(0, 0), stored).unwrap();
/// assert!(report.is_clean());
/// assert_eq!(restored.totals().tracked, 1);
/// ```
pub struct StateDir {
    path: PathBuf,
    dir: Box<dyn Directory>,
    lock: Arc<dyn StoreFile>,
    segments: Mutex<Segments>,
}

impl fmt::Debug for StateDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateDir")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateDir {
    /// Opens the state directory at `path` on `fs` (creating it if needed, private),
    /// takes its lock, removes a temporary file a compaction left, and reads what it
    /// holds, for [`authsync_core::Client::recover`]. `fsync` is the policy this run
    /// keeps, recorded so that the next open can tell what a crash may have lost;
    /// `fresh_seed` seeds a new install if nothing can be restored.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another client holds it, [`StoreError::Refused`]
    /// when D6 refuses it, [`StoreError::Io`] for file errors.
    pub fn open(
        fs: &dyn FileSystem,
        path: &Path,
        fsync: FsyncPolicy,
        fresh_seed: u64,
    ) -> Result<(Self, StoredState), StoreError> {
        let io_error = |action: &'static str| {
            let path = path.to_path_buf();
            move |source: io::Error| {
                if source.kind() == io::ErrorKind::PermissionDenied && source.get_ref().is_some() {
                    StoreError::Refused {
                        path,
                        why: source.to_string(),
                    }
                } else {
                    StoreError::Io {
                        path,
                        action,
                        source,
                    }
                }
            }
        };
        let dir = fs.open_dir(path).map_err(io_error("open the directory"))?;
        let lock = dir.lock(LOCK_FILE).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                StoreError::Locked {
                    path: path.to_path_buf(),
                }
            } else {
                io_error("lock")(e)
            }
        })?;
        let previous_run = previous_run(&lock.read_all().map_err(io_error("read the lock"))?);
        // D6: a temporary snapshot is one a compaction left; the previous one stands.
        dir.remove(SNAPSHOT_TEMP_FILE)
            .map_err(io_error("remove a temporary snapshot"))?;
        let mut verifier = SnapshotVerifier::new();
        let snapshot = dir
            .read(SNAPSHOT_FILE, &mut |piece| verifier.update(piece))
            .map_err(io_error("read the snapshot"))?
            .map(|bytes| verifier.finish(bytes).map_err(|e| e.to_string()));
        let mut segments = Vec::new();
        for name in dir.names().map_err(io_error("list the directory"))? {
            let Some(number) = segment_number(&name) else {
                continue;
            };
            let bytes = dir
                .read(&name, &mut |_| {})
                .map_err(io_error("read a journal segment"))?
                .unwrap_or_default();
            // What a run that did not close wrote may still be only in the page
            // cache: made durable before anything is built on it.
            if matches!(previous_run, PreviousRun::Unclean(_)) {
                dir.open(&name)
                    .and_then(|file| file.sync())
                    .map_err(io_error("sync a journal segment"))?;
            }
            segments.push(StoredSegment {
                number,
                bytes: Bytes::from(bytes),
            });
        }
        segments.sort_by_key(|s| s.number);
        if matches!(previous_run, PreviousRun::Unclean(_)) {
            dir.sync().map_err(io_error("sync the directory"))?;
        }
        // Synced only where a power loss must be reported (D4's periodic policy):
        // with `always` nothing unsynced can be lost, with `never` nothing is promised,
        // and a crash of the process alone keeps the page cache.
        let report_needs_it = matches!(fsync, FsyncPolicy::Every(_));
        lock.replace(
            marker_line(&running_marker(fsync)).as_bytes(),
            report_needs_it,
        )
        .map_err(io_error("mark the directory in use"))?;
        let store = Self {
            path: path.to_path_buf(),
            dir,
            lock,
            segments: Mutex::new(Segments::default()),
        };
        let stored = StoredState {
            snapshot,
            segments,
            previous_run,
            fresh_seed,
        };
        Ok((store, stored))
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn segments(&self) -> MutexGuard<'_, Segments> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out a write job: its frames appended to its segment (created if new),
    /// and synced, with the directory, when the job says so.
    ///
    /// # Errors
    /// How the write failed, for [`authsync_core::Client::handle_written`].
    pub fn append(&self, job: &WriteJob) -> Result<(), StorageFailure> {
        self.append_frames(job.segment, &job.frames, job.sync)
    }

    /// Carries out a write lent in place by [`authsync_core::Client::write_pending`].
    ///
    /// # Errors
    /// How the write failed, for the core.
    pub fn append_pending(&self, write: &PendingWrite<'_>) -> Result<(), StorageFailure> {
        self.append_frames(write.segment, write.frames, write.sync)
    }

    fn append_frames(&self, segment: u64, frames: &[u8], sync: bool) -> Result<(), StorageFailure> {
        let mut guard = self.segments();
        let segments = &mut *guard;
        // The file is moved out and back rather than shared: an append is a few
        // hundred nanoseconds, and two atomic reference counts are a tenth of it.
        let current = match segments.current.take() {
            Some((number, file)) if number == segment => file,
            _ => {
                let file = self
                    .dir
                    .create(&format!("{SEGMENT_PREFIX}{segment}"))
                    .map_err(failure)?;
                segments.directory_unsynced = true;
                file
            }
        };
        let (_, file) = segments.current.insert((segment, current));
        file.append(frames).map_err(failure)?;
        if sync {
            file.sync().map_err(failure)?;
            if std::mem::take(&mut segments.directory_unsynced) {
                self.dir.sync().map_err(failure)?;
            }
        } else {
            segments
                .unsynced
                .entry(segment)
                .or_insert_with(|| Arc::clone(file));
        }
        Ok(())
    }

    /// Carries out a sync job: every segment written since its last sync, and the
    /// directory if a segment was created. Appends go on meanwhile.
    ///
    /// # Errors
    /// How the sync failed, for [`authsync_core::Client::handle_synced`].
    pub fn sync(&self) -> Result<(), StorageFailure> {
        let (files, directory) = {
            let mut segments = self.segments();
            let files: Vec<Arc<dyn StoreFile>> = std::mem::take(&mut segments.unsynced)
                .into_values()
                .collect();
            (files, std::mem::take(&mut segments.directory_unsynced))
        };
        let synced = files
            .iter()
            .try_for_each(|file| file.sync())
            .and_then(|()| if directory { self.dir.sync() } else { Ok(()) });
        if synced.is_err() && directory {
            self.segments().directory_unsynced = true;
        }
        synced.map_err(failure)
    }

    /// Carries out a compaction: the snapshot written to a temporary file, synced,
    /// renamed over the last one, the directory synced, then the segments it covers
    /// removed. Returns the snapshot's size. A failure leaves the last snapshot and
    /// every segment as they were, and no temporary file.
    ///
    /// # Errors
    /// How it failed, for [`authsync_core::Client::handle_compacted`].
    pub fn compact(&self, job: &CompactJob) -> Result<u64, StorageFailure> {
        let snapshot = job.snapshot();
        let written = self.replace_snapshot(snapshot.as_bytes());
        if written.is_err() {
            // A full disk stays full with a half-written snapshot on it.
            let _ = self.dir.remove(SNAPSHOT_TEMP_FILE);
        }
        written.map_err(failure)?;
        let covered: Vec<String> = self
            .dir
            .names()
            .map_err(failure)?
            .into_iter()
            .filter(|name| segment_number(name).is_some_and(|n| n < job.first_segment))
            .collect();
        for name in &covered {
            self.dir.remove(name).map_err(failure)?;
        }
        self.segments()
            .unsynced
            .retain(|&number, _| number >= job.first_segment);
        if !covered.is_empty() {
            self.dir.sync().map_err(failure)?;
        }
        Ok(snapshot.as_bytes().len() as u64)
    }

    fn replace_snapshot(&self, bytes: &[u8]) -> io::Result<()> {
        self.dir.remove(SNAPSHOT_TEMP_FILE)?;
        let file = self.dir.create(SNAPSHOT_TEMP_FILE)?;
        file.append(bytes)?;
        file.sync()?;
        drop(file);
        self.dir.rename(SNAPSHOT_TEMP_FILE, SNAPSHOT_FILE)?;
        self.dir.sync()
    }

    /// Records how this run ends: `clean` when everything written is synced
    /// ([`authsync_core::Step::Finish`]). The lock goes with the store.
    pub fn close(&self, clean: bool) {
        // Not synced: should a power loss take it, the next open finds the run marked
        // running and only reports a loss that may have been (the journal was synced).
        if clean
            && let Err(e) = self
                .lock
                .replace(marker_line(CLEAN_MARKER).as_bytes(), false)
        {
            log::warn!(
                "authsync: {}: cannot record a clean close: {e}",
                self.path.display()
            );
        }
    }
}

const CLEAN_MARKER: &str = "clean";

/// What the lock file says while a run uses the directory: its fsync policy, so that
/// the next open knows what a crash may have lost.
fn running_marker(fsync: FsyncPolicy) -> String {
    match fsync {
        FsyncPolicy::Always => "running fsync=always".to_owned(),
        FsyncPolicy::Every(period) => format!("running fsync=every:{}", period.as_millis()),
        FsyncPolicy::Never => "running fsync=never".to_owned(),
    }
}

/// A marker as the lock file holds it: every marker the same length (padded with
/// spaces), so that replacing one overwrites a block in place and changes no size.
fn marker_line(marker: &str) -> String {
    format!("{marker:<47}\n")
}

fn previous_run(marker: &[u8]) -> PreviousRun {
    let text = String::from_utf8_lossy(marker);
    let text = text.trim();
    if text == CLEAN_MARKER {
        return PreviousRun::Clean;
    }
    let Some(policy) = text.strip_prefix("running fsync=") else {
        return PreviousRun::Unknown;
    };
    let fsync = match policy {
        "always" => FsyncPolicy::Always,
        "never" => FsyncPolicy::Never,
        every => match every.strip_prefix("every:").and_then(|ms| ms.parse().ok()) {
            Some(ms) => FsyncPolicy::Every(Duration::from_millis(ms)),
            None => return PreviousRun::Unknown,
        },
    };
    PreviousRun::Unclean(fsync)
}

fn segment_number(name: &str) -> Option<u64> {
    if name == LEGACY_JOURNAL_FILE {
        return Some(0);
    }
    name.strip_prefix(SEGMENT_PREFIX)?.parse().ok()
}

/// How an operating-system error failed a storage operation (D4's kinds).
#[must_use]
pub fn failure(error: io::Error) -> StorageFailure {
    let kind = match (error.raw_os_error(), error.kind()) {
        (Some(28 | 122), _) | (_, io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => {
            StorageFailureKind::NoSpace
        }
        (Some(30), _) | (_, io::ErrorKind::ReadOnlyFilesystem) => StorageFailureKind::ReadOnly,
        _ => StorageFailureKind::Io,
    };
    StorageFailure {
        kind,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d4_the_lock_marker_says_how_the_last_run_ended() {
        assert_eq!(previous_run(b""), PreviousRun::Unknown);
        let clean = marker_line(CLEAN_MARKER);
        assert_eq!(previous_run(clean.as_bytes()), PreviousRun::Clean);
        assert_eq!(
            previous_run(b"clean\n"),
            PreviousRun::Clean,
            "as written before"
        );
        for fsync in [
            FsyncPolicy::Always,
            FsyncPolicy::Never,
            FsyncPolicy::Every(Duration::from_millis(250)),
            FsyncPolicy::Every(Duration::from_millis(u64::MAX)),
        ] {
            let running = marker_line(&running_marker(fsync));
            assert_eq!(
                previous_run(running.as_bytes()),
                PreviousRun::Unclean(fsync)
            );
            assert_eq!(running.len(), clean.len(), "replaced in place: {running:?}");
        }
        assert_eq!(
            previous_run(b"running fsync=sometimes"),
            PreviousRun::Unknown
        );
    }

    #[test]
    fn segments_are_numbered_by_name_and_the_old_journal_is_segment_0() {
        assert_eq!(segment_number("journal"), Some(0));
        assert_eq!(segment_number("journal.17"), Some(17));
        assert_eq!(segment_number("journal.x"), None);
        assert_eq!(segment_number("snapshot"), None);
    }

    #[test]
    fn d4_failures_say_their_kind() {
        assert_eq!(
            failure(io::Error::from_raw_os_error(28)).kind,
            StorageFailureKind::NoSpace
        );
        assert_eq!(
            failure(io::Error::from_raw_os_error(30)).kind,
            StorageFailureKind::ReadOnly
        );
        assert_eq!(
            failure(io::Error::from_raw_os_error(5)).kind,
            StorageFailureKind::Io
        );
    }
}
