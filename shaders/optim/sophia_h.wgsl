// sophia_step: Sophia-H (src/optim/sophia_h.rs, ALGORITHM.md §2b). m = state[i]; h = state[P + i],
// an EMA of curv = mean z ⊙ Hz on curvature steps (not bias-corrected);
// θ ← θ − lr clip(m̂ / max(γ h, eps), −1, 1) − lr wd θ.

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
