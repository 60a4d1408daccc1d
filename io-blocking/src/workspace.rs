//! One workspace's driver: the engine under a mutex, a driver thread that performs
//! the core's steps and calls listeners, a sender thread for HTTP, and a thread per
//! token fetch. Callers' threads feed inputs and write their own records before
//! returning, so a `track` is stored when it returns. Nothing here decides: every
//! `if` about what comes next is the core's.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use authsync_core::{Client as Core, FetchId, Now, Request, Step, TokenAnswer, Wakeup};
use authsync_host::{Cancellation, Engine, Error, PendingReport, StartError, TokenRequest};

use crate::provider::{TokenProvider, WorkspaceOptions};
use crate::transport::{HttpTransport, Ureq};

struct Inner {
    engine: Engine,
    /// Requests for the sender thread.
    sends: VecDeque<Box<Request>>,
    /// Running token fetches, to cancel.
    fetches: BTreeMap<FetchId, Cancellation>,
    /// Steps and events taken out of the engine and not yet performed.
    busy: usize,
    /// The core's deadline the driver thread sleeps until.
    deadline_known: Option<Wakeup>,
    stopping: bool,
    exited: bool,
}

pub(crate) struct Shared {
    app_id: String,
    inner: Mutex<Inner>,
    /// Wakes the driver thread: new work, a new deadline.
    work: Condvar,
    /// Wakes the sender thread: a request to send, or the end.
    sending: Condvar,
    /// Wakes callers waiting for the workspace to settle or stop.
    progress: Condvar,
    provider: Option<TokenProvider>,
}

impl Shared {
    pub(crate) fn start(
        options: WorkspaceOptions,
        transport: Option<Arc<dyn HttpTransport>>,
    ) -> Result<Arc<Self>, StartError> {
        let (engine, parts) = Engine::open(options)?;
        let shared = Arc::new(Self {
            app_id: engine.app_id().to_owned(),
            inner: Mutex::new(Inner {
                engine,
                sends: VecDeque::new(),
                fetches: BTreeMap::new(),
                busy: 0,
                deadline_known: None,
                stopping: false,
                exited: false,
            }),
            work: Condvar::new(),
            sending: Condvar::new(),
            progress: Condvar::new(),
            provider: parts.provider,
        });
        let transport = transport.unwrap_or_else(|| Arc::new(Ureq::new(parts.http)));
        let (driver, sender) = (Arc::clone(&shared), Arc::clone(&shared));
        let name = format!("authsync-{}", shared.app_id);
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || driver.drive())?;
        thread::Builder::new()
            .name(format!("{name}-http"))
            .spawn(move || sender.send_loop(&*transport))?;
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

    /// Feeds one input to the core; its records are written before this returns.
    pub(crate) fn input<R>(&self, input: impl FnOnce(&mut Core, Now) -> R) -> Result<R, Error> {
        let mut inner = self.lock();
        if inner.stopping {
            return Err(Error::ShutDown);
        }
        let result = inner.engine.input(input);
        self.tell_driver(&mut inner);
        result
    }

    /// Wakes the driver thread when the core has something new for it: most tracks
    /// bring nothing, and a wake-up costs a system call.
    fn tell_driver(&self, inner: &mut Inner) {
        let deadline = inner.engine.client().poll_timeout();
        if inner.engine.client().has_output() || deadline != inner.deadline_known {
            inner.deadline_known = deadline;
            self.work.notify_one();
        }
    }

    /// Reads the engine without changing it.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Engine) -> R) -> R {
        read(&self.lock().engine)
    }

    /// Changes the engine's listeners.
    pub(crate) fn listeners(&self, change: impl FnOnce(&mut authsync_host::Listeners)) {
        change(self.lock().engine.listeners_mut());
    }

    /// The driver thread: performs steps, tells events, sleeps until the core's next
    /// deadline, until the core says the close is finished.
    fn drive(self: &Arc<Self>) {
        let mut inner = self.lock();
        loop {
            let events = inner.engine.take_events();
            let step = inner.engine.next_step();
            if events.is_empty() && step.is_none() {
                if !inner.engine.wake_if_due() {
                    inner.deadline_known = inner.engine.client().poll_timeout();
                    let timeout = inner
                        .engine
                        .next_wake()
                        .map_or(Duration::from_secs(3600), |at| {
                            at.saturating_duration_since(Instant::now())
                        });
                    inner = Self::wait(&self.work, inner, timeout);
                }
                continue;
            }
            inner.busy += 1;
            let listeners = inner.engine.listeners();
            drop(inner);
            for event in &events {
                listeners.dispatch(event);
            }
            let finished = step.is_some_and(|step| self.perform(step));
            inner = self.lock();
            inner.busy -= 1;
            self.progress.notify_all();
            if finished {
                inner.exited = true;
                self.sending.notify_one();
                self.progress.notify_all();
                return;
            }
        }
    }

    fn wait<'a>(
        condvar: &Condvar,
        inner: MutexGuard<'a, Inner>,
        timeout: Duration,
    ) -> MutexGuard<'a, Inner> {
        condvar
            .wait_timeout(inner, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Carries out one step outside the lock; whether it ended the workspace.
    fn perform(self: &Arc<Self>, step: Step) -> bool {
        match step {
            Step::Send(request) => {
                self.lock().sends.push_back(request);
                self.sending.notify_one();
            }
            Step::FetchToken(fetch) => {
                let request = TokenRequest::for_fetch(&fetch);
                self.lock()
                    .fetches
                    .insert(fetch.id, request.cancellation.clone());
                self.fetch(fetch.id, request);
            }
            Step::CancelFetch(id) => {
                if let Some(cancellation) = self.lock().fetches.remove(&id) {
                    cancellation.cancel();
                }
            }
            Step::Sync(job) => {
                let store = self.lock().engine.store();
                let result = store.map_or(Ok(()), |store| store.sync());
                self.lock().engine.synced(job.id, result);
            }
            Step::Compact(job) => {
                let store = self.lock().engine.store();
                let result = store.map_or(Ok(0), |store| store.compact(&job));
                self.lock().engine.compacted(&job, result);
            }
            Step::Finish { clean } => {
                self.lock().engine.finish(clean);
                return true;
            }
            other => log::error!(
                "authsync: {}: a step this driver does not know: {other:?}",
                self.app_id
            ),
        }
        false
    }

    /// R2: runs the provider on a thread of its own and hands its answer back.
    fn fetch(self: &Arc<Self>, id: FetchId, request: TokenRequest) {
        let shared = Arc::clone(self);
        let provider = self.provider.clone();
        let spawned = thread::Builder::new()
            .name(format!("authsync-token-{}", self.app_id))
            .spawn(move || {
                let answer = match provider.map(|p| catch_unwind(AssertUnwindSafe(|| p(&request))))
                {
                    Some(Ok(Some(token))) => TokenAnswer::Token(token),
                    Some(Ok(None)) | None => TokenAnswer::NoToken,
                    Some(Err(_)) => TokenAnswer::Failed("the provider panicked".into()),
                };
                let mut inner = shared.lock();
                inner.fetches.remove(&id);
                inner.engine.token_answer(id, answer);
                shared.tell_driver(&mut inner);
                drop(inner);
                shared.progress.notify_all();
            });
        if let Err(e) = spawned {
            let failed = TokenAnswer::Failed(format!("cannot start the provider: {e}"));
            self.lock().engine.token_answer(id, failed);
        }
    }

    /// The sender thread: one request at a time (the core never hands out two).
    fn send_loop(&self, transport: &dyn HttpTransport) {
        let mut inner = self.lock();
        loop {
            if inner.exited {
                return;
            }
            let Some(request) = inner.sends.pop_front() else {
                inner = Self::wait(&self.sending, inner, Duration::from_secs(3600));
                continue;
            };
            inner.busy += 1;
            drop(inner);
            let result = transport.send(request.to_http());
            inner = self.lock();
            inner.engine.answered(request.id, result);
            inner.busy -= 1;
            self.tell_driver(&mut inner);
            self.progress.notify_all();
        }
    }

    /// Waits until nothing more can be sent before `timeout` runs out, or until then.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let idle = inner.busy == 0 && inner.sends.is_empty();
            let report = inner.engine.report(idle, deadline);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if report.settled || remaining.is_zero() || inner.exited {
                return report;
            }
            inner = self
                .progress
                .wait_timeout(inner, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// What is pending now.
    pub(crate) fn report(&self) -> PendingReport {
        let inner = self.lock();
        let idle = inner.busy == 0 && inner.sends.is_empty();
        inner.engine.report(idle, Instant::now())
    }

    /// Closes the workspace (see `Client::handle_close`) and waits at most until
    /// `deadline` for its threads to finish.
    pub(crate) fn stop(&self, deadline: Instant) {
        let mut inner = self.close(self.lock());
        while !inner.exited {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                log::warn!(
                    "authsync: {}: a request was still in flight at shutdown; its thread ends when it does",
                    self.app_id
                );
                return;
            }
            inner = self
                .progress
                .wait_timeout(inner, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Closes the workspace without waiting (the last handle went away).
    pub(crate) fn stop_soon(&self) {
        drop(self.close(self.lock()));
    }

    fn close<'a>(&self, mut inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        if !inner.stopping {
            inner.stopping = true;
            inner.engine.close();
        }
        self.work.notify_one();
        inner
    }
}
