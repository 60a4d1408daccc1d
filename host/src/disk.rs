//! A simulated disk: state directories in memory, where any single operation can be
//! made to fail and the machine can lose power. The fault-injecting file layer the
//! store's tests run under (SQLite's way: a fault at the Nth operation, for every N),
//! and a store for hosts that test their own code without touching a disk.
//!
//! What a power loss keeps: what was synced. A file keeps the bytes it had at its last
//! sync, and optionally a torn part of the write after it; a directory keeps the
//! entries it had at its last sync (a created file that was never made durable by a
//! directory sync is gone, a rename not synced is undone).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::fs::{Directory, FileSystem, StoreFile};

/// How an injected fault fails an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The disk is full (`ENOSPC`).
    NoSpace,
    /// An I/O error (`EIO`).
    Io,
    /// The file system is read-only (`EROFS`).
    ReadOnly,
    /// An append writes only half of its bytes, then fails with `EIO`; other
    /// operations fail with `EIO`.
    Torn,
}

impl Fault {
    /// Every kind, for a campaign.
    pub const ALL: [Self; 4] = [Self::NoSpace, Self::Io, Self::ReadOnly, Self::Torn];

    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            Self::NoSpace => 28,
            Self::ReadOnly => 30,
            Self::Io | Self::Torn => 5,
        })
    }
}

/// The kind of an operation, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// A file created.
    Create,
    /// Bytes appended.
    Append,
    /// A file synced.
    SyncFile,
    /// A directory synced.
    SyncDir,
    /// A file renamed.
    Rename,
    /// A file removed.
    Remove,
    /// A file's contents replaced.
    Replace,
}

#[derive(Clone, Debug, Default)]
struct Node {
    data: Vec<u8>,
    /// Bytes that survive a power loss.
    durable_len: usize,
    /// What a replaced file holds after a power loss: the contents of its last
    /// durable replacement (or what was synced before it).
    durable_data: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    locked: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    nodes: BTreeMap<u64, Node>,
    next_node: u64,
    operations: Vec<Operation>,
    /// Fail operation number `at` (counted from 0) this way.
    fail_at: Option<(usize, Fault)>,
    /// Fail every operation from number `from` on this way, until cleared.
    fail_from: Option<(usize, Fault)>,
}

impl State {
    /// Counts an operation and says whether it must fail, and how.
    fn count(&mut self, operation: Operation) -> Option<Fault> {
        let index = self.operations.len();
        self.operations.push(operation);
        match (self.fail_at, self.fail_from) {
            (Some((at, fault)), _) if at == index => Some(fault),
            (_, Some((from, fault))) if index >= from => Some(fault),
            _ => None,
        }
    }
}

/// A simulated disk; clones share it.
///
/// ```
/// use authsync_host::{Fault, FileSystem, SimulatedDisk};
/// let disk = SimulatedDisk::default();
/// let dir = disk.open_dir("/state".as_ref()).unwrap();
/// let mut file = dir.create("journal.1").unwrap();
/// file.append(b"synced").unwrap();
/// file.sync().unwrap();
/// dir.sync().unwrap();
/// file.append(b" and not").unwrap();
/// disk.fail_every_operation_from_now(Fault::NoSpace);
/// assert!(file.append(b"more").is_err());
/// disk.lose_power(None);
/// assert_eq!(disk.contents("/state".as_ref(), "journal.1").unwrap(), b"synced");
/// ```
#[derive(Clone, Default)]
pub struct SimulatedDisk {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimulatedDisk")
            .field("directories", &state.dirs.len())
            .field("operations", &state.operations.len())
            .finish()
    }
}

impl SimulatedDisk {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The operations counted so far, in order.
    #[must_use]
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().operations.clone()
    }

    /// Makes operation number `at` (counted from the first operation on this disk)
    /// fail with `fault`; later ones succeed.
    pub fn fail_operation(&self, at: usize, fault: Fault) {
        self.lock().fail_at = Some((at, fault));
    }

    /// Makes every operation from now on fail with `fault` (a disk that stays full)
    /// until [`SimulatedDisk::heal`].
    pub fn fail_every_operation_from_now(&self, fault: Fault) {
        let mut state = self.lock();
        let from = state.operations.len();
        state.fail_from = Some((from, fault));
    }

    /// Makes operation number `at` and every one after it fail with `fault` (the
    /// machine stopped writing there), until [`SimulatedDisk::heal`].
    pub fn fail_operation_and_all_after(&self, at: usize, fault: Fault) {
        self.lock().fail_from = Some((at, fault));
    }

    /// Operations succeed again.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.fail_at = None;
        state.fail_from = None;
    }

    /// The machine loses power: every file goes back to what was synced, every
    /// directory to its last synced entries. With `tear`, each file keeps up to that
    /// many bytes written after its last sync (a write torn in the middle).
    pub fn lose_power(&self, tear: Option<usize>) {
        let mut state = self.lock();
        for node in state.nodes.values_mut() {
            if let Some(durable) = &node.durable_data {
                node.data.clone_from(durable);
                node.durable_len = node.data.len();
                continue;
            }
            let keep = node.durable_len + tear.unwrap_or(0);
            node.data.truncate(keep.min(node.data.len()));
            node.durable_len = node.data.len();
        }
        for dir in state.dirs.values_mut() {
            dir.names = dir.durable_names.clone();
            dir.locked.clear();
        }
    }

    /// The bytes of file `name` in directory `dir`, as a read would see them.
    #[must_use]
    pub fn contents(&self, dir: &Path, name: &str) -> Option<Vec<u8>> {
        let state = self.lock();
        let node = state.dirs.get(dir)?.names.get(name)?;
        state.nodes.get(node).map(|n| n.data.clone())
    }

    /// The bytes of file `name` in directory `dir` that a power loss now would keep:
    /// `None` when the file itself would be gone.
    #[must_use]
    pub fn durable_contents(&self, dir: &Path, name: &str) -> Option<Vec<u8>> {
        let state = self.lock();
        let node = state.dirs.get(dir)?.durable_names.get(name)?;
        let node = state.nodes.get(node)?;
        Some(match &node.durable_data {
            Some(data) => data.clone(),
            None => node.data[..node.durable_len.min(node.data.len())].to_vec(),
        })
    }

    /// Replaces file `name` of directory `dir` with `bytes` (damage from outside:
    /// a flipped byte, a truncation), durably.
    pub fn set_contents(&self, dir: &Path, name: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let id = state.next_node;
        let entry = state.dirs.entry(dir.to_path_buf()).or_default();
        let node = match entry.names.get(name) {
            Some(&node) => node,
            None => {
                entry.names.insert(name.to_owned(), id);
                entry.durable_names.insert(name.to_owned(), id);
                id
            }
        };
        if node == id {
            state.next_node += 1;
        }
        let len = bytes.len();
        state.nodes.insert(
            node,
            Node {
                data: bytes,
                durable_len: len,
                durable_data: None,
            },
        );
    }

    /// Removes file `name` of directory `dir`, durably.
    pub fn delete(&self, dir: &Path, name: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.dirs.get_mut(dir) {
            entry.names.remove(name);
            entry.durable_names.remove(name);
        }
    }

    /// The names of the files directory `dir` holds.
    #[must_use]
    pub fn names(&self, dir: &Path) -> Vec<String> {
        self.lock()
            .dirs
            .get(dir)
            .map(|d| d.names.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl FileSystem for SimulatedDisk {
    fn open_dir(&self, path: &Path) -> io::Result<Box<dyn Directory>> {
        let mut state = self.lock();
        if !state.dirs.contains_key(path) {
            // Creating the directory makes its (empty) entries durable at once.
            state.dirs.insert(path.to_path_buf(), Dir::default());
        }
        Ok(Box::new(SimulatedDir {
            disk: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}

#[derive(Debug)]
struct SimulatedDir {
    disk: SimulatedDisk,
    path: PathBuf,
}

impl SimulatedDir {
    fn with<R>(&self, f: impl FnOnce(&mut State, &Path) -> io::Result<R>) -> io::Result<R> {
        let mut state = self.disk.lock();
        f(&mut state, &self.path)
    }
}

fn missing() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Directory for SimulatedDir {
    fn names(&self) -> io::Result<Vec<String>> {
        Ok(self.disk.names(&self.path))
    }

    fn read(&self, name: &str, piece: &mut dyn FnMut(&[u8])) -> io::Result<Option<Vec<u8>>> {
        let bytes = self.disk.contents(&self.path, name);
        if let Some(bytes) = &bytes {
            for chunk in bytes.chunks(256 * 1024) {
                piece(chunk);
            }
        }
        Ok(bytes)
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
        self.with(|state, path| {
            if let Some(fault) = state.count(Operation::Create) {
                return Err(fault.error());
            }
            let id = state.next_node;
            let dir = state.dirs.get_mut(path).ok_or_else(missing)?;
            if dir.names.contains_key(name) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            dir.names.insert(name.to_owned(), id);
            state.next_node += 1;
            state.nodes.insert(id, Node::default());
            Ok(())
        })?;
        self.open(name)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
        let node = self.with(|state, path| {
            state
                .dirs
                .get(path)
                .and_then(|d| d.names.get(name).copied())
                .ok_or_else(missing)
        })?;
        Ok(Arc::new(SimulatedFile {
            disk: self.disk.clone(),
            node,
            lock: None,
        }))
    }

    fn lock(&self, name: &str) -> io::Result<Arc<dyn StoreFile>> {
        let node = self.with(|state, path| {
            let id = state.next_node;
            let dir = state.dirs.get_mut(path).ok_or_else(missing)?;
            if !dir.locked.insert(name.to_owned()) {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            let node = *dir.names.entry(name.to_owned()).or_insert(id);
            dir.durable_names.entry(name.to_owned()).or_insert(node);
            if node == id {
                state.next_node += 1;
                state.nodes.insert(id, Node::default());
            }
            Ok(node)
        })?;
        Ok(Arc::new(SimulatedFile {
            disk: self.disk.clone(),
            node,
            lock: Some((self.path.clone(), name.to_owned())),
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.with(|state, path| {
            if let Some(fault) = state.count(Operation::Rename) {
                return Err(fault.error());
            }
            let dir = state.dirs.get_mut(path).ok_or_else(missing)?;
            let node = dir.names.remove(from).ok_or_else(missing)?;
            dir.names.insert(to.to_owned(), node);
            Ok(())
        })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.with(|state, path| {
            if let Some(fault) = state.count(Operation::Remove) {
                return Err(fault.error());
            }
            if let Some(dir) = state.dirs.get_mut(path) {
                dir.names.remove(name);
            }
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|state, path| {
            if let Some(fault) = state.count(Operation::SyncDir) {
                return Err(fault.error());
            }
            let dir = state.dirs.get_mut(path).ok_or_else(missing)?;
            dir.durable_names = dir.names.clone();
            Ok(())
        })
    }
}

#[derive(Debug)]
struct SimulatedFile {
    disk: SimulatedDisk,
    node: u64,
    /// The directory and name whose lock this handle holds.
    lock: Option<(PathBuf, String)>,
}

impl SimulatedFile {
    fn with<R>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<R>) -> io::Result<R> {
        let mut state = self.disk.lock();
        f(&mut state, self.node)
    }
}

impl Drop for SimulatedFile {
    fn drop(&mut self) {
        if let Some((dir, name)) = &self.lock
            && let Some(dir) = self.disk.lock().dirs.get_mut(dir)
        {
            dir.locked.remove(name);
        }
    }
}

impl StoreFile for SimulatedFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        self.with(|state, node| {
            let fault = state.count(Operation::Append);
            let node = state.nodes.get_mut(&node).ok_or_else(missing)?;
            match fault {
                None => {
                    node.data.extend_from_slice(bytes);
                    Ok(())
                }
                Some(Fault::Torn) => {
                    node.data.extend_from_slice(&bytes[..bytes.len() / 2]);
                    Err(Fault::Torn.error())
                }
                Some(fault) => Err(fault.error()),
            }
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|state, node| {
            let fault = state.count(Operation::SyncFile);
            let node = state.nodes.get_mut(&node).ok_or_else(missing)?;
            if let Some(fault) = fault {
                // Linux drops the dirty pages a failed sync could not write: they are
                // gone after a power loss, though a read still sees them now.
                return Err(fault.error());
            }
            node.durable_len = node.data.len();
            Ok(())
        })
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.with(|state, node| Ok(state.nodes.get(&node).ok_or_else(missing)?.data.clone()))
    }

    fn replace(&self, bytes: &[u8], durable: bool) -> io::Result<()> {
        self.with(|state, node| {
            if let Some(fault) = state.count(Operation::Replace) {
                return Err(fault.error());
            }
            let node = state.nodes.get_mut(&node).ok_or_else(missing)?;
            if durable {
                node.durable_data = Some(bytes.to_vec());
                node.durable_len = bytes.len();
            } else if node.durable_data.is_none() {
                // A power loss brings back what was synced before, whole.
                let synced = node.data[..node.durable_len.min(node.data.len())].to_vec();
                node.durable_data = Some(synced);
            }
            node.data = bytes.to_vec();
            Ok(())
        })
    }
}
