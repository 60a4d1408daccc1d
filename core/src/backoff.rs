//! Exponential backoff with full jitter (A4).
//!
//! The wait after the `streak`th consecutive transient failure is uniform in
//! `0..=min(cap, base * 2^(streak-1))`, drawn from the seed, and never shorter than a
//! server's `Retry-After`. Pure arithmetic: the client decides when to back off.

use crate::seeded;

/// The wait in milliseconds before the next attempt.
pub(crate) fn delay_ms(
    seed: u64,
    draw: u64,
    streak: u32,
    base_ms: u64,
    cap_ms: u64,
    retry_after_ms: Option<u64>,
) -> u64 {
    let doublings = streak.saturating_sub(1).min(63);
    let ceiling = base_ms.saturating_mul(1u64 << doublings).min(cap_ms);
    let jittered = seeded::jitter(seed, draw, ceiling);
    jittered.max(retry_after_ms.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a4_ceiling_doubles_up_to_the_cap() {
        for draw in 0..200 {
            assert!(delay_ms(1, draw, 1, 1_000, 300_000, None) <= 1_000);
            assert!(delay_ms(1, draw, 3, 1_000, 300_000, None) <= 4_000);
            assert!(delay_ms(1, draw, 40, 1_000, 300_000, None) <= 300_000);
            // Extreme inputs saturate instead of overflowing.
            let _ = delay_ms(1, draw, u32::MAX, u64::MAX, u64::MAX, None);
        }
        let spread: std::collections::BTreeSet<u64> = (0..200)
            .map(|draw| delay_ms(1, draw, 9, 1_000, 300_000, None) / 10_000)
            .collect();
        assert!(spread.len() > 10, "full jitter spreads waits: {spread:?}");
    }

    #[test]
    fn a4_retry_after_is_a_floor() {
        for draw in 0..50 {
            assert!(delay_ms(1, draw, 1, 1_000, 300_000, Some(30_000)) == 30_000);
        }
    }
}
