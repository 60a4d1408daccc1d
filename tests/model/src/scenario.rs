//! Model and core side by side: [`Runner`] applies each step to both, compares what
//! the user sees and the state after it, and checks the invariants; [`run_scenario`]
//! draws a whole run from fuzz bytes.
//!
//! Restore equivalence is checked with a twin: at the first step at or after
//! [`Runner::fork_at`] with no request in flight, a second driver restores a client from
//! the first one's snapshot and journal, and from then on both get every step and must
//! do the same thing, byte for byte, up to request ids (which are process-local by
//! design). Steps with a request in flight are not fork points, because a restored
//! client re-decides what to send (it abandons the request of the dead process);
//! that case is covered by the [`crate::alphabet::Input::Restart`] input, whose effect
//! the model predicts.

use arbitrary::Unstructured;
use authsync_core::RequestId;

use crate::sim::{Action, state_of};

use crate::alphabet::{Breadth, Input, Step};
use crate::invariants::{Ledger, Violation};
use crate::model::{Expected, Model, Settings};
use crate::observe::{Correspondence, observe};
use crate::sim::{CallResult, Sim};

/// Most steps [`run_scenario`] takes: `Unstructured` keeps returning defaults once its
/// bytes run out, so the loop needs a bound of its own.
pub const MAX_STEPS: usize = 64;

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The model and the core disagree.
    Disagreement(String),
    /// An invariant is broken.
    Violation(Violation),
}

/// A failed run: where, what, and the steps that led there (a regression test
/// replays them with [`Runner::run_steps`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The configuration.
    pub settings: Settings,
    /// Every step up to and including the failing one.
    pub steps: Vec<Step>,
    /// What went wrong (boxed: a failure is rare and large).
    pub fault: Box<Fault>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.fault.as_ref() {
            Fault::Disagreement(what) => write!(f, "model and core disagree: {what}")?,
            Fault::Violation(violation) => write!(f, "invariant broken: {violation}")?,
        }
        write!(
            f,
            "\n  settings: {:?}\n  steps ({}):",
            self.settings,
            self.steps.len()
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            write!(f, "\n    {i:>2}: {step:?}")?;
        }
        Ok(())
    }
}

/// The restored twin of a run (see the module docs).
#[derive(Clone, Debug)]
struct Twin {
    sim: Sim,
    forked_at: usize,
}

/// The model and the core, run side by side.
#[derive(Clone, Debug)]
pub struct Runner {
    /// The reference model.
    pub model: Model,
    /// The simulated driver of the real client.
    pub sim: Sim,
    ledger: Ledger,
    names: Correspondence,
    steps: Vec<Step>,
    /// Fork a restored twin at the first idle step at or after this index.
    pub fork_at: Option<usize>,
    twin: Option<Twin>,
}

impl Runner {
    /// A new install under `settings`; `keep_log` keeps every action for the
    /// determinism check.
    ///
    /// # Errors
    /// A [`Failure`] when the core refuses the configuration or starts unlike the model.
    pub fn new(settings: Settings, keep_log: bool) -> Result<Self, Failure> {
        let fail = |fault| Failure {
            settings,
            steps: Vec::new(),
            fault: Box::new(fault),
        };
        let sim = Sim::new(&settings, keep_log).map_err(|e| fail(Fault::Disagreement(e)))?;
        let model = Model::new(settings);
        let mut names = Correspondence::default();
        if !names.bind_owner(&model.current, sim.client().current_user()) {
            return Err(fail(Fault::Disagreement(
                "a new client's current user is not anonymous (U1)".to_owned(),
            )));
        }
        Ok(Self {
            model,
            sim,
            ledger: Ledger::new(settings.jwt),
            names,
            steps: Vec::new(),
            fork_at: None,
            twin: None,
        })
    }

    /// Runs `steps` from a new install, checking everything after each, and the
    /// determinism of the whole run at the end.
    ///
    /// # Errors
    /// The first [`Failure`].
    pub fn run_steps(
        settings: Settings,
        steps: &[Step],
        fork_at: Option<usize>,
    ) -> Result<Self, Failure> {
        let mut runner = Self::new(settings, true)?;
        runner.fork_at = fork_at;
        for &step in steps {
            runner.step(step)?;
        }
        runner.check_determinism()?;
        Ok(runner)
    }

    /// The steps taken so far.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Resolves an abstract input with the model and takes the step.
    ///
    /// # Errors
    /// A [`Failure`] on any disagreement or broken invariant.
    pub fn input(&mut self, input: Input) -> Result<(), Failure> {
        // The generator's model may still see a fetch this one ended (a backoff it
        // could not know): an answer to no fetch is no input at all.
        if let Input::Answer(user, _) = input
            && !self.model.fetching.iter().any(|f| f.user == user)
        {
            return Ok(());
        }
        let step = self.model.resolve(input);
        self.step(step)
    }

    /// Takes one step on both sides and compares.
    ///
    /// # Errors
    /// A [`Failure`] on any disagreement or broken invariant.
    pub fn step(&mut self, step: Step) -> Result<(), Failure> {
        self.steps.push(step);
        self.compare_step(step).map_err(|fault| Failure {
            settings: self.model.settings,
            steps: self.steps.clone(),
            fault: Box::new(fault),
        })
    }

    fn compare_step(&mut self, step: Step) -> Result<(), Fault> {
        let report = self.sim.apply(step);
        self.ledger
            .check(step, &report, self.sim.client())
            .map_err(Fault::Violation)?;
        let prediction = self.model.apply(step, report.announced_backoff_ms);
        let disagree = |what: String| Err(Fault::Disagreement(what));

        let returned_as_predicted = match (prediction.expected, &report.result) {
            (Expected::Nothing, CallResult::Nothing)
            | (Expected::NotInFlight, CallResult::NotInFlight) => true,
            (Expected::Tracked(seq), CallResult::Tracked(got)) => seq == *got,
            (Expected::Outcome(outcome), CallResult::Outcome(got)) => outcome == *got,
            _ => false,
        };
        if !returned_as_predicted {
            return disagree(format!(
                "the call returned {:?}, the model expected {:?}",
                report.result, prediction.expected
            ));
        }
        if let Some((shortest, longest)) = prediction.backoff_bounds {
            let wait = report.announced_backoff_ms.unwrap_or(0);
            if !(shortest..=longest).contains(&wait) {
                return disagree(format!(
                    "A4: the core waits {wait} ms (0: retried at once), the rules allow {shortest}..={longest} ms"
                ));
            }
        }
        let mut observed = Vec::new();
        for action in &report.actions {
            match observe(action) {
                Ok(Some(happening)) => observed.push(happening),
                Ok(None) => {}
                Err(unreadable) => return disagree(unreadable.to_string()),
            }
        }
        self.names
            .reconcile(&prediction.happenings, &observed)
            .or_else(disagree)?;
        self.compare_state()?;
        self.step_twin(step, &report.actions)?;
        Ok(())
    }

    /// What the getters say must be what the model holds.
    fn compare_state(&mut self) -> Result<(), Fault> {
        let client = self.sim.client();
        let model = &self.model;
        let totals = client.totals();
        let core = (
            totals.tracked,
            totals.acked,
            totals.dropped,
            totals.pending(),
            client.is_locked_out(),
            client.auth_failures(),
            client.outlook().in_flight,
        );
        let predicted = (
            model.tracked,
            model.acked,
            model.dropped,
            model.pending(),
            model.locked_out(),
            model.auth_failures,
            model.in_flight.is_some(),
        );
        if core != predicted {
            return Err(Fault::Disagreement(format!(
                "state (tracked, acked, dropped, pending, locked out, auth failures, in flight): core {core:?}, model {predicted:?}"
            )));
        }
        let wakeup = client
            .poll_timeout()
            .map(|w| (Sim::elapsed_at(w.at_mono_ms), w.reason));
        if wakeup != model.next_wakeup() {
            return Err(Fault::Disagreement(format!(
                "DT2: the core wants waking at {wakeup:?} (ms since the start), the model at {:?}",
                model.next_wakeup()
            )));
        }
        if !self.names.bind_owner(&model.current, client.current_user()) {
            return Err(Fault::Disagreement(format!(
                "current user: core {}, model {:?}",
                client.current_user(),
                model.current
            )));
        }
        Ok(())
    }

    /// Forks the twin when due, or gives it the step and compares.
    fn step_twin(&mut self, step: Step, actions: &[Action]) -> Result<(), Fault> {
        let changed =
            |detail: String| Fault::Violation(Violation::RestoreChangedBehaviour { detail });
        let index = self.steps.len();
        if let Some(twin) = &mut self.twin {
            let report = twin.sim.apply(step);
            if without_request_ids(&report.actions) != without_request_ids(actions) {
                return Err(changed(format!(
                    "after the fork at step {}, step {} gave {:?}, the original {:?}",
                    twin.forked_at,
                    index - 1,
                    report.actions,
                    actions
                )));
            }
            if state_of(twin.sim.client()) != state_of(self.sim.client()) {
                return Err(changed(format!(
                    "the durable states differ after step {}",
                    index - 1
                )));
            }
        } else if self.fork_at.is_some_and(|at| index > at)
            && self.sim.in_flight().is_none()
            && !self.sim.fetching()
        {
            let (sim, first_actions) = self.sim.restored_twin().map_err(changed)?;
            if !first_actions.is_empty() {
                return Err(changed(format!(
                    "restored at idle step {}, the client did {first_actions:?}",
                    index - 1
                )));
            }
            if state_of(sim.client()) != state_of(self.sim.client()) {
                return Err(changed(format!(
                    "the state restored at step {} differs",
                    index - 1
                )));
            }
            self.twin = Some(Twin {
                sim,
                forked_at: index - 1,
            });
        }
        Ok(())
    }

    /// DT1: a fresh run of the same steps gives byte-identical actions.
    ///
    /// # Errors
    /// A [`Failure`] naming the first differing action.
    pub fn check_determinism(&self) -> Result<(), Failure> {
        let fail = |fault| Failure {
            settings: self.model.settings,
            steps: self.steps.clone(),
            fault: Box::new(fault),
        };
        let mut replay =
            Sim::new(&self.model.settings, true).map_err(|e| fail(Fault::Disagreement(e)))?;
        for &step in &self.steps {
            replay.apply(step);
        }
        let (first, second) = (self.sim.log(), replay.log());
        match first.iter().zip(second).position(|(a, b)| a != b) {
            Some(at) => Err(fail(Fault::Violation(Violation::Nondeterministic { at }))),
            None if first.len() != second.len() => {
                Err(fail(Fault::Violation(Violation::Nondeterministic {
                    at: first.len().min(second.len()),
                })))
            }
            None => Ok(()),
        }
    }
}

/// The actions with every request id set to 0 (ids are process-local handles, so a
/// restored client numbers its requests afresh), without compactions (a restored
/// client writes to a segment of its own, and compacts on its own schedule).
fn without_request_ids(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|action| !matches!(action, Action::Compacted(_)))
        .cloned()
        .map(|action| match action {
            Action::Send(mut request) => {
                request.id = RequestId(0);
                Action::Send(request)
            }
            other => other,
        })
        .collect()
}

/// The configurations a fuzz run starts from, chosen by its first byte.
pub const SCENARIO_SETTINGS: [Settings; 3] = [
    Settings::small(),
    Settings::default_lockout(),
    Settings::jwt_disabled(),
];

/// Runs one scenario drawn from `data`: the configuration, the fork point of the
/// restore twin, then each step chosen among the inputs that make sense in the model's
/// state, until the bytes run out or after [`MAX_STEPS`] steps. Then the whole run is
/// replayed for determinism.
///
/// This is the fuzz crate's `sequence` target, and its corpus replays through it in
/// `cargo test`.
///
/// # Panics
/// With the failure, its configuration and the steps that led to it, when the model and
/// the core disagree or an invariant is broken.
pub fn run_scenario(data: &[u8]) {
    if let Err(failure) = try_scenario(data) {
        panic!("{failure}");
    }
}

/// [`run_scenario`] without the panic.
///
/// # Errors
/// The [`Failure`] that [`run_scenario`] panics with.
pub fn try_scenario(data: &[u8]) -> Result<Runner, Failure> {
    let mut bytes = Unstructured::new(data);
    let settings = bytes
        .choose(&SCENARIO_SETTINGS)
        .copied()
        .unwrap_or(SCENARIO_SETTINGS[0]);
    let fork_at = bytes.int_in_range(0..=MAX_STEPS).unwrap_or(MAX_STEPS);
    let mut runner = Runner::new(settings, true)?;
    runner.fork_at = Some(fork_at);
    for _ in 0..MAX_STEPS {
        if bytes.is_empty() {
            break;
        }
        let inputs = runner.model.inputs(Breadth::Full);
        let Ok(&input) = bytes.choose(&inputs) else {
            break;
        };
        runner.input(input)?;
    }
    runner.check_determinism()?;
    Ok(runner)
}
