//! What every optimizer provides, in one trait: the seam between a method's own file
//! (`src/optim/<name>.rs`: its config with published defaults, validation, settings, uniforms,
//! state size, curvature needs, WGSL entry point and f64 reference) and the driver in `mod.rs`,
//! which knows nothing of any particular method.
//!
//! Adding a method: write `src/optim/<name>.rs` implementing [`Method`], its WGSL in
//! `shaders/optim/<name>.wgsl`, its tests, and one line in the `methods!` list of `registry.rs`.

use super::reference::State;
use crate::error::{Error, Result};
use crate::nn::Resolved;
use crate::optim::meta::StepMeta;
use crate::probe::ProbeKind;

/// How a method turns probes into its curvature estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimate {
    /// D = |mean_s z_s ⊙ Hz_s|, then the method's averaging groups (AdaHessian).
    AbsMean,
    /// ĥ = mean_s z_s ⊙ Hz_s, signed (Sophia-H).
    SignedMean,
}

/// What a curvature method asks of the probe / Hz machinery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvatureUse {
    /// A new estimate at steps t with (t − 1) mod update_each = 0.
    pub update_each: u32,
    /// Probes averaged per estimate.
    pub n_samples: u32,
    /// Probe distribution.
    pub probe: ProbeKind,
    /// Seed of the probes.
    pub seed: u64,
    /// How the probes' z ⊙ Hz become the estimate.
    pub estimate: Estimate,
}

impl CurvatureUse {
    /// Whether step `t` (from 1) computes a new estimate.
    pub fn is_curvature_step(&self, t: u64) -> bool {
        (t - 1).is_multiple_of(self.update_each as u64)
    }
}

/// A setting whose value is one of a few names (a probe distribution, a rule variant).
pub trait Choice {
    /// The current value's name.
    fn get(&self) -> &'static str;
    /// Sets from a name; the error lists the names.
    fn set(&mut self, value: &str) -> Result<()>;
}

impl Choice for ProbeKind {
    fn get(&self) -> &'static str {
        match self {
            ProbeKind::Rademacher => "rademacher",
            ProbeKind::Gaussian => "gaussian",
        }
    }
    fn set(&mut self, value: &str) -> Result<()> {
        *self = match value {
            "rademacher" => ProbeKind::Rademacher,
            "gaussian" => ProbeKind::Gaussian,
            other => return Err(Error::Config(format!("probe = {other}: use rademacher or gaussian"))),
        };
        Ok(())
    }
}

/// A mutable view of one hyper-parameter, so that setting by name, printing and JSON are
/// written once for every method.
pub enum Field<'a> {
    /// A real number.
    F32(&'a mut f32),
    /// A count.
    U32(&'a mut u32),
    /// A seed.
    U64(&'a mut u64),
    /// A switch.
    Bool(&'a mut bool),
    /// An optional positive number ("none" or "off" unsets it).
    OptF32(&'a mut Option<f32>),
    /// One of a few names.
    Choice(&'a mut dyn Choice),
}

impl Field<'_> {
    /// Sets the field from text; the error names the key and the expected form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |what: &str| Error::Config(format!("{key} = '{value}' is not {what}"));
        let v = value.trim();
        match self {
            Field::F32(f) => **f = v.parse().map_err(|_| bad("a number"))?,
            Field::U32(f) => **f = v.parse().map_err(|_| bad("a whole number ≥ 0"))?,
            Field::U64(f) => **f = v.parse().map_err(|_| bad("a whole number ≥ 0"))?,
            Field::Bool(f) => {
                **f = match v {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(bad("true or false")),
                }
            }
            Field::OptF32(f) => {
                **f = match v {
                    "none" | "off" => None,
                    _ => Some(v.parse().map_err(|_| bad("a number or 'none'"))?),
                }
            }
            Field::Choice(c) => c.set(v)?,
        }
        Ok(())
    }

    /// The value as JSON.
    pub fn json(&self) -> serde_json::Value {
        match self {
            // the shortest decimal that reads back as the same f32 (0.15, not 0.15000000596...)
            Field::F32(f) => serde_json::json!(short(**f)),
            Field::U32(f) => serde_json::json!(**f),
            Field::U64(f) => serde_json::json!(**f),
            Field::Bool(f) => serde_json::json!(**f),
            Field::OptF32(f) => serde_json::json!(f.map(short)),
            Field::Choice(c) => serde_json::json!(c.get()),
        }
    }
}

fn short(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

/// One optimizer. Implemented by each method's config type; the driver (`Optimizer`), the
/// name parser, the command line, the web facade and the compare report use only this.
pub trait Method: std::fmt::Debug {
    /// The name this configuration reports (AdamW says "adamw").
    fn name(&self) -> &'static str;
    /// One line for `--help` and the demo: the rule and its source.
    fn summary(&self) -> &'static str;
    /// Every hyper-parameter by name, lr first. Names are the snake_case keys of the settings
    /// syntax (`adam(lr=0.01,beta2=0.99)`) and of the JSON config.
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)>;
    /// Checks every hyper-parameter's range; the message names the parameter and the range.
    fn validate(&self) -> Result<()>;
    /// The learning rate field.
    fn lr_mut(&mut self) -> &mut f32;
    /// The gradient-norm clip, if any.
    fn grad_clip(&self) -> Option<f32>;
    /// A learning rate that makes sense on the demo's 2-D surfaces (where gradients are O(1)).
    fn surface_lr(&self) -> f32;

    /// Floats of optimizer state per parameter (moments): 0, 1 or 2.
    fn state_per_param(&self) -> usize;
    /// What the method asks of the curvature machinery (None: first-order).
    fn curvature(&self) -> Option<CurvatureUse> {
        None
    }
    /// Slices of θ (offset, length, group length) whose estimate is replaced by group means.
    fn averaging_groups(&self, _model: &Resolved) -> Vec<(usize, usize, usize)> {
        Vec::new()
    }
    /// Whether the estimate must live in its own P-float buffer between kernels (several probes,
    /// group means, or kept across steps); if not, the update kernel forms it from z and Hz.
    fn keeps_estimate(&self, _averaged: bool) -> bool {
        self.curvature().is_some()
    }
    /// The per-step uniform's hyper-parameters and bias corrections at step t (from 1), with
    /// `t_curv` curvature estimates taken so far (this step's included).
    fn write_step_meta(&self, meta: &mut StepMeta, t: u64, t_curv: u64);
    /// The WGSL entry point of the update, given whether the estimate is kept
    /// ([`Method::keeps_estimate`]).
    fn kernel(&self, keeps_estimate: bool) -> &'static str;
    /// The f64 reference of one step, written from the paper / PyTorch, independent of the WGSL.
    /// `estimate` is this step's new curvature estimate (None on steps without one).
    fn reference_step(&self, theta: &mut [f64], g: &[f64], estimate: Option<&[f64]>, s: &mut State);

    /// Where the method's update stops being stable on a quadratic (Cohen et al., "Adaptive
    /// gradient methods at the edge of stability", 2022), at learning rate `lr` and the optimizer
    /// state `s`: λmax(P⁻¹H) < threshold, with P the method's current diagonal preconditioner.
    /// None where the update is not of that form (sign and clipped updates).
    fn stability(&self, _lr: f32, _s: &super::OptimizerState) -> Option<Stability> {
        None
    }
}

/// The edge of stability of an update: λmax(P⁻¹H) against `threshold`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stability {
    /// The diagonal preconditioner P (None: the identity).
    #[serde(skip)]
    pub preconditioner: Option<Vec<f64>>,
    /// The bound on λmax(P⁻¹H): 2/η for SGD, 2(1 + μ)/η with heavy-ball momentum μ,
    /// (2 + 2β1)/((1 − β1) η) for an EMA momentum over a preconditioner.
    pub threshold: f64,
    /// The bound, in words.
    pub rule: &'static str,
}

impl Stability {
    /// An Adam-style method (EMA momentum β1, denominator √(v / (1 − β2ᵗ)) + ε with v its second
    /// moment after `s.t` steps): Adam's v, AdaBelief's s.
    pub fn adam_like(lr: f32, betas: (f32, f32), eps: f32, s: &super::OptimizerState) -> Stability {
        let bias2 = 1.0 - (betas.1 as f64).powi(s.t as i32);
        let p = s.v.iter().map(|&v| (v as f64 / bias2.max(1e-300)).sqrt() + eps as f64).collect();
        Stability::ema(lr, betas.0, p)
    }

    /// An EMA-momentum (β1) method dividing by `p`: (2 + 2β1)/((1 − β1) η).
    pub fn ema(lr: f32, beta1: f32, p: Vec<f64>) -> Stability {
        let (lr, b) = (lr as f64, beta1 as f64);
        Stability {
            preconditioner: Some(p),
            threshold: (2.0 + 2.0 * b) / ((1.0 - b) * lr),
            rule: "λmax(P⁻¹H) < (2 + 2β1) / ((1 − β1) η), P the current denominator",
        }
    }
}

/// The checks the methods share, each naming the parameter and its range.
pub mod check {
    use crate::error::{Error, Result};

    /// A finite number > 0.
    pub fn positive(name: &str, v: f32) -> Result<()> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(Error::Config(format!("{name} = {v} must be a finite number > 0")))
        }
    }

    /// A finite number ≥ 0.
    pub fn non_negative(name: &str, v: f32) -> Result<()> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(Error::Config(format!("{name} = {v} must be a finite number ≥ 0")))
        }
    }

    /// A decay rate in [0, 1).
    pub fn beta(name: &str, v: f32) -> Result<()> {
        if (0.0..1.0).contains(&v) {
            Ok(())
        } else {
            Err(Error::Config(format!("{name} = {v} must be in [0, 1)")))
        }
    }

    /// An optional gradient-norm clip > 0.
    pub fn clip(c: Option<f32>) -> Result<()> {
        c.map_or(Ok(()), |c| positive("grad_clip", c))
    }

    /// A count ≥ 1.
    pub fn at_least_one(name: &str, v: u32) -> Result<()> {
        if v >= 1 {
            Ok(())
        } else {
            Err(Error::Config(format!("{name} = {v} must be at least 1")))
        }
    }
}

/// Bias correction 1 − β^n, computed in f64.
pub fn bias(beta: f32, n: u64) -> f32 {
    (1.0 - (beta as f64).powf(n as f64)) as f32
}

/// A name the parser accepts and the configuration it gives.
pub type Preset<T> = (&'static str, fn() -> T);

/// The static side of a method, for the registry: the names it answers to and its WGSL.
pub trait Registered: Method + Copy + Sized + 'static {
    /// (name, configuration) pairs, the canonical name first: `sgd` and `momentum`, `adam` and
    /// `adamw`. Every name is lowercase.
    const PRESETS: &'static [Preset<Self>];
    /// The WGSL of the method's update kernel(s), appended to the optimizer shader module.
    const WGSL: &'static str;
    /// Every entry point that WGSL defines (the pipeline cache builds each once).
    const KERNELS: &'static [&'static str];
}
