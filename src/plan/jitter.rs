//! Where the plan's jitter comes from: any [`Jitter`]; [`SplitMix`] is a small seeded
//! generator, seeded from the OS for the agent and from a constant in tests.

/// A source of uniform random whole numbers.
pub trait Jitter {
    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64;
}

/// SplitMix64: tiny, good enough for spreading posts, and exactly repeatable from a seed.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn seeded(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// Seeded from the operating system (a fixed seed if it has none to give).
    pub fn from_os() -> SplitMix {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        SplitMix(u64::from_le_bytes(bytes))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Jitter for SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Rejection sampling: no bias towards small numbers.
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next();
            if v < zone {
                return v % n;
            }
        }
    }
}
