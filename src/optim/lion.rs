//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):
//! c = β1 m + (1−β1) g; θ ← θ (1 − lr wd) − lr sign(c); m ← β2 m + (1−β2) g. One moment per
//! parameter (half of Adam's state); every coordinate moves by exactly lr (or 0 where c = 0).
//! Defaults lr 1e-4, β (0.9, 0.99), wd 0 (the paper uses a 3-10× smaller lr than AdamW's and a
//! 3-10× larger wd).

use super::method::{Preset, check, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::Result;
use crate::optim::meta::StepMeta;

/// Lion's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionConfig {
    /// Learning rate: the size of every coordinate's step.
    pub lr: f32,
    /// (β1, β2) = (0.9, 0.99): β1 mixes g into the step's sign, β2 is the momentum's decay.
    pub betas: (f32, f32),
    /// Decoupled weight decay θ ← θ (1 − lr wd).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
}

impl Default for LionConfig {
    fn default() -> Self {
        LionConfig { lr: 1e-4, betas: (0.9, 0.99), weight_decay: 0.0, grad_clip: None }
    }
}

/// sign with sign(0) = 0, as WGSL's `sign` and torch.sign.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Method for LionConfig {
    fn name(&self) -> &'static str {
        "lion"
    }
    fn summary(&self) -> &'static str {
        "Lion (Chen et al. 2023): the sign of an interpolated momentum, one moment per parameter"
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("beta1", Field::F32(&mut self.betas.0)),
            ("beta2", Field::F32(&mut self.betas.1)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
            ("grad_clip", Field::OptF32(&mut self.grad_clip)),
        ]
    }
    fn validate(&self) -> Result<()> {
        check::positive("lr", self.lr)?;
        check::beta("beta1", self.betas.0)?;
        check::beta("beta2", self.betas.1)?;
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
        0.01
    }
    fn state_per_param(&self) -> usize {
        1
    }
    fn write_step_meta(&self, m: &mut StepMeta, _t: u64, _t_curv: u64) {
        m.beta1 = self.betas.0;
        m.beta2 = self.betas.1;
        m.weight_decay = self.weight_decay;
    }
    fn kernel(&self, _keeps_estimate: bool) -> &'static str {
        "lion_step"
    }
    fn reference_step(&self, theta: &mut [f64], g: &[f64], _estimate: Option<&[f64]>, s: &mut State) {
        s.t += 1;
        let scale = clip_factor(g, self.grad_clip);
        let (b1, b2) = (self.betas.0 as f64, self.betas.1 as f64);
        let (lr, wd) = (self.lr as f64, self.weight_decay as f64);
        for i in 0..theta.len() {
            let gi = g[i] * scale;
            let c = b1 * s.m[i] + (1.0 - b1) * gi;
            theta[i] = theta[i] * (1.0 - lr * wd) - lr * sign(c);
            s.m[i] = b2 * s.m[i] + (1.0 - b2) * gi;
        }
    }
}

impl Registered for LionConfig {
    const PRESETS: &'static [Preset<Self>] = &[("lion", LionConfig::default)];
    const WGSL: &'static str = include_str!("../../shaders/optim/lion.wgsl");
    const KERNELS: &'static [&'static str] = &["lion_step"];
}
