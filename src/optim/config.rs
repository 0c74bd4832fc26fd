//! Typed optimizer configurations. Each `Default` is the method's published default.

use crate::error::{Error, Result};
use crate::nn::{LayerOp, Resolved};
use crate::probe::ProbeKind;

/// PyTorch `torch.optim.SGD` (defaults of PyTorch 2.x: lr 1e-3, no momentum).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ (0 = plain SGD).
    pub momentum: f32,
    /// Dampening of the momentum buffer.
    pub dampening: f32,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0, grad_clip: None }
    }
}

/// PyTorch `torch.optim.Adam` (lr 1e-3, betas (0.9, 0.999), eps 1e-8, L2 weight decay 0).
/// With `decoupled: true` it is `torch.optim.AdamW` (see [`AdamConfig::adamw`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// (β1, β2).
    pub betas: (f32, f32),
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty (Adam) or decoupled decay (AdamW).
    pub weight_decay: f32,
    /// AdamW's decoupled decay θ ← θ (1 − lr wd) instead of adding wd θ to the gradient.
    pub decoupled: bool,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, decoupled: false, grad_clip: None }
    }
}

impl AdamConfig {
    /// PyTorch `torch.optim.AdamW` defaults (weight decay 1e-2, decoupled).
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: 1e-2, decoupled: true, ..Default::default() }
    }
}

/// AdaHessian, the official rule and defaults (ALGORITHM.md §1) with the options of §2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaHessianConfig {
    /// Learning rate (official default 0.15).
    pub lr: f32,
    /// (β1, β2) = (0.9, 0.999).
    pub betas: (f32, f32),
    /// 1e-4 (not 1e-8: dead units would take huge steps).
    pub eps: f32,
    /// Hessian power k in [0, 1]; 1 is the official choice, 0 makes it EMA-momentum SGD.
    pub hessian_power: f32,
    /// Decoupled, lr-scaled weight decay.
    pub weight_decay: f32,
    /// Compute a new curvature estimate every n steps (v and its bias correction follow it).
    pub update_each: u32,
    /// Probes averaged (signed z ⊙ Hz) before the absolute value.
    pub n_samples: u32,
    /// Average |Hz| over each output row of a Dense weight (the "instruction" variant).
    pub average_dense: bool,
    /// Average |Hz| over each kh×kw window of a Conv2d kernel (official; on by default).
    pub average_conv: bool,
    /// Probe distribution (official: Rademacher).
    pub probe: ProbeKind,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
    /// Seed of the probes.
    pub seed: u64,
}

impl Default for AdaHessianConfig {
    fn default() -> Self {
        AdaHessianConfig {
            lr: 0.15,
            betas: (0.9, 0.999),
            eps: 1e-4,
            hessian_power: 1.0,
            weight_decay: 0.0,
            update_each: 1,
            n_samples: 1,
            average_dense: false,
            average_conv: true,
            probe: ProbeKind::Rademacher,
            grad_clip: None,
            seed: 0,
        }
    }
}

impl AdaHessianConfig {
    /// The slices of θ whose |Hz| is replaced by group means, as (offset, length, group length):
    /// each kh×kw window of a Conv2d kernel `[out, in, kh, kw]` (official spatial averaging,
    /// `average_conv`), and each output row of a Dense weight `[out, in]` (`average_dense`).
    pub fn averaging_groups(&self, model: &Resolved) -> Vec<(usize, usize, usize)> {
        let mut groups = Vec::new();
        for layer in &model.layers {
            match layer.op {
                LayerOp::Dense { n_in, n_out, w_off, .. } if self.average_dense && n_in > 1 => {
                    groups.push((w_off, n_in * n_out, n_in));
                }
                LayerOp::Conv2d { geom, w_off, .. } if self.average_conv && geom.k_h * geom.k_w > 1 => {
                    groups.push((w_off, geom.weight_len(), geom.k_h * geom.k_w));
                }
                _ => {}
            }
        }
        groups
    }
}

/// Sophia-H (Liu et al. 2023; ALGORITHM.md §2b), levanter's defaults. The paper's lr and weight
/// decay are task-specific; the defaults here (1e-3, 0) are a neutral start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SophiaHConfig {
    /// Learning rate (a step moves each coordinate by at most lr).
    pub lr: f32,
    /// (β1, β2) = (0.965, 0.99).
    pub betas: (f32, f32),
    /// γ = 0.01, the scale of the curvature in the clipped ratio.
    pub gamma: f32,
    /// 1e-8, the floor of the denominator.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Curvature update period k = 10.
    pub update_each: u32,
    /// Probes averaged per update.
    pub n_samples: u32,
    /// Probe distribution (levanter: Gaussian).
    pub probe: ProbeKind,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
    /// Seed of the probes.
    pub seed: u64,
}

impl Default for SophiaHConfig {
    fn default() -> Self {
        SophiaHConfig {
            lr: 1e-3,
            betas: (0.965, 0.99),
            gamma: 0.01,
            eps: 1e-8,
            weight_decay: 0.0,
            update_each: 10,
            n_samples: 1,
            probe: ProbeKind::Gaussian,
            grad_clip: None,
            seed: 0,
        }
    }
}

/// The optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// SGD with optional momentum.
    Sgd(SgdConfig),
    /// Adam or AdamW.
    Adam(AdamConfig),
    /// AdaHessian.
    AdaHessian(AdaHessianConfig),
    /// Sophia-H.
    SophiaH(SophiaHConfig),
}

impl OptimizerConfig {
    /// A short name: sgd, adam, adamw, adahessian, sophia-h.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adam(c) if c.decoupled => "adamw",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdaHessian(_) => "adahessian",
            OptimizerConfig::SophiaH(_) => "sophia-h",
        }
    }

    /// The default configuration for a name from [`OptimizerConfig::name`].
    pub fn default_for(name: &str) -> Result<OptimizerConfig> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sgd" => OptimizerConfig::Sgd(SgdConfig::default()),
            "adam" => OptimizerConfig::Adam(AdamConfig::default()),
            "adamw" => OptimizerConfig::Adam(AdamConfig::adamw()),
            "adahessian" => OptimizerConfig::AdaHessian(AdaHessianConfig::default()),
            "sophia-h" | "sophiah" | "sophia" => OptimizerConfig::SophiaH(SophiaHConfig::default()),
            other => {
                return Err(Error::Config(format!(
                    "unknown optimizer '{other}'; use sgd, adam, adamw, adahessian or sophia-h"
                )))
            }
        })
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::AdaHessian(c) => c.lr,
            OptimizerConfig::SophiaH(c) => c.lr,
        }
    }

    /// Whether the method needs Hessian-vector products.
    pub fn uses_curvature(&self) -> bool {
        matches!(self, OptimizerConfig::AdaHessian(_) | OptimizerConfig::SophiaH(_))
    }

    /// Checks every hyper-parameter's range; the message names the parameter and the range.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::Config(format!("{name} = {v} must be a finite number > 0")))
            }
        };
        let non_negative = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::Config(format!("{name} = {v} must be a finite number ≥ 0")))
            }
        };
        let beta = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Config(format!("{name} = {v} must be in [0, 1)")))
            }
        };
        let clip = |c: Option<f32>| c.map_or(Ok(()), |c| positive("grad_clip", c));
        let at_least_one = |name: &str, v: u32| {
            if v >= 1 {
                Ok(())
            } else {
                Err(Error::Config(format!("{name} = {v} must be at least 1")))
            }
        };
        match *self {
            OptimizerConfig::Sgd(c) => {
                positive("lr", c.lr)?;
                beta("momentum", c.momentum)?;
                beta("dampening", c.dampening)?;
                non_negative("weight_decay", c.weight_decay)?;
                clip(c.grad_clip)?;
                if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                    return Err(Error::Config("nesterov needs momentum > 0 and dampening = 0".into()));
                }
            }
            OptimizerConfig::Adam(c) => {
                positive("lr", c.lr)?;
                beta("beta1", c.betas.0)?;
                beta("beta2", c.betas.1)?;
                positive("eps", c.eps)?;
                non_negative("weight_decay", c.weight_decay)?;
                clip(c.grad_clip)?;
            }
            OptimizerConfig::AdaHessian(c) => {
                positive("lr", c.lr)?;
                beta("beta1", c.betas.0)?;
                beta("beta2", c.betas.1)?;
                positive("eps", c.eps)?;
                non_negative("weight_decay", c.weight_decay)?;
                if !(0.0..=1.0).contains(&c.hessian_power) {
                    return Err(Error::Config(format!("hessian_power = {} must be in [0, 1]", c.hessian_power)));
                }
                at_least_one("update_each", c.update_each)?;
                at_least_one("n_samples", c.n_samples)?;
                clip(c.grad_clip)?;
            }
            OptimizerConfig::SophiaH(c) => {
                positive("lr", c.lr)?;
                beta("beta1", c.betas.0)?;
                beta("beta2", c.betas.1)?;
                positive("gamma", c.gamma)?;
                positive("eps", c.eps)?;
                non_negative("weight_decay", c.weight_decay)?;
                at_least_one("update_each", c.update_each)?;
                at_least_one("n_samples", c.n_samples)?;
                clip(c.grad_clip)?;
            }
        }
        Ok(())
    }
}
