//! The whole model in f64 on the CPU: forward, gradient and forward-over-reverse Hessian-vector
//! product, built only from each op's own reference (`Op::reference_forward` / `_backward` in
//! its file) and the loss's. It is the oracle the GPU is tested against, and is itself tested
//! against finite differences.

use super::norm;
use super::op::{Backward, Forward, PassEnv, Reads};
use super::Resolved;

/// Where normalisation layers take their statistics from.
#[derive(Clone, Copy, Debug)]
pub enum NormMode<'a> {
    /// The batch's own (train mode): H·z differentiates through them, as the official
    /// AdaHessian does.
    Train,
    /// BatchNorm's running statistics (eval mode; `Resolved::running`'s layout: μ_run then
    /// σ²_run per layer). LayerNorm always uses the row's own.
    Eval(&'a [f64]),
}

/// Everything one pass computes.
#[derive(Clone, Debug)]
pub struct Pass {
    /// The mean loss.
    pub loss: f64,
    /// ∇θ L.
    pub grad: Vec<f64>,
    /// H z when a direction was given.
    pub hz: Option<Vec<f64>>,
    /// Every node's value, node 0 being the input.
    pub nodes: Vec<Vec<f64>>,
    /// Each BatchNorm's batch statistics in train mode (index into `Resolved::running`, the
    /// statistics, values per channel m), for the running-statistics update.
    pub batch_stats: Vec<(usize, norm::Stats, usize)>,
}

/// Runs forward, backward and, when `z` is given, the tangent and R-backward passes.
/// `x` is `[rows, input]`, `targets` `[rows, target_width]` (class indices as f64 for CE).
pub fn pass(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize, z: Option<&[f64]>) -> Pass {
    pass_in(NormMode::Train, model, theta, x, targets, rows, z)
}

/// [`pass`] with normalisation layers in the given mode.
pub fn pass_in(
    mode: NormMode<'_>,
    model: &Resolved,
    theta: &[f64],
    x: &[f64],
    targets: &[f64],
    rows: usize,
    z: Option<&[f64]>,
) -> Pass {
    let mut batch_stats = Vec::new();
    // bias-free layers read their bias from the zero sink after θ (and z) and write their bias
    // gradients into it, as on the GPU (`Resolved::bias_sink`); it is cut off at the end
    let with_sink = |v: &[f64]| [v, &vec![0.0; model.bias_sink]].concat();
    let (theta, z) = (&with_sink(theta)[..], z.map(with_sink));
    let env = PassEnv { model, mode, rows, theta, z: z.as_deref() };
    let n_nodes = model.nodes.len();
    let mut nodes: Vec<Vec<f64>> = vec![Vec::new(); n_nodes];
    nodes[0] = x.to_vec();
    // tangents: node 0 is data and does not depend on θ
    let mut tangents: Vec<Vec<f64>> = vec![Vec::new(); n_nodes];
    tangents[0] = vec![0.0; x.len()];
    for layer in &model.layers {
        let reads = Reads { input: layer.input, nodes: &nodes, tangents: &tangents };
        let mut cx = Forward { env, reads, batch_stats: &mut batch_stats };
        let (y, t_y) = layer.op.op().reference_forward(&mut cx);
        nodes[layer.output] = y;
        if let Some(t) = t_y {
            tangents[layer.output] = t;
        }
    }
    let k = model.output_width();
    let out = &nodes[n_nodes - 1];
    let loss = model.loss.mean(out, targets, rows, k);
    let mut g = vec![Vec::new(); n_nodes];
    let mut r = vec![Vec::new(); n_nodes];
    g[n_nodes - 1] = model.loss.bwd(out, targets, rows, k);
    if z.is_some() {
        r[n_nodes - 1] = model.loss.rbwd(out, &tangents[n_nodes - 1], rows, k);
    }
    let mut grad = vec![0.0; model.n_params + model.bias_sink];
    let mut hz = z.as_ref().map(|_| vec![0.0; model.n_params + model.bias_sink]);
    for layer in model.layers.iter().rev() {
        let mut cx = Backward {
            env,
            reads: Reads { input: layer.input, nodes: &nodes, tangents: &tangents },
            output: layer.output,
            g: &mut g,
            r: &mut r,
            grad: &mut grad,
            hz: hz.as_deref_mut(),
        };
        layer.op.op().reference_backward(&mut cx);
    }
    grad.truncate(model.n_params);
    if let Some(h) = hz.as_mut() {
        h.truncate(model.n_params);
    }
    Pass { loss, grad, hz, nodes, batch_stats }
}

/// The running statistics after one train-mode forward pass over the batch (PyTorch's update,
/// momentum 0.1), from `running` before it.
pub fn running_after(model: &Resolved, theta: &[f64], x: &[f64], rows: usize, running: &[f64]) -> Vec<f64> {
    let targets = vec![0.0; rows * model.loss.target_width(model.output_width())];
    let mut out = running.to_vec();
    for (i, stats, m) in pass(model, theta, x, &targets, rows, None).batch_stats {
        let r = &model.running[i];
        let (mean, var) = out[r.offset..r.offset + 2 * r.channels].split_at_mut(r.channels);
        norm::update_running(mean, var, &stats, m, norm::DEFAULT_MOMENTUM);
    }
    out
}

/// The mean loss.
pub fn loss(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize) -> f64 {
    pass(model, theta, x, targets, rows, None).loss
}

/// ∇θ L.
pub fn gradient(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize) -> Vec<f64> {
    pass(model, theta, x, targets, rows, None).grad
}

/// H z by forward-over-reverse.
pub fn hvp(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize, z: &[f64]) -> Vec<f64> {
    pass(model, theta, x, targets, rows, Some(z)).hz.unwrap_or_default()
}

/// The dense Hessian `[P, P]` (row i = H e_i) from P unit-vector HVPs.
pub fn hessian(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize) -> Vec<f64> {
    let n = model.n_params;
    let mut h = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for i in 0..n {
        e[i] = 1.0;
        let col = hvp(model, theta, x, targets, rows, &e);
        h[i * n..(i + 1) * n].copy_from_slice(&col);
        e[i] = 0.0;
    }
    h
}

/// Central finite difference of the gradient along z: (∇L(θ + εz) − ∇L(θ − εz)) / 2ε.
pub fn fd_hvp(
    model: &Resolved,
    theta: &[f64],
    x: &[f64],
    targets: &[f64],
    rows: usize,
    z: &[f64],
    eps: f64,
) -> Vec<f64> {
    let plus: Vec<f64> = theta.iter().zip(z).map(|(t, v)| t + eps * v).collect();
    let minus: Vec<f64> = theta.iter().zip(z).map(|(t, v)| t - eps * v).collect();
    let gp = gradient(model, &plus, x, targets, rows);
    let gm = gradient(model, &minus, x, targets, rows);
    gp.iter().zip(gm).map(|(a, b)| (a - b) / (2.0 * eps)).collect()
}

/// Central finite-difference gradient of the loss.
pub fn fd_gradient(model: &Resolved, theta: &[f64], x: &[f64], targets: &[f64], rows: usize, eps: f64) -> Vec<f64> {
    let mut th = theta.to_vec();
    (0..theta.len())
        .map(|i| {
            th[i] = theta[i] + eps;
            let lp = loss(model, &th, x, targets, rows);
            th[i] = theta[i] - eps;
            let lm = loss(model, &th, x, targets, rows);
            th[i] = theta[i];
            (lp - lm) / (2.0 * eps)
        })
        .collect()
}
