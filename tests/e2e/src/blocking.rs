//! The blocking driver behind the suites' [`Driver`] trait.

use std::time::Duration;

use authsync_blocking::{Client, JwtAuthenticationDetails, Workspace, WorkspaceOptions};
use authsync_core::{Outcome, Totals};

use crate::driver::{Driver, Options, Recorder, Settled};

/// `authsync-blocking`, one workspace of a [`Client`].
pub struct BlockingDriver {
    client: Client,
    workspace: Workspace,
}

fn workspace_options(options: Options, recorder: &Recorder) -> WorkspaceOptions {
    let mut workspace = WorkspaceOptions::new(options.config).seed(options.seed);
    if let Some(dir) = options.state_dir {
        workspace = workspace.state_dir(dir);
    }
    if let Some(provider) = options.provider {
        workspace = workspace.token_provider(authsync_blocking::provider(move |request| {
            provider(request)
        }));
    }
    if options.panicking_listener {
        workspace = workspace
            .authentication_listener(|notice| panic!("a listener with a bug, on {}", notice.code));
    }
    let listener = recorder.clone();
    let observer = recorder.clone();
    workspace
        .authentication_listener(move |notice| listener.hear(notice))
        .observer(move |event| observer.see(event))
}

impl Driver for BlockingDriver {
    fn start(options: Options, recorder: Recorder) -> Result<Self, String> {
        let client =
            Client::start(workspace_options(options, &recorder)).map_err(|e| e.to_string())?;
        let workspace = (*client).clone();
        Ok(Self { client, workspace })
    }

    fn add_workspace(&self, options: Options, recorder: Recorder) -> Result<Self, String> {
        let workspace = self
            .client
            .add_workspace(workspace_options(options, &recorder))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client: self.client.clone(),
            workspace,
        })
    }

    fn track(&self, name: &str, attrs: &serde_json::Value) -> Result<u64, String> {
        self.workspace
            .track(name, attrs)
            .map(|r| r.seq)
            .map_err(|e| e.to_string())
    }

    fn identify(&self, id: &str) -> Result<(), String> {
        self.workspace
            .identify(id)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn pass_token(&self, token: &str, identifier: &str) -> Result<Outcome, String> {
        self.workspace
            .pass_authentication_details(&JwtAuthenticationDetails::new(token, identifier))
            .map_err(|e| e.to_string())
    }

    fn logout(&self) -> Result<(), String> {
        self.workspace.logout().map(drop).map_err(|e| e.to_string())
    }

    fn session_start(&self) -> Result<(), String> {
        self.workspace.session_start().map_err(|e| e.to_string())
    }

    fn flush_and_wait(&self, timeout: Duration) -> Settled {
        match self.workspace.flush_and_wait(timeout) {
            Ok(report) => Settled {
                settled: report.settled,
                pending: report.pending_events,
            },
            Err(_) => Settled {
                settled: false,
                pending: self.workspace.totals().pending(),
            },
        }
    }

    fn totals(&self) -> Totals {
        self.workspace.totals()
    }

    fn is_locked_out(&self) -> bool {
        self.workspace.is_locked_out()
    }

    fn close(&self) {
        self.client.close(Duration::from_secs(5));
    }
}
