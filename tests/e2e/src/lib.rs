//! End-to-end suites for the authsync drivers: every rule group of the rules document exercised
//! through a driver, over real HTTP, against the reference server.
//!
//! One suite, several drivers: each test is a generic function over [`Driver`], and
//! [`suite!`] instantiates all of them for a driver type, so the blocking and the async
//! driver are held to the same behaviour.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod async_smol;
pub mod blocking;
pub mod driver;
pub mod env;
pub mod suites;

pub use driver::{Driver, Options, Recorder};

/// Instantiates every suite of [`suites`] as a `#[test]` for a [`Driver`] type.
#[macro_export]
macro_rules! suite {
    ($driver:ty) => {
        $crate::suite!(@tests $driver;
            u1_s1_anonymous_events_arrive_once_in_order,
            s4_t2_identified_batches_carry_the_newest_token,
            s5_r2_a_missing_token_is_asked_of_the_provider_once,
            a2_a_rejected_token_is_told_once_and_a_new_token_unblocks,
            a2_r2_an_expired_token_is_refreshed_through_the_provider,
            r1_an_expiring_token_is_refreshed_ahead,
            a3_lockout_after_the_maximum_failures_until_the_next_session,
            a4_transient_faults_are_retried_and_delivered_exactly_once,
            a5_too_large_batches_are_split_until_they_fit,
            a6_a_permanent_refusal_drops_with_its_reason,
            l1_logout_still_sends_the_old_users_data_with_their_token,
            l2_a_401_after_logout_purges_the_old_users_data,
            d2_a_restart_delivers_pending_data_once,
            d2_a_restart_keeps_tokens_and_totals,
            d2_a_state_directory_in_use_is_refused,
            w1_two_workspaces_side_by_side,
            ls1_a_panicking_listener_does_not_stop_the_driver,
            v1_misuse_in_test_is_an_error_and_in_live_is_ignored
        );
    };
    (@tests $driver:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suites::$name::<$driver>();
            }
        )*
    };
}
