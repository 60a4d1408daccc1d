//! One workspace's driver on smol: the core under a mutex and four tasks around it.
//!
//! - the **writer** appends the core's records to the state directory off the executor
//!   (`smol::unblock`), then releases the actions that came after them, so no request
//!   reaches the network before the records preceding it are written;
//! - the **sender** sends one request at a time with hyper and feeds the answer back;
//! - the **timer** sleeps until the core's next deadline (`smol::Timer`, no polling);
//! - the **teller** calls listeners and observers in order and starts token providers.
//!
//! Callers' inputs run the core step on their own task and then wait for the writer:
//! an input whose step ran is accepted and will be written even if its future is
//! dropped. No rule of SPEC.md is decided here.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use authsync_core::{Action, AuthNotice, Client as Core, Now, Record, Request};
use authsync_host::clock::SystemClock;
use authsync_host::error::{Error, StartError};
use authsync_host::events::{Observer, Observers, SyncEvent};
use authsync_host::install::{self, InstallPlace};
use authsync_host::listeners::{Listener, Listeners};
use authsync_host::pending::{PendingReport, is_settled};
use authsync_host::provider::{ProviderAnswer, SingleFlight, TokenRequest, pass_answer};
use authsync_host::store::{StateDir, StoreError};
use event_listener::Event;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt as _;
use smol::{Executor, Timer};

use crate::provider::{TokenProvider, WorkspaceOptions};
use crate::transport::Transport;

type Written = Result<(), Arc<StoreError>>;

/// A core step's output, waiting for the writer.
struct Unwritten {
    records: Vec<Record>,
    actions: Vec<Action>,
    done: Option<Sender<Written>>,
}

/// Work for the teller, in the order it arose.
enum Tell {
    Core(Action),
    Event(SyncEvent),
}

struct State {
    core: Core,
    unwritten: VecDeque<Unwritten>,
    writing: bool,
    sends: VecDeque<Box<Request>>,
    sending: bool,
    told: VecDeque<Tell>,
    telling: bool,
    listeners: Listeners,
    observers: Observers,
    provider: Option<TokenProvider>,
    flights: SingleFlight,
    stopping: bool,
    finished: bool,
    /// The core's deadline the timer task last heard of.
    told_timer: Option<authsync_core::Wakeup>,
}

impl State {
    fn idle(&self) -> bool {
        self.unwritten.is_empty()
            && !self.writing
            && self.sends.is_empty()
            && !self.sending
            && self.told.is_empty()
            && !self.telling
            && self.flights.running() == 0
    }
}

pub(crate) struct Shared {
    app_id: String,
    /// Whether inputs wait for their records to be written (a state directory).
    has_store: bool,
    clock: SystemClock,
    state: Mutex<State>,
    store: Mutex<Option<StateDir>>,
    writer_wake: Event,
    sender_wake: Event,
    timer_wake: Event,
    teller_wake: Event,
    progress: Event,
    executor: Arc<Executor<'static>>,
}

/// A workspace's driver: spawn it on an executor (or `await` it), and it runs the
/// workspace until the client is shut down or dropped.
///
/// It needs an `async-io` reactor for its sockets and timers, which `async-io` starts
/// on a thread of its own the first time it is used: so it runs under
/// `smol::block_on`, on smol's global executor, or inside any other executor (tokio,
/// async-std, a hand-written one). Dropping it before it finishes stops the
/// workspace at once, and inputs whose records were not yet written are lost; let it
/// finish.
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
        let clock = SystemClock::new();
        let WorkspaceOptions {
            config,
            state_dir,
            store: store_options,
            seed,
            http,
            session_on_launch,
            provider,
            listeners,
            observers,
        } = options;
        let restore_config = config.clone();
        // Opening and replaying the journal is file I/O and CPU work: off the executor.
        let (store, mut core) = smol::unblock(move || {
            let place = InstallPlace {
                state_dir: state_dir.as_deref(),
                store: store_options,
                seed,
            };
            install::open(&restore_config, &place, clock.now())
        })
        .await?;
        if session_on_launch {
            core.handle_session_start(clock.now());
        }
        let executor = Arc::new(Executor::new());
        let shared = Arc::new(Self {
            app_id: config.app_id,
            clock,
            state: Mutex::new(State {
                core,
                unwritten: VecDeque::new(),
                writing: false,
                sends: VecDeque::new(),
                sending: false,
                told: VecDeque::new(),
                telling: false,
                listeners,
                observers,
                provider,
                flights: SingleFlight::default(),
                stopping: false,
                finished: false,
                told_timer: None,
            }),
            has_store: store.is_some(),
            store: Mutex::new(store),
            writer_wake: Event::new(),
            sender_wake: Event::new(),
            timer_wake: Event::new(),
            teller_wake: Event::new(),
            progress: Event::new(),
            executor: Arc::clone(&executor),
        });
        {
            let mut state = shared.lock();
            let _ = shared.collect(&mut state, false);
        }
        let transport = Transport::new(http, Arc::clone(&executor));
        let driver = Arc::clone(&shared);
        let future = async move {
            let tasks = [
                driver.executor.spawn(Arc::clone(&driver).write_loop()),
                driver
                    .executor
                    .spawn(Arc::clone(&driver).send_loop(transport)),
                driver.executor.spawn(Arc::clone(&driver).timer_loop()),
                driver.executor.spawn(Arc::clone(&driver).tell_loop()),
            ];
            let executor = Arc::clone(&driver.executor);
            executor
                .run(async {
                    for task in tasks {
                        task.await;
                    }
                })
                .await;
            driver.finish().await;
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // Listeners, observers and providers run outside the lock; a poisoned lock can
        // only come from a bug here, and the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds one input to the core on the caller's task, then waits until its records
    /// are written. The step runs on the first poll: once it has, the input is
    /// accepted and is written even if this future is dropped.
    pub(crate) async fn input<R>(
        &self,
        input: impl FnOnce(&mut Core, Now) -> R,
    ) -> Result<R, Error> {
        let (result, written, woke_writer) = {
            let mut state = self.lock();
            if state.stopping {
                return Err(Error::ShutDown);
            }
            let result = input(&mut state.core, self.clock.now());
            let writer_idle = state.unwritten.is_empty() && !state.writing;
            let written = self.collect(&mut state, true);
            (result, written, writer_idle && !state.unwritten.is_empty())
        };
        if woke_writer {
            // Linux queues a woken thread on the waker's CPU when it can; behind a
            // caller that goes on tracking, the executor thread running the writer
            // waited out the caller's whole time slice (2 ms measured on two cores,
            // so the first request of a burst left when the burst ended). One yield
            // per hand-over lets it run now; yielding the task too lets the driver
            // start the request first when it runs on the caller's own thread.
            std::thread::yield_now();
            smol::future::yield_now().await;
        }
        if let Some(written) = written {
            match written.recv().await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::NotDurable(e)),
                Err(_) => return Err(Error::ShutDown),
            }
        }
        Ok(result)
    }

    pub(crate) fn read<R>(&self, read: impl FnOnce(&Core) -> R) -> R {
        read(&self.lock().core)
    }

    pub(crate) fn register_listener(&self, listener: Listener) {
        self.lock().listeners.register(listener);
    }

    pub(crate) fn add_observer(&self, observer: Observer) {
        self.lock().observers.register(observer);
    }

    /// Queues the core's output for the writer, in order; a receiver for its
    /// durability when `ack` is set and there are records.
    fn collect(&self, state: &mut State, ack: bool) -> Option<Receiver<Written>> {
        let mut records = Vec::new();
        let mut actions = Vec::new();
        while let Some(action) = state.core.poll_action() {
            match action {
                // Without a state directory records have nowhere to go, and a track
                // that brings nothing else need not wake the writer.
                Action::Persist(record) if self.has_store => records.push(record),
                Action::Persist(_) => {}
                other => actions.push(other),
            }
        }
        let deadline = state.core.poll_timeout();
        if deadline != state.told_timer {
            state.told_timer = deadline;
            self.timer_wake.notify(usize::MAX);
        }
        if records.is_empty() && actions.is_empty() {
            return None;
        }
        // Without a state directory there is nothing to wait for: the records only set
        // the order in which the writer releases actions.
        let (done, written) = if ack && self.has_store && !records.is_empty() {
            let (done, written) = smol::channel::bounded(1);
            (Some(done), Some(written))
        } else {
            (None, None)
        };
        // The writer takes everything queued at once: one wake-up per batch of work.
        let writer_idle = state.unwritten.is_empty();
        state.unwritten.push_back(Unwritten {
            records,
            actions,
            done,
        });
        if writer_idle {
            self.writer_wake.notify(usize::MAX);
        }
        written
    }

    async fn write_loop(self: Arc<Self>) {
        loop {
            let listener = self.writer_wake.listen();
            let work: Vec<Unwritten> = {
                let mut state = self.lock();
                if state.unwritten.is_empty() {
                    if state.stopping && !state.sending && state.flights.running() == 0 {
                        break;
                    }
                    Vec::new()
                } else {
                    state.writing = true;
                    state.unwritten.drain(..).collect()
                }
            };
            if work.is_empty() {
                let sync_due = self.store_lock().as_ref().and_then(StateDir::sync_due_at);
                match sync_due {
                    Some(at) => {
                        listener
                            .or(async {
                                Timer::at(at).await;
                            })
                            .await;
                        self.sync_if_due().await;
                    }
                    None => listener.await,
                }
                continue;
            }
            let records: Vec<Record> = work
                .iter()
                .flat_map(|u| u.records.iter().cloned())
                .collect();
            let written = self.write(records).await;
            let mut state = self.lock();
            for unwritten in work {
                for action in unwritten.actions {
                    match action {
                        Action::Send(request) => state.sends.push_back(request),
                        other => state.told.push_back(Tell::Core(other)),
                    }
                }
                if let Some(done) = unwritten.done {
                    let _ = done.try_send(written.clone());
                }
            }
            state.writing = false;
            drop(state);
            self.sender_wake.notify(usize::MAX);
            self.teller_wake.notify(usize::MAX);
            self.progress.notify(usize::MAX);
        }
    }

    fn store_lock(&self) -> MutexGuard<'_, Option<StateDir>> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `records` off the executor; compacts when the journal has grown.
    async fn write(self: &Arc<Self>, records: Vec<Record>) -> Written {
        let store = self.store_lock().take();
        let Some(mut store) = store else {
            return Ok(());
        };
        let shared = Arc::clone(self);
        let (store, written) = smol::unblock(move || {
            let written = store.append(&records).and_then(|()| {
                if store.wants_compaction() {
                    // The snapshot may be ahead of what is written: restore skips the
                    // records it already includes.
                    let snapshot = shared.lock().core.snapshot();
                    store.compact(&snapshot)
                } else {
                    Ok(())
                }
            });
            (store, written)
        })
        .await;
        *self.store_lock() = Some(store);
        written.map_err(|e| {
            log::error!("authsync: {}: {e}", self.app_id);
            Arc::new(e)
        })
    }

    async fn sync_if_due(&self) {
        let store = self.store_lock().take();
        let Some(mut store) = store else {
            return;
        };
        let (store, synced) = smol::unblock(move || {
            let synced = store.sync_if_due();
            (store, synced)
        })
        .await;
        *self.store_lock() = Some(store);
        if let Err(e) = synced {
            log::error!("authsync: {}: {e}", self.app_id);
        }
    }

    async fn send_loop(self: Arc<Self>, mut transport: Transport) {
        loop {
            let listener = self.sender_wake.listen();
            let next = {
                let mut state = self.lock();
                if state.stopping {
                    break;
                }
                let next = state.sends.pop_front();
                if let Some(request) = &next {
                    state.sending = true;
                    state.told.push_back(Tell::Event(SyncEvent::sent(request)));
                }
                next
            };
            let Some(request) = next else {
                listener.await;
                continue;
            };
            self.teller_wake.notify(usize::MAX);
            let result = transport.send(&request).await;
            let mut state = self.lock();
            let now = self.clock.now();
            let fed = match result {
                Ok(response) => {
                    state.told.push_back(Tell::Event(SyncEvent::answered(
                        &request.batch_id,
                        &response,
                    )));
                    state.core.handle_response(now, request.id, response)
                }
                Err(failure) => {
                    state
                        .told
                        .push_back(Tell::Event(SyncEvent::TransportFailed {
                            batch_id: request.batch_id.clone(),
                            failure,
                        }));
                    state
                        .core
                        .handle_transport_failure(now, request.id, failure)
                }
            };
            if let Err(e) = fed {
                log::error!("authsync: {}: {e}", self.app_id);
            }
            let _ = self.collect(&mut state, false);
            state.sending = false;
            drop(state);
            self.teller_wake.notify(usize::MAX);
            self.writer_wake.notify(usize::MAX);
            self.progress.notify(usize::MAX);
        }
        self.writer_wake.notify(usize::MAX);
    }

    async fn timer_loop(self: Arc<Self>) {
        loop {
            let listener = self.timer_wake.listen();
            let now = self.clock.now();
            let due = {
                let mut state = self.lock();
                if state.stopping {
                    break;
                }
                match state.core.poll_timeout() {
                    Some(wakeup) if wakeup.at_mono_ms <= now.mono_ms => {
                        state.core.handle_timeout(now);
                        let _ = self.collect(&mut state, false);
                        continue;
                    }
                    other => other.map(|wakeup| self.clock.instant_at(wakeup.at_mono_ms)),
                }
            };
            match due {
                Some(at) => {
                    listener
                        .or(async {
                            Timer::at(at).await;
                        })
                        .await
                }
                None => listener.await,
            }
        }
    }

    async fn tell_loop(self: Arc<Self>) {
        loop {
            let listener = self.teller_wake.listen();
            let next = {
                let mut state = self.lock();
                match state.told.pop_front() {
                    Some(tell) => {
                        state.telling = true;
                        Some((
                            tell,
                            state.listeners.clone(),
                            state.observers.clone(),
                            state.provider.clone(),
                        ))
                    }
                    None => {
                        if state.stopping
                            && !state.writing
                            && !state.sending
                            && state.unwritten.is_empty()
                        {
                            break;
                        }
                        None
                    }
                }
            };
            let Some((tell, listeners, observers, provider)) = next else {
                listener.await;
                continue;
            };
            match tell {
                Tell::Core(Action::Notify(notice)) => {
                    listeners.dispatch(&notice);
                    observers.dispatch(&SyncEvent::Notified((*notice).clone()));
                    if let Some(provider) = provider {
                        self.ask_provider(provider, &notice);
                    }
                }
                Tell::Core(Action::Acked(ack)) => {
                    observers.dispatch(&SyncEvent::Acked(ack));
                }
                Tell::Core(Action::Dropped(drop)) => {
                    observers.dispatch(&SyncEvent::Dropped(drop));
                }
                Tell::Core(Action::LockedOut) => {
                    observers.dispatch(&SyncEvent::LockedOut);
                }
                Tell::Core(_) => {}
                Tell::Event(event) => {
                    observers.dispatch(&event);
                }
            }
            self.lock().telling = false;
            self.progress.notify(usize::MAX);
        }
    }

    /// R2: asks the provider on a task of its own, once at a time per identifier.
    fn ask_provider(self: &Arc<Self>, provider: TokenProvider, notice: &AuthNotice) {
        let Some(request) = TokenRequest::for_notice(notice) else {
            return;
        };
        if !self.lock().flights.try_begin(&request.identifier) {
            return;
        }
        let shared = Arc::clone(self);
        self.executor
            .spawn(async move {
                let answer = match catch_unwind(AssertUnwindSafe(|| provider(request.clone()))) {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                shared.provided(&request, answer.map_err(drop));
            })
            .detach();
    }

    /// Ends the flight and passes the token in one critical section, so a 401 for the
    /// new token always finds no flight running and asks again.
    fn provided(&self, request: &TokenRequest, answer: ProviderAnswer) {
        let mut state = self.lock();
        state.flights.end(&request.identifier);
        let now = self.clock.now();
        let stopping = state.stopping;
        let failure = pass_answer(answer, stopping, |token| {
            let passed = state
                .core
                .handle_authentication_details(now, token, &request.identifier);
            let _ = self.collect(&mut state, false);
            passed
        });
        if let Some(reason) = failure {
            state.told.push_back(Tell::Event(SyncEvent::ProviderFailed {
                identifier: request.identifier.clone(),
                reason,
            }));
        }
        drop(state);
        self.teller_wake.notify(usize::MAX);
        self.writer_wake.notify(usize::MAX);
        self.progress.notify(usize::MAX);
    }

    async fn finish(&self) {
        let store = self.store_lock().take();
        if let Some(mut store) = store {
            let synced = smol::unblock(move || store.sync()).await;
            if let Err(e) = synced {
                log::error!("authsync: {}: {e}", self.app_id);
            }
        }
        self.lock().finished = true;
        self.progress.notify(usize::MAX);
    }

    /// Waits until nothing more can be sent before `timeout` runs out, or until then.
    pub(crate) async fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.progress.listen();
            {
                let state = self.lock();
                let remaining = deadline.saturating_duration_since(Instant::now());
                let horizon = self
                    .clock
                    .now()
                    .mono_ms
                    .saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX));
                let settled = is_settled(&state.core, state.idle(), horizon);
                if settled || remaining.is_zero() || state.finished {
                    return PendingReport::of(&state.core, settled);
                }
            }
            listener
                .or(async {
                    Timer::at(deadline).await;
                })
                .await;
        }
    }

    /// Stops the tasks after their current work and waits for the driver to finish,
    /// at most until `deadline`.
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

    /// Asks the tasks to stop without waiting.
    pub(crate) fn stop_soon(&self) {
        self.lock().stopping = true;
        for event in [
            &self.writer_wake,
            &self.sender_wake,
            &self.timer_wake,
            &self.teller_wake,
            &self.progress,
        ] {
            event.notify(usize::MAX);
        }
    }

    pub(crate) fn report(&self) -> PendingReport {
        let state = self.lock();
        let horizon = self.clock.now().mono_ms;
        PendingReport::of(&state.core, is_settled(&state.core, state.idle(), horizon))
    }
}
