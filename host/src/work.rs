//! What a driver does next, from [`crate::Engine::next_work`]: the core's events and
//! steps in a form a driver matches whole (no catch-all arm), each saying which
//! [`crate::Engine`] method takes its result.

use std::sync::Arc;

use authsync_core::{CompactJob, Event, FetchId, Request, StorageFailure, SyncJob, TokenAnswer};

use crate::listeners::Listeners;
use crate::provider::TokenRequest;
use crate::store::StateDir;

/// One piece of work for a driver.
#[derive(Debug)]
pub enum Work {
    /// Call the listeners and observers with these events, in order, off the driver's
    /// lock (LS1), then [`crate::Engine::told`].
    Tell(Vec<Event>, Listeners),
    /// Send this request with the workspace's transport, then
    /// [`crate::Engine::answered`].
    Send(Box<Request>),
    /// Ask the token provider (R2), then [`crate::Engine::token_answer`] with
    /// [`answer_of`] its outcome. `request.cancellation` is set if the fetch ends first.
    FetchToken {
        /// The fetch, to hand its answer back.
        id: FetchId,
        /// What the provider is asked.
        request: TokenRequest,
    },
    /// The fetch is over (its timeout passed, the client closed): its cancellation is
    /// set already; a driver that runs providers as tasks drops the task.
    CancelFetch(FetchId),
    /// Run this sync or compaction off the driver's lock, then
    /// [`crate::Engine::storage_done`].
    Storage(StorageTask),
    /// Nothing is left: [`crate::Engine::finish`], and end.
    Finish {
        /// Whether every record was stored and synced.
        clean: bool,
    },
}

#[derive(Debug)]
enum StorageJob {
    Sync(SyncJob),
    Compact(CompactJob),
}

/// A sync or a compaction of the store: blocking file I/O.
#[derive(Debug)]
pub struct StorageTask {
    store: Option<Arc<StateDir>>,
    job: StorageJob,
}

/// A storage task's result, for [`crate::Engine::storage_done`].
#[derive(Debug)]
pub struct StorageDone {
    job: StorageJob,
    result: Result<u64, StorageFailure>,
}

impl StorageTask {
    pub(crate) fn sync(store: Option<Arc<StateDir>>, job: SyncJob) -> Self {
        Self {
            store,
            job: StorageJob::Sync(job),
        }
    }

    pub(crate) fn compact(store: Option<Arc<StateDir>>, job: CompactJob) -> Self {
        Self {
            store,
            job: StorageJob::Compact(job),
        }
    }

    /// Performs the task (file I/O: off the driver's lock and off any executor).
    #[must_use]
    pub fn run(self) -> StorageDone {
        let result = match (&self.store, &self.job) {
            (None, _) => Ok(0),
            (Some(store), StorageJob::Sync(_)) => store.sync().map(|()| 0),
            (Some(store), StorageJob::Compact(job)) => store.compact(job),
        };
        StorageDone {
            job: self.job,
            result,
        }
    }
}

impl StorageDone {
    /// Hands the result to the core; whether the task failed.
    pub(crate) fn feed(self, core: &mut authsync_core::Client, now: authsync_core::Now) -> bool {
        let failed = self.result.is_err();
        let fed = match self.job {
            StorageJob::Sync(job) => core.handle_synced(now, job.id, self.result.map(|_| ())),
            StorageJob::Compact(job) => core.handle_compacted(now, job.id, self.result),
        };
        if let Err(e) = fed {
            log::error!("authsync: a storage result for no task out: {e}");
        }
        failed
    }
}

/// The core's answer for a token provider's outcome: a token, none, or a provider
/// that panicked (caught by the driver).
///
/// ```
/// use authsync_core::TokenAnswer;
/// assert_eq!(authsync_host::answer_of(Ok(None)), TokenAnswer::NoToken);
/// assert!(matches!(authsync_host::answer_of(Err(Box::new("boom"))), TokenAnswer::Failed(_)));
/// ```
#[must_use]
pub fn answer_of(outcome: std::thread::Result<Option<String>>) -> TokenAnswer {
    match outcome {
        Ok(Some(token)) => TokenAnswer::Token(token),
        Ok(None) => TokenAnswer::NoToken,
        Err(_) => TokenAnswer::Failed("the provider panicked".into()),
    }
}
