//! A tiny seeded PRNG (SplitMix64) for fault injection.
//!
//! Enough randomness to drop frames at a rate, reproducibly from a seed; deliberately not
//! cryptographic and not `rand`, so that the HAL has no dependency for twenty lines.

/// SplitMix64 (Steele, Lea, Flood 2014): one `u64` of state, full period, good enough mixing.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `permille`/1000 (0 never, 1000 always).
    pub fn chance_permille(&mut self, permille: u16) -> bool {
        self.next_u64() % 1000 < u64::from(permille)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_rate_is_roughly_right() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let hits = (0..10_000).filter(|_| a.chance_permille(100)).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!(!SplitMix64::new(1).chance_permille(0));
        assert!(SplitMix64::new(1).chance_permille(1000));
    }
}
