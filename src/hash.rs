//! The stable hash: the same in every process (unlike std's `RandomState`), for what must not
//! move between runs or replicas — a job's jitter ([`crate::schedule`]), a job's shard
//! ([`crate::shard`]), a plan's fingerprints ([`crate::app`]), a log line's identity.
//!
//! Owns the hash only; what is hashed, and what a value means, is the callers'.

use std::hash::{Hash, Hasher};

/// FNV-1a with a final mix: a hash that is the same in every process, unlike std's
/// `RandomState`, with its bits well spread (plain FNV is weak for keys that differ little).
pub fn stable_hash(s: &str) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    s.hash(&mut h);
    mix64(h.0)
}

/// The splitmix64 finaliser: a cheap bijection that spreads every input bit over the output.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_same_in_every_process() {
        // Fixed figures: a change moves every job's jitter and shard.
        assert_eq!(stable_hash("checkout"), 0x57ae_0e06_bd3c_92e4);
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
        assert_ne!(stable_hash("a#0"), stable_hash("a#1"));
    }
}
