//! `proptest-state-machine`: random sequences of abstract inputs, run on the model and
//! the real core side by side, compared after every step, every invariant checked on
//! every state, determinism checked at the end; shrunk to a minimal sequence on failure.
//!
//! 10 500 cases in all (fixed seed, see `config`), in three configurations (see `Settings`'s presets):
//! - `small` (4 500 cases): JWT on, batches of 2, 5 pending events, lockout after 3;
//! - `default_lockout` (3 000 cases): the same with the rules document's default threshold of 10,
//!   so that the lockout is reached as specified, in the longer sequences;
//! - `jwt_disabled` (3 000 cases): no tokens; a 401 waits for the next session.

use authsync_model::alphabet::{
    AnswerChoice, Breadth, Code401, Input, Reply, TokenChoice, User, Wait,
};
use authsync_model::model::{Model, Settings};
use authsync_model::scenario::Runner;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

/// `cases` cases from a fixed seed, so that a red CI run replays exactly; set
/// `PROPTEST_RNG_SEED` to explore other sequences. Failures are shrunk and printed, and
/// kept by hand in `regressions.rs` (no persistence file).
fn config(cases: u32) -> Config {
    let default = Config::default();
    let rng_seed = if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
        default.rng_seed
    } else {
        RngSeed::Fixed(0x00a7_5eed)
    };
    Config {
        cases,
        failure_persistence: None,
        rng_seed,
        ..default
    }
}

/// A transition: an input, or "from the next step with no request in flight on, also
/// run a client restored from the journal and compare" (restore equivalence).
#[derive(Clone, Copy, Debug)]
enum Move {
    Input(Input),
    ForkRestoredTwin,
}

/// The inputs of a state, weighted so that sequences get somewhere: tracking and
/// answering the request in flight are common, each particular token choice rare.
fn weighted(model: &Model) -> Vec<(u32, Input)> {
    model
        .inputs(Breadth::Full)
        .into_iter()
        .map(|input| {
            let weight = match input {
                Input::Track => 12,
                Input::Reply(Reply::Ok) => 8,
                Input::Reply(Reply::Unauthorized(_)) => 1,
                Input::Reply(_) => 3,
                Input::Identify(_) => 2,
                Input::PassToken(_, TokenChoice::Fresh) => 3,
                Input::PassToken(..) => 1,
                Input::Flush | Input::SessionStart | Input::Logout => 3,
                Input::Wait(Wait::Short) => 3,
                Input::Wait(Wait::Long) | Input::Restart | Input::StaleReply => 1,
                Input::Answer(_, AnswerChoice::Fresh) => 4,
                Input::Answer(..) => 2,
            };
            (weight, input)
        })
        .collect()
}

fn moves(model: &Model) -> BoxedStrategy<Move> {
    let inputs: Vec<(u32, BoxedStrategy<Move>)> = weighted(model)
        .into_iter()
        .map(|(weight, input)| (weight, Just(Move::Input(input)).boxed()))
        .chain([(1, Just(Move::ForkRestoredTwin).boxed())])
        .collect();
    proptest::strategy::Union::new_weighted(inputs).boxed()
}

/// The reference state during generation: the model, told that every backoff is
/// over at once (it cannot know the jitter). The runner's own model is told the real
/// wait; where the two differ, an answer may be generated with nothing in flight, which
/// the runner plays as an answer to a request not in flight (A7).
macro_rules! reference {
    ($name:ident, $settings:expr) => {
        struct $name;

        impl ReferenceStateMachine for $name {
            type State = Model;
            type Transition = Move;

            fn init_state() -> BoxedStrategy<Model> {
                Just(Model::new($settings)).boxed()
            }

            fn transitions(state: &Model) -> BoxedStrategy<Move> {
                moves(state)
            }

            fn preconditions(state: &Model, transition: &Move) -> bool {
                // A provider answers only a fetch that runs (shrinking may drop the
                // notice that started it).
                match transition {
                    Move::Input(Input::Answer(user, _)) => {
                        state.fetching.iter().any(|f| f.user == *user)
                    }
                    _ => true,
                }
            }

            fn apply(mut state: Model, transition: &Move) -> Model {
                if let Move::Input(input) = *transition {
                    let step = state.resolve(input);
                    state.apply(step, None);
                }
                state
            }
        }

        impl StateMachineTest for $name {
            type SystemUnderTest = Runner;
            type Reference = Self;

            fn init_test(reference: &Model) -> Runner {
                Runner::new(reference.settings, true).unwrap_or_else(|f| panic!("{f}"))
            }

            fn apply(mut runner: Runner, _: &Model, transition: Move) -> Runner {
                match transition {
                    Move::Input(input) => runner.input(input).unwrap_or_else(|f| panic!("{f}")),
                    Move::ForkRestoredTwin => {
                        runner.fork_at.get_or_insert(runner.steps().len());
                    }
                }
                runner
            }

            fn teardown(runner: Runner) {
                runner.check_determinism().unwrap_or_else(|f| panic!("{f}"));
            }
        }
    };
}

reference!(SmallLimits, Settings::small());
reference!(DefaultLockout, Settings::default_lockout());
reference!(JwtDisabled, Settings::jwt_disabled());

prop_state_machine! {
    #![proptest_config(config(4_500))]

    #[test]
    fn model_and_core_agree_with_small_limits(sequential 1..48 => SmallLimits);
}

prop_state_machine! {
    #![proptest_config(config(3_000))]

    #[test]
    fn model_and_core_agree_with_the_default_lockout_threshold(sequential 1..64 => DefaultLockout);
}

prop_state_machine! {
    #![proptest_config(config(3_000))]

    #[test]
    fn model_and_core_agree_with_jwt_disabled(sequential 1..48 => JwtDisabled);
}

/// The weights name every input kind the alphabet has, so none is left out by mistake.
#[test]
fn every_input_kind_can_be_generated() {
    let mut model = Model::new(Settings::small());
    let step = model.resolve(Input::PassToken(User::U0, TokenChoice::Fresh));
    model.apply(step, None);
    let step = model.resolve(Input::Identify(User::U0));
    model.apply(step, None);
    let step = model.resolve(Input::Track);
    model.apply(step, None);
    let step = model.resolve(Input::Flush);
    model.apply(step, None);
    let inputs: Vec<Input> = weighted(&model).into_iter().map(|(_, i)| i).collect();
    assert!(inputs.contains(&Input::Reply(Reply::Unauthorized(Code401::Unlisted))));
    assert!(inputs.contains(&Input::PassToken(User::U0, TokenChoice::Again)));
    assert!(inputs.contains(&Input::StaleReply));
    assert!(inputs.contains(&Input::Restart));
}
