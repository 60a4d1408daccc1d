//! D6: the state directory and its files belong to the user and are private; links
//! are never followed; a temporary file a compaction left is removed at open.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use authsync_core::FsyncPolicy;
use authsync_host::{OsFileSystem, StateDir, StoreError};

fn open(path: &Path) -> Result<StateDir, StoreError> {
    StateDir::open(&OsFileSystem, path, FsyncPolicy::Always, 1).map(|(store, _)| store)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn d6_a_new_state_directory_is_private_and_its_files_0600() {
    let place = tempfile::tempdir().unwrap();
    let dir = place.path().join("a/b/state");
    let store = open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("lock")), 0o600);
    drop(store);
}

#[test]
fn d6_a_directory_open_to_others_is_made_private() {
    let place = tempfile::tempdir().unwrap();
    let dir = place.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(dir.join("journal.1"), b"").unwrap();
    fs::set_permissions(dir.join("journal.1"), fs::Permissions::from_mode(0o644)).unwrap();
    let _store = open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        mode(&dir.join("journal.1")),
        0o600,
        "a readable journal holds tokens"
    );
}

fn refused(result: Result<StateDir, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Refused { why, .. }) => why,
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn d6_links_are_never_followed() {
    for name in ["journal.1", "lock", "snapshot"] {
        let place = tempfile::tempdir().unwrap();
        let dir = place.path().join("state");
        fs::create_dir(&dir).unwrap();
        let target = place.path().join("elsewhere");
        fs::write(&target, b"not yours to touch").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        symlink(&target, dir.join(name)).unwrap();
        let why = refused(open(&dir), name);
        assert!(why.contains("symbolic link"), "{name}: {why}");
        assert_eq!(fs::read(&target).unwrap(), b"not yours to touch", "{name}");
        assert_eq!(mode(&target), 0o644, "{name}: the target was not chmod'ed");
    }
    let place = tempfile::tempdir().unwrap();
    let real = place.path().join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, place.path().join("state")).unwrap();
    let why = refused(open(&place.path().join("state")), "a linked directory");
    assert!(why.contains("symbolic link"), "{why}");
}

#[test]
fn d6_a_temporary_snapshot_left_by_a_compaction_is_removed_at_open() {
    let place = tempfile::tempdir().unwrap();
    let dir = place.path().join("state");
    drop(open(&dir).unwrap());
    fs::write(dir.join("snapshot.tmp"), vec![0; 4096]).unwrap();
    let _store = open(&dir).unwrap();
    assert!(!dir.join("snapshot.tmp").exists());
}

#[test]
fn d6_files_and_directories_of_another_user_are_refused() {
    if !is_root() {
        println!("skipped: chown to another user needs root");
        return;
    }
    let nobody = rustix::process::Uid::from_raw(65_534);
    let place = tempfile::tempdir().unwrap();
    let dir = place.path().join("state");
    drop(open(&dir).unwrap());
    fs::write(dir.join("journal.1"), b"").unwrap();
    rustix::fs::chown(dir.join("journal.1"), Some(nobody), None).unwrap();
    let why = refused(open(&dir), "another user's journal");
    assert!(why.contains("belongs to user 65534"), "{why}");

    let other = place.path().join("theirs");
    fs::create_dir(&other).unwrap();
    rustix::fs::chown(&other, Some(nobody), None).unwrap();
    let why = refused(open(&other), "another user's directory");
    assert!(why.contains("belongs to user 65534"), "{why}");
}

#[test]
fn d2_a_second_client_on_a_directory_in_use_is_refused() {
    let place = tempfile::tempdir().unwrap();
    let _first = open(place.path()).unwrap();
    assert!(matches!(open(place.path()), Err(StoreError::Locked { .. })));
}
