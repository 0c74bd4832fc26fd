//! SGD as PyTorch's `torch.optim.SGD` (PyTorch 2.x defaults: lr 1e-3, no momentum):
//! d = g + wd θ; with momentum μ: buf = d at t = 1, else μ buf + (1 − dampening) d;
//! d = nesterov ? d + μ buf : buf; θ ← θ − lr d. Without momentum it keeps no state.

use super::method::{Preset, check, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::{Error, Result};
use crate::optim::meta::{StepMeta, STEP_NESTEROV};

/// PyTorch `torch.optim.SGD`.
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

impl Method for SgdConfig {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn summary(&self) -> &'static str {
        "SGD with optional (Nesterov) momentum, as torch.optim.SGD"
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("momentum", Field::F32(&mut self.momentum)),
            ("dampening", Field::F32(&mut self.dampening)),
            ("nesterov", Field::Bool(&mut self.nesterov)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
            ("grad_clip", Field::OptF32(&mut self.grad_clip)),
        ]
    }
    fn validate(&self) -> Result<()> {
        check::positive("lr", self.lr)?;
        check::beta("momentum", self.momentum)?;
        check::beta("dampening", self.dampening)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::clip(self.grad_clip)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Config("nesterov needs momentum > 0 and dampening = 0".into()));
        }
        Ok(())
    }
    fn lr_mut(&mut self) -> &mut f32 {
        &mut self.lr
    }
    fn grad_clip(&self) -> Option<f32> {
        self.grad_clip
    }
    fn surface_lr(&self) -> f32 {
        1e-3
    }
    fn state_per_param(&self) -> usize {
        (self.momentum != 0.0) as usize
    }
    fn write_step_meta(&self, m: &mut StepMeta, _t: u64, _t_curv: u64) {
        m.momentum = self.momentum;
        m.dampening = self.dampening;
        m.weight_decay = self.weight_decay;
        m.flags = if self.nesterov { STEP_NESTEROV } else { 0 };
    }
    fn kernel(&self, _keeps_estimate: bool) -> &'static str {
        "sgd_step"
    }
    fn stability(&self, lr: f32, _s: &super::OptimizerState) -> Option<super::method::Stability> {
        let (lr, mu) = (lr as f64, self.momentum as f64);
        Some(super::method::Stability {
            preconditioner: None,
            threshold: 2.0 * (1.0 + mu) / lr,
            rule: if mu == 0.0 { "λmax(H) < 2 / η" } else { "λmax(H) < 2 (1 + μ) / η (heavy ball)" },
        })
    }
    fn reference_step(&self, theta: &mut [f64], g: &[f64], _estimate: Option<&[f64]>, s: &mut State) {
        s.t += 1;
        let scale = clip_factor(g, self.grad_clip);
        let (lr, mu, damp, wd) = (self.lr as f64, self.momentum as f64, self.dampening as f64, self.weight_decay as f64);
        for i in 0..theta.len() {
            let mut d = g[i] * scale + wd * theta[i];
            if mu != 0.0 {
                let buf = if s.t == 1 { d } else { mu * s.m[i] + (1.0 - damp) * d };
                s.m[i] = buf;
                d = if self.nesterov { d + mu * buf } else { buf };
            }
            theta[i] -= lr * d;
        }
    }
}

impl Registered for SgdConfig {
    const PRESETS: &'static [Preset<Self>] =
        &[("sgd", SgdConfig::default), ("momentum", || SgdConfig { momentum: 0.9, ..Default::default() })];
    const WGSL: &'static str = include_str!("../../shaders/optim/sgd.wgsl");
    const KERNELS: &'static [&'static str] = &["sgd_step"];
}
