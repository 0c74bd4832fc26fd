// Element-wise activations y = f(x) over a [B, n] node (n = layer.n_in = layer.n_out).
// With f' and f'' the first two derivatives at the pre-activation x:
//   fwd      y    = f(x)
//   tangent  t_y  = f'(x) t_x
//   bwd      g_x  = f'(x) g_y
//   rbwd     r_gx = f'(x) r_gy + f''(x) t_x g_y     (the second-order term vanishes for ReLU)
// Each function is written to stay finite and accurate for |x| ≥ 45 (no exp overflow, no
// 1 − s cancellation), matching PyTorch's definitions (softplus: beta 1, threshold 20; GELU: erf form).

// ---- per-element maths ------------------------------------------------------------------

fn relu_f(x: f32) -> f32 { return max(x, 0.0); }
fn relu_d1(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }   // PyTorch: f'(0) = 0
fn relu_d2(x: f32) -> f32 { return 0.0; }

fn tanh_f(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.01) { return x * (1.0 - x * x / 3.0); }             // avoids 1 − e^{−2a} cancellation
    let e = exp(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}
fn tanh_d1(x: f32) -> f32 { let y = tanh_f(x); return 1.0 - y * y; }
fn tanh_d2(x: f32) -> f32 { let y = tanh_f(x); return -2.0 * y * (1.0 - y * y); }

// σ(x), computed from exp(−|x|) so it never overflows
fn sigmoid_f(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
// σ' = σ(x) σ(−x): written this way, not σ(1 − σ), so it stays accurate where σ rounds to 1
fn sigmoid_d1(x: f32) -> f32 { return sigmoid_f(x) * sigmoid_f(-x); }
fn sigmoid_d2(x: f32) -> f32 { return sigmoid_d1(x) * (sigmoid_f(-x) - sigmoid_f(x)); }

// log(1 + e) for 0 ≤ e ≤ 1 without losing e when it is tiny (WGSL has no log1p)
fn log1p_small(e: f32) -> f32 {
    if (e < 1e-4) { return e * (1.0 - 0.5 * e); }
    return log(1.0 + e);
}
// PyTorch Softplus(beta=1, threshold=20): linear above the threshold, and so are its derivatives
fn softplus_f(x: f32) -> f32 {
    if (x > 20.0) { return x; }
    return max(x, 0.0) + log1p_small(exp(-abs(x)));
}
fn softplus_d1(x: f32) -> f32 { return select(sigmoid_f(x), 1.0, x > 20.0); }
fn softplus_d2(x: f32) -> f32 { return select(sigmoid_d1(x), 0.0, x > 20.0); }

// erfc(u) for u ≥ 0 with a fractional error below 1.2e-7 (Chebyshev fit, Numerical Recipes §6.2)
fn erfc_pos(u: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * u);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-u * u + p);
}
// Φ(x), the standard normal CDF, accurate in relative terms in the lower tail
fn normal_cdf(x: f32) -> f32 {
    let u = abs(x) * 0.70710678118654752;
    let tail = 0.5 * erfc_pos(u);
    return select(1.0 - tail, tail, x < 0.0);
}
fn normal_pdf(x: f32) -> f32 { return 0.39894228040143268 * exp(-0.5 * x * x); }
// GELU (exact, erf form): f = x Φ(x), f' = Φ + x φ, f'' = φ (2 − x²)
fn gelu_f(x: f32) -> f32 { return x * normal_cdf(x); }
fn gelu_d1(x: f32) -> f32 { return normal_cdf(x) + x * normal_pdf(x); }
fn gelu_d2(x: f32) -> f32 { return normal_pdf(x) * (2.0 - x * x); }

// ---- entry points -------------------------------------------------------------------------

fn act_items() -> u32 { return batch.rows * layer.n_in; }
fn x_at(i: u32) -> f32 { return work[layer.x_off + i]; }
fn write_tangent(i: u32, d1: f32) { work[layer.t_y_off + i] = d1 * work[layer.t_x_off + i]; }
fn write_bwd(i: u32, d1: f32) { work[layer.g_x_off + i] = d1 * work[layer.g_y_off + i]; }
fn write_rbwd(i: u32, d1: f32, d2: f32) {
    work[layer.r_x_off + i] = d1 * work[layer.r_y_off + i] + d2 * work[layer.t_x_off + i] * work[layer.g_y_off + i];
}

@compute @workgroup_size(256)
fn relu_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    work[layer.y_off + i] = relu_f(x_at(i));
}
@compute @workgroup_size(256)
fn relu_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_tangent(i, relu_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_bwd(i, relu_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn relu_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    let x = x_at(i);
    write_rbwd(i, relu_d1(x), relu_d2(x));
}

@compute @workgroup_size(256)
fn tanh_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    work[layer.y_off + i] = tanh_f(x_at(i));
}
@compute @workgroup_size(256)
fn tanh_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_tangent(i, tanh_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn tanh_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_bwd(i, tanh_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn tanh_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    let x = x_at(i);
    write_rbwd(i, tanh_d1(x), tanh_d2(x));
}

@compute @workgroup_size(256)
fn sigmoid_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    work[layer.y_off + i] = sigmoid_f(x_at(i));
}
@compute @workgroup_size(256)
fn sigmoid_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_tangent(i, sigmoid_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn sigmoid_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_bwd(i, sigmoid_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn sigmoid_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    let x = x_at(i);
    write_rbwd(i, sigmoid_d1(x), sigmoid_d2(x));
}

@compute @workgroup_size(256)
fn softplus_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    work[layer.y_off + i] = softplus_f(x_at(i));
}
@compute @workgroup_size(256)
fn softplus_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_tangent(i, softplus_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn softplus_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_bwd(i, softplus_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn softplus_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    let x = x_at(i);
    write_rbwd(i, softplus_d1(x), softplus_d2(x));
}

@compute @workgroup_size(256)
fn gelu_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    work[layer.y_off + i] = gelu_f(x_at(i));
}
@compute @workgroup_size(256)
fn gelu_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_tangent(i, gelu_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn gelu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    write_bwd(i, gelu_d1(x_at(i)));
}
@compute @workgroup_size(256)
fn gelu_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    let x = x_at(i);
    write_rbwd(i, gelu_d1(x), gelu_d2(x));
}
