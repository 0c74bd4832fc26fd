// Optimizer steps: ONE dispatch over the flat arena of P parameters, element i independent.
// g is the gradient times the global clipping factor min(1, c / (‖g‖ + 1e-6)) when c > 0
// (PyTorch's clip_grad_norm_); m = state[i], v = state[P + i].
//
//   sgd_step         PyTorch SGD: d = g + wd θ; with momentum μ: buf = d (t = 1) or
//                    μ buf + (1 − dampening) d; d = nesterov ? d + μ buf : buf;  θ −= lr d
//   adam_step        PyTorch Adam (L2: g += wd θ) or AdamW (STEP_DECOUPLED: θ ← θ (1 − lr wd));
//                    m, v EMAs of g, g²;  θ −= lr/bias1 · m / (√v / √bias2 + eps)
//   adahessian_step  ALGORITHM.md §1: m EMA of g; v EMA of D² only on curvature steps;
//                    θ ← θ − lr (m̂ / (v̂^(k/2) + eps) + wd θ)
//   sophia_step      ALGORITHM.md §2b: h EMA of z ⊙ Hz on curvature steps (not bias-corrected);
//                    θ ← θ − lr clip(m̂ / max(γ h, eps), −1, 1) − lr wd θ

fn grad_scale() -> f32 {
    if (step.grad_clip > 0.0) {
        return min(1.0, step.grad_clip / (sqrt(stats[STAT_GRAD_SUMSQ]) + 1e-6));
    }
    return 1.0;
}

// stats[GRAD_SUMSQ] = Σ g_i² by one workgroup, fixed tree order
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn grad_sumsq(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var acc = 0.0;
    for (var i = t; i < slice.n_params; i += WORKGROUP) { acc += g_theta[i] * g_theta[i]; }
    partial[t] = acc;
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) { partial[t] += partial[t + stride]; }
        workgroupBarrier();
    }
    if (t == 0u) { stats[STAT_GRAD_SUMSQ] = partial[0]; }
}

@compute @workgroup_size(256)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let p = theta[i];
    var d = g_theta[i] * grad_scale() + step.weight_decay * p;
    if (step.momentum != 0.0) {
        var buf = d;
        if (step.t > 1u) { buf = step.momentum * state[i] + (1.0 - step.dampening) * d; }
        state[i] = buf;
        if ((step.flags & STEP_NESTEROV) != 0u) { d = d + step.momentum * buf; } else { d = buf; }
    }
    theta[i] = p - step.lr * d;
}

@compute @workgroup_size(256)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    var p = theta[i];
    var g = g_theta[i] * grad_scale();
    if ((step.flags & STEP_DECOUPLED) != 0u) {
        p = p * (1.0 - step.lr * step.weight_decay);
    } else {
        g = g + step.weight_decay * p;
    }
    let m = step.beta1 * state[i] + (1.0 - step.beta1) * g;
    let v = step.beta2 * state[slice.n_params + i] + (1.0 - step.beta2) * g * g;
    state[i] = m;
    state[slice.n_params + i] = v;
    let denom = sqrt(v) / sqrt(step.bias2) + step.eps;
    theta[i] = p - (step.lr / step.bias1) * m / denom;
}

// The AdaHessian update of parameter i; `d` is the new curvature estimate D_i, used only on
// curvature steps (step.update_curv).
fn adahessian_update(i: u32, d: f32) {
    let p = theta[i];
    let g = g_theta[i] * grad_scale();
    let m = step.beta1 * state[i] + (1.0 - step.beta1) * g;
    state[i] = m;
    var v = state[slice.n_params + i];
    if (step.update_curv != 0u) {
        v = step.beta2 * v + (1.0 - step.beta2) * d * d;
        state[slice.n_params + i] = v;
    }
    // v̂^(k/2) = (√v̂)^k; k = 0 and k = 1 are exact special cases (pow(0, 0) is undefined in WGSL)
    let root = sqrt(v / step.bias2);
    var scale = 1.0;
    if (step.hessian_power == 1.0) {
        scale = root;
    } else if (step.hessian_power != 0.0) {
        scale = pow(root, step.hessian_power);
    }
    let m_hat = m / step.bias1;
    theta[i] = p - step.lr * (m_hat / (scale + step.eps) + step.weight_decay * p);
}

// The update with D from `curv` (written by curv_accumulate, curv_abs and curv_group_mean).
@compute @workgroup_size(256)
fn adahessian_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    var d = 0.0;
    if (step.update_curv != 0u) { d = curv[i]; }
    adahessian_update(i, d);
}

// One probe and no spatial averaging (the default for dense models): the estimate
// D = |z ⊙ Hz| is formed here, in the same pass as the update — the values curv_accumulate +
// curv_abs would compute, two dispatches, two passes over P and the P floats of `curv` fewer
// (that buffer is then a 1-float placeholder and is not touched).
@compute @workgroup_size(256)
fn adahessian_curv_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    var d = 0.0;
    if (step.update_curv != 0u) { d = abs(z[i] * r_theta[i]); }
    adahessian_update(i, d);
}

@compute @workgroup_size(256)
fn sophia_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let p = theta[i];
    let g = g_theta[i] * grad_scale();
    let m = step.beta1 * state[i] + (1.0 - step.beta1) * g;
    state[i] = m;
    var h = state[slice.n_params + i];
    if (step.update_curv != 0u) {
        h = step.beta2 * h + (1.0 - step.beta2) * curv[i];
        state[slice.n_params + i] = h;
    }
    let u = clamp((m / step.bias1) / max(step.gamma * h, step.eps), -1.0, 1.0);
    theta[i] = p - step.lr * u - step.lr * step.weight_decay * p;
}
