//! The async driver behind the suites' [`Driver`] trait: each call is run to completion
//! with `smol::block_on`, and the workspace's driver runs on smol's global executor.

use std::sync::Arc;
use std::time::Duration;

use authsync_async::{Client, JwtAuthenticationDetails, Workspace, WorkspaceOptions};
use authsync_core::{Outcome, Totals};

use crate::driver::{Driver, Options, Recorder, Settled};

/// `authsync-async`, one workspace of a [`Client`].
pub struct AsyncDriver {
    client: Client,
    workspace: Workspace,
}

impl AsyncDriver {
    /// The async client, for tests of what only an async API has.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn workspace_options(options: Options, recorder: &Recorder) -> WorkspaceOptions {
    let mut workspace = WorkspaceOptions::new(options.config).seed(options.seed);
    if let Some(dir) = options.state_dir {
        workspace = workspace.state_dir(dir);
    }
    if let Some(provider) = options.provider {
        // The suites' providers block (they sign tokens, some sleep): off the executor.
        workspace = workspace.token_provider(authsync_async::provider(move |request| {
            let provider = Arc::clone(&provider);
            async move { smol::unblock(move || provider(&request)).await }
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

impl Driver for AsyncDriver {
    fn start(options: Options, recorder: Recorder) -> Result<Self, String> {
        smol::block_on(async {
            let (client, driver) = Client::start(workspace_options(options, &recorder))
                .await
                .map_err(|e| e.to_string())?;
            smol::spawn(driver).detach();
            let workspace = (*client).clone();
            Ok(Self { client, workspace })
        })
    }

    fn add_workspace(&self, options: Options, recorder: Recorder) -> Result<Self, String> {
        smol::block_on(async {
            let (workspace, driver) = self
                .client
                .add_workspace(workspace_options(options, &recorder))
                .await
                .map_err(|e| e.to_string())?;
            smol::spawn(driver).detach();
            Ok(Self {
                client: self.client.clone(),
                workspace,
            })
        })
    }

    fn track(&self, name: &str, attrs: &serde_json::Value) -> Result<u64, String> {
        smol::block_on(self.workspace.track(name, attrs))
            .map(|r| r.seq)
            .map_err(|e| e.to_string())
    }

    fn identify(&self, id: &str) -> Result<(), String> {
        smol::block_on(self.workspace.identify(id))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn pass_token(&self, token: &str, identifier: &str) -> Result<Outcome, String> {
        let details = JwtAuthenticationDetails::new(token, identifier);
        smol::block_on(self.workspace.pass_authentication_details(&details))
            .map_err(|e| e.to_string())
    }

    fn logout(&self) -> Result<(), String> {
        smol::block_on(self.workspace.logout())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn session_start(&self) -> Result<(), String> {
        smol::block_on(self.workspace.session_start()).map_err(|e| e.to_string())
    }

    fn flush_and_wait(&self, timeout: Duration) -> Settled {
        match smol::block_on(self.workspace.flush_and_wait(timeout)) {
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
        smol::block_on(self.client.close(Duration::from_secs(5)));
    }
}
