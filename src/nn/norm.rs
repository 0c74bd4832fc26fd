//! Normalisation layers with PyTorch's semantics: `nn.BatchNorm1d` / `nn.BatchNorm2d` (per
//! channel over the batch and the plane) and `nn.LayerNorm` (per row over its features), with
//! their f64 references for every pass (the oracle of shaders/norm.wgsl).
//!
//! One group of m values x (a channel of a batch for BatchNorm, a row for LayerNorm), with
//! γ, β per channel (BatchNorm) or per feature (LayerNorm):
//!
//! ```text
//! μ = mean x     σ² = mean (x − μ)²  (biased)     r = (σ² + ε)^(−1/2)     x̂ = (x − μ)·r
//! y = γ x̂ + β
//! backward (g = g_y):    A = Σ g,  B = Σ g x̂  (γ-weighted for LayerNorm: A = Σ γg, B = Σ γg x̂)
//!                        g_β = Σ g, g_γ = Σ g x̂ (summed over the batch for LayerNorm)
//!                        g_x = (r / m)·(m γg − A − x̂ B)
//! tangent (t = R{x}, z_γ, z_β the direction's slices):
//!                        c = mean(x̂ t),  t_x̂ = r·(t − mean t − x̂ c),  t_r = −r² c
//!                        t_y = γ t_x̂ + z_γ x̂ + z_β
//! R-backward (r_g = R{g_y}); with u = γg (u = γ g per element) and R{u} = z_γ g + γ r_g:
//!                        A' = Σ R{u},  B' = Σ (R{u} x̂ + u t_x̂)
//!                        R{g_x} = (t_r/m)(m u − A − x̂ B) + (r/m)(m R{u} − A' − t_x̂ B − x̂ B')
//!                        R{g_β} = Σ r_g,  R{g_γ} = Σ (r_g x̂ + g t_x̂)
//! ```
//!
//! With fixed statistics (BatchNorm in eval mode: μ, σ² are the running estimates, so they do
//! not depend on x) the layer is affine: t_x̂ = r t, g_x = r γ g, R{g_x} = r R{u}.
//!
//! Running statistics (BatchNorm, momentum 0.1 as PyTorch): μ_run ← 0.9 μ_run + 0.1 μ,
//! σ²_run ← 0.9 σ²_run + 0.1 σ²·m/(m − 1). They are not parameters: no gradient, no weight
//! decay, no optimizer state.

/// PyTorch's default ε of `BatchNorm*d` and `LayerNorm`.
pub const DEFAULT_EPS: f64 = 1e-5;
/// PyTorch's default momentum of the running statistics.
pub const DEFAULT_MOMENTUM: f64 = 0.1;

/// Which values form one normalisation group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// BatchNorm over `[rows, channels, plane]` (plane = H·W for 2-D, 1 for 1-D): a group is a
    /// channel across the batch and the plane; γ, β per channel.
    Batch {
        /// Channels C.
        channels: usize,
        /// Values per channel of one row (H·W).
        plane: usize,
    },
    /// LayerNorm over `[rows, features]`: a group is one row; γ, β per feature.
    Layer {
        /// Features D.
        features: usize,
    },
}

impl NormKind {
    /// Values of one row.
    pub fn row_len(self) -> usize {
        match self {
            NormKind::Batch { channels, plane } => channels * plane,
            NormKind::Layer { features } => features,
        }
    }

    /// Length of γ (and of β).
    pub fn params(self) -> usize {
        match self {
            NormKind::Batch { channels, .. } => channels,
            NormKind::Layer { features } => features,
        }
    }

    /// Groups in a batch of `rows`.
    pub fn groups(self, rows: usize) -> usize {
        match self {
            NormKind::Batch { channels, .. } => channels,
            NormKind::Layer { .. } => rows,
        }
    }

    /// Values per group in a batch of `rows`.
    pub fn group_len(self, rows: usize) -> usize {
        match self {
            NormKind::Batch { plane, .. } => rows * plane,
            NormKind::Layer { features } => features,
        }
    }

    /// The flat index of the `k`-th value of group `group` and the index of its γ, β.
    fn at(self, group: usize, k: usize) -> (usize, usize) {
        match self {
            NormKind::Batch { channels, plane } => {
                let (n, p) = (k / plane, k % plane);
                ((n * channels + group) * plane + p, group)
            }
            NormKind::Layer { features } => (group * features + k, k),
        }
    }

    /// Every group's (value index, parameter index) pairs, in the fixed order the kernels sum.
    fn members(self, rows: usize) -> Vec<Vec<(usize, usize)>> {
        (0..self.groups(rows)).map(|g| (0..self.group_len(rows)).map(|k| self.at(g, k)).collect()).collect()
    }
}

/// Per-group statistics: mean, biased variance, r = (σ² + ε)^(−1/2).
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// μ per group.
    pub mean: Vec<f64>,
    /// σ² per group (biased, 1/m).
    pub var: Vec<f64>,
    /// (σ² + ε)^(−1/2) per group.
    pub r: Vec<f64>,
}

/// Where the statistics come from.
#[derive(Clone, Copy, Debug)]
pub enum Statistics<'a> {
    /// The batch's own (train mode; LayerNorm always): they depend on x, and every pass
    /// differentiates through them.
    Batch,
    /// Fixed per-channel mean and variance (BatchNorm's eval mode, running statistics).
    Fixed {
        /// μ_run per channel.
        mean: &'a [f64],
        /// σ²_run per channel.
        var: &'a [f64],
    },
}

impl Statistics<'_> {
    fn is_batch(&self) -> bool {
        matches!(self, Statistics::Batch)
    }
}

/// The statistics every pass uses.
pub fn stats(kind: NormKind, rows: usize, x: &[f64], eps: f64, source: Statistics<'_>) -> Stats {
    let groups = kind.members(rows);
    let (mean, var): (Vec<f64>, Vec<f64>) = match source {
        Statistics::Batch => groups
            .iter()
            .map(|members| {
                let m = members.len() as f64;
                let mu = members.iter().map(|&(i, _)| x[i]).sum::<f64>() / m;
                let var = members.iter().map(|&(i, _)| (x[i] - mu).powi(2)).sum::<f64>() / m;
                (mu, var)
            })
            .unzip(),
        Statistics::Fixed { mean, var } => (mean.to_vec(), var.to_vec()),
    };
    let r = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    Stats { mean, var, r }
}

fn x_hat(kind: NormKind, rows: usize, x: &[f64], s: &Stats) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (g, members) in kind.members(rows).iter().enumerate() {
        for &(i, _) in members {
            out[i] = (x[i] - s.mean[g]) * s.r[g];
        }
    }
    out
}

/// y = γ x̂ + β; also the statistics used.
pub fn fwd(
    kind: NormKind,
    rows: usize,
    gamma: &[f64],
    beta: &[f64],
    x: &[f64],
    eps: f64,
    source: Statistics<'_>,
) -> (Vec<f64>, Stats) {
    let s = stats(kind, rows, x, eps, source);
    let xh = x_hat(kind, rows, x, &s);
    let mut y = vec![0.0; x.len()];
    for members in kind.members(rows) {
        for (i, p) in members {
            y[i] = gamma[p] * xh[i] + beta[p];
        }
    }
    (y, s)
}

/// t_x̂ for every value (t = None: the input does not depend on θ, so t_x̂ = 0).
fn t_x_hat(kind: NormKind, rows: usize, xh: &[f64], t: Option<&[f64]>, s: &Stats, batch: bool) -> Vec<f64> {
    let mut out = vec![0.0; xh.len()];
    let Some(t) = t else { return out };
    for (g, members) in kind.members(rows).iter().enumerate() {
        let m = members.len() as f64;
        let (mean_t, c) = if batch {
            (
                members.iter().map(|&(i, _)| t[i]).sum::<f64>() / m,
                members.iter().map(|&(i, _)| xh[i] * t[i]).sum::<f64>() / m,
            )
        } else {
            (0.0, 0.0)
        };
        for &(i, _) in members {
            out[i] = s.r[g] * (t[i] - mean_t - xh[i] * c);
        }
    }
    out
}

/// t_y = γ t_x̂ + z_γ x̂ + z_β.
#[allow(clippy::too_many_arguments)]
pub fn tangent(
    kind: NormKind,
    rows: usize,
    gamma: &[f64],
    z_gamma: &[f64],
    z_beta: &[f64],
    x: &[f64],
    t_x: Option<&[f64]>,
    eps: f64,
    source: Statistics<'_>,
) -> Vec<f64> {
    let s = stats(kind, rows, x, eps, source);
    let xh = x_hat(kind, rows, x, &s);
    let txh = t_x_hat(kind, rows, &xh, t_x, &s, source.is_batch());
    let mut t_y = vec![0.0; x.len()];
    for members in kind.members(rows) {
        for (i, p) in members {
            t_y[i] = gamma[p] * txh[i] + z_gamma[p] * xh[i] + z_beta[p];
        }
    }
    t_y
}

/// (g_γ, g_β, g_x).
pub fn bwd(
    kind: NormKind,
    rows: usize,
    gamma: &[f64],
    x: &[f64],
    g_y: &[f64],
    eps: f64,
    source: Statistics<'_>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = stats(kind, rows, x, eps, source);
    let xh = x_hat(kind, rows, x, &s);
    let (mut g_gamma, mut g_beta) = (vec![0.0; kind.params()], vec![0.0; kind.params()]);
    let mut g_x = vec![0.0; x.len()];
    for (g, members) in kind.members(rows).iter().enumerate() {
        let m = members.len() as f64;
        let (mut a, mut b) = (0.0, 0.0);
        for &(i, p) in members {
            let u = gamma[p] * g_y[i];
            a += u;
            b += u * xh[i];
            g_gamma[p] += g_y[i] * xh[i];
            g_beta[p] += g_y[i];
        }
        for &(i, p) in members {
            let u = gamma[p] * g_y[i];
            g_x[i] = if source.is_batch() { s.r[g] / m * (m * u - a - xh[i] * b) } else { s.r[g] * u };
        }
    }
    (g_gamma, g_beta, g_x)
}

/// (R{g_γ}, R{g_β}, R{g_x}): the backward differentiated along (t_x, z_γ, z_β, r_y).
#[allow(clippy::too_many_arguments)]
pub fn rbwd(
    kind: NormKind,
    rows: usize,
    gamma: &[f64],
    z_gamma: &[f64],
    x: &[f64],
    t_x: Option<&[f64]>,
    g_y: &[f64],
    r_y: &[f64],
    eps: f64,
    source: Statistics<'_>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let batch = source.is_batch();
    let s = stats(kind, rows, x, eps, source);
    let xh = x_hat(kind, rows, x, &s);
    let txh = t_x_hat(kind, rows, &xh, t_x, &s, batch);
    let (mut r_gamma, mut r_beta) = (vec![0.0; kind.params()], vec![0.0; kind.params()]);
    let mut r_x = vec![0.0; x.len()];
    for (g, members) in kind.members(rows).iter().enumerate() {
        let m = members.len() as f64;
        let r = s.r[g];
        // c = mean(x̂ t), t_r = −r² c
        let c = match t_x {
            Some(t) if batch => members.iter().map(|&(i, _)| xh[i] * t[i]).sum::<f64>() / m,
            _ => 0.0,
        };
        let t_r = -r * r * c;
        let (mut a, mut b, mut a_r, mut b_r) = (0.0, 0.0, 0.0, 0.0);
        for &(i, p) in members {
            let u = gamma[p] * g_y[i];
            let r_u = z_gamma[p] * g_y[i] + gamma[p] * r_y[i];
            a += u;
            b += u * xh[i];
            a_r += r_u;
            b_r += r_u * xh[i] + u * txh[i];
            r_gamma[p] += r_y[i] * xh[i] + g_y[i] * txh[i];
            r_beta[p] += r_y[i];
        }
        for &(i, p) in members {
            let u = gamma[p] * g_y[i];
            let r_u = z_gamma[p] * g_y[i] + gamma[p] * r_y[i];
            r_x[i] = if batch {
                t_r / m * (m * u - a - xh[i] * b) + r / m * (m * r_u - a_r - txh[i] * b - xh[i] * b_r)
            } else {
                r * r_u
            };
        }
    }
    (r_gamma, r_beta, r_x)
}

/// PyTorch's update of the running statistics after a train-mode forward over m values per
/// channel (the variance entered is the unbiased one, σ²·m/(m − 1)).
pub fn update_running(running_mean: &mut [f64], running_var: &mut [f64], batch: &Stats, m: usize, momentum: f64) {
    let unbias = m as f64 / (m as f64 - 1.0);
    for c in 0..running_mean.len() {
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * batch.mean[c];
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * batch.var[c] * unbias;
    }
}

/// `batchnorm2d` (`[C, H, W]` inputs), `batchnorm1d` (flat features) and `layernorm` (over the
/// whole row): their size is the input's, ε and momentum PyTorch's defaults, so they take no
/// arguments. γ, β are `[C]` for BatchNorm, the input's shape for LayerNorm; BatchNorm also has
/// running statistics (`{module}.running_mean`, `.running_var`).
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &["batchnorm2d", "batchnorm1d", "layernorm"],
    parse: |args| {
        use super::Layer;
        let layer = match args.name.as_str() {
            "batchnorm2d" => Layer::BatchNorm2d,
            "batchnorm1d" => Layer::BatchNorm1d,
            "layernorm" => Layer::LayerNorm,
            _ => return None,
        };
        if args.any() {
            return Some(Err(args.error(&format!(
                "'{}' takes no arguments here (its size is the input's; eps 1e-5 and momentum 0.1 are PyTorch's \
                 defaults)",
                args.name
            ))));
        }
        Some(Ok(layer))
    },
    text: |layer| {
        use super::Layer;
        let (text, torch) = match layer {
            Layer::BatchNorm2d => ("batchnorm2d", "BatchNorm2d"),
            Layer::BatchNorm1d => ("batchnorm1d", "BatchNorm1d"),
            Layer::LayerNorm => ("layernorm", "LayerNorm"),
            _ => return None,
        };
        Some(super::op::LayerText { text: text.into(), torch, params: true })
    },
    resolve: |layer, cx| {
        use super::{Layer, LayerOp, ParamRole};
        let kind = match (layer, cx.shape.as_slice()) {
            (Layer::BatchNorm2d, &[c, h, w]) => NormKind::Batch { channels: c, plane: h * w },
            (Layer::BatchNorm1d, &[f]) => NormKind::Batch { channels: f, plane: 1 },
            (Layer::LayerNorm, s) => NormKind::Layer { features: s.iter().product() },
            (Layer::BatchNorm2d, s) => {
                let why =
                    format!("needs a [channels, height, width] input but gets {s:?}; use batchnorm1d on flat features");
                return Some(Err(cx.error(&why)));
            }
            (Layer::BatchNorm1d, s) => {
                return Some(Err(
                    cx.error(&format!("needs a flat [features] input but gets {s:?}; use batchnorm2d on images"))
                ));
            }
            _ => return None,
        };
        let param_shape = match kind {
            NormKind::Batch { channels, .. } => vec![channels],
            NormKind::Layer { .. } => cx.shape.clone(),
        };
        let w_off = cx.params.add(cx.name("weight"), param_shape.clone(), 1, ParamRole::NormScale);
        let b_off = cx.params.add(cx.name("bias"), param_shape, 1, ParamRole::NormShift);
        let running = match kind {
            NormKind::Batch { channels, .. } => Some(cx.params.running_stats(cx.module.to_string(), channels)),
            NormKind::Layer { .. } => None,
        };
        Some(Ok(Some(LayerOp::Norm(NormOp { kind, w_off, b_off, running }))))
    },
};

/// A resolved normalisation layer (BatchNorm, LayerNorm): γ at `w_off`, β at `b_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormOp {
    /// What a group of statistics covers.
    pub kind: NormKind,
    /// Offset of γ in θ.
    pub w_off: usize,
    /// Offset of β in θ.
    pub b_off: usize,
    /// Its entry in `Resolved::running` (BatchNorm).
    pub running: Option<usize>,
}

impl super::op::Op for NormOp {
    fn describe(&self) -> String {
        match self.kind {
            NormKind::Batch { channels, plane } => format!("batchnorm {channels}x{plane}"),
            NormKind::Layer { features } => format!("layernorm {features}"),
        }
    }

    fn first_param(&self) -> Option<usize> {
        Some(self.w_off)
    }

    fn reads_input_tangent(&self) -> bool {
        true
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let (e, kind, n) = (cx.env, self.kind, self.kind.params());
        let (gamma, beta) = (e.param(self.w_off, n), e.param(self.b_off, n));
        let src = e.statistics(self.running);
        let (y, stats) = fwd(kind, e.rows, gamma, beta, cx.x(), DEFAULT_EPS, src);
        if let (Some(i), Statistics::Batch) = (self.running, src) {
            cx.batch_stats.push((i, stats, kind.group_len(e.rows)));
        }
        let t = e.curvature().then(|| {
            let (z_gamma, z_beta) = (e.dir(self.w_off, n), e.dir(self.b_off, n));
            tangent(kind, e.rows, gamma, z_gamma, z_beta, cx.x(), cx.t_x_unless_data(), DEFAULT_EPS, src)
        });
        (y, t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        let (e, kind, n) = (cx.env, self.kind, self.kind.params());
        let gamma = e.param(self.w_off, n);
        let src = e.statistics(self.running);
        let g_y = cx.g_y();
        let offsets = (self.w_off, self.b_off);
        cx.put_backward(offsets, bwd(kind, e.rows, gamma, cx.x(), &g_y, DEFAULT_EPS, src));
        if e.curvature() {
            let (z_gamma, r_y) = (e.dir(self.w_off, n), cx.r_y());
            let r = rbwd(kind, e.rows, gamma, z_gamma, cx.x(), cx.t_x_unless_data(), &g_y, &r_y, DEFAULT_EPS, src);
            cx.put_r_backward(offsets, r);
        }
    }

    /// μ, r, mean t, c per group kept from the forward to the backward passes; the running
    /// statistics after the loss's in the `stats` buffer.
    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        site: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        let aux = site.take(4 * self.kind.groups(cx.rows));
        let run_off = crate::gpu::meta::stat::LEN + self.running.map_or(0, |i| site.model.running[i].offset);
        plan(cx, meta, self.kind, (self.w_off, self.b_off), aux, run_off as u32)
    }

    /// A BatchNorm with 1×1 planes is BatchNorm2d on a 4-D tensor and BatchNorm1d on a flat
    /// one (the same maths and tensors); a 1-D LayerNorm reads its input flat.
    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        let name = cx.module_name(self.w_off);
        match self.kind {
            NormKind::Batch { channels, plane } => {
                let two_d = plane > 1 || cx.input_four_d();
                let module = if two_d { "BatchNorm2d" } else { "BatchNorm1d" };
                let module = format!("nn.{module}({channels}, eps={DEFAULT_EPS:e}, momentum={DEFAULT_MOMENTUM})");
                Ok((cx.module(&name, module, cx.x())?, two_d))
            }
            NormKind::Layer { .. } => {
                let shape = cx.model.param(&format!("{name}.weight")).map_or_else(Vec::new, |p| p.shape.clone());
                let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
                let module = format!("nn.LayerNorm([{}], eps={DEFAULT_EPS:e})", dims.join(", "));
                let input = if shape.len() == 1 { cx.flat_x() } else { cx.x() };
                Ok((cx.module(&name, module, input)?, shape.len() == 3))
            }
        }
    }
}

/// The layer's dispatches and uniforms. Each pass reduces its group sums and then writes its
/// outputs (shaders/norm.wgsl): a workgroup per chunk of `split_len` values of a group (the
/// tuning's `norm_split_len`) for the partial sums, an invocation per group to fold them into
/// the group's totals, a workgroup per chunk again for the outputs. The fused passes share walks:
/// the forward's outputs with the tangent's partial sums, the backward's outputs with the
/// R-backward's. LayerNorm's γ, β sums, one invocation per feature, run before the group kernels
/// in the backward passes (its R-op reads t_x, which the group kernel's r_x may overwrite).
/// `aux_off`: 4 floats per group saved from the forward and tangent passes for the backward
/// ones; `pack_off`: the partials (8 floats per chunk) and a backward pass's totals (4 per group)
/// in the shared scratch; `run_off`: the running statistics in `stats`.
fn plan(
    cx: &super::plan::LayerContext,
    meta: &mut crate::nn::meta::LayerMeta,
    kind: NormKind,
    (w_off, b_off): (usize, usize),
    aux_off: u32,
    run_off: u32,
) -> super::plan::LayerPasses {
    use super::plan::{Items, LayerPasses};
    use kernels::*;
    meta.w_off = w_off as u32;
    meta.b_off = b_off as u32;
    meta.aux_off = aux_off;
    meta.run_off = run_off;
    meta.norm_eps_bits = (DEFAULT_EPS as f32).to_bits();
    meta.norm_momentum_bits = (DEFAULT_MOMENTUM as f32).to_bits();
    meta.n_in = kind.row_len() as u32;
    meta.n_out = kind.row_len() as u32;
    let split_len = cx.tuning.norm_split_len;
    debug_assert_eq!(split_len % crate::gpu::WORKGROUP as usize, 0);
    meta.split_len = split_len as u32;
    // a workgroup per chunk of each group
    let chunks = match kind {
        NormKind::Batch { channels, plane } => {
            meta.norm_kind = 0;
            meta.c_in = channels as u32;
            meta.h_in = plane as u32;
            Items::GroupChunks { groups: channels as u32, plane: plane as u32, split_len: split_len as u32 }
        }
        NormKind::Layer { features } => {
            meta.norm_kind = 1;
            Items::PerRow(features.div_ceil(split_len) as u32)
        }
    };
    let groups = match kind {
        NormKind::Batch { channels, .. } => Items::Fixed(channels as u32),
        NormKind::Layer { .. } => Items::PerRow(1),
    };
    let pass = |partial, total, apply| vec![cx.d(partial, chunks), cx.d(total, groups), cx.d(apply, chunks)];
    let (mut bwd, mut rbwd) =
        (pass(NormBwdPartial, NormBwdTotal, NormBwd), pass(NormRbwdPartial, NormRbwdTotal, NormRbwd));
    // the fused passes: the forward's outputs and the tangent's partial sums in one walk, and
    // the backward's and R-backward's outputs from one read of their inputs
    let mut fwd_tangent = pass(NormFwdPartial, NormFwdTotal, NormFwdTangentPartial);
    fwd_tangent.extend([cx.d(NormTangentTotal, groups), cx.d(NormTangent, chunks)]);
    let mut bwd_rbwd = pass(NormRbwdPartial, NormBwdRbwdTotal, NormBwdRbwd);
    if let NormKind::Layer { features } = kind {
        let params = [LayernormBwdParams, LayernormRbwdParams].map(|k| cx.d(k, Items::Fixed(features as u32)));
        bwd.insert(0, params[0]);
        rbwd.insert(0, params[1]);
        bwd_rbwd.splice(0..0, params);
    }
    // the partials at the largest batch, then a pass's totals
    let (most_groups, most_chunks) = (kind.groups(cx.rows), kind.group_len(cx.rows).div_ceil(split_len));
    meta.pack_off = 0;
    LayerPasses {
        fwd: pass(NormFwdPartial, NormFwdTotal, NormFwd),
        tangent: pass(NormTangentPartial, NormTangentTotal, NormTangent),
        bwd,
        rbwd,
        fwd_tangent: Some(fwd_tangent),
        bwd_rbwd: Some(bwd_rbwd),
        rbwd_rewrites_input_grad: false,
        scratch: 8 * most_groups * most_chunks + 4 * most_groups,
        rebase_scratch: Some(|meta, base| meta.pack_off += base),
    }
}

/// BatchNorm's and LayerNorm's WGSL module and their kernels.
pub mod kernels {
    crate::wgsl_kernels! {
        NORM = ("norm", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "norm.wgsl"]) {
            NormFwdPartial "norm_fwd_partial" WorkgroupPerItem,
            NormFwdTotal "norm_fwd_total",
            NormFwd "norm_fwd" WorkgroupPerItem,
            NormFwdTangentPartial "norm_fwd_tangent_partial" WorkgroupPerItem,
            NormTangentPartial "norm_tangent_partial" WorkgroupPerItem,
            NormTangentTotal "norm_tangent_total",
            NormTangent "norm_tangent" WorkgroupPerItem,
            NormBwdPartial "norm_bwd_partial" WorkgroupPerItem,
            NormBwdTotal "norm_bwd_total",
            NormBwd "norm_bwd" WorkgroupPerItem,
            NormRbwdPartial "norm_rbwd_partial" WorkgroupPerItem,
            NormRbwdTotal "norm_rbwd_total",
            NormRbwd "norm_rbwd" WorkgroupPerItem,
            NormBwdRbwdTotal "norm_bwd_rbwd_total",
            NormBwdRbwd "norm_bwd_rbwd" WorkgroupPerItem,
            LayernormBwdParams "layernorm_bwd_params",
            LayernormRbwdParams "layernorm_rbwd_params",
        }
    }
}
