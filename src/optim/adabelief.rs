//! AdaBelief (Zhuang et al. 2020, Algorithm 2, without rectification, with decoupled weight
//! decay): the second moment tracks the "belief" (g − m)², the surprise of the gradient against
//! its EMA, instead of g²:
//! m = β1 m + (1−β1) g;  s = β2 s + (1−β2)(g − m)² + ε;  m̂ = m/(1−β1ᵗ), ŝ = s/(1−β2ᵗ);
//! θ ← θ (1 − lr wd) − lr m̂ / (√ŝ + ε). Defaults lr 1e-3, β (0.9, 0.999), ε 1e-16.

use super::method::{Preset, bias, check, Field, Method, Registered};
use super::reference::{clip_factor, State};
use crate::error::Result;
use crate::optim::meta::StepMeta;

/// AdaBelief's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaBeliefConfig {
    /// Learning rate.
    pub lr: f32,
    /// (β1, β2) = (0.9, 0.999).
    pub betas: (f32, f32),
    /// ε = 1e-16, added to s at every step and to the denominator.
    pub eps: f32,
    /// Decoupled weight decay θ ← θ (1 − lr wd).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this before the step.
    pub grad_clip: Option<f32>,
}

impl Default for AdaBeliefConfig {
    fn default() -> Self {
        AdaBeliefConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-16, weight_decay: 0.0, grad_clip: None }
    }
}

impl Method for AdaBeliefConfig {
    fn name(&self) -> &'static str {
        "adabelief"
    }
    fn summary(&self) -> &'static str {
        "AdaBelief (Zhuang et al. 2020): Adam with the EMA of (g − m)² in place of g²"
    }
    fn fields(&mut self) -> Vec<(&'static str, Field<'_>)> {
        vec![
            ("lr", Field::F32(&mut self.lr)),
            ("beta1", Field::F32(&mut self.betas.0)),
            ("beta2", Field::F32(&mut self.betas.1)),
            ("eps", Field::F32(&mut self.eps)),
            ("weight_decay", Field::F32(&mut self.weight_decay)),
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
        m.bias1 = bias(self.betas.0, t);
        m.bias2 = bias(self.betas.1, t);
    }
    fn kernel(&self, _keeps_estimate: bool) -> &'static str {
        "adabelief_step"
    }
    /// P = √ŝ + ε.
    fn stability(&self, lr: f32, s: &super::OptimizerState) -> Option<super::method::Stability> {
        Some(super::method::Stability::adam_like(lr, self.betas, self.eps, s))
    }
    fn reference_step(&self, theta: &mut [f64], g: &[f64], _estimate: Option<&[f64]>, st: &mut State) {
        st.t += 1;
        let scale = clip_factor(g, self.grad_clip);
        let (b1, b2) = (self.betas.0 as f64, self.betas.1 as f64);
        let (lr, eps, wd) = (self.lr as f64, self.eps as f64, self.weight_decay as f64);
        let bias1 = 1.0 - b1.powi(st.t as i32);
        let bias2 = 1.0 - b2.powi(st.t as i32);
        for i in 0..theta.len() {
            let gi = g[i] * scale;
            st.m[i] = b1 * st.m[i] + (1.0 - b1) * gi;
            let belief = gi - st.m[i];
            st.v[i] = b2 * st.v[i] + (1.0 - b2) * belief * belief + eps;
            let (m_hat, s_hat) = (st.m[i] / bias1, st.v[i] / bias2);
            theta[i] = theta[i] * (1.0 - lr * wd) - lr * m_hat / (s_hat.sqrt() + eps);
        }
    }
}

impl Registered for AdaBeliefConfig {
    const PRESETS: &'static [Preset<Self>] = &[("adabelief", AdaBeliefConfig::default)];
    const WGSL: &'static str = include_str!("../../shaders/optim/adabelief.wgsl");
    const KERNELS: &'static [&'static str] = &["adabelief_step"];
}
