//! One workspace's driver on smol: the engine under a mutex and tasks that carry out
//! its [`Work`]. The **writer** appends records off the executor (`smol::unblock`);
//! the **worker** calls listeners, sleeps until the engine's next deadline
//! (`smol::Timer`, no polling) and starts a task per piece of work: a request (sent
//! with the workspace's transport on smol's blocking pool), a token fetch, a sync or a
//! compaction. Callers' inputs run the core's step on their own task, then wait for
//! the writer: an input whose step ran is taken and will be written even if its future
//! is dropped. Nothing here decides: what comes next is the engine's.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use authsync_core::{FetchId, Now, TokenAnswer};
use authsync_host::{
    Engine, Error, HttpTransport, PendingReport, StartError, TokenRequest, Work, answer_of,
};
use event_listener::Event;
use smol::future::FutureExt as _;
use smol::{Executor, Task, Timer};

use crate::provider::{TokenProvider, WorkspaceOptions};

struct Inner {
    engine: Engine,
    /// Running token fetches: dropping a task cancels it.
    fetches: BTreeMap<FetchId, Task<()>>,
}

pub(crate) struct Shared {
    app_id: String,
    inner: Mutex<Inner>,
    /// Wakes the writer and the worker: new records, work, deadlines.
    wake: Event,
    /// Wakes callers waiting for a write, a settle or the end.
    progress: Event,
    executor: Arc<Executor<'static>>,
    provider: Option<TokenProvider>,
    transport: Arc<dyn HttpTransport>,
}

/// A workspace's driver: spawn it on an executor (or `await` it), and it runs the
/// workspace until the client is shut down or dropped.
///
/// It needs an `async-io` reactor for its timers, which `async-io` starts on a thread
/// of its own the first time it is used: so it runs under `smol::block_on`, on smol's
/// global executor, or inside any other executor. Dropping it before it finishes
/// stops the workspace at once, and inputs whose records were not yet written are
/// lost; let it finish.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Shared {
    pub(crate) async fn start(
        options: WorkspaceOptions,
    ) -> Result<(Arc<Self>, Driver), StartError> {
        // Opening and replaying the journal is file I/O and CPU work: off the executor.
        let (engine, parts) = smol::unblock(move || Engine::open(options)).await?;
        let shared = Arc::new(Self {
            app_id: engine.app_id().to_owned(),
            inner: Mutex::new(Inner {
                engine,
                fetches: BTreeMap::new(),
            }),
            wake: Event::new(),
            progress: Event::new(),
            executor: Arc::new(Executor::new()),
            provider: parts.provider,
            transport: parts.transport,
        });
        let driver = Arc::clone(&shared);
        let future = async move {
            let executor = Arc::clone(&driver.executor);
            let writer = executor.spawn(Arc::clone(&driver).write_loop());
            executor.run(Arc::clone(&driver).work_loop()).await;
            executor.run(writer).await;
        };
        Ok((shared, Box::pin(future)))
    }

    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Listeners, providers and I/O run outside the lock: a poisoned lock comes only
        // from a bug here, and the engine is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `event`, or until `until`.
    async fn wait(listener: event_listener::EventListener, until: Option<Instant>) {
        let until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        listener
            .or(async {
                Timer::at(until).await;
            })
            .await;
    }

    /// Feeds one input to the core on the caller's task, then waits until its records
    /// are written. The step runs on the first poll: once it has, the input is taken.
    pub(crate) async fn input<R>(
        self: &Arc<Self>,
        input: impl FnOnce(&mut authsync_core::Client, Now) -> R,
    ) -> Result<R, Error> {
        let (result, lsn, stored) = {
            let mut inner = self.lock();
            let (result, lsn) = inner.engine.input_unwritten(input)?;
            self.tell_tasks(&mut inner);
            (result, lsn, inner.engine.stored(lsn))
        };
        // Most often stored already (in memory, or nothing new to write): no listener.
        if let Some(stored) = stored {
            return stored.map(|()| result);
        }
        loop {
            let listener = self.progress.listen();
            if let Some(stored) = self.lock().engine.stored(lsn) {
                return stored.map(|()| result);
            }
            listener.await;
        }
    }

    fn tell_tasks(self: &Arc<Self>, inner: &mut Inner) {
        let news = inner.engine.news();
        if let Some(request) = news.send {
            self.spawn_sender(request);
        }
        if news.wake_driver {
            self.wake.notify(usize::MAX);
        }
    }

    /// Reads or changes the engine.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.lock().engine)
    }

    /// The writer: appends the core's records off the executor, one job at a time.
    async fn write_loop(self: Arc<Self>) {
        loop {
            let listener = self.wake.listen();
            let next = {
                let mut inner = self.lock();
                match inner.engine.next_write() {
                    Some(job) => Some((job, inner.engine.store())),
                    None if inner.engine.is_finished() => return,
                    None => None,
                }
            };
            // The store is not held while waiting: its lock on the directory goes
            // when the engine lets it go.
            let Some((job, store)) = next else {
                listener.await;
                continue;
            };
            let (job, result) = smol::unblock(move || {
                let result = store.map_or(Ok(()), |store| store.append(&job));
                (job, result)
            })
            .await;
            self.progressed(|engine| engine.written(job.id, result));
        }
    }

    /// The worker: carries out the engine's work, sleeping until its next deadline
    /// when there is none, until the engine says the workspace is finished.
    async fn work_loop(self: Arc<Self>) {
        loop {
            let listener = self.wake.listen();
            let (work, until) = {
                let mut inner = self.lock();
                (inner.engine.next_work(), inner.engine.next_wake())
            };
            match work {
                None => Self::wait(listener, until).await,
                Some(Work::Tell(events, listeners)) => {
                    for event in &events {
                        listeners.dispatch(event);
                    }
                    self.progressed(Engine::told);
                }
                Some(Work::Finish { clean }) => {
                    let shared = Arc::clone(&self);
                    smol::unblock(move || shared.lock().engine.finish(clean)).await;
                    self.lock().fetches.clear();
                    self.wake.notify(usize::MAX);
                    self.progress.notify(usize::MAX);
                    return;
                }
                Some(work) => self.perform(work),
            }
        }
    }

    /// Starts the task that carries out `work`.
    fn perform(self: &Arc<Self>, work: Work) {
        let shared = Arc::clone(self);
        match work {
            Work::Send(request) => self.spawn_sender(request),
            Work::FetchToken { id, request } => {
                let task = self.executor.spawn(async move {
                    let answer = shared.ask(request).await;
                    shared.lock().fetches.remove(&id);
                    shared.progressed(|engine| engine.token_answer(id, answer));
                });
                self.lock().fetches.insert(id, task);
            }
            // Dropping the task stops the provider's future where it waits.
            Work::CancelFetch(id) => drop(self.lock().fetches.remove(&id)),
            Work::Storage(task) => self
                .executor
                .spawn(async move {
                    let done = smol::unblock(move || task.run()).await;
                    shared.progressed(|engine| engine.storage_done(done));
                })
                .detach(),
            // The worker handles these itself.
            Work::Tell(..) | Work::Finish { .. } => {}
        }
    }

    /// Sends `request`, and the requests that come next, on one thread of smol's
    /// blocking pool: the transport blocks, and going back to the executor between
    /// two requests would cost two thread hand-overs each.
    fn spawn_sender(self: &Arc<Self>, request: Box<authsync_core::Request>) {
        let shared = Arc::clone(self);
        let transport = Arc::clone(&self.transport);
        let sends = smol::unblock(move || {
            let mut request = request;
            loop {
                let result = transport.send(request.to_http());
                let next = shared.progressed(|engine| {
                    engine.answered(request.id, result);
                    engine.next_send()
                });
                match next {
                    Some(next) => request = next,
                    None => break,
                }
            }
        });
        self.executor.spawn(sends).detach();
    }

    /// R2: the provider's answer, a panic caught.
    async fn ask(&self, request: TokenRequest) -> TokenAnswer {
        match self.provider.clone() {
            Some(provider) => answer_of(AssertUnwindSafe(provider(request)).catch_unwind().await),
            None => TokenAnswer::NoToken,
        }
    }

    /// Hands a result to the engine and wakes whoever waits for it.
    fn progressed<R>(self: &Arc<Self>, report: impl FnOnce(&mut Engine) -> R) -> R {
        let mut inner = self.lock();
        let result = report(&mut inner.engine);
        self.tell_tasks(&mut inner);
        let settling = !inner.engine.holds_work();
        drop(inner);
        if settling {
            self.progress.notify(usize::MAX);
        }
        result
    }

    /// Waits until nothing more can be sent before `timeout` runs out, or until then.
    pub(crate) async fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.progress.listen();
            {
                let inner = self.lock();
                let report = inner.engine.report(deadline);
                if report.settled || Instant::now() >= deadline || inner.engine.is_finished() {
                    return report;
                }
            }
            Self::wait(listener, Some(deadline)).await;
        }
    }

    /// Closes the workspace and waits at most until `deadline` for its driver to end.
    pub(crate) async fn stop(&self, deadline: Instant) {
        self.stop_soon();
        loop {
            let listener = self.progress.listen();
            if self.lock().engine.is_finished() || Instant::now() >= deadline {
                return;
            }
            Self::wait(listener, Some(deadline)).await;
        }
    }

    /// Closes the workspace without waiting: no new request, fetches cancelled, the
    /// journal synced, then the driver ends.
    pub(crate) fn stop_soon(&self) {
        self.lock().engine.close();
        self.wake.notify(usize::MAX);
    }
}
