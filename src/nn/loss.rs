//! Losses with `reduction='mean'`, exactly as PyTorch's `F.cross_entropy` (integer labels) and
//! `F.mse_loss`; the f64 reference of shaders/loss.wgsl. `y` is the network output `[rows, k]`,
//! `t` its tangent; targets are class indices (one per row) or values (`[rows, k]`).

use crate::gpu::Kernel;

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Softmax cross-entropy over integer labels, mean over the batch.
    CrossEntropy,
    /// Squared error, mean over all rows × outputs.
    Mse,
}

impl Loss {
    /// The (fwd, tangent, bwd, rbwd) kernels.
    pub fn kernels(self) -> [Kernel; 4] {
        use kernels::*;
        match self {
            Loss::CrossEntropy => [CrossEntropyFwd, CrossEntropyTangent, CrossEntropyBwd, CrossEntropyRbwd],
            Loss::Mse => [MseFwd, MseTangent, MseBwd, MseRbwd],
        }
    }

    /// The fused (forward + tangent, backward + R-backward) kernels of the tiled sets, and how
    /// many invocations per batch row the fused backward takes (cross-entropy: one per row, so
    /// that pᵀt is summed once; MSE: one per output).
    pub fn fused_kernels(self, outputs: usize) -> ([Kernel; 2], usize) {
        use kernels::*;
        match self {
            Loss::CrossEntropy => ([CrossEntropyFwdTangent, CrossEntropyBwdRbwd], 1),
            Loss::Mse => ([MseFwdTangent, MseBwdRbwd], outputs),
        }
    }

    /// The loss's dispatches: one invocation per row forward (the per-row loss and its
    /// directional derivative), one per output backward, the tiled sets fusing forward +
    /// tangent and backward + R-backward; `group` is its uniform slot.
    pub(crate) fn plan(self, group: usize, outputs: usize, fused: bool) -> super::plan::LayerPasses {
        use super::plan::{Dispatch, Items};
        let mut p = super::plan::LayerPasses::per_row(group, self.kernels(), 1, outputs as u32);
        if fused {
            let ([fwd_tangent, bwd_rbwd], per_row) = self.fused_kernels(outputs);
            p.fwd_tangent = Some(vec![Dispatch { kernel: fwd_tangent, group, items: Items::PerRow(1) }]);
            p.bwd_rbwd = Some(vec![Dispatch { kernel: bwd_rbwd, group, items: Items::PerRow(per_row as u32) }]);
        }
        p
    }

    /// Target values per row: 1 (a class index) or the output width.
    pub fn target_width(self, outputs: usize) -> usize {
        match self {
            Loss::CrossEntropy => 1,
            Loss::Mse => outputs,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
    }

    /// Per-row loss terms ℓ_b (the batch loss is their mean).
    pub fn fwd(self, y: &[f64], targets: &[f64], rows: usize, k: usize) -> Vec<f64> {
        (0..rows)
            .map(|b| {
                let row = &y[b * k..(b + 1) * k];
                match self {
                    Loss::CrossEntropy => logsumexp(row) - row[targets[b] as usize],
                    Loss::Mse => {
                        row.iter().zip(&targets[b * k..(b + 1) * k]).map(|(a, t)| (a - t).powi(2)).sum::<f64>()
                            / k as f64
                    }
                }
            })
            .collect()
    }

    /// The mean loss.
    pub fn mean(self, y: &[f64], targets: &[f64], rows: usize, k: usize) -> f64 {
        self.fwd(y, targets, rows, k).iter().sum::<f64>() / rows as f64
    }

    /// Per-row directional derivatives t_ℓ_b = Σ_k (∂ℓ_b/∂y_k) t_k.
    pub fn tangent(self, y: &[f64], targets: &[f64], t: &[f64], rows: usize, k: usize) -> Vec<f64> {
        let g = self.bwd(y, targets, rows, k);
        (0..rows).map(|b| (0..k).map(|j| g[b * k + j] * t[b * k + j]).sum::<f64>() * rows as f64).collect()
    }

    /// g_y = ∂L/∂y for the mean loss.
    pub fn bwd(self, y: &[f64], targets: &[f64], rows: usize, k: usize) -> Vec<f64> {
        let mut g = vec![0.0; rows * k];
        for b in 0..rows {
            let row = &y[b * k..(b + 1) * k];
            match self {
                Loss::CrossEntropy => {
                    let p = softmax(row);
                    for j in 0..k {
                        let onehot = if j == targets[b] as usize { 1.0 } else { 0.0 };
                        g[b * k + j] = (p[j] - onehot) / rows as f64;
                    }
                }
                Loss::Mse => {
                    for j in 0..k {
                        g[b * k + j] = 2.0 * (row[j] - targets[b * k + j]) / (rows * k) as f64;
                    }
                }
            }
        }
        g
    }

    /// r_y = R{g_y} = (∂²L/∂y²) t.
    pub fn rbwd(self, y: &[f64], t: &[f64], rows: usize, k: usize) -> Vec<f64> {
        let mut r = vec![0.0; rows * k];
        for b in 0..rows {
            let t_row = &t[b * k..(b + 1) * k];
            match self {
                Loss::CrossEntropy => {
                    let p = softmax(&y[b * k..(b + 1) * k]);
                    let pt: f64 = p.iter().zip(t_row).map(|(a, b)| a * b).sum();
                    for j in 0..k {
                        r[b * k + j] = p[j] * (t_row[j] - pt) / rows as f64;
                    }
                }
                Loss::Mse => {
                    for j in 0..k {
                        r[b * k + j] = 2.0 * t_row[j] / (rows * k) as f64;
                    }
                }
            }
        }
        r
    }
}

/// log Σ exp, stably.
pub fn logsumexp(row: &[f64]) -> f64 {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// softmax, stably.
pub fn softmax(row: &[f64]) -> Vec<f64> {
    let l = logsumexp(row);
    row.iter().map(|v| (v - l).exp()).collect()
}

/// Index of the first maximum (what the GPU counts as the prediction).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// The losses' WGSL module and their kernels.
pub mod kernels {
    crate::wgsl_kernels! {
        LOSS = ("loss", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "loss.wgsl"]) {
            CrossEntropyFwd "cross_entropy_fwd",
            CrossEntropyTangent "cross_entropy_tangent",
            CrossEntropyBwd "cross_entropy_bwd",
            CrossEntropyRbwd "cross_entropy_rbwd",
            MseFwd "mse_fwd",
            MseTangent "mse_tangent",
            MseBwd "mse_bwd",
            MseRbwd "mse_rbwd",
            LossReduce "loss_reduce" Single,
            CrossEntropyFwdTangent "cross_entropy_fwd_tangent",
            CrossEntropyBwdRbwd "cross_entropy_bwd_rbwd",
            MseFwdTangent "mse_fwd_tangent",
            MseBwdRbwd "mse_bwd_rbwd",
        }
    }
}
