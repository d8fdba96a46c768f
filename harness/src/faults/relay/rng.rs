//! The seedable random numbers of the fault proxy: toxicity decisions, latency
//! jitter and slicer sizes.

use std::hash::BuildHasher;
use std::time::Duration;

/// A small, fast, seedable pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub(in crate::faults) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator seeded from the process's hash randomness and the clock.
    pub fn from_entropy() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        SplitMix64::new(std::collections::hash_map::RandomState::new().hash_one(now))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        // 24 bits: exactly representable in an f32.
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `base` plus a uniform draw in `-spread..=spread`, saturating at 0 and
    /// `u64::MAX`.
    pub fn spread(&mut self, base: u64, spread: u64) -> u64 {
        if spread == 0 {
            return base;
        }
        // In u128, so that no spread can overflow; the draw is below 2^65.
        let draw = u128::from(self.next_u64()) % (2 * u128::from(spread) + 1);
        let spread = u128::from(spread);
        let shifted = if draw >= spread {
            u128::from(base).saturating_add(draw - spread)
        } else {
            u128::from(base).saturating_sub(spread - draw)
        };
        u64::try_from(shifted).unwrap_or(u64::MAX)
    }

    /// `base` plus a uniform draw in `-spread..=spread` (whole microseconds),
    /// never below zero.
    pub fn jittered(&mut self, base: Duration, spread: Duration) -> Duration {
        let spread_us = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX);
        let base_us = u64::try_from(base.as_micros()).unwrap_or(u64::MAX);
        if spread_us == 0 {
            return base;
        }
        Duration::from_micros(self.spread(base_us, spread_us))
    }
}

/// The seed of one proxy, derived from the server's seed and the proxy's name,
/// so that proxies draw different but reproducible sequences.
pub(in crate::faults) fn proxy_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a over the name: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    SplitMix64::new(seed ^ hash).next_u64()
}
