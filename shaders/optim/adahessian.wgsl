// AdaHessian (src/optim/adahessian.rs, ALGORITHM.md §1): m = state[i] EMA of g; v = state[P + i]
// EMA of D²; θ ← θ − lr (m̂ / (v̂^(k/2) + eps) + wd θ). v takes D on curvature steps
// (step.update_curv), and at every step under the Fold rule (STEP_FOLD_EVERY_STEP: the kept D in
// curv, as davda54/timm); bias2 is computed on the host for the rule in use.

// The update of parameter i with estimate `d`, used when v takes it.
fn adahessian_update(i: u32, d: f32) {
    let p = theta[i];
    let g = g_theta[i] * grad_scale();
    let m = step.beta1 * state[i] + (1.0 - step.beta1) * g;
    state[i] = m;
    var v = state[slice.n_params + i];
    if (step.update_curv != 0u || (step.flags & STEP_FOLD_EVERY_STEP) != 0u) {
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

// The update with D from `curv` (written by curv_accumulate, curv_abs and curv_group_mean, and
// kept there between estimates under the Fold rule).
@compute @workgroup_size(256)
fn adahessian_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    adahessian_update(i, curv[i]);
}

// One probe, no spatial averaging, nothing kept across steps (the default for dense models):
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
