//! AdaHessian (Yao et al. 2021), the official rule and defaults (ALGORITHM.md §1) with the
//! options of §2: D = |mean_s z_s ⊙ Hz_s| (spatially averaged over conv windows);
//! m = β1 m + (1−β1) g; v = β2 v + (1−β2) D²; θ ← θ − lr (m̂ / (v̂^(k/2) + eps) + wd θ).
//!
//! With `update_each = n > 1` a new D is computed every n steps, and two rules exist
//! (ALGORITHM.md §2): [`UpdateEach::Fold`] (davda54/ada-hessian and timm, the default) keeps the
//! last D and folds it into v at every step, bias-corrected by the step count; [`UpdateEach::Fresh`]
//! updates v only when D is new, bias-corrected by the number of estimates. With n = 1 they agree.

use super::method::{Preset, bias, check, Choice, CurvatureUse, Estimate, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::{Error, Result};
use crate::optim::meta::{StepMeta, STEP_FOLD_EVERY_STEP};
use crate::nn::{conv::ConvOp, dense::DenseOp, LayerOp, Resolved};
use crate::probe::ProbeKind;

/// How v follows the estimate when it is computed only every `update_each` steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateEach {
    /// davda54/ada-hessian and timm: the last D is folded into v at every step; v̂ = v / (1 − β2^t).
    #[default]
    Fold,
    /// v is updated only on steps with a new D; v̂ = v / (1 − β2^(number of estimates)).
    Fresh,
}

impl Choice for UpdateEach {
    fn get(&self) -> &'static str {
        match self {
            UpdateEach::Fold => "fold",
            UpdateEach::Fresh => "fresh",
        }
    }
    fn set(&mut self, value: &str) -> Result<()> {
        *self = match value {
            "fold" | "davda54" | "timm" => UpdateEach::Fold,
            "fresh" => UpdateEach::Fresh,
            other => {
                return Err(Error::Config(format!(
                    "update_each_variant = {other}: use fold (davda54/timm: the last D enters v at every step) \
                     or fresh (v changes only with a new D)"
                )))
            }
        };
        Ok(())
    }
}

/// AdaHessian's hyper-parameters.
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
    /// Compute a new curvature estimate every n steps.
    pub update_each: u32,
    /// How v follows D between estimates (matters only with update_each > 1).
    pub update_each_variant: UpdateEach,
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
            update_each_variant: UpdateEach::Fold,
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
    /// Whether v takes the kept D at every step (the Fold rule with update_each > 1).
    fn folds_every_step(&self) -> bool {
        self.update_each > 1 && self.update_each_variant == UpdateEach::Fold
    }

    /// The number of EMA updates v has had after step t with t_curv estimates.
    pub fn v_updates(&self, t: u64, t_curv: u64) -> u64 {
        if self.folds_every_step() {
            t
        } else {
            t_curv
        }
    }
}

impl Method for AdaHessianConfig {
    fn name(&self) -> &'static str {
        "adahessian"
    }
    fn summary(&self) -> &'static str {
        "AdaHessian (Yao et al. 2021): Adam with |z ⊙ Hz| in place of |g|, official defaults"
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("beta1", Field::F32(&mut self.betas.0)),
            ("beta2", Field::F32(&mut self.betas.1)),
            ("eps", Field::F32(&mut self.eps)),
            ("hessian_power", Field::F32(&mut self.hessian_power)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
            ("update_each", Field::U32(&mut self.update_each)),
            ("update_each_variant", Field::Choice(&mut self.update_each_variant)),
            ("n_samples", Field::U32(&mut self.n_samples)),
            ("average_dense", Field::Bool(&mut self.average_dense)),
            ("average_conv", Field::Bool(&mut self.average_conv)),
            ("probe", Field::Choice(&mut self.probe)),
            ("grad_clip", Field::OptF32(&mut self.grad_clip)),
            ("seed", Field::U64(&mut self.seed)),
        ]
    }
    fn validate(&self) -> Result<()> {
        check::positive("lr", self.lr)?;
        check::beta("beta1", self.betas.0)?;
        check::beta("beta2", self.betas.1)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.hessian_power) {
            return Err(Error::Config(format!("hessian_power = {} must be in [0, 1]", self.hessian_power)));
        }
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
        0.15
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
            estimate: Estimate::AbsMean,
        })
    }
    /// Each kh×kw window of a Conv2d kernel `[out, in, kh, kw]` (official spatial averaging,
    /// `average_conv`), and each output row of a Dense weight `[out, in]` (`average_dense`).
    fn averaging_groups(&self, model: &Resolved) -> Vec<(usize, usize, usize)> {
        let mut groups = Vec::new();
        for layer in &model.layers {
            match layer.op {
                LayerOp::Dense(DenseOp { n_in, n_out, w_off, .. }) if self.average_dense && n_in > 1 => {
                    groups.push((w_off, n_in * n_out, n_in));
                }
                LayerOp::Conv2d(ConvOp { geom, w_off, .. }) if self.average_conv && geom.k_h * geom.k_w > 1 => {
                    groups.push((w_off, geom.weight_len(), geom.k_h * geom.k_w));
                }
                _ => {}
            }
        }
        groups
    }
    /// One probe, no averaging and no D carried across steps: the update kernel forms
    /// D = |z ⊙ Hz| itself (adahessian_curv_step), with no P-float buffer for it.
    fn keeps_estimate(&self, averaged: bool) -> bool {
        self.n_samples > 1 || averaged || self.folds_every_step()
    }
    fn write_step_meta(&self, m: &mut StepMeta, t: u64, t_curv: u64) {
        m.beta1 = self.betas.0;
        m.beta2 = self.betas.1;
        m.eps = self.eps;
        m.weight_decay = self.weight_decay;
        m.hessian_power = self.hessian_power;
        m.flags = if self.folds_every_step() { STEP_FOLD_EVERY_STEP } else { 0 };
        m.bias1 = bias(self.betas.0, t);
        m.bias2 = bias(self.betas.1, self.v_updates(t, t_curv));
    }
    fn kernel(&self, keeps_estimate: bool) -> &'static str {
        if keeps_estimate {
            "adahessian_step"
        } else {
            "adahessian_curv_step"
        }
    }
    /// P = v̂^(k/2) + ε, v̂ bias-corrected as the rule in use does.
    fn stability(&self, lr: f32, s: &super::OptimizerState) -> Option<super::method::Stability> {
        let b2 = 1.0 - (self.betas.1 as f64).powi(self.v_updates(s.t, s.t_curv) as i32);
        let k = self.hessian_power as f64;
        let p = s
            .v
            .iter()
            .map(|&v| if k == 0.0 { 1.0 } else { (v as f64 / b2.max(1e-300)).powf(k / 2.0) } + self.eps as f64)
            .collect();
        Some(super::method::Stability::ema(lr, self.betas.0, p))
    }
    /// `estimate` is the new D on curvature steps; the Fold rule keeps the last one in `s.d`.
    fn reference_step(&self, theta: &mut [f64], g: &[f64], estimate: Option<&[f64]>, s: &mut State) {
        s.t += 1;
        if let Some(d) = estimate {
            s.t_curv += 1;
            s.d = d.to_vec();
        }
        let fold = self.folds_every_step();
        let scale = clip_factor(g, self.grad_clip);
        let (b1, b2) = (self.betas.0 as f64, self.betas.1 as f64);
        let (lr, eps, wd, k) = (self.lr as f64, self.eps as f64, self.weight_decay as f64, self.hessian_power as f64);
        let bias1 = 1.0 - b1.powi(s.t as i32);
        let bias2 = 1.0 - b2.powi(if fold { s.t } else { s.t_curv } as i32);
        for i in 0..theta.len() {
            s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i] * scale;
            if estimate.is_some() || fold {
                s.v[i] = b2 * s.v[i] + (1.0 - b2) * s.d[i] * s.d[i];
            }
            let m_hat = s.m[i] / bias1;
            let v_hat = s.v[i] / bias2;
            let denom = if k == 0.0 { 1.0 } else { v_hat.powf(k / 2.0) } + eps;
            theta[i] -= lr * (m_hat / denom + wd * theta[i]);
        }
    }
}

impl Registered for AdaHessianConfig {
    const PRESETS: &'static [Preset<Self>] = &[("adahessian", AdaHessianConfig::default)];
    const WGSL: &'static str = include_str!("../../shaders/optim/adahessian.wgsl");
    const KERNELS: &'static [&'static str] = &["adahessian_step", "adahessian_curv_step"];
}
