//! One workspace's driver: the core under a mutex, its state directory, and the thread
//! that sends requests, sleeps until the core's next deadline and runs listeners.
//!
//! Callers' threads feed inputs to the core and write the resulting records before
//! returning (so `track` is durable when it returns); everything else the core asks
//! for goes to an outbox that the workspace's one thread works through in order. No
//! rule of SPEC.md is decided here.
//!
//! The outbox has a lock of its own (the mailbox), and the driver thread sleeps on it,
//! so that it takes work without waiting for the core's lock, which an app tracking in
//! a tight loop holds most of the time. Lock order: the core's state, then the mailbox,
//! never the other way.
//!
//! A caller that hands work to an idle driver thread yields its time slice once:
//! Linux queues a woken thread on the waker's CPU when it can, and behind a caller
//! that goes on tracking it waited for the caller's whole time slice (2 ms measured on
//! two cores: the first request of a burst left only when the burst ended).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use authsync_core::{Action, AuthNotice, Client as Core, Now, Record, Wakeup};
use authsync_host::clock::SystemClock;
use authsync_host::events::{Observer, Observers, SyncEvent};
use authsync_host::listeners::{Listener, Listeners};
use authsync_host::provider::{SingleFlight, TokenRequest, pass_answer};
use authsync_host::store::{StateDir, StoreError};

use crate::provider::{TokenProvider, WorkspaceOptions};
use crate::transport::Transport;
use authsync_host::error::{Error, StartError};
use authsync_host::install::{self, InstallPlace};
use authsync_host::pending::{PendingReport, is_settled};

/// Work for the driver thread, in the order it arose.
enum Work {
    Core(Action),
    Event(SyncEvent),
}

struct State {
    core: Core,
    store: Option<StateDir>,
    /// Reused between drains so that steady-state inputs do not allocate for records
    /// or actions.
    records: Vec<Record>,
    actions: Vec<Work>,
    /// The core's deadline as last told to the driver thread.
    told_deadline: Option<Wakeup>,
    listeners: Listeners,
    observers: Observers,
    provider: Option<TokenProvider>,
    flights: SingleFlight,
    stopping: bool,
    exited: bool,
}

/// What the driver thread is handed and woken for.
#[derive(Default)]
struct Mailbox {
    outbox: VecDeque<Work>,
    /// Bumped when the core's next deadline changes, so that a sleep computed from
    /// the old one is not started.
    deadline_news: u64,
    /// The driver thread is working outside the locks (sending, calling listeners).
    busy: bool,
    stopping: bool,
}

pub(crate) struct Shared {
    app_id: String,
    clock: SystemClock,
    state: Mutex<State>,
    mailbox: Mutex<Mailbox>,
    /// Wakes the driver thread (sleeping on the mailbox): new work, a new deadline.
    wake: Condvar,
    /// Wakes callers waiting (on the state) for the workspace to settle or its thread
    /// to end.
    progress: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn start(options: WorkspaceOptions) -> Result<Arc<Self>, StartError> {
        let clock = SystemClock::new();
        let now = clock.now();
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
        let place = InstallPlace {
            state_dir: state_dir.as_deref(),
            store: store_options,
            seed,
        };
        let (store, mut core) = install::open(&config, &place, now)?;
        if session_on_launch {
            core.handle_session_start(now);
        }
        let shared = Arc::new(Self {
            app_id: config.app_id,
            clock,
            state: Mutex::new(State {
                core,
                store,
                records: Vec::new(),
                actions: Vec::new(),
                told_deadline: None,
                listeners,
                observers,
                provider,
                flights: SingleFlight::default(),
                stopping: false,
                exited: false,
            }),
            mailbox: Mutex::new(Mailbox::default()),
            wake: Condvar::new(),
            progress: Condvar::new(),
            thread: Mutex::new(None),
        });
        {
            let mut state = shared.lock();
            shared.drain(&mut state).map_err(StartError::Store)?;
        }
        let transport = Transport::new(http);
        let driver = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name(format!("authsync-{}", shared.app_id))
            .spawn(move || driver.run(&transport))?;
        *shared.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        Ok(shared)
    }

    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Listeners and providers run outside the lock, so a poisoned lock can only
        // come from a bug in this module; the state itself is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds one input to the core and writes its records before returning.
    pub(crate) fn input<R>(&self, input: impl FnOnce(&mut Core, Now) -> R) -> Result<R, Error> {
        let mut state = self.lock();
        if state.stopping {
            return Err(Error::ShutDown);
        }
        let result = input(&mut state.core, self.clock.now());
        let written = self.drain(&mut state);
        drop(state);
        written.map_err(|e| Error::NotDurable(Arc::new(e)))?;
        Ok(result)
    }

    /// Reads the core without changing it.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Core) -> R) -> R {
        read(&self.lock().core)
    }

    pub(crate) fn register_listener(&self, listener: Listener) {
        self.lock().listeners.register(listener);
    }

    pub(crate) fn add_observer(&self, observer: Observer) {
        self.lock().observers.register(observer);
    }

    /// Takes the core's actions: records to the journal (in one write), then the rest
    /// to the outbox for the driver thread: never before their records are written, so
    /// that no request goes out for a batch whose sealing a crash could still undo.
    /// The driver thread is woken only when there is news for it (a wake-up costs a
    /// system call, and most tracks bring none).
    fn drain(&self, state: &mut State) -> Result<(), StoreError> {
        let State {
            core,
            store,
            records,
            actions,
            told_deadline,
            ..
        } = state;
        while let Some(action) = core.poll_action() {
            match action {
                Action::Persist(record) => records.push(record),
                other => actions.push(Work::Core(other)),
            }
        }
        let written = match store {
            Some(store) if !records.is_empty() => store.append(records).and_then(|()| {
                if store.wants_compaction() {
                    store.compact(&core.snapshot())
                } else {
                    Ok(())
                }
            }),
            _ => Ok(()),
        };
        records.clear();
        if let Err(e) = &written {
            log::error!("authsync: {}: {e}", self.app_id);
        }
        let deadline = core.poll_timeout();
        let new_deadline = deadline != *told_deadline;
        if new_deadline || !actions.is_empty() {
            *told_deadline = deadline;
            let mut mailbox = self.mailbox();
            // Not busy: asleep, about to sleep, or not started yet.
            let handed_over = !mailbox.busy && !actions.is_empty();
            mailbox.outbox.extend(actions.drain(..));
            mailbox.deadline_news += u64::from(new_deadline);
            drop(mailbox);
            self.wake.notify_one();
            if handed_over {
                // See the module's documentation: lets the woken thread run now.
                thread::yield_now();
            }
        }
        written
    }

    /// The driver thread.
    fn run(self: &Arc<Self>, transport: &Transport) {
        while let Some(work) = self.next_work() {
            self.perform(work, transport);
        }
        let mut state = self.lock();
        if let Some(store) = &mut state.store
            && let Err(e) = store.sync()
        {
            log::error!("authsync: {}: {e}", self.app_id);
        }
        state.exited = true;
        drop(state);
        self.progress.notify_all();
    }

    /// Sleeps until there is work, handling the core's deadlines and the store's syncs
    /// meanwhile; `None` when the workspace stops.
    fn next_work(&self) -> Option<Work> {
        loop {
            let (news_seen, went_idle) = {
                let mut mailbox = self.mailbox();
                if let Some(work) = mailbox.outbox.pop_front() {
                    mailbox.busy = true;
                    return Some(work);
                }
                if mailbox.stopping {
                    return None;
                }
                (mailbox.deadline_news, std::mem::take(&mut mailbox.busy))
            };
            let wake_at = {
                let mut state = self.lock();
                let now = self.clock.now();
                let core_due = state.core.poll_timeout().map(|wakeup| wakeup.at_mono_ms);
                if core_due.is_some_and(|at| at <= now.mono_ms) {
                    state.core.handle_timeout(now);
                    // An error is logged in drain; the work it produced still goes.
                    let _ = self.drain(&mut state);
                    None
                } else {
                    if let Some(store) = &mut state.store
                        && let Err(e) = store.sync_if_due()
                    {
                        log::error!("authsync: {}: {e}", self.app_id);
                    }
                    let sync_due = state.store.as_ref().and_then(StateDir::sync_due_at);
                    let wake_at = core_due
                        .map(|at| self.clock.instant_at(at))
                        .into_iter()
                        .chain(sync_due)
                        .min();
                    Some(wake_at)
                }
            };
            // The state lock was taken after going idle, so a caller that saw the
            // driver busy is already waiting for this.
            if went_idle {
                self.progress.notify_all();
            }
            let Some(wake_at) = wake_at else {
                continue;
            };
            let mailbox = self.mailbox();
            if mailbox.deadline_news != news_seen || !mailbox.outbox.is_empty() || mailbox.stopping
            {
                continue;
            }
            drop(match wake_at {
                Some(at) => {
                    let timeout = at.saturating_duration_since(Instant::now());
                    self.wake
                        .wait_timeout(mailbox, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(mailbox)
                    .unwrap_or_else(PoisonError::into_inner),
            });
        }
    }

    fn perform(self: &Arc<Self>, work: Work, transport: &Transport) {
        match work {
            Work::Core(Action::Send(request)) => {
                self.observe(&SyncEvent::sent(&request));
                let result = transport.send(&request);
                let event = match &result {
                    Ok(response) => SyncEvent::answered(&request.batch_id, response),
                    Err(failure) => SyncEvent::TransportFailed {
                        batch_id: request.batch_id.clone(),
                        failure: *failure,
                    },
                };
                {
                    let mut state = self.lock();
                    let now = self.clock.now();
                    let fed = match result {
                        Ok(response) => state.core.handle_response(now, request.id, response),
                        Err(failure) => state
                            .core
                            .handle_transport_failure(now, request.id, failure),
                    };
                    if let Err(e) = fed {
                        log::error!("authsync: {}: {e}", self.app_id);
                    }
                    let _ = self.drain(&mut state);
                }
                self.observe(&event);
            }
            Work::Core(Action::Notify(notice)) => {
                let (listeners, provider) = {
                    let state = self.lock();
                    (state.listeners.clone(), state.provider.clone())
                };
                listeners.dispatch(&notice);
                self.observe(&SyncEvent::Notified((*notice).clone()));
                if let Some(provider) = provider {
                    self.ask_provider(provider, &notice);
                }
            }
            Work::Core(Action::Acked(ack)) => self.observe(&SyncEvent::Acked(ack)),
            Work::Core(Action::Dropped(drop)) => self.observe(&SyncEvent::Dropped(drop)),
            Work::Core(Action::LockedOut) => self.observe(&SyncEvent::LockedOut),
            Work::Core(_) => {}
            Work::Event(event) => self.observe(&event),
        }
    }

    fn observe(&self, event: &SyncEvent) {
        let observers = self.lock().observers.clone();
        observers.dispatch(event);
    }

    /// R2: asks the provider for a token on a thread of its own, once at a time per
    /// identifier, and passes its answer in.
    fn ask_provider(self: &Arc<Self>, provider: TokenProvider, notice: &AuthNotice) {
        let Some(request) = TokenRequest::for_notice(notice) else {
            return;
        };
        if !self.lock().flights.try_begin(&request.identifier) {
            return;
        }
        let shared = Arc::clone(self);
        let identifier = request.identifier.clone();
        let spawned = thread::Builder::new()
            .name(format!("authsync-token-{}", self.app_id))
            .spawn(move || shared.provide(&provider, &request));
        if let Err(e) = spawned {
            log::error!(
                "authsync: {}: cannot start the token provider: {e}",
                self.app_id
            );
            self.lock().flights.end(&identifier);
        }
    }

    fn provide(&self, provider: &TokenProvider, request: &TokenRequest) {
        let answer = catch_unwind(AssertUnwindSafe(|| provider(request)));
        // The flight ends in the same critical section that passes the token in: a
        // notice about the new token (a 401 for it) then always finds no flight
        // running and asks again, and a wait for the workspace to settle never sees
        // the flight gone before the send it caused.
        let mut state = self.lock();
        state.flights.end(&request.identifier);
        let now = self.clock.now();
        let stopping = state.stopping;
        let failure = pass_answer(answer.map_err(drop), stopping, |token| {
            let passed = state
                .core
                .handle_authentication_details(now, token, &request.identifier);
            let _ = self.drain(&mut state);
            passed
        });
        if let Some(reason) = failure {
            self.mailbox()
                .outbox
                .push_back(Work::Event(SyncEvent::ProviderFailed {
                    identifier: request.identifier.clone(),
                    reason,
                }));
        }
        drop(state);
        self.wake.notify_one();
        self.progress.notify_all();
    }

    /// Waits until nothing more can be sent before `timeout` runs out (the queue is
    /// empty, or what is left waits for a token, a session start, or a backoff past
    /// the deadline), or until the timeout.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> PendingReport {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            let horizon = self
                .clock
                .now()
                .mono_ms
                .saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX));
            let settled = is_settled(&state.core, self.driver_idle(&state), horizon);
            if settled || remaining.is_zero() || state.exited {
                return PendingReport::of(&state.core, settled);
            }
            state = self
                .progress
                .wait_timeout(state, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the driver thread after its current work, waiting for it at most until
    /// `deadline`; syncs the journal.
    pub(crate) fn stop(&self, deadline: Instant) {
        self.request_stop();
        let mut state = self.lock();
        while !state.exited {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                log::warn!(
                    "authsync: {}: a request was still in flight at shutdown; its thread ends when it does",
                    self.app_id
                );
                return;
            }
            state = self
                .progress
                .wait_timeout(state, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        if let Some(handle) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
    }

    /// Asks the driver thread to stop without waiting (the last handle went away).
    pub(crate) fn stop_soon(&self) {
        self.request_stop();
    }

    /// Refuses new inputs, and tells the driver thread to stop once its outbox is
    /// done.
    fn request_stop(&self) {
        let mut state = self.lock();
        state.stopping = true;
        self.mailbox().stopping = true;
        drop(state);
        self.wake.notify_all();
    }

    pub(crate) fn report(&self) -> PendingReport {
        let state = self.lock();
        let horizon = self.clock.now().mono_ms;
        PendingReport::of(
            &state.core,
            is_settled(&state.core, self.driver_idle(&state), horizon),
        )
    }

    /// Whether the driver holds no work for this workspace; `state` is this
    /// workspace's locked state.
    fn driver_idle(&self, state: &State) -> bool {
        let mailbox = self.mailbox();
        mailbox.outbox.is_empty() && !mailbox.busy && state.flights.running() == 0
    }
}
