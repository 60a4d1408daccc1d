//! The durable store of one workspace (D2): a state directory holding an append-only
//! journal of the core's records and, after compaction, a snapshot.
//!
//! Layout of a state directory (mode 0700; files 0600, since they hold tokens):
//! - `lock`: held with an exclusive file lock while a client uses the directory, so
//!   that a second process gets [`StoreError::Locked`] instead of corrupting it;
//! - `journal`: the core's records, one checksummed frame each, appended in order;
//! - `snapshot`: the whole state at one record number, replaced atomically (write to
//!   `snapshot.tmp`, sync, rename, sync the directory).
//!
//! A record is written to the file (the kernel's page cache) before [`StateDir::append`]
//! returns, so it survives the process being killed at any instant. Surviving a power
//! loss also needs it on the disk: that is the [`FsyncPolicy`]. Recovery reads the
//! snapshot and the journal, cuts a torn tail (a write a crash interrupted) and reports
//! how much it cut. This module knows nothing of the rules; it stores what the core
//! says to store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use authsync_core::{
    JournalDamage, JournalReader, Record, RestoreError, Snapshot, SnapshotVerifier,
};
use thiserror::Error;

const LOCK_FILE: &str = "lock";
const JOURNAL_FILE: &str = "journal";
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TEMP_FILE: &str = "snapshot.tmp";

/// When appended records are forced to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every append: nothing acknowledged to the app is lost even on power loss.
    Always,
    /// At most this long after the first unsynced append, when the driver calls
    /// [`StateDir::sync_if_due`] at [`StateDir::sync_due_at`] (both drivers do):
    /// bounded loss on power loss, far fewer syncs, and no clock read per append.
    Every(Duration),
    /// Never explicitly: the operating system writes back when it likes.
    Never,
}

/// How a state directory is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// When records reach the disk.
    pub fsync: FsyncPolicy,
    /// Journal size past which [`StateDir::wants_compaction`] says to write a snapshot,
    /// and then only once the journal is also a quarter of the last snapshot's size:
    /// each compaction rewrites the whole state, so a fixed threshold alone would make
    /// a large queue's compactions quadratic, while the quarter keeps their cost at
    /// most four bytes written per journal byte and a restart's replay (several times
    /// dearer per event than reading a snapshot) to a fifth of the state.
    pub compact_after_bytes: u64,
}

impl Default for StoreOptions {
    /// Sync at most every 100 ms; compact past 1 MiB of journal.
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Every(Duration::from_millis(100)),
            compact_after_bytes: 1024 * 1024,
        }
    }
}

/// A store that cannot be opened, read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another client (in this or another process) holds the directory.
    #[error("state directory {path} is in use by another client (lock held on {lock})")]
    Locked {
        /// The state directory.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// A file operation failed.
    #[error("state directory {path}: {action}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The snapshot is damaged (it is written atomically, so this is disk corruption
    /// or a file from elsewhere); nothing was changed.
    #[error("state directory {path}: {source}")]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: RestoreError,
    },
}

/// What was found when a state directory was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The latest snapshot, if one was written.
    pub snapshot: Option<Snapshot>,
    /// The journal's records, in order.
    pub records: Vec<Record>,
    /// A torn or damaged tail that was cut from the journal, if any.
    pub cut: Option<JournalDamage>,
}

impl Recovered {
    /// Whether the directory held no state: a new install.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.records.is_empty()
    }
}

/// An open state directory, held exclusively.
///
/// ```
/// use authsync_core::{Action, Client, Config, Now};
/// use authsync_host::store::{StateDir, StoreOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let config = Config::new("app", "http://127.0.0.1:9").with_seed(1);
/// let (mut store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
/// assert!(recovered.is_empty());
///
/// let mut client = Client::new(config.clone(), Now::new(0, 0)).unwrap();
/// let _ = client.handle_track(Now::new(0, 0), "e", &serde_json::json!({})).unwrap();
/// while let Some(action) = client.poll_action() {
///     if let Action::Persist(record) = action {
///         store.append(&[record]).unwrap();
///     }
/// }
/// drop(store);
///
/// let (_store, recovered) = StateDir::open(dir.path(), StoreOptions::default()).unwrap();
/// let restored = Client::restore(config, Now::new(0, 0), recovered.snapshot.as_ref(), recovered.records).unwrap();
/// assert_eq!(restored.totals().tracked, 1);
/// ```
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    journal_path: PathBuf,
    options: StoreOptions,
    journal: File,
    journal_bytes: u64,
    /// Size of the snapshot on disk, which sets the compaction threshold.
    snapshot_bytes: u64,
    /// Appends not yet forced to the disk, and since when.
    unsynced_since: Option<Instant>,
    /// Reused encoding buffer: one `write` per append, no allocation in steady state.
    frames: Vec<u8>,
    // Held for the directory's lifetime; the lock goes with it.
    _lock: File,
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `path`, takes its lock, reads
    /// what it holds and cuts a torn journal tail.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another client holds it, [`StoreError::Snapshot`]
    /// for a damaged snapshot, [`StoreError::Io`] for file errors.
    pub fn open(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<(Self, Recovered), StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private_dir(&path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock =
            private_file(&lock_path, false).map_err(io_error(&lock_path, "open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path,
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    path: lock_path,
                    action: "lock",
                    source,
                });
            }
        }
        // A temporary snapshot is one a crash interrupted; the previous one stands.
        let _ = fs::remove_file(path.join(SNAPSHOT_TEMP_FILE));
        let snapshot = read_snapshot(&path.join(SNAPSHOT_FILE))?;

        let journal_path = path.join(JOURNAL_FILE);
        let mut journal = private_file(&journal_path, true)
            .map_err(io_error(&journal_path, "open the journal"))?;
        let mut bytes = Vec::new();
        journal
            .read_to_end(&mut bytes)
            .map_err(io_error(&journal_path, "read the journal"))?;
        // Records borrow their events from the file's bytes instead of copying them;
        // a typical record is about 140 bytes.
        let mut records = Vec::with_capacity(bytes.len() / 128);
        let mut reader = JournalReader::shared(bytes.into());
        let mut cut = None;
        for item in reader.by_ref() {
            match item {
                Ok(record) => records.push(record),
                Err(damage) => cut = Some(damage),
            }
        }
        let valid = reader.valid_len() as u64;
        if let Some(damage) = &cut {
            log::warn!(
                "authsync: {}: {damage}; the tail was cut",
                journal_path.display()
            );
            journal
                .set_len(valid)
                .and_then(|()| journal.sync_all())
                .map_err(io_error(&journal_path, "cut the torn journal tail"))?;
        }
        let store = Self {
            path,
            journal_path,
            options,
            journal,
            journal_bytes: valid,
            snapshot_bytes: snapshot.as_ref().map_or(0, |s| s.as_bytes().len() as u64),
            unsynced_since: None,
            frames: Vec::new(),
            _lock: lock,
        };
        Ok((
            store,
            Recovered {
                snapshot,
                records,
                cut,
            },
        ))
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current journal size in bytes.
    #[must_use]
    pub fn journal_bytes(&self) -> u64 {
        self.journal_bytes
    }

    /// Appends records to the journal in one write, then syncs if the policy says so.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the write fails; the journal may then hold a torn frame,
    /// which the next [`StateDir::open`] cuts.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.frames.clear();
        for record in records {
            record.encode(&mut self.frames);
        }
        self.append_encoded_frames()
    }

    /// Appends one record, encoding it straight into the write buffer.
    ///
    /// # Errors
    /// As [`StateDir::append`].
    pub fn append_one(&mut self, record: &Record) -> Result<(), StoreError> {
        self.frames.clear();
        record.encode(&mut self.frames);
        self.append_encoded_frames()
    }

    fn append_encoded_frames(&mut self) -> Result<(), StoreError> {
        if let Err(source) = self.journal.write_all(&self.frames) {
            return Err(StoreError::Io {
                path: self.journal_path.clone(),
                action: "append to the journal",
                source,
            });
        }
        self.journal_bytes += self.frames.len() as u64;
        if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        match self.options.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::Every(_) | FsyncPolicy::Never => Ok(()),
        }
    }

    /// When the policy wants the pending appends synced, if any are pending.
    #[must_use]
    pub fn sync_due_at(&self) -> Option<Instant> {
        match (self.options.fsync, self.unsynced_since) {
            (FsyncPolicy::Every(period), Some(since)) => Some(since + period),
            _ => None,
        }
    }

    /// Syncs pending appends if the policy's period has passed.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the sync fails.
    pub fn sync_if_due(&mut self) -> Result<(), StoreError> {
        match self.sync_due_at() {
            Some(due) if Instant::now() >= due => self.sync(),
            _ => Ok(()),
        }
    }

    /// Forces every append to the disk now.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the sync fails.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced_since.take().is_some() {
            self.journal
                .sync_data()
                .map_err(io_error(&self.journal_path, "sync the journal"))?;
        }
        Ok(())
    }

    /// Whether the journal has grown past the compaction threshold.
    #[must_use]
    pub fn wants_compaction(&self) -> bool {
        self.journal_bytes
            > self
                .options
                .compact_after_bytes
                .max(self.snapshot_bytes / 4)
    }

    /// Replaces the snapshot with `snapshot` (atomically) and empties the journal.
    /// `snapshot` must include every record appended so far: take it from the client
    /// with no record left unwritten.
    ///
    /// A crash at any point leaves either the old snapshot with the whole journal, or
    /// the new snapshot with a journal whose records it already includes (and that
    /// restore skips).
    ///
    /// # Errors
    /// [`StoreError::Io`] when a write, sync or rename fails; the old state stands.
    pub fn compact(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let temp = self.path.join(SNAPSHOT_TEMP_FILE);
        let target = self.path.join(SNAPSHOT_FILE);
        {
            let mut file = private_file(&temp, false)
                .and_then(|f| f.set_len(0).map(|()| f))
                .map_err(io_error(&temp, "create the snapshot"))?;
            file.write_all(snapshot.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io_error(&temp, "write the snapshot"))?;
        }
        fs::rename(&temp, &target).map_err(io_error(&target, "replace the snapshot"))?;
        sync_dir(&self.path)?;
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_all())
            .map_err(io_error(&self.journal_path, "empty the journal"))?;
        self.journal_bytes = 0;
        self.snapshot_bytes = snapshot.as_bytes().len() as u64;
        self.unsynced_since = None;
        Ok(())
    }
}

/// Pieces a snapshot is read in: small enough to still be in cache when checksummed.
const SNAPSHOT_READ_PIECE: u64 = 256 * 1024;

fn read_snapshot(path: &Path) -> Result<Option<Snapshot>, StoreError> {
    let read_error = |source| StoreError::Io {
        path: path.to_path_buf(),
        action: "read the snapshot",
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let size_hint = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    let mut verifier = SnapshotVerifier::new();
    loop {
        let start = bytes.len();
        let read = (&mut file)
            .take(SNAPSHOT_READ_PIECE)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if read == 0 {
            break;
        }
        verifier.update(&bytes[start..]);
    }
    verifier
        .finish(bytes)
        .map(Some)
        .map_err(|source| StoreError::Snapshot {
            path: path.to_path_buf(),
            source,
        })
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        path,
        action,
        source,
    }
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(io_error(path, "create the state directory"))
}

/// Opens or creates a file readable and writable by its owner only.
fn private_file(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).create(true);
    if append {
        options.append(true);
    } else {
        options.write(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // A file created by an older version or by hand may be wider than 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(path, "sync the state directory"))?;
    }
    let _ = path;
    Ok(())
}
