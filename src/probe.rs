//! Random numbers: the counter-based probe hash shared with shaders/probe.wgsl (bit for bit),
//! and a seeded generator for initialisation and data shuffling.

/// PCG hash (Jarzynski & Olano 2020), a bijection on u32; identical to `pcg_hash` in WGSL.
pub fn pcg_hash(v: u32) -> u32 {
    let s = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277_803_737);
    (w >> 22) ^ w
}

/// Which distribution a Hutchinson probe is drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeKind {
    /// ±1 with probability ½ each (the official AdaHessian probe).
    #[default]
    Rademacher,
    /// N(0, 1).
    Gaussian,
}

/// The probe key: a run's seed, the optimizer step and the sample index within the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeKey {
    /// The run's probe seed.
    pub seed: u64,
    /// The optimizer step (t, counting from 1).
    pub step: u32,
    /// The probe's index among the step's n_samples.
    pub sample: u32,
}

impl ProbeKey {
    /// The 32-bit key of (seed, step, sample).
    pub fn key(&self) -> u32 {
        let seed = pcg_hash((self.seed as u32) ^ pcg_hash((self.seed >> 32) as u32));
        pcg_hash(self.sample ^ pcg_hash(self.step ^ seed))
    }

    /// The hash of counter `c` under this key; identical to `probe_hash` in WGSL.
    ///
    /// The counter is hashed BEFORE the key enters: pcg(pcg(c) ⊕ key). Mixing the key into the
    /// counter first, pcg(c ⊕ key), would make each step's probe the same sequence read at
    /// indices c ⊕ key: two steps whose keys agree above bit log2(n) would then draw permutations
    /// of one probe. Here the counters' hashes form a pseudo-random set that no key difference
    /// maps onto itself.
    pub fn hash(&self, counter: u32) -> u32 {
        pcg_hash(pcg_hash(counter) ^ self.key())
    }

    /// z_i for a Rademacher probe (exactly what the GPU produces).
    pub fn rademacher(&self, i: u32) -> f32 {
        if self.hash(i) >> 31 == 1 {
            1.0
        } else {
            -1.0
        }
    }

    /// z_i for a Gaussian probe (Box–Muller; equal to the GPU's up to f32 rounding of log/cos).
    pub fn gaussian(&self, i: u32) -> f32 {
        let unit = |h: u32| ((h >> 8) as f64 + 1.0) / 16_777_216.0;
        let u1 = unit(self.hash(2 * i));
        let u2 = unit(self.hash(2 * i + 1));
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// The whole probe vector of length n.
    pub fn vector(&self, kind: ProbeKind, n: usize) -> Vec<f32> {
        (0..n as u32)
            .map(|i| match kind {
                ProbeKind::Rademacher => self.rademacher(i),
                ProbeKind::Gaussian => self.gaussian(i),
            })
            .collect()
    }
}

/// SplitMix64: a small, fast, well-mixed seeded generator (Steele, Lea & Flood 2014).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The internal state (to save and resume a stream exactly).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// A generator continuing from a saved [`SplitMix64::state`].
    pub fn from_state(state: u64) -> Self {
        SplitMix64 { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
