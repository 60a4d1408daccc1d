//! One workspace's driver: the engine under a mutex, a driver thread that carries out
//! the engine's [`Work`] (listener calls, syncs, compactions), a sender thread for
//! HTTP, and a thread per token fetch. Callers' threads feed inputs and write their
//! own records before returning, so a `track` is stored when it returns. Nothing here
//! decides: what comes next, and when the workspace is settled, is the engine's.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use authsync_core::{FetchId, Now, Request, TokenAnswer};
use authsync_host::{
    Engine, Error, HttpTransport, PendingReport, StartError, TokenRequest, Work, answer_of,
};

use crate::provider::{TokenProvider, WorkspaceOptions};

struct Inner {
    engine: Engine,
    /// Requests for the sender thread (one at a time: the core never hands out two).
    sends: VecDeque<Box<Request>>,
}

pub(crate) struct Shared {
    app_id: String,
    inner: Mutex<Inner>,
    /// Wakes the driver thread: new work, a new deadline, the close.
    work: Condvar,
    /// Wakes the sender thread: a request to send, or the end.
    sending: Condvar,
    /// Wakes callers waiting for the workspace to settle or stop.
    progress: Condvar,
    provider: Option<TokenProvider>,
}

impl Shared {
    pub(crate) fn start(options: WorkspaceOptions) -> Result<Arc<Self>, StartError> {
        let (engine, parts) = Engine::open(options)?;
        let shared = Arc::new(Self {
            app_id: engine.app_id().to_owned(),
            inner: Mutex::new(Inner {
                engine,
                sends: VecDeque::new(),
            }),
            work: Condvar::new(),
            sending: Condvar::new(),
            progress: Condvar::new(),
            provider: parts.provider,
        });
        let (driver, sender) = (Arc::clone(&shared), Arc::clone(&shared));
        let name = format!("authsync-{}", shared.app_id);
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || driver.drive())?;
        thread::Builder::new()
            .name(format!("{name}-http"))
            .spawn(move || sender.send_loop(&*parts.transport))?;
        Ok(shared)
    }

    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Listeners, providers and HTTP run outside the lock: a poisoned lock comes
        // only from a bug here, and the engine is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(
        on: &Condvar,
        inner: MutexGuard<'a, Inner>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, Inner> {
        let timeout = until.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(Instant::now())
        });
        on.wait_timeout(inner, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Feeds one input to the core; its records are written before this returns.
    pub(crate) fn input<R>(
        &self,
        input: impl FnOnce(&mut authsync_core::Client, Now) -> R,
    ) -> Result<R, Error> {
        let mut inner = self.lock();
        let result = inner.engine.input(input);
        self.tell_driver(&mut inner);
        result
    }

    fn tell_driver(&self, inner: &mut Inner) {
        let news = inner.engine.news();
        if let Some(request) = news.send {
            inner.sends.push_back(request);
            self.sending.notify_one();
        }
        if news.wake_driver {
            self.work.notify_one();
        }
    }

    /// After a result came back: wakes the driver if need be, and the waiters.
    fn progressed(&self, inner: &mut Inner) {
        self.tell_driver(inner);
        if !inner.engine.holds_work() {
            self.progress.notify_all();
        }
    }

    /// Reads or changes the engine.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.lock().engine)
    }

    /// The driver thread: carries out the engine's work, sleeping until its next
    /// deadline when there is none, until the engine says the workspace is finished.
    fn drive(self: &Arc<Self>) {
        let mut inner = self.lock();
        loop {
            let Some(work) = inner.engine.next_work() else {
                let until = inner.engine.next_wake();
                inner = Self::wait(&self.work, inner, until);
                continue;
            };
            drop(inner);
            let finished = matches!(work, Work::Finish { .. });
            self.perform(work);
            inner = self.lock();
            self.progressed(&mut inner);
            if finished {
                self.sending.notify_one();
                return;
            }
        }
    }

    /// Carries out one piece of work, outside the lock.
    fn perform(self: &Arc<Self>, work: Work) {
        match work {
            Work::Tell(events, listeners) => {
                for event in &events {
                    listeners.dispatch(event);
                }
                self.lock().engine.told();
            }
            Work::Send(request) => {
                self.lock().sends.push_back(request);
                self.sending.notify_one();
            }
            Work::FetchToken { id, request } => self.fetch(id, request),
            // The engine set its cancellation; the provider's thread ends by itself.
            Work::CancelFetch(_) => {}
            Work::Storage(task) => {
                let done = task.run();
                self.lock().engine.storage_done(done);
            }
            Work::Finish { clean } => self.lock().engine.finish(clean),
        }
    }

    /// R2: runs the provider on a thread of its own and hands its answer back.
    fn fetch(self: &Arc<Self>, id: FetchId, request: TokenRequest) {
        let shared = Arc::clone(self);
        let provider = self.provider.clone();
        let spawned = thread::Builder::new()
            .name(format!("authsync-token-{}", self.app_id))
            .spawn(move || {
                let answer = provider.map_or(TokenAnswer::NoToken, |provider| {
                    answer_of(catch_unwind(AssertUnwindSafe(|| provider(&request))))
                });
                let mut inner = shared.lock();
                inner.engine.token_answer(id, answer);
                shared.progressed(&mut inner);
            });
        if let Err(e) = spawned {
            let failed = TokenAnswer::Failed(format!("cannot start the provider: {e}"));
            self.lock().engine.token_answer(id, failed);
        }
    }

    /// The sender thread: sends requests as the driver hands them over.
    fn send_loop(&self, transport: &dyn HttpTransport) {
        let mut inner = self.lock();
        while !inner.engine.is_finished() {
            let Some(request) = inner.sends.pop_front() else {
                inner = Self::wait(&self.sending, inner, None);
                continue;
            };
            drop(inner);
            let result = transport.send(request.to_http());
            inner = self.lock();
            // The next request, if sending is the next step, comes back to this
            // thread through the engine's news.
            inner.engine.answered(request.id, result);
            self.progressed(&mut inner);
        }
    }

    /// Waits until nothing more can be sent before `timeout` runs out, or until then.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let report = inner.engine.report(deadline);
            if report.settled || Instant::now() >= deadline || inner.engine.is_finished() {
                return report;
            }
            inner = Self::wait(&self.progress, inner, Some(deadline));
        }
    }

    /// Closes the workspace (see `Client::handle_close`) and waits at most until
    /// `deadline` for its driver thread to finish.
    pub(crate) fn stop(&self, deadline: Instant) {
        self.stop_soon();
        let mut inner = self.lock();
        while !inner.engine.is_finished() {
            if Instant::now() >= deadline {
                log::warn!(
                    "authsync: {}: a request was still in flight at shutdown; its thread ends when it does",
                    self.app_id
                );
                return;
            }
            inner = Self::wait(&self.progress, inner, Some(deadline));
        }
    }

    /// Closes the workspace without waiting (the last handle went away).
    pub(crate) fn stop_soon(&self) {
        self.lock().engine.close();
        self.work.notify_one();
    }
}
