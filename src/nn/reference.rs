//! The whole model in f64 on the CPU: forward, gradient and forward-over-reverse Hessian-vector
//! product, built only from the per-layer references (`dense`, `activation`, `loss`). It is the
//! oracle the GPU is tested against, and is itself tested against finite differences.

use super::norm::{self, Statistics};
use super::{activation, conv, dense, dense::DenseShape, pool, LayerOp, Resolved};

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
    let eps = norm::DEFAULT_EPS;
    // a layer's statistics source: its running slice in eval mode, else the batch's
    let source = |running: Option<usize>| -> Statistics<'_> {
        match (mode, running) {
            (NormMode::Eval(arena), Some(i)) => {
                let r = &model.running[i];
                Statistics::Fixed {
                    mean: &arena[r.offset..r.offset + r.channels],
                    var: &arena[r.offset + r.channels..r.offset + 2 * r.channels],
                }
            }
            _ => Statistics::Batch,
        }
    };
    let mut batch_stats = Vec::new();
    // bias-free layers read their bias from the zero sink after θ (and z) and write their bias
    // gradients into it, as on the GPU (`Resolved::bias_sink`); it is cut off at the end
    let with_sink = |v: &[f64]| [v, &vec![0.0; model.bias_sink]].concat();
    let (theta, z) = (&with_sink(theta)[..], z.map(with_sink));
    let z = z.as_deref();
    let n_nodes = model.nodes.len();
    let mut nodes: Vec<Vec<f64>> = vec![Vec::new(); n_nodes];
    nodes[0] = x.to_vec();
    // tangents: node 0 is data and does not depend on θ
    let mut tangents: Vec<Vec<f64>> = vec![Vec::new(); n_nodes];
    tangents[0] = vec![0.0; x.len()];
    for layer in &model.layers {
        let xin = &nodes[layer.input];
        let (y, t_y) = match layer.op {
            LayerOp::Dense { n_in, n_out, w_off, b_off } => {
                let s = DenseShape { rows, n_in, n_out };
                let w = &theta[w_off..w_off + n_in * n_out];
                let b = &theta[b_off..b_off + n_out];
                let y = dense::fwd(s, w, b, xin);
                let t = z.map(|z| {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    dense::tangent(s, w, &z[w_off..w_off + n_in * n_out], &z[b_off..b_off + n_out], xin, t_x)
                });
                (y, t)
            }
            LayerOp::Conv2d { geom, w_off, b_off } => {
                let (wl, bl) = (geom.weight_len(), geom.c_out);
                let w = &theta[w_off..w_off + wl];
                let y = conv::fwd(&geom, rows, w, &theta[b_off..b_off + bl], xin);
                let t = z.map(|z| {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    conv::tangent(&geom, rows, w, &z[w_off..w_off + wl], &z[b_off..b_off + bl], xin, t_x)
                });
                (y, t)
            }
            LayerOp::MaxPool2d { geom } => {
                let arg = pool::argmax(&geom, rows, xin);
                let t = z.map(|_| pool::max_gather(&arg, &tangents[layer.input]));
                (pool::max_gather(&arg, xin), t)
            }
            LayerOp::AvgPool2d { geom } => {
                let t = z.map(|_| pool::avg_fwd(&geom, rows, &tangents[layer.input]));
                (pool::avg_fwd(&geom, rows, xin), t)
            }
            LayerOp::Activation { act, .. } => {
                let y = activation::fwd(act, xin);
                let t = z.map(|_| activation::tangent(act, xin, &tangents[layer.input]));
                (y, t)
            }
            LayerOp::Add { skip, shortcut } => {
                let y: Vec<f64> = xin.iter().zip(shortcut.apply(rows, &nodes[skip])).map(|(a, b)| a + b).collect();
                let t = z.map(|_| {
                    let t_s = shortcut.apply(rows, &tangents[skip]);
                    tangents[layer.input].iter().zip(t_s).map(|(a, b)| a + b).collect()
                });
                (y, t)
            }
            LayerOp::Norm { kind, w_off, b_off, running } => {
                let n = kind.params();
                let (gamma, beta) = (&theta[w_off..w_off + n], &theta[b_off..b_off + n]);
                let src = source(running);
                let (y, stats) = norm::fwd(kind, rows, gamma, beta, xin, eps, src);
                if let (Some(i), Statistics::Batch) = (running, src) {
                    batch_stats.push((i, stats, kind.group_len(rows)));
                }
                let t = z.map(|z| {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    norm::tangent(kind, rows, gamma, &z[w_off..w_off + n], &z[b_off..b_off + n], xin, t_x, eps, src)
                });
                (y, t)
            }
        };
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
    let mut hz = z.map(|_| vec![0.0; model.n_params + model.bias_sink]);
    for layer in model.layers.iter().rev() {
        let xin = &nodes[layer.input];
        let g_y = g[layer.output].clone();
        match layer.op {
            LayerOp::Dense { n_in, n_out, w_off, b_off } => {
                let s = DenseShape { rows, n_in, n_out };
                let w = &theta[w_off..w_off + n_in * n_out];
                let (g_w, g_b, g_x) = dense::bwd(s, w, xin, &g_y);
                grad[w_off..w_off + n_in * n_out].copy_from_slice(&g_w);
                grad[b_off..b_off + n_out].copy_from_slice(&g_b);
                add_into(&mut g[layer.input], g_x);
                if let (Some(z), Some(hz)) = (z, hz.as_mut()) {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    let (r_w, r_b, r_x) =
                        dense::rbwd(s, w, &z[w_off..w_off + n_in * n_out], xin, t_x, &g_y, &r[layer.output]);
                    hz[w_off..w_off + n_in * n_out].copy_from_slice(&r_w);
                    hz[b_off..b_off + n_out].copy_from_slice(&r_b);
                    add_into(&mut r[layer.input], r_x);
                }
            }
            LayerOp::Conv2d { geom, w_off, b_off } => {
                let (wl, bl) = (geom.weight_len(), geom.c_out);
                let w = &theta[w_off..w_off + wl];
                let (g_w, g_b, g_x) = conv::bwd(&geom, rows, w, xin, &g_y);
                grad[w_off..w_off + wl].copy_from_slice(&g_w);
                grad[b_off..b_off + bl].copy_from_slice(&g_b);
                add_into(&mut g[layer.input], g_x);
                if let (Some(z), Some(hz)) = (z, hz.as_mut()) {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    let (r_w, r_b, r_x) =
                        conv::rbwd(&geom, rows, w, &z[w_off..w_off + wl], xin, t_x, &g_y, &r[layer.output]);
                    hz[w_off..w_off + wl].copy_from_slice(&r_w);
                    hz[b_off..b_off + bl].copy_from_slice(&r_b);
                    add_into(&mut r[layer.input], r_x);
                }
            }
            LayerOp::MaxPool2d { geom } => {
                let arg = pool::argmax(&geom, rows, xin);
                add_into(&mut g[layer.input], pool::max_scatter(&arg, &g_y, xin.len()));
                if z.is_some() {
                    let r_x = pool::max_scatter(&arg, &r[layer.output], xin.len());
                    add_into(&mut r[layer.input], r_x);
                }
            }
            LayerOp::AvgPool2d { geom } => {
                add_into(&mut g[layer.input], pool::avg_bwd(&geom, rows, &g_y));
                if z.is_some() {
                    let r_x = pool::avg_bwd(&geom, rows, &r[layer.output]);
                    add_into(&mut r[layer.input], r_x);
                }
            }
            LayerOp::Add { skip, shortcut } => {
                // the body's output gets g_y, the block's input sᵀ g_y on top of what its other
                // consumer (the body's first layer, later in this loop) sends back
                add_into(&mut g[layer.input], g_y.clone());
                add_into(&mut g[skip], shortcut.adjoint(rows, &g_y));
                if z.is_some() {
                    let r_y = r[layer.output].clone();
                    add_into(&mut r[skip], shortcut.adjoint(rows, &r_y));
                    add_into(&mut r[layer.input], r_y);
                }
            }
            LayerOp::Norm { kind, w_off, b_off, running } => {
                let n = kind.params();
                let gamma = &theta[w_off..w_off + n];
                let src = source(running);
                let (g_gamma, g_beta, g_x) = norm::bwd(kind, rows, gamma, xin, &g_y, eps, src);
                grad[w_off..w_off + n].copy_from_slice(&g_gamma);
                grad[b_off..b_off + n].copy_from_slice(&g_beta);
                add_into(&mut g[layer.input], g_x);
                if let (Some(z), Some(hz)) = (z, hz.as_mut()) {
                    let t_x = (layer.input > 0).then(|| tangents[layer.input].as_slice());
                    let (r_gamma, r_beta, r_x) =
                        norm::rbwd(kind, rows, gamma, &z[w_off..w_off + n], xin, t_x, &g_y, &r[layer.output], eps, src);
                    hz[w_off..w_off + n].copy_from_slice(&r_gamma);
                    hz[b_off..b_off + n].copy_from_slice(&r_beta);
                    add_into(&mut r[layer.input], r_x);
                }
            }
            LayerOp::Activation { act, .. } => {
                add_into(&mut g[layer.input], activation::bwd(act, xin, &g_y));
                if z.is_some() {
                    let r_x = activation::rbwd(act, xin, &tangents[layer.input], &g_y, &r[layer.output]);
                    add_into(&mut r[layer.input], r_x);
                }
            }
        }
    }
    grad.truncate(model.n_params);
    if let Some(h) = hz.as_mut() {
        h.truncate(model.n_params);
    }
    Pass { loss, grad, hz, nodes, batch_stats }
}

/// Cotangents accumulate: a node read by two layers (a residual block's input) gets the sum of
/// what both send back.
fn add_into(slot: &mut Vec<f64>, v: Vec<f64>) {
    if slot.is_empty() {
        *slot = v;
    } else {
        slot.iter_mut().zip(v).for_each(|(a, b)| *a += b);
    }
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
