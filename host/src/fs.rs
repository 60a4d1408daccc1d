//! The file operations a store is made of, as a trait, so that a host can put the
//! state somewhere else (an encrypted volume, memory) and tests can fail any single
//! operation ([`crate::SimulatedDisk`]), the way SQLite tests itself.
//!
//! [`OsFileSystem`] is the real one, and holds the state directory to D6: the
//! directory and its files belong to the current user and are private; nothing is
//! reached through a symbolic link (every file is opened relative to the directory's
//! own descriptor, without following links); new files are created exclusively with
//! mode 0600; a file owned by another user is refused.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Opens state directories.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens the directory at `path`, creating it (and its parents) if it is missing,
    /// and makes it private; refuses one that is not the user's own (D6).
    ///
    /// # Errors
    /// The operating system's error, or [`io::ErrorKind::PermissionDenied`] with an
    /// explanation for a directory D6 refuses.
    fn open_dir(&self, path: &Path) -> io::Result<Box<dyn Directory>>;
}

/// An open state directory: files by name, never through a link.
pub trait Directory: Send + Sync + fmt::Debug {
    /// The names of the files it holds.
    ///
    /// # Errors
    /// The operating system's error.
    fn names(&self) -> io::Result<Vec<String>>;

    /// Reads file `name` whole, handing each piece to `piece` as it is read (so a
    /// checksum runs while the piece is in cache); `None` when there is no such file.
    ///
    /// # Errors
    /// The operating system's error; a link or another user's file is refused.
    fn read(&self, name: &str, piece: &mut dyn FnMut(&[u8])) -> io::Result<Option<Vec<u8>>>;

    /// Creates file `name`, which must not exist, private to the user, for appending.
    ///
    /// # Errors
    /// The operating system's error ([`io::ErrorKind::AlreadyExists`] when it exists).
    fn create(&self, name: &str) -> io::Result<Arc<dyn StoreFile>>;

    /// Opens existing file `name` for appending.
    ///
    /// # Errors
    /// The operating system's error; a link or another user's file is refused.
    fn open(&self, name: &str) -> io::Result<Arc<dyn StoreFile>>;

    /// Opens (creating if needed) file `name` and takes an exclusive lock on it, held
    /// until the file is dropped.
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] when another holds the lock, or the operating
    /// system's error.
    fn lock(&self, name: &str) -> io::Result<Arc<dyn StoreFile>>;

    /// Renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// The operating system's error.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Removes file `name`; a missing file is not an error.
    ///
    /// # Errors
    /// The operating system's error.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Forces the directory's entries (creations, renames, removals) to the disk.
    ///
    /// # Errors
    /// The operating system's error.
    fn sync(&self) -> io::Result<()>;
}

/// An open file of a state directory.
pub trait StoreFile: Send + Sync + fmt::Debug {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// The operating system's error; some bytes may have been written.
    fn append(&self, bytes: &[u8]) -> io::Result<()>;

    /// Forces what was appended to the disk.
    ///
    /// # Errors
    /// The operating system's error.
    fn sync(&self) -> io::Result<()>;

    /// Reads the whole file.
    ///
    /// # Errors
    /// The operating system's error.
    fn read_all(&self) -> io::Result<Vec<u8>>;

    /// Replaces the file's contents with `bytes` (the lock file's marker), and syncs
    /// them when `durable`.
    ///
    /// # Errors
    /// The operating system's error.
    fn replace(&self, bytes: &[u8], durable: bool) -> io::Result<()>;
}

/// The operating system's file system, with D6's checks.
///
/// ```
/// use authsync_host::{FileSystem, OsFileSystem};
/// let place = tempfile::tempdir().unwrap();
/// let dir = OsFileSystem.open_dir(&place.path().join("state")).unwrap();
/// let mut file = dir.create("journal.1").unwrap();
/// file.append(b"frames").unwrap();
/// assert_eq!(dir.names().unwrap(), vec!["journal.1".to_owned()]);
/// # #[cfg(unix)]
/// # {
/// use std::os::unix::fs::PermissionsExt;
/// let mode = std::fs::metadata(place.path().join("state/journal.1")).unwrap().permissions().mode();
/// assert_eq!(mode & 0o777, 0o600);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFileSystem;

/// The error for something D6 refuses.
fn refused(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, what)
}

#[cfg(unix)]
mod unix {
    use std::os::fd::{AsFd, OwnedFd};

    use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

    use super::{
        Arc, Directory, File, FileSystem, OsFileSystem, Path, Read, StoreFile, Write, fmt, io,
        refused,
    };

    /// Bits that make a file or directory visible to others.
    const NOT_PRIVATE: u32 = 0o077;

    impl FileSystem for OsFileSystem {
        fn open_dir(&self, path: &Path) -> io::Result<Box<dyn Directory>> {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(refused(format!(
                        "{} is a symbolic link; a state directory must be a real directory (D6)",
                        path.display()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    use std::os::unix::fs::DirBuilderExt;
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true).mode(0o700);
                    builder.create(path)?;
                }
                Err(e) => return Err(e),
            }
            let fd = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let stat = rustix::fs::fstat(&fd)?;
            let me = rustix::process::geteuid().as_raw();
            if stat.st_uid != me {
                return Err(refused(format!(
                    "{} belongs to user {}, not to this user ({me}) (D6)",
                    path.display(),
                    stat.st_uid
                )));
            }
            if stat.st_mode & NOT_PRIVATE != 0 {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
                log::warn!(
                    "authsync: {} was open to other users (mode {:o}); made private (0700)",
                    path.display(),
                    stat.st_mode & 0o777
                );
            }
            Ok(Box::new(OsDirectory {
                fd,
                path: path.to_path_buf(),
            }))
        }
    }

    /// A directory held by its descriptor: files are reached relative to it, so a
    /// renamed or replaced path cannot redirect them.
    struct OsDirectory {
        fd: OwnedFd,
        path: std::path::PathBuf,
    }

    impl fmt::Debug for OsDirectory {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OsDirectory")
                .field("path", &self.path)
                .finish()
        }
    }

    impl OsDirectory {
        /// Opens `name` without following a link, and checks it is the user's own
        /// private file (making it private if it is not).
        fn open_checked(&self, name: &str, flags: OFlags) -> io::Result<File> {
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| {
                if e == rustix::io::Errno::LOOP {
                    refused(format!(
                        "{} is a symbolic link; state files are never reached through one (D6)",
                        self.path.join(name).display()
                    ))
                } else {
                    io::Error::from(e)
                }
            })?;
            let stat = rustix::fs::fstat(&fd)?;
            let me = rustix::process::geteuid().as_raw();
            if stat.st_uid != me {
                return Err(refused(format!(
                    "{} belongs to user {}, not to this user ({me}); it is not used (D6)",
                    self.path.join(name).display(),
                    stat.st_uid
                )));
            }
            if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                != rustix::fs::FileType::RegularFile
            {
                return Err(refused(format!(
                    "{} is not a regular file (D6)",
                    self.path.join(name).display()
                )));
            }
            if stat.st_mode & NOT_PRIVATE != 0 {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))?;
            }
            Ok(File::from(fd))
        }
    }

    impl Directory for OsDirectory {
        fn names(&self) -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&self.path)? {
                let entry = entry?;
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        }

        fn read(&self, name: &str, piece: &mut dyn FnMut(&[u8])) -> io::Result<Option<Vec<u8>>> {
            /// Pieces small enough to still be in cache when checksummed.
            const PIECE: u64 = 256 * 1024;
            let mut file = match self.open_checked(name, OFlags::RDONLY) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let size = file.metadata().map_or(0, |m| m.len());
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            loop {
                let start = bytes.len();
                let read = (&mut file).take(PIECE).read_to_end(&mut bytes)?;
                if read == 0 {
                    return Ok(Some(bytes));
                }
                piece(&bytes[start..]);
            }
        }

        fn create(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
            let file = self.open_checked(
                name,
                OFlags::RDWR | OFlags::APPEND | OFlags::CREATE | OFlags::EXCL,
            )?;
            Ok(Arc::new(OsFile { file }))
        }

        fn open(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
            let file = self.open_checked(name, OFlags::RDWR | OFlags::APPEND)?;
            Ok(Arc::new(OsFile { file }))
        }

        fn lock(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
            let file = self.open_checked(name, OFlags::RDWR | OFlags::CREATE)?;
            rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).map_err(
                |e| {
                    if e == rustix::io::Errno::WOULDBLOCK {
                        io::Error::from(io::ErrorKind::WouldBlock)
                    } else {
                        io::Error::from(e)
                    }
                },
            )?;
            Ok(Arc::new(OsFile { file }))
        }

        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
        }

        fn remove(&self, name: &str) -> io::Result<()> {
            match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }

        fn sync(&self) -> io::Result<()> {
            Ok(rustix::fs::fsync(&self.fd)?)
        }
    }

    #[derive(Debug)]
    struct OsFile {
        file: File,
    }

    impl StoreFile for OsFile {
        fn append(&self, bytes: &[u8]) -> io::Result<()> {
            (&self.file).write_all(bytes)
        }

        fn sync(&self) -> io::Result<()> {
            self.file.sync_data()
        }

        fn read_all(&self) -> io::Result<Vec<u8>> {
            use std::os::unix::fs::FileExt;
            let len = usize::try_from(self.file.metadata()?.len()).unwrap_or(0);
            let mut bytes = vec![0; len];
            self.file.read_exact_at(&mut bytes, 0)?;
            Ok(bytes)
        }

        fn replace(&self, bytes: &[u8], durable: bool) -> io::Result<()> {
            use std::os::unix::fs::FileExt;
            // Overwritten in place, then cut to length: a marker of the same length as
            // the last one (the common case) frees and allocates no block, so the sync
            // writes one block and no metadata.
            self.file.write_all_at(bytes, 0)?;
            self.file.set_len(bytes.len() as u64)?;
            if durable {
                self.file.sync_data()?;
            }
            Ok(())
        }
    }
}

#[cfg(not(unix))]
impl FileSystem for OsFileSystem {
    fn open_dir(&self, path: &Path) -> io::Result<Box<dyn Directory>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: state directories need a Unix system (D6's checks)",
                path.display()
            ),
        ))
    }
}
