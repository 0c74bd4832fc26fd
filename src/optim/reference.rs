//! The optimizers' update rules in f64, written straight from PyTorch's documentation and
//! ALGORITHM.md, independent of the WGSL. Tests run them side by side with the GPU.

use super::{AdaHessianConfig, AdamConfig, SgdConfig, SophiaHConfig};

/// Host-side optimizer state in f64.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Steps taken.
    pub t: u64,
    /// Curvature updates taken.
    pub t_curv: u64,
    /// First moment / momentum buffer.
    pub m: Vec<f64>,
    /// Second moment, or Sophia's h.
    pub v: Vec<f64>,
}

impl State {
    /// Zero state for n parameters.
    pub fn new(n: usize) -> Self {
        State { t: 0, t_curv: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }
}

/// PyTorch's clip_grad_norm_ factor min(1, c / (‖g‖ + 1e-6)); 1 without clipping.
pub fn clip_factor(g: &[f64], clip: Option<f32>) -> f64 {
    match clip {
        Some(c) => {
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            (c as f64 / (norm + 1e-6)).min(1.0)
        }
        None => 1.0,
    }
}

/// torch.optim.SGD.
pub fn sgd(c: &SgdConfig, theta: &mut [f64], g: &[f64], s: &mut State) {
    s.t += 1;
    let scale = clip_factor(g, c.grad_clip);
    let (lr, mu, damp, wd) = (c.lr as f64, c.momentum as f64, c.dampening as f64, c.weight_decay as f64);
    for i in 0..theta.len() {
        let mut d = g[i] * scale + wd * theta[i];
        if mu != 0.0 {
            let buf = if s.t == 1 { d } else { mu * s.m[i] + (1.0 - damp) * d };
            s.m[i] = buf;
            d = if c.nesterov { d + mu * buf } else { buf };
        }
        theta[i] -= lr * d;
    }
}

/// torch.optim.Adam / AdamW.
pub fn adam(c: &AdamConfig, theta: &mut [f64], g: &[f64], s: &mut State) {
    s.t += 1;
    let scale = clip_factor(g, c.grad_clip);
    let (b1, b2) = (c.betas.0 as f64, c.betas.1 as f64);
    let (lr, eps, wd) = (c.lr as f64, c.eps as f64, c.weight_decay as f64);
    let bias1 = 1.0 - b1.powi(s.t as i32);
    let bias2 = 1.0 - b2.powi(s.t as i32);
    for i in 0..theta.len() {
        let mut gi = g[i] * scale;
        if c.decoupled {
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

/// The AdaHessian curvature estimate from probes z_s and their H z_s: |mean_s z_s ⊙ Hz_s|,
/// then each `groups` range `(offset, len, group_len)` replaced by its group means.
pub fn adahessian_curvature(zs: &[Vec<f64>], hzs: &[Vec<f64>], groups: &[(usize, usize, usize)]) -> Vec<f64> {
    let n = zs[0].len();
    let mut d = vec![0.0; n];
    for (z, hz) in zs.iter().zip(hzs) {
        for i in 0..n {
            d[i] += z[i] * hz[i] / zs.len() as f64;
        }
    }
    for v in &mut d {
        *v = v.abs();
    }
    for &(off, len, group) in groups {
        for chunk in d[off..off + len].chunks_mut(group) {
            let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
            chunk.iter_mut().for_each(|v| *v = mean);
        }
    }
    d
}

/// One AdaHessian step (ALGORITHM.md §1). `d` is the new curvature estimate on curvature steps,
/// None on the steps that reuse the last one (update_each > 1).
pub fn adahessian(c: &AdaHessianConfig, theta: &mut [f64], g: &[f64], d: Option<&[f64]>, s: &mut State) {
    s.t += 1;
    if d.is_some() {
        s.t_curv += 1;
    }
    let scale = clip_factor(g, c.grad_clip);
    let (b1, b2) = (c.betas.0 as f64, c.betas.1 as f64);
    let (lr, eps, wd, k) = (c.lr as f64, c.eps as f64, c.weight_decay as f64, c.hessian_power as f64);
    let bias1 = 1.0 - b1.powi(s.t as i32);
    let bias2 = 1.0 - b2.powi(s.t_curv as i32);
    for i in 0..theta.len() {
        s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i] * scale;
        if let Some(d) = d {
            s.v[i] = b2 * s.v[i] + (1.0 - b2) * d[i] * d[i];
        }
        let m_hat = s.m[i] / bias1;
        let v_hat = s.v[i] / bias2;
        let denom = if k == 0.0 { 1.0 } else { v_hat.powf(k / 2.0) } + eps;
        theta[i] -= lr * (m_hat / denom + wd * theta[i]);
    }
}

/// One Sophia-H step (ALGORITHM.md §2b); `h_hat` = mean_s z_s ⊙ Hz_s on curvature steps.
pub fn sophia_h(c: &SophiaHConfig, theta: &mut [f64], g: &[f64], h_hat: Option<&[f64]>, s: &mut State) {
    s.t += 1;
    if h_hat.is_some() {
        s.t_curv += 1;
    }
    let scale = clip_factor(g, c.grad_clip);
    let (b1, b2) = (c.betas.0 as f64, c.betas.1 as f64);
    let (lr, eps, wd, gamma) = (c.lr as f64, c.eps as f64, c.weight_decay as f64, c.gamma as f64);
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
