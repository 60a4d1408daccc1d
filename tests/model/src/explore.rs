//! Bounded-exhaustive exploration: breadth-first over the compact alphabet from a new
//! install, visiting every reachable abstract state up to a depth, with model and core
//! compared and every invariant checked on every transition.
//!
//! States are hashed abstractly so that the space is finite and small:
//! - sequence numbers, batch keys, token serials and anonymous generations are replaced
//!   by their order of appearance (what matters is which batch is which owner's and
//!   whether a token is the rejected one, not their numbers);
//! - time is reduced to which deadlines are pending (the open batch's flush interval, a
//!   running backoff) and the backoff streak; two states that differ only in the time
//!   left on a pending deadline are one state, explored from the first one reached;
//! - totals are left out: they only count, and the invariants check them on every
//!   transition anyway.
//!
//! The core's observable state (pending count, failure counter, lockout, request in
//! flight, the reason of its next wakeup) is hashed too, so that two states the model
//! merges but the core tells apart are both explored.
//!
//! On top of the per-step checks of [`Runner`], each new state is checked for
//! determinism (its last step, applied again to its parent, gives the same actions) and,
//! when no request is in flight, for restore equivalence (a client restored from the
//! journal does nothing and holds the same state).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::alphabet::{Breadth, TokenName, User};
use crate::invariants::Violation;
use crate::model::{Model, Party, Settings};
use crate::scenario::{Failure, Fault, Runner};
use crate::sim::state_of;

/// The depth CI explores: runs in seconds in a debug build.
pub const CI_DEPTH: usize = 6;

/// The depth the documented full run explores (`AUTHSYNC_EXPLORE_DEPTH=10`).
pub const FULL_DEPTH: usize = 10;

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct ExploreReport {
    /// The configuration explored.
    pub settings: Settings,
    /// How deep it went.
    pub depth: usize,
    /// Distinct abstract states visited, the initial one included.
    pub states: usize,
    /// New states first reached at each depth, from depth 1.
    pub states_per_depth: Vec<usize>,
    /// Transitions taken (each one a step of model and core, compared and checked).
    pub transitions: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The first failure, with the steps that led to it.
    pub failure: Option<Failure>,
}

impl std::fmt::Display for ExploreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "depth {}: {} states ({:?} new per depth), {} transitions, {:.1} s",
            self.depth,
            self.states,
            self.states_per_depth,
            self.transitions,
            self.elapsed.as_secs_f64()
        )?;
        if let Some(failure) = &self.failure {
            write!(f, "\nFAILED: {failure}")?;
        }
        Ok(())
    }
}

/// Explores every abstract state reachable within `depth` steps of a new install
/// under `settings`.
#[must_use]
pub fn explore(settings: Settings, depth: usize) -> ExploreReport {
    let started = Instant::now();
    let mut report = ExploreReport {
        settings,
        depth,
        states: 0,
        states_per_depth: Vec::new(),
        transitions: 0,
        elapsed: Duration::ZERO,
        failure: None,
    };
    let root = match Runner::new(settings, false) {
        Ok(root) => root,
        Err(failure) => {
            report.failure = Some(failure);
            return report;
        }
    };
    let mut seen = HashSet::new();
    seen.insert(abstract_state(&root));
    report.states = 1;
    let mut frontier = vec![root];
    for _ in 0..depth {
        let mut next = Vec::new();
        for parent in &frontier {
            for input in parent.model.inputs(Breadth::Compact) {
                report.transitions += 1;
                let mut child = parent.clone();
                let checked = child
                    .input(input)
                    .and_then(|()| check_new_state(parent, &child, &mut seen));
                match checked {
                    Ok(true) => next.push(child),
                    Ok(false) => {}
                    Err(failure) => {
                        report.failure = Some(failure);
                        report.elapsed = started.elapsed();
                        return report;
                    }
                }
            }
        }
        report.states += next.len();
        report.states_per_depth.push(next.len());
        frontier = next;
    }
    report.elapsed = started.elapsed();
    report
}

/// Whether `child` is a state not seen before; for a new one, the determinism and
/// restore checks.
fn check_new_state(
    parent: &Runner,
    child: &Runner,
    seen: &mut HashSet<u64>,
) -> Result<bool, Failure> {
    if !seen.insert(abstract_state(child)) {
        return Ok(false);
    }
    let fail = |violation| Failure {
        settings: child.model.settings,
        steps: child.steps().to_vec(),
        fault: Box::new(Fault::Violation(violation)),
    };
    let Some(&step) = child.steps().last() else {
        return Ok(true);
    };
    let mut again = parent.sim.clone();
    let mut first = parent.sim.clone();
    if again.apply(step).actions != first.apply(step).actions {
        return Err(fail(Violation::Nondeterministic {
            at: parent.steps().len(),
        }));
    }
    if child.sim.in_flight().is_none() && !child.sim.fetching() {
        let (twin, actions) = child
            .sim
            .restored_twin()
            .map_err(|detail| fail(Violation::RestoreChangedBehaviour { detail }))?;
        if !actions.is_empty() || state_of(twin.client()) != state_of(child.sim.client()) {
            return Err(fail(Violation::RestoreChangedBehaviour {
                detail: format!("restored at an idle state, the client did {actions:?}"),
            }));
        }
    }
    Ok(true)
}

/// Numbers things by their order of first appearance.
#[derive(Default)]
struct Canon<T> {
    seen: Vec<T>,
}

impl<T: PartialEq + Copy> Canon<T> {
    fn of(&mut self, item: T) -> usize {
        match self.seen.iter().position(|s| *s == item) {
            Some(i) => i,
            None => {
                self.seen.push(item);
                self.seen.len() - 1
            }
        }
    }
}

/// The hash of a state with numbers and time abstracted (see the module docs).
#[must_use]
pub fn abstract_state(runner: &Runner) -> u64 {
    let model: &Model = &runner.model;
    let mut anonymous = Canon::default();
    let mut party = |p: Party| match p {
        Party::User(user) => (user.index(), 0),
        Party::Anonymous(generation) => (3, anonymous.of(generation)),
    };
    let mut tokens: [Canon<u32>; 3] = Default::default();
    let mut token = |t: TokenName| {
        (
            t.user.index(),
            tokens[t.user.index()].of(t.serial),
            t.expired,
        )
    };

    let mut h = DefaultHasher::new();
    party(model.current).hash(&mut h);
    model
        .open
        .as_ref()
        .map(|o| (party(o.owner), o.seqs.len()))
        .hash(&mut h);
    for batch in &model.queue {
        let in_flight = model.in_flight.is_some_and(|f| f.batch == batch.key);
        (
            party(batch.owner),
            batch.seqs.len(),
            batch.attempted,
            in_flight,
        )
            .hash(&mut h);
    }
    model
        .in_flight
        .and_then(|f| f.token)
        .map(&mut token)
        .hash(&mut h);
    for user in User::ALL {
        model.tokens[user.index()]
            .map(|r| {
                (
                    token(r.newest),
                    r.rejected.map(&mut token),
                    r.expiry_noticed,
                )
            })
            .hash(&mut h);
    }
    let mut waiting: Vec<_> = model
        .waiting_for_session
        .iter()
        .map(|p| party(*p))
        .collect();
    waiting.sort_unstable();
    waiting.hash(&mut h);
    let mut logged_out = model.logged_out.clone();
    logged_out.sort_unstable();
    let mut told = model.noticed_no_token.clone();
    told.sort_unstable();
    (
        logged_out,
        told,
        model.auth_failures,
        model.backoff_streak,
        model.backoff_until.is_some(),
    )
        .hash(&mut h);

    let client = runner.sim.client();
    (
        client.totals().pending(),
        client.auth_failures(),
        client.is_locked_out(),
        client.outlook().in_flight,
        client.poll_timeout().map(|w| w.reason.to_string()),
    )
        .hash(&mut h);
    h.finish()
}
