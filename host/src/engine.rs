//! One workspace run on std, for drivers: the core, its store, its clock and its
//! listeners, opened together, and the loop every driver runs, written once: which
//! [`Work`] comes next, what is still in a driver's hands, when the workspace is
//! settled, closing and finished. Which step comes next and what a result means are
//! the core's; what is left to a driver is how it waits and runs things at once
//! (threads, tasks).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use authsync_core::{
    Client, Event, FetchId, Now, RecoveryReport, Request, RequestId, Step, Storage, StorageFailure,
    TokenAnswer, TransportFailure, Wakeup, WriteJob,
};
use bytes::Bytes;

use crate::clock::Clock;
use crate::error::{Error, StartError};
use crate::listeners::Listeners;
use crate::options::WorkspaceOptions;
use crate::provider::{Cancellation, TokenRequest};
use crate::store::StateDir;
use crate::transport::{HttpTransport, UreqTransport};
use crate::work::{StorageDone, StorageTask, Work};

/// What a workspace still had to send when a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingReport {
    /// Events neither acknowledged nor dropped.
    pub pending_events: u64,
    /// Whether a request was still in flight.
    pub in_flight: bool,
    /// Whether everything that could be sent in the time given was sent: what is left
    /// (if anything) waits for a token, a session start, or a backoff past the deadline.
    pub settled: bool,
    /// The install's running totals.
    pub totals: authsync_core::Totals,
}

/// What [`Engine::news`] found for a driver's threads.
#[derive(Debug)]
pub struct News {
    /// A request for the sender, handed out already.
    pub send: Option<Box<Request>>,
    /// Whether the driver's own thread must wake: work, events to tell, or a new
    /// deadline.
    pub wake_driver: bool,
}

/// What a driver keeps of its options after opening: its own parts.
pub struct DriverParts<P> {
    /// The token provider, if any.
    pub provider: Option<P>,
    /// What the workspace's requests are sent with.
    pub transport: Arc<dyn HttpTransport>,
}

/// A workspace's core, store, clock and listeners.
///
/// ```
/// use authsync_core::Config;
/// use authsync_host::{Engine, Work, WorkspaceOptions};
/// let options: WorkspaceOptions<()> =
///     WorkspaceOptions::new(Config::new("app", "http://127.0.0.1:9")).seed(1);
/// let (mut engine, _) = Engine::open(options).unwrap();
/// engine.input(|client, now| client.handle_track(now, "e", &serde_json::json!({}))).unwrap().unwrap();
/// engine.input(|client, now| client.handle_flush(now)).unwrap();
/// // A driver's loop: perform each piece of work, hand its result back.
/// let mut sent = None;
/// while let Some(work) = engine.next_work() {
///     match work {
///         Work::Tell(events, listeners) => {
///             for event in &events {
///                 listeners.dispatch(event);
///             }
///             engine.told();
///         }
///         Work::Send(request) => sent = Some(request),
///         other => unreachable!("{other:?}"),
///     }
/// }
/// let request = sent.expect("the sealed batch is sent");
/// assert!(!engine.report(std::time::Instant::now()).settled, "the send is in hand");
/// engine.answered(request.id, Err(authsync_core::TransportFailure::Connect));
/// ```
#[derive(Debug)]
pub struct Engine {
    core: Client,
    store: Option<Arc<StateDir>>,
    clock: Arc<dyn Clock>,
    listeners: Listeners,
    app_id: String,
    recovery: RecoveryReport,
    /// Steps the core handed out while the store was rewritten at open.
    held: VecDeque<Step>,
    /// Work handed to the driver whose result it has not handed back yet.
    in_hand: usize,
    /// The core's deadline when the driver last asked: a later change wakes it.
    deadline_known: Option<Wakeup>,
    /// Events someone hears, taken from the core and not yet handed to the driver.
    to_tell: Vec<Event>,
    /// Running token fetches, to cancel.
    fetches: BTreeMap<FetchId, Cancellation>,
    closing: bool,
    finished: bool,
}

impl Engine {
    /// Opens a workspace: its state directory (D6) and what it holds (D5), or a new
    /// install seeded by the options or the operating system (U1), and a session when
    /// the options start one on launch.
    ///
    /// # Errors
    /// [`StartError`] for an invalid configuration, a state directory that is in use,
    /// refused or unreadable, a seed mismatch, or no randomness for a new seed.
    pub fn open<P>(options: WorkspaceOptions<P>) -> Result<(Self, DriverParts<P>), StartError> {
        let WorkspaceOptions {
            config,
            state_dir,
            storage,
            file_system,
            seed,
            http,
            transport,
            session_on_launch,
            provider,
            token_timeout,
            listeners,
            clock,
        } = options;
        config.validate()?;
        let os_seed = crate::os_seed().map_err(|e| StartError::Seed(e.to_string()))?;
        let mut config = config.with_seed(seed.unwrap_or(os_seed));
        if provider.is_some() {
            config = config.with_token_provider(token_timeout);
        }
        let now = clock.now();
        let (store, core, recovery) = match &state_dir {
            None => (
                None,
                Client::new(config.clone(), now)?,
                RecoveryReport::default(),
            ),
            Some(dir) => {
                let (store, stored) =
                    StateDir::open(&*file_system, dir, storage.fsync, seed.unwrap_or(os_seed))?;
                let config = config.clone().with_storage(Storage::Durable(storage));
                let (core, report) = Client::recover(config, now, stored)?;
                if !report.is_clean() {
                    log::warn!("authsync: {}: {report}", dir.display());
                }
                let requested = seed.filter(|&seed| seed != core.seed());
                if let Some(requested) = requested
                    && !report.started_over
                {
                    return Err(StartError::SeedMismatch {
                        persisted: core.seed(),
                        requested,
                    });
                }
                (Some(Arc::new(store)), core, report)
            }
        };
        let mut engine = Self {
            app_id: config.app_id,
            core,
            store,
            clock,
            listeners,
            recovery,
            held: VecDeque::new(),
            in_hand: 0,
            deadline_known: None,
            to_tell: Vec::new(),
            fetches: BTreeMap::new(),
            closing: false,
            finished: false,
        };
        engine.rewrite_before_start();
        if session_on_launch {
            engine.core.handle_session_start(now);
        }
        engine.write_now();
        let transport = transport.unwrap_or_else(|| Arc::new(UreqTransport::new(http)));
        Ok((
            engine,
            DriverParts {
                provider,
                transport,
            },
        ))
    }

    /// After damage the core rewrites the whole store first (D5): done here, before
    /// the app's first input, which would otherwise find its change not yet stored.
    /// Other steps handed out meanwhile are kept, in order, for the driver.
    fn rewrite_before_start(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        while self.core.is_storage_broken() {
            let Some(step) = self.core.poll_step() else {
                return;
            };
            match step {
                Step::Compact(job) => {
                    let done = StorageTask::compact(Some(Arc::clone(&store)), job).run();
                    let failed = done.feed(&mut self.core, self.clock.now());
                    self.write_now();
                    if failed {
                        // The driver tries again after the core's backoff.
                        return;
                    }
                }
                other => self.held.push_back(other),
            }
        }
    }

    /// The workspace's app id.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The current time, for the core.
    #[must_use]
    pub fn now(&self) -> Now {
        self.clock.now()
    }

    /// What the open found in the state directory: damage, loss, a new install (D5);
    /// clean for a store in memory.
    #[must_use]
    pub const fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The core, to read.
    #[must_use]
    pub const fn client(&self) -> &Client {
        &self.core
    }

    /// The store, for a driver whose writer appends off its lock.
    #[must_use]
    pub fn store(&self) -> Option<Arc<StateDir>> {
        self.store.clone()
    }

    /// The listeners and observers, to call outside the driver's lock.
    #[must_use]
    pub fn listeners(&self) -> Listeners {
        self.listeners.clone()
    }

    /// The listeners and observers, to register more.
    pub fn listeners_mut(&mut self) -> &mut Listeners {
        &mut self.listeners
    }

    /// Feeds one input to the core and writes its records before returning, so that
    /// the change is stored when the caller hears back (the app's thread does only
    /// its own append).
    ///
    /// # Errors
    /// [`Error::NotStored`] when storage failed: the change took effect and is kept
    /// in memory (D4); [`Error::ShutDown`] once closing (nothing taken).
    pub fn input<R>(&mut self, input: impl FnOnce(&mut Client, Now) -> R) -> Result<R, Error> {
        if self.closing {
            return Err(Error::ShutDown);
        }
        // One reading of the clock for the input and its append: a track is a few
        // hundred nanoseconds, and each reading costs two system clocks.
        let now = self.clock.now();
        let result = input(&mut self.core, now);
        self.write_at(now);
        match self.core.unstored() {
            Some(unstored) => Err(Error::NotStored {
                from_lsn: unstored.from_lsn,
            }),
            None => Ok(result),
        }
    }

    /// Feeds one input without writing its records: a driver with a writer of its own
    /// waits until [`Engine::stored`] says the returned lsn is stored.
    ///
    /// # Errors
    /// [`Error::ShutDown`] once closing (nothing taken).
    pub fn input_unwritten<R>(
        &mut self,
        input: impl FnOnce(&mut Client, Now) -> R,
    ) -> Result<(R, u64), Error> {
        if self.closing {
            return Err(Error::ShutDown);
        }
        let result = input(&mut self.core, self.clock.now());
        Ok((result, self.core.lsn()))
    }

    /// Whether the driver should be woken: the core has work or records for it, or
    /// its next deadline moved since the driver last looked. Most tracks bring
    /// nothing, and a wake-up costs a system call.
    pub fn has_news(&mut self) -> bool {
        self.take_events();
        let deadline = self.core.poll_timeout();
        let news = !self.to_tell.is_empty()
            || !self.held.is_empty()
            || self.core.has_output()
            || self.core.written_lsn() < self.core.lsn()
            || deadline != self.deadline_known;
        self.deadline_known = deadline;
        news
    }

    /// What an input or a result leaves for a driver's threads: a request its sender
    /// can take at once (without waking the driver's own thread to hand it over), and
    /// whether the driver's thread has anything else to do (see [`Engine::has_news`]).
    ///
    /// ```
    /// # use authsync_host::{Engine, WorkspaceOptions};
    /// # use authsync_core::Config;
    /// let options: WorkspaceOptions<()> = WorkspaceOptions::new(Config::new("app", "http://127.0.0.1:9"));
    /// let (mut engine, _) = Engine::open(options)?;
    /// engine.input(|core, now| core.handle_track(now, "e", &serde_json::json!({})))?.ok();
    /// engine.input(|core, now| core.handle_flush(now))?;
    /// let news = engine.news();
    /// assert!(news.send.is_some(), "the flushed batch, for the sender");
    /// assert!(!news.wake_driver, "nothing else to do");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn news(&mut self) -> News {
        let send = if self.core.has_output() {
            self.next_send()
        } else {
            None
        };
        News {
            send,
            wake_driver: self.has_news(),
        }
    }

    /// Takes the core's events, keeping those a listener or an observer hears: the
    /// others (an acknowledgement with no observer, say) would wake a driver's thread
    /// to tell nobody, a thread switch a request.
    fn take_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            if self.listeners.hear(&event) {
                self.to_tell.push(event);
            }
        }
    }

    /// Whether change `lsn` is stored: `Some(Ok)` when written, `Some(Err)` when
    /// storage failed before it was, `None` while its write is still to be done.
    #[must_use]
    pub fn stored(&self, lsn: u64) -> Option<Result<(), Error>> {
        if self.core.written_lsn() >= lsn {
            return Some(Ok(()));
        }
        self.core.unstored().map(|unstored| {
            Err(Error::NotStored {
                from_lsn: unstored.from_lsn,
            })
        })
    }

    /// Performs every write job due, here and now.
    pub fn write_now(&mut self) {
        self.write_at(self.clock.now());
    }

    /// Writes everything pending, confirming each write as of `now`.
    fn write_at(&mut self, now: Now) {
        let store = self.store.as_deref();
        // In place: the frames are lent, not handed out as a buffer of their own.
        while self.core.write_pending(now, |write| {
            store.map_or(Ok(()), |store| store.append_pending(write))
        }) {}
    }

    /// The next write job, for a driver whose writer runs elsewhere.
    pub fn next_write(&mut self) -> Option<WriteJob> {
        self.core.poll_write()
    }

    /// Hands a write job's result to the core.
    pub fn written(&mut self, id: authsync_core::WriteId, result: Result<(), StorageFailure>) {
        let now = self.clock.now();
        if self.core.handle_written(now, id, result).is_err() {
            log::error!("authsync: {}: a write result for no write out", self.app_id);
        }
    }

    /// The driver's next piece of work: events to tell first, then the core's steps,
    /// once any deadline that has passed is handled. `None`: wait until
    /// [`Engine::next_wake`] or until woken.
    pub fn next_work(&mut self) -> Option<Work> {
        self.wake_if_due();
        self.take_events();
        if !self.to_tell.is_empty() {
            self.in_hand += 1;
            let events = std::mem::take(&mut self.to_tell);
            return Some(Work::Tell(events, self.listeners.clone()));
        }
        let step = self.held.pop_front().or_else(|| self.core.poll_step())?;
        let work = match step {
            Step::Send(request) => Work::Send(request),
            Step::FetchToken(fetch) => {
                let request = TokenRequest::for_fetch(&fetch);
                self.fetches.insert(fetch.id, request.cancellation.clone());
                return Some(Work::FetchToken {
                    id: fetch.id,
                    request,
                });
            }
            Step::CancelFetch(id) => {
                if let Some(cancellation) = self.fetches.remove(&id) {
                    cancellation.cancel();
                }
                return Some(Work::CancelFetch(id));
            }
            Step::Sync(job) => Work::Storage(StorageTask::sync(self.store.clone(), job)),
            Step::Compact(job) => Work::Storage(StorageTask::compact(self.store.clone(), job)),
            Step::Finish { clean } => return Some(Work::Finish { clean }),
            other => {
                log::error!(
                    "authsync: {}: a step this host does not know: {other:?}",
                    self.app_id
                );
                return self.next_work();
            }
        };
        // Fetches are not counted: they end at the core's timeout, not the driver's.
        self.in_hand += 1;
        Some(work)
    }

    /// The next request, when sending one is the next step: a sender that has just
    /// handed an answer back goes on with the next request at once, without handing
    /// over to the driver's thread or task and back (two wake-ups a request, a fifth
    /// of the delivery rate on loopback). Anything else stays, in order, for
    /// [`Engine::next_work`]; events are told there, after the request has left.
    ///
    /// ```
    /// # use authsync_host::{Engine, WorkspaceOptions};
    /// # use authsync_core::Config;
    /// let options: WorkspaceOptions<()> = WorkspaceOptions::new(Config::new("app", "http://127.0.0.1:9"));
    /// let (mut engine, _) = Engine::open(options)?;
    /// assert!(engine.next_send().is_none(), "nothing tracked, nothing to send");
    /// # Ok::<(), authsync_host::StartError>(())
    /// ```
    pub fn next_send(&mut self) -> Option<Box<Request>> {
        if !self.held.is_empty() {
            return None;
        }
        self.wake_if_due();
        match self.core.poll_step()? {
            Step::Send(request) => {
                self.in_hand += 1;
                Some(request)
            }
            other => {
                self.held.push_back(other);
                None
            }
        }
    }

    /// The events of a [`Work::Tell`] were told.
    pub fn told(&mut self) {
        self.in_hand = self.in_hand.saturating_sub(1);
    }

    /// When the core next needs its timeout handled: the driver sleeps until then
    /// (or until woken, when [`Engine::has_news`] says so).
    pub fn next_wake(&mut self) -> Option<Instant> {
        self.deadline_known = self.core.poll_timeout();
        self.deadline_known
            .map(|wakeup| self.clock.instant_at(wakeup.at_mono_ms))
    }

    /// Hands the time to the core if one of its deadlines has passed; whether one had.
    fn wake_if_due(&mut self) -> bool {
        let now = self.clock.now();
        let due = self
            .core
            .poll_timeout()
            .is_some_and(|wakeup| wakeup.at_mono_ms <= now.mono_ms);
        if due {
            self.core.handle_timeout(now);
            self.write_now();
        }
        due
    }

    /// Hands a request's outcome to the core.
    pub fn answered(
        &mut self,
        id: RequestId,
        result: Result<http::Response<Bytes>, TransportFailure>,
    ) {
        self.in_hand = self.in_hand.saturating_sub(1);
        let now = self.clock.now();
        let fed = match result {
            Ok(response) => self.core.handle_response(now, id, response),
            Err(failure) => self.core.handle_transport_failure(now, id, failure),
        };
        if let Err(e) = fed {
            log::error!("authsync: {}: {e}", self.app_id);
        }
        self.write_now();
    }

    /// Hands a token provider's answer to the core (refused when the fetch ended).
    pub fn token_answer(&mut self, id: FetchId, answer: TokenAnswer) {
        self.fetches.remove(&id);
        let now = self.clock.now();
        if self.core.handle_token_answer(now, id, answer).is_err() {
            log::info!(
                "authsync: {}: a token provider answered after its fetch ended; not used",
                self.app_id
            );
        }
        self.write_now();
    }

    /// Hands a storage task's result to the core.
    pub fn storage_done(&mut self, done: StorageDone) {
        self.in_hand = self.in_hand.saturating_sub(1);
        done.feed(&mut self.core, self.clock.now());
        self.write_now();
    }

    /// Ends the workspace's use of its store ([`Step::Finish`]): records whether the
    /// run closed cleanly, and lets the directory go for another client.
    pub fn finish(&mut self, clean: bool) {
        self.finished = true;
        for cancellation in std::mem::take(&mut self.fetches).into_values() {
            cancellation.cancel();
        }
        if let Some(store) = self.store.take() {
            store.close(clean);
        }
    }

    /// Starts closing (see [`Client::handle_close`]); later inputs are refused. Once
    /// only: a second call changes nothing.
    pub fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            let now = self.clock.now();
            self.core.handle_close(now);
            self.write_now();
        }
    }

    /// Whether [`Engine::finish`] ran: the driver has ended.
    #[must_use]
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the driver holds work it was handed (a request out, events being
    /// told) and the workspace is not finished: while it does, no [`Engine::report`]
    /// can say settled, and waiters need not be woken (a wake-up per request costs
    /// a thread switch).
    #[must_use]
    pub const fn holds_work(&self) -> bool {
        self.in_hand > 0 && !self.finished
    }

    /// What is pending, and whether nothing more can be sent before `deadline` (the
    /// driver holds no work, and the core's outlook allows nothing before it).
    #[must_use]
    pub fn report(&self, deadline: Instant) -> PendingReport {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let horizon = self
            .clock
            .now()
            .mono_ms
            .saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX));
        let outlook = self.core.outlook();
        let totals = self.core.totals();
        PendingReport {
            pending_events: totals.pending(),
            in_flight: outlook.in_flight,
            // Events and steps taken from the core but not yet handed out are work
            // the core's outlook no longer sees.
            settled: self.in_hand == 0
                && self.to_tell.is_empty()
                && self.held.is_empty()
                && outlook.is_settled(horizon),
            totals,
        }
    }
}
