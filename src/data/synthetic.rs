//! Seeded 2-D toy data sets in the style of TensorFlow Playground, for the command line and the
//! browser playground: points in [-6, 6]² in two classes (circle, xor, gauss, spiral, moons) or
//! more (a 3-arm spiral, 4 blobs), with Gaussian noise of std `noise`.

use super::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::probe::SplitMix64;

/// The 2-D data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthetic {
    /// Inside vs outside a circle of radius 2.5.
    Circle,
    /// The sign of x·y (the XOR pattern).
    Xor,
    /// Two Gaussian blobs at (2, 2) and (−2, −2).
    Gauss,
    /// Two interleaved spirals.
    Spiral,
    /// Two interleaving half moons.
    Moons,
    /// Three interleaved spiral arms, three classes.
    Spiral3,
    /// Four Gaussian blobs at (±3, ±3), four classes.
    Blobs4,
}

impl Synthetic {
    /// Every data set.
    pub const ALL: [Synthetic; 7] = [
        Synthetic::Circle,
        Synthetic::Xor,
        Synthetic::Gauss,
        Synthetic::Spiral,
        Synthetic::Moons,
        Synthetic::Spiral3,
        Synthetic::Blobs4,
    ];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Synthetic::Circle => "circle",
            Synthetic::Xor => "xor",
            Synthetic::Gauss => "gauss",
            Synthetic::Spiral => "spiral",
            Synthetic::Moons => "moons",
            Synthetic::Spiral3 => "spiral3",
            Synthetic::Blobs4 => "blobs4",
        }
    }

    /// How many classes its points fall in.
    pub fn classes(self) -> u32 {
        match self {
            Synthetic::Spiral3 => 3,
            Synthetic::Blobs4 => 4,
            _ => 2,
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Synthetic> {
        Synthetic::ALL.into_iter().find(|s| s.name() == name.to_ascii_lowercase())
    }

    /// The most points a synthetic set may have (10 M points are 80 MB of f32 inputs).
    pub const MAX_SAMPLES: usize = 10_000_000;

    /// `samples` points (classes in turn, so each has an equal share), reproducible from `seed`.
    pub fn generate(self, samples: usize, noise: f64, seed: u64) -> Result<Dataset> {
        if samples < 2 {
            return Err(Error::Config(format!("--samples {samples}: need at least 2 points")));
        }
        if samples > Self::MAX_SAMPLES {
            return Err(Error::Config(format!(
                "--samples {samples}: at most {} points for a synthetic 2-D set (more only repeats the same distribution)",
                Self::MAX_SAMPLES
            )));
        }
        if !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::Config(format!("--noise {noise}: must be a finite number ≥ 0")));
        }
        let mut rng = SplitMix64::new(seed ^ 0x2D_DA7A);
        let mut x = Vec::with_capacity(2 * samples);
        let mut labels = Vec::with_capacity(samples);
        for i in 0..samples {
            let class = (i % self.classes() as usize) as u32;
            let u = |rng: &mut SplitMix64, lo: f64, hi: f64| lo + (hi - lo) * rng.next_f64();
            let (px, py) = match self {
                Synthetic::Circle => {
                    let r = if class == 0 { u(&mut rng, 0.0, 2.0) } else { u(&mut rng, 3.2, 5.0) };
                    let a = u(&mut rng, 0.0, std::f64::consts::TAU);
                    (r * a.cos(), r * a.sin())
                }
                Synthetic::Xor => {
                    let (mut a, mut b) = (u(&mut rng, 0.3, 5.0), u(&mut rng, 0.3, 5.0));
                    if rng.next_f64() < 0.5 {
                        a = -a;
                        if class == 0 {
                            b = -b;
                        }
                    } else if class == 1 {
                        b = -b;
                    }
                    (a, b)
                }
                Synthetic::Gauss => {
                    let c = if class == 0 { 2.0 } else { -2.0 };
                    (c + rng.normal(), c + rng.normal())
                }
                Synthetic::Spiral => {
                    let t = u(&mut rng, 0.0, 1.0);
                    let r = 5.0 * t;
                    let a = 1.75 * std::f64::consts::TAU * t + class as f64 * std::f64::consts::PI;
                    (r * a.sin(), r * a.cos())
                }
                Synthetic::Moons => {
                    let a = u(&mut rng, 0.0, std::f64::consts::PI);
                    if class == 0 {
                        (3.0 * a.cos() - 1.5, 3.0 * a.sin() - 0.75)
                    } else {
                        (3.0 * (1.0 - a.cos()) - 1.5, 1.5 - 3.0 * a.sin() - 0.75)
                    }
                }
                Synthetic::Spiral3 => {
                    let t = u(&mut rng, 0.05, 1.0);
                    let r = 5.0 * t;
                    let a = 1.25 * std::f64::consts::TAU * t + class as f64 * std::f64::consts::TAU / 3.0;
                    (r * a.sin(), r * a.cos())
                }
                Synthetic::Blobs4 => {
                    let (sx, sy) = [(3.0, 3.0), (-3.0, 3.0), (-3.0, -3.0), (3.0, -3.0)][class as usize];
                    (sx + rng.normal(), sy + rng.normal())
                }
            };
            x.push((px + noise * rng.normal()) as f32);
            x.push((py + noise * rng.normal()) as f32);
            labels.push(class);
        }
        Dataset::new(x, 2, Targets::Classes { labels, classes: self.classes() as usize })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_has_its_classes_in_equal_shares_and_is_reproducible() {
        for kind in Synthetic::ALL {
            let ds = kind.generate(120, 0.1, 5).unwrap();
            let Targets::Classes { labels, classes } = &ds.targets else {
                panic!("{} is a classification set", kind.name())
            };
            assert_eq!(*classes, kind.classes() as usize, "{}", kind.name());
            for c in 0..kind.classes() {
                assert_eq!(
                    labels.iter().filter(|&&l| l == c).count(),
                    120 / kind.classes() as usize,
                    "{}",
                    kind.name()
                );
            }
            assert!(ds.x.iter().all(|v| v.is_finite() && v.abs() < 9.0), "{} stays in the window", kind.name());
            assert_eq!(ds.x, kind.generate(120, 0.1, 5).unwrap().x, "{} is reproducible", kind.name());
            assert_eq!(Synthetic::parse(kind.name()), Some(kind));
        }
    }
}
