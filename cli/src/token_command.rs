//! `--token-cmd`: a shell command that prints a token, run like a git credential
//! helper (R2, section 5). It runs in a process group of its own, so that when its
//! fetch is cancelled (its timeout passed, the run ends) the command and every process
//! it started are killed, and none is left holding the caller's output.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use authsync_blocking::TokenRequest;

/// How often a running command is checked for its end or its cancellation.
const POLL: Duration = Duration::from_millis(10);

/// The process groups of the commands running now, so that none outlives the run.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every token command still running, with its process group: the run ends,
/// and leaves none behind (section 5).
pub fn kill_all() {
    let running = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(PoisonError::into_inner));
    for group in running {
        kill_group_of(group);
    }
}

fn kill_group_of(group: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(group.cast_signed()) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Runs `command` for `request`; its trimmed stdout is the token. A failing command,
/// empty output, or a cancelled fetch gives none (the core tells why).
pub fn run(command: &str, request: &TokenRequest) -> Option<String> {
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("AUTHSYNC_IDENTIFIER", &request.identifier)
        .env("AUTHSYNC_ERROR_CODE", request.code.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("authsync run: warning: cannot run the token command: {e}");
            return None;
        }
    };
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(child.id());
    // The output is read on a thread of its own: a command that fills the pipe would
    // otherwise never end.
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_end(&mut out);
        }
        out
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if request.cancellation.wait(POLL) => {
                kill_group(&mut child);
                break None;
            }
            Ok(None) => {}
            Err(_) => break None,
        }
    };
    // The group is killed in every case: a command that ended may have left children.
    kill_group(&mut child);
    let output = reader.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            eprintln!("authsync run: warning: token command failed ({status}); no token passed");
            return None;
        }
        None => {
            eprintln!(
                "authsync run: warning: token command for {:?} did not finish in {:?}; it was killed with its process group",
                request.identifier, request.timeout
            );
            return None;
        }
    }
    let token = String::from_utf8_lossy(&output).trim().to_owned();
    if token.is_empty() {
        eprintln!("authsync run: warning: token command printed nothing; no token passed");
        return None;
    }
    Some(token)
}

/// Kills the command's process group (its children included), then reaps it.
fn kill_group(child: &mut Child) {
    kill_group_of(child.id());
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|&group| group != child.id());
    let _ = child.wait();
}
