//! Adam and AdamW as PyTorch's `torch.optim.Adam` / `AdamW`: m, v EMAs of g and g²;
//! θ ← θ − lr/bias1 · m / (√v / √bias2 + eps). Adam adds wd θ to the gradient (L2); AdamW decays
//! θ ← θ (1 − lr wd) before the step.

use super::method::{Preset, bias, check, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::Result;
use crate::optim::meta::{StepMeta, STEP_DECOUPLED};

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

impl Method for AdamConfig {
    fn name(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }
    fn summary(&self) -> &'static str {
        if self.decoupled {
            "AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW"
        } else {
            "Adam (Kingma & Ba 2015), as torch.optim.Adam"
        }
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("beta1", Field::F32(&mut self.betas.0)),
            ("beta2", Field::F32(&mut self.betas.1)),
            ("eps", Field::F32(&mut self.eps)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
            ("decoupled", Field::Bool(&mut self.decoupled)),
            ("grad_clip", Field::OptF32(&mut self.grad_clip)),
        ]
    }
    fn validate(&self) -> Result<()> {
        check::positive("lr", self.lr)?;
        check::beta("beta1", self.betas.0)?;
        check::beta("beta2", self.betas.1)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::clip(self.grad_clip)
    }
    fn lr_mut(&mut self) -> &mut f32 {
        &mut self.lr
    }
    fn grad_clip(&self) -> Option<f32> {
        self.grad_clip
    }
    fn surface_lr(&self) -> f32 {
        0.05
    }
    fn state_per_param(&self) -> usize {
        2
    }
    fn write_step_meta(&self, m: &mut StepMeta, t: u64, _t_curv: u64) {
        m.beta1 = self.betas.0;
        m.beta2 = self.betas.1;
        m.eps = self.eps;
        m.weight_decay = self.weight_decay;
        m.flags = if self.decoupled { STEP_DECOUPLED } else { 0 };
        m.bias1 = bias(self.betas.0, t);
        m.bias2 = bias(self.betas.1, t);
    }
    fn kernel(&self, _keeps_estimate: bool) -> &'static str {
        "adam_step"
    }
    /// P = √v̂ + ε (the L2 or decoupled decay left out).
    fn stability(&self, lr: f32, s: &super::OptimizerState) -> Option<super::method::Stability> {
        Some(super::method::Stability::adam_like(lr, self.betas, self.eps, s))
    }
    fn reference_step(&self, theta: &mut [f64], g: &[f64], _estimate: Option<&[f64]>, s: &mut State) {
        s.t += 1;
        let scale = clip_factor(g, self.grad_clip);
        let (b1, b2) = (self.betas.0 as f64, self.betas.1 as f64);
        let (lr, eps, wd) = (self.lr as f64, self.eps as f64, self.weight_decay as f64);
        let bias1 = 1.0 - b1.powi(s.t as i32);
        let bias2 = 1.0 - b2.powi(s.t as i32);
        for i in 0..theta.len() {
            let mut gi = g[i] * scale;
            if self.decoupled {
                theta[i] *= 1.0 - lr * wd;
            } else {
                gi += wd * theta[i];
            }
            s.m[i] = b1 * s.m[i] + (1.0 - b1) * gi;
            s.v[i] = b2 * s.v[i] + (1.0 - b2) * gi * gi;
            let denom = s.v[i].sqrt() / bias2.sqrt() + eps;
            theta[i] -= lr / bias1 * s.m[i] / denom;
        }
    }
}

impl Registered for AdamConfig {
    const PRESETS: &'static [Preset<Self>] = &[("adam", AdamConfig::default), ("adamw", AdamConfig::adamw)];
    const WGSL: &'static str = include_str!("../../shaders/optim/adam.wgsl");
    const KERNELS: &'static [&'static str] = &["adam_step"];
}
