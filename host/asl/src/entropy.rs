//! Where the interpreter's random draws come from: `States.UUID`, `States.MathRandom` without a
//! seed, JSONata's `$uuid()`, `$random()` and `$shuffle()`, and Retry's full jitter.
//!
//! Outside a [`scope`] every draw is fresh randomness. A durable driver replays an execution
//! from its input after a restart, so it opens a scope per state visit with a seed derived
//! from the execution and the visit's stable key: the draws of a visit (counted in order) are
//! then the same on every replay, and a replayed run takes the same branches and produces the
//! same outputs as the run that was recorded. (One limit: the JSONata crate evaluates the pairs
//! of an object constructor in hash order, so two draws inside one constructor may trade
//! places on a replay; draws in separate expressions or states, or in one left-to-right
//! expression, replay exactly.) This module owns only the draws; who seeds them is the
//! driver's business.

use std::cell::Cell;

thread_local! {
    /// (seed, draws so far) of the innermost open scope on this thread.
    static SCOPE: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// An open scope; dropping it restores the enclosing one.
pub struct Scope {
    prev: Option<(u64, u64)>,
}

/// Makes this thread's draws deterministic functions of `seed` until the guard is dropped.
pub fn scope(seed: u64) -> Scope {
    Scope {
        prev: SCOPE.with(|s| s.replace(Some((seed, 0)))),
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        SCOPE.with(|s| s.set(self.prev));
    }
}

/// A seed for the visit `key` of an execution whose own seed is `execution_seed`.
pub fn seed_for(execution_seed: u64, key: &str) -> u64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(execution_seed.to_le_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next 64 random bits.
pub fn next_u64() -> u64 {
    SCOPE.with(|s| match s.get() {
        Some((seed, n)) => {
            s.set(Some((seed, n + 1)));
            splitmix(seed ^ splitmix(n))
        }
        None => {
            (uuid::Uuid::new_v4().as_u128() >> 64) as u64 ^ uuid::Uuid::new_v4().as_u128() as u64
        }
    })
}

/// A uniform draw in `[0, 1)`.
pub fn next_f64() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A version-4 UUID.
pub fn uuid_v4() -> uuid::Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&next_u64().to_le_bytes());
    b[8..].copy_from_slice(&next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(b).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_repeats_its_draws_and_unscoped_draws_differ() {
        let first: Vec<u64> = {
            let _s = scope(seed_for(7, "/3.1"));
            (0..4).map(|_| next_u64()).collect()
        };
        let again: Vec<u64> = {
            let _s = scope(seed_for(7, "/3.1"));
            (0..4).map(|_| next_u64()).collect()
        };
        assert_eq!(first, again, "a replayed visit draws the same values");
        assert_ne!(first[0], first[1], "draws within a visit differ");
        let other = {
            let _s = scope(seed_for(7, "/3.2"));
            next_u64()
        };
        assert_ne!(first[0], other, "another visit draws other values");
        assert_ne!(next_u64(), next_u64());
    }

    #[test]
    fn scopes_nest_and_restore() {
        let _outer = scope(1);
        let a = next_u64();
        {
            let _inner = scope(2);
            next_u64();
        }
        let b = next_u64();
        let (x, y) = {
            let _s = scope(1);
            (next_u64(), next_u64())
        };
        assert_eq!(
            (a, b),
            (x, y),
            "the outer scope's count goes on after the inner one"
        );
        let u = uuid_v4();
        assert_eq!(u.get_version_num(), 4);
    }
}

#[cfg(test)]
mod jsonata_tests {
    use crate::env::Variables;
    use serde_json::json;

    #[test]
    fn jsonata_draws_follow_the_scope() {
        // (left to right: the crate evaluates an object constructor's pairs in hash order, so
        // two draws inside one constructor may trade places between evaluations)
        let e = crate::jsonata::compile("{'u': $uuid() & ' ' & $string($random())}").unwrap();
        let run = || {
            let _s = super::scope(42);
            crate::jsonata::eval(&e, &json!({}), &Variables::new()).unwrap()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
            "keys come out in the same order"
        );
    }
}
