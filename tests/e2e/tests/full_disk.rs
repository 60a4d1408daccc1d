//! D4 on a real file system that fills up: a 256 KiB tmpfs under the state
//! directory, filled while the app tracks, then freed. Needs root (to mount); without
//! it the test says that it was skipped.

use std::process::Command;
use std::time::Duration;

use authsync_blocking::{Client, Config, Error, WorkspaceOptions};
use authsync_refserver::{Enforcement, RefServer, ServerConfig};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn d4_a_full_tmpfs_loses_no_accepted_event_and_resumes_when_freed() {
    let place = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(place.path())
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "skipped: cannot mount a tmpfs here (root and CAP_SYS_ADMIN needed): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("skipped: no mount command: {e}");
            return;
        }
    }
    let _mount = Mount(place.path().to_path_buf());
    let server = RefServer::start(
        ServerConfig::new()
            .enforcement(Enforcement::Disabled)
            .access_log(false),
    )
    .unwrap();
    let config = Config::new("app-full", server.url()).with_batch_limits(50, 128 * 1024);
    let client = Client::start(
        WorkspaceOptions::new(config)
            .state_dir(place.path().join("state"))
            .seed(5),
    )
    .unwrap();
    client.track("before", &serde_json::json!({})).unwrap();
    // Fill the file system.
    let filler = place.path().join("filler");
    let chunk = vec![7u8; 4096];
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    let mut refused = 0;
    for i in 0..300 {
        match client.track(
            "while_full",
            &serde_json::json!({ "i": i, "pad": "x".repeat(200) }),
        ) {
            Ok(_) => {}
            Err(Error::NotStored { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0, "tracks on a full disk say they are not stored");
    std::fs::remove_file(&filler).unwrap();
    let report = client.flush_and_wait(Duration::from_secs(30)).unwrap();
    assert!(report.settled, "{report:?}");
    assert_eq!(report.pending_events, 0, "{report:?}");
    // Every event the app tracked, stored or kept in memory through the full disk,
    // reached the server once.
    assert_eq!(server.admin().accepted_count("app-full"), 301);
    let _ = client.shutdown(Duration::from_secs(5));
    assert!(
        !place.path().join("state/snapshot.tmp").exists(),
        "no temporary file left to keep the disk full"
    );
}
