//! What the optimizers' f64 references share: the host state, PyTorch's clipping factor and the
//! curvature estimates from probes. Each method's own rule is `Method::reference_step` in its
//! file, written from the paper / PyTorch's documentation, independent of the WGSL; tests run
//! them side by side with the GPU.

use super::method::Estimate;

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
    /// The last curvature estimate (kept by methods that reuse it between estimates).
    pub d: Vec<f64>,
}

impl State {
    /// Zero state for n parameters.
    pub fn new(n: usize) -> Self {
        State { t: 0, t_curv: 0, m: vec![0.0; n], v: vec![0.0; n], d: vec![0.0; n] }
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

/// The curvature estimate from probes z_s and their H z_s: mean_s z_s ⊙ Hz_s, and for
/// [`Estimate::AbsMean`] its absolute value with each `groups` range `(offset, len, group_len)`
/// replaced by its group means.
pub fn curvature_estimate(
    estimate: Estimate,
    zs: &[Vec<f64>],
    hzs: &[Vec<f64>],
    groups: &[(usize, usize, usize)],
) -> Vec<f64> {
    let n = zs[0].len();
    let mut d = vec![0.0; n];
    for (z, hz) in zs.iter().zip(hzs) {
        for i in 0..n {
            d[i] += z[i] * hz[i] / zs.len() as f64;
        }
    }
    if estimate == Estimate::SignedMean {
        return d;
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
