//! Sophia-H (Liu et al. 2023, arXiv 2305.14342; ALGORITHM.md §2b), levanter's defaults:
//! every k steps h = β2 h + (1−β2) ĥ with ĥ = mean_s z_s ⊙ Hz_s (signed, not bias-corrected);
//! every step m = β1 m + (1−β1) g; θ ← θ − lr clip(m̂ / max(γ h, eps), −1, 1) − lr wd θ.

use super::method::{Preset, bias, check, CurvatureUse, Estimate, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::Result;
use crate::optim::meta::StepMeta;
use crate::probe::ProbeKind;

/// Sophia-H's hyper-parameters. The paper's lr and weight decay are task-specific; the
/// defaults here (1e-3, 0) are a neutral start.
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

impl Method for SophiaHConfig {
    fn name(&self) -> &'static str {
        "sophia-h"
    }
    fn summary(&self) -> &'static str {
        "Sophia-H (Liu et al. 2023): clipped m̂ / (γ h) with h an EMA of z ⊙ Hz every k steps"
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("beta1", Field::F32(&mut self.betas.0)),
            ("beta2", Field::F32(&mut self.betas.1)),
            ("gamma", Field::F32(&mut self.gamma)),
            ("eps", Field::F32(&mut self.eps)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
            ("update_each", Field::U32(&mut self.update_each)),
            ("n_samples", Field::U32(&mut self.n_samples)),
            ("probe", Field::Choice(&mut self.probe)),
            ("grad_clip", Field::OptF32(&mut self.grad_clip)),
            ("seed", Field::U64(&mut self.seed)),
        ]
    }
    fn validate(&self) -> Result<()> {
        check::positive("lr", self.lr)?;
        check::beta("beta1", self.betas.0)?;
        check::beta("beta2", self.betas.1)?;
        check::positive("gamma", self.gamma)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::at_least_one("update_each", self.update_each)?;
        check::at_least_one("n_samples", self.n_samples)?;
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
    fn curvature(&self) -> Option<CurvatureUse> {
        Some(CurvatureUse {
            update_each: self.update_each,
            n_samples: self.n_samples,
            probe: self.probe,
            seed: self.seed,
            estimate: Estimate::SignedMean,
        })
    }
    fn write_step_meta(&self, m: &mut StepMeta, t: u64, _t_curv: u64) {
        m.beta1 = self.betas.0;
        m.beta2 = self.betas.1;
        m.eps = self.eps;
        m.gamma = self.gamma;
        m.weight_decay = self.weight_decay;
        m.bias1 = bias(self.betas.0, t);
        m.bias2 = 1.0;
    }
    fn kernel(&self, _keeps_estimate: bool) -> &'static str {
        "sophia_step"
    }
    fn reference_step(&self, theta: &mut [f64], g: &[f64], h_hat: Option<&[f64]>, s: &mut State) {
        s.t += 1;
        if h_hat.is_some() {
            s.t_curv += 1;
        }
        let scale = clip_factor(g, self.grad_clip);
        let (b1, b2) = (self.betas.0 as f64, self.betas.1 as f64);
        let (lr, eps, wd, gamma) = (self.lr as f64, self.eps as f64, self.weight_decay as f64, self.gamma as f64);
        let bias1 = 1.0 - b1.powi(s.t as i32);
        for i in 0..theta.len() {
            s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i] * scale;
            if let Some(h) = h_hat {
                s.v[i] = b2 * s.v[i] + (1.0 - b2) * h[i];
            }
            let u = ((s.m[i] / bias1) / (gamma * s.v[i]).max(eps)).clamp(-1.0, 1.0);
            theta[i] = theta[i] - lr * u - lr * wd * theta[i];
        }
    }
}

impl Registered for SophiaHConfig {
    const PRESETS: &'static [Preset<Self>] =
        &[("sophia-h", SophiaHConfig::default), ("sophiah", SophiaHConfig::default), ("sophia", SophiaHConfig::default)];
    const WGSL: &'static str = include_str!("../../shaders/optim/sophia_h.wgsl");
    const KERNELS: &'static [&'static str] = &["sophia_step"];
}
