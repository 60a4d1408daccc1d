//! Determinism from a seed (DT1, U1, S3, A4).
//!
//! Every "random" value the core needs (install id, anonymous ids, backoff jitter) is a
//! pure function of the install's seed and a counter that lives in the durable state.
//! There is no generator state to persist: replaying the same records gives the same
//! values, and two installs differ because the driver seeds each from the operating
//! system on first start.

/// SplitMix64's finaliser: a bijective mix with good avalanche, enough to spread a
/// seed and a counter. Not cryptographic, and nothing here needs it to be.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Domain separation so that ids, anonymous users and jitter never draw the same value.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Install = 1,
    Anonymous = 2,
    Jitter = 3,
}

/// The `n`th value of `stream` for `seed`.
pub(crate) const fn draw(seed: u64, stream: Stream, n: u64) -> u64 {
    mix64(mix64(seed ^ mix64(stream as u64)).wrapping_add(mix64(n)))
}

/// The install id, 16 lowercase hex digits; prefix of every batch id (S3).
pub(crate) fn install_id(seed: u64) -> String {
    format!("{:016x}", draw(seed, Stream::Install, 0))
}

/// The `generation`th anonymous user id of this install (U1), 128 bits of hex so that
/// ids of different installs do not collide and successive ones are unlinkable.
pub(crate) fn anonymous_id(seed: u64, generation: u64) -> String {
    let hi = draw(seed, Stream::Anonymous, generation.wrapping_mul(2));
    let lo = draw(
        seed,
        Stream::Anonymous,
        generation.wrapping_mul(2).wrapping_add(1),
    );
    format!("anon-{hi:016x}{lo:016x}")
}

/// A uniform value in `0..=max` for backoff jitter (A4).
pub(crate) const fn jitter(seed: u64, n: u64, max: u64) -> u64 {
    let value = draw(seed, Stream::Jitter, n);
    match max.checked_add(1) {
        Some(span) => value % span,
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(install_id(7), install_id(7));
        assert_ne!(install_id(7), install_id(8));
        assert_ne!(anonymous_id(7, 0), anonymous_id(7, 1));
        assert_eq!(anonymous_id(7, 0).len(), "anon-".len() + 32);
    }

    /// D2, S3: a restored install recomputes its ids from its seed, so the function
    /// may never change between versions, or an upgraded install would resend its
    /// pending batches under new ids.
    #[test]
    fn ids_and_jitter_are_the_same_in_every_version() {
        assert_eq!(install_id(7), "1c38884845f0a5d9");
        assert_eq!(anonymous_id(7, 1), "anon-9c1c3555c4ab1ff2addec76aad42bbb9");
        assert_eq!(jitter(7, 3, 999_999), 488_166);
    }

    #[test]
    fn jitter_stays_in_range() {
        for n in 0..1_000 {
            assert!(jitter(42, n, 999) <= 999);
        }
        assert_eq!(jitter(42, 0, 0), 0);
        let _ = jitter(42, 0, u64::MAX);
    }
}
