//! One workspace's driver on smol: the engine under a mutex and tasks that perform
//! the core's steps. The **writer** appends records off the executor
//! (`smol::unblock`); the **worker** tells events, sleeps until the core's next
//! deadline (`smol::Timer`, no polling) and starts a task per step: a request (hyper),
//! a token fetch, a sync or a compaction (off the executor). Callers' inputs run the
//! core's step on their own task, then wait for the writer: an input whose step ran is
//! taken and will be written even if its future is dropped. Nothing here decides.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use authsync_core::{Client as Core, FetchId, Now, Step, TokenAnswer, Wakeup};
use authsync_host::{Engine, Error, Listeners, PendingReport, StartError, TokenRequest};
use event_listener::Event;
use smol::future::FutureExt as _;
use smol::{Executor, Task, Timer};

use crate::provider::{TokenProvider, WorkspaceOptions};
use crate::transport::Transport;

struct Inner {
    engine: Engine,
    /// Tasks performing steps, and the writer while it writes.
    busy: usize,
    /// Running token fetches: dropping a task cancels it.
    fetches: BTreeMap<FetchId, Task<()>>,
    deadline_known: Option<Wakeup>,
    stopping: bool,
    finished: bool,
}

pub(crate) struct Shared {
    app_id: String,
    inner: Mutex<Inner>,
    /// Wakes the writer and the worker: new records, steps, events, deadlines.
    wake: Event,
    /// Wakes callers waiting for a write, a settle or the end.
    progress: Event,
    executor: Arc<Executor<'static>>,
    provider: Option<TokenProvider>,
    transport: smol::lock::Mutex<Transport>,
}

/// A workspace's driver: spawn it on an executor (or `await` it), and it runs the
/// workspace until the client is shut down or dropped.
///
/// It needs an `async-io` reactor for its sockets and timers, which `async-io` starts
/// on a thread of its own the first time it is used: so it runs under
/// `smol::block_on`, on smol's global executor, or inside any other executor.
/// Dropping it before it finishes stops the workspace at once, and inputs whose
/// records were not yet written are lost; let it finish.
#[must_use = "the workspace does nothing until its driver runs"]
pub struct Driver {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

impl Shared {
    pub(crate) async fn start(
        options: WorkspaceOptions,
    ) -> Result<(Arc<Self>, Driver), StartError> {
        // Opening and replaying the journal is file I/O and CPU work: off the executor.
        let (engine, parts) = smol::unblock(move || Engine::open(options)).await?;
        let executor = Arc::new(Executor::new());
        let shared = Arc::new(Self {
            app_id: engine.app_id().to_owned(),
            inner: Mutex::new(Inner {
                engine,
                busy: 0,
                fetches: BTreeMap::new(),
                deadline_known: None,
                stopping: false,
                finished: false,
            }),
            wake: Event::new(),
            progress: Event::new(),
            transport: smol::lock::Mutex::new(Transport::new(parts.http, Arc::clone(&executor))),
            executor,
            provider: parts.provider,
        });
        let driver = Arc::clone(&shared);
        let future = async move {
            let executor = Arc::clone(&driver.executor);
            let writer = executor.spawn(Arc::clone(&driver).write_loop());
            executor.run(Arc::clone(&driver).work_loop()).await;
            executor.run(writer).await;
        };
        Ok((
            shared,
            Driver {
                future: Box::pin(future),
            },
        ))
    }

    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Listeners, providers and I/O run outside the lock: a poisoned lock comes only
        // from a bug here, and the engine is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds one input to the core on the caller's task, then waits until its records
    /// are written. The step runs on the first poll: once it has, the input is taken.
    pub(crate) async fn input<R>(
        &self,
        input: impl FnOnce(&mut Core, Now) -> R,
    ) -> Result<R, Error> {
        let (result, lsn) = {
            let mut inner = self.lock();
            if inner.stopping {
                return Err(Error::ShutDown);
            }
            let taken = inner.engine.input_unwritten(input);
            self.emit(&mut inner);
            taken
        };
        loop {
            let listener = self.progress.listen();
            if let Some(stored) = self.lock().engine.stored(lsn) {
                return stored.map(|()| result);
            }
            listener.await;
        }
    }

    /// Wakes the tasks when the core has something new for them.
    fn emit(&self, inner: &mut Inner) {
        let client = inner.engine.client();
        let deadline = client.poll_timeout();
        if client.has_output()
            || client.written_lsn() < client.lsn()
            || deadline != inner.deadline_known
        {
            inner.deadline_known = deadline;
            self.wake.notify(usize::MAX);
        }
    }

    /// Reads or changes the engine.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.lock().engine)
    }

    /// Changes the engine's listeners.
    pub(crate) fn listeners(&self, change: impl FnOnce(&mut Listeners)) {
        change(self.lock().engine.listeners_mut());
    }

    /// The writer: appends the core's records off the executor, one job at a time.
    async fn write_loop(self: Arc<Self>) {
        loop {
            let listener = self.wake.listen();
            let (job, store) = {
                let mut inner = self.lock();
                let job = inner.engine.next_write();
                if job.is_none() && inner.finished {
                    return;
                }
                (job, inner.engine.store())
            };
            let Some(job) = job else {
                listener.await;
                continue;
            };
            let (job, result) = smol::unblock(move || {
                let result = store.map_or(Ok(()), |store| store.append(&job));
                (job, result)
            })
            .await;
            let mut inner = self.lock();
            inner.engine.written(job.id, result);
            self.emit(&mut inner);
            drop(inner);
            self.progress.notify(usize::MAX);
        }
    }

    /// The worker: tells events, starts a task per step, sleeps until the core's next
    /// deadline, until the core says the close is finished.
    async fn work_loop(self: Arc<Self>) {
        loop {
            let listener = self.wake.listen();
            let (events, step, listeners, wake_at) = {
                let mut inner = self.lock();
                inner.engine.wake_if_due();
                inner.deadline_known = inner.engine.client().poll_timeout();
                let events = inner.engine.take_events();
                let step = inner.engine.next_step();
                inner.busy += usize::from(!events.is_empty());
                (
                    events,
                    step,
                    inner.engine.listeners(),
                    inner.engine.next_wake(),
                )
            };
            if !events.is_empty() {
                for event in &events {
                    listeners.dispatch(event);
                }
                self.lock().busy -= 1;
                self.progress.notify(usize::MAX);
            }
            match step {
                Some(Step::Finish { clean }) => {
                    let shared = Arc::clone(&self);
                    smol::unblock(move || shared.lock().engine.finish(clean)).await;
                    let mut inner = self.lock();
                    inner.finished = true;
                    inner.fetches.clear();
                    drop(inner);
                    self.wake.notify(usize::MAX);
                    self.progress.notify(usize::MAX);
                    return;
                }
                Some(step) => self.perform(step),
                None if events.is_empty() => {
                    let sleep = async {
                        Timer::at(
                            wake_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
                        )
                        .await;
                    };
                    listener.or(sleep).await;
                }
                None => {}
            }
        }
    }

    /// Starts the task that carries out `step`.
    fn perform(self: &Arc<Self>, step: Step) {
        let shared = Arc::clone(self);
        let task = match step {
            Step::Send(request) => self.executor.spawn(async move {
                let result = shared.transport.lock().await.send(&request).await;
                shared.finish_step(|engine| engine.answered(request.id, result));
            }),
            Step::FetchToken(fetch) => {
                let id = fetch.id;
                let request = TokenRequest::for_fetch(&fetch);
                let task = self.executor.spawn(async move {
                    let answer = match shared.provider.clone() {
                        Some(provider) => AssertUnwindSafe(provider(request)).catch_unwind().await,
                        None => Ok(None),
                    };
                    let answer = match answer {
                        Ok(Some(token)) => TokenAnswer::Token(token),
                        Ok(None) => TokenAnswer::NoToken,
                        Err(_) => TokenAnswer::Failed("the provider panicked".into()),
                    };
                    let mut inner = shared.lock();
                    inner.fetches.remove(&id);
                    // Fetches are the core's to count (they end at its timeout).
                    inner.busy += 1;
                    drop(inner);
                    shared.finish_step(|engine| engine.token_answer(id, answer));
                });
                self.lock().fetches.insert(id, task);
                return;
            }
            // Dropping the task stops the provider's future where it waits.
            Step::CancelFetch(id) => {
                drop(self.lock().fetches.remove(&id));
                return;
            }
            Step::Sync(job) => self.executor.spawn(async move {
                let store = shared.lock().engine.store();
                let result = smol::unblock(move || store.map_or(Ok(()), |s| s.sync())).await;
                shared.finish_step(|engine| engine.synced(job.id, result));
            }),
            Step::Compact(job) => self.executor.spawn(async move {
                let store = shared.lock().engine.store();
                let (job, result) = smol::unblock(move || {
                    let result = store.map_or(Ok(0), |s| s.compact(&job));
                    (job, result)
                })
                .await;
                shared.finish_step(|engine| engine.compacted(&job, result));
            }),
            other => {
                log::error!(
                    "authsync: {}: a step this driver does not know: {other:?}",
                    self.app_id
                );
                return;
            }
        };
        self.lock().busy += 1;
        task.detach();
    }

    fn finish_step(&self, report: impl FnOnce(&mut Engine)) {
        let mut inner = self.lock();
        report(&mut inner.engine);
        inner.busy -= 1;
        self.emit(&mut inner);
        drop(inner);
        self.progress.notify(usize::MAX);
    }

    /// Waits until nothing more can be sent before `timeout` runs out, or until then.
    pub(crate) async fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.progress.listen();
            {
                let inner = self.lock();
                let report = inner.engine.report(inner.busy == 0, deadline);
                if report.settled || Instant::now() >= deadline || inner.finished {
                    return report;
                }
            }
            listener
                .or(async {
                    Timer::at(deadline).await;
                })
                .await;
        }
    }

    /// What is pending now.
    pub(crate) fn report(&self) -> PendingReport {
        let inner = self.lock();
        inner.engine.report(inner.busy == 0, Instant::now())
    }

    /// Closes the workspace and waits at most until `deadline` for its driver to end.
    pub(crate) async fn stop(&self, deadline: Instant) {
        self.stop_soon();
        loop {
            let listener = self.progress.listen();
            if self.lock().finished || Instant::now() >= deadline {
                return;
            }
            listener
                .or(async {
                    Timer::at(deadline).await;
                })
                .await;
        }
    }

    /// Closes the workspace without waiting: no new request, fetches cancelled, the
    /// journal synced, then the driver ends.
    pub(crate) fn stop_soon(&self) {
        let mut inner = self.lock();
        if !inner.stopping {
            inner.stopping = true;
            inner.engine.close();
        }
        drop(inner);
        self.wake.notify(usize::MAX);
    }
}
