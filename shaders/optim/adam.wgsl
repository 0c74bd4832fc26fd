// adam_step: PyTorch Adam (L2: g += wd θ) or AdamW (STEP_DECOUPLED: θ ← θ (1 − lr wd))
// (src/optim/adam.rs). m = state[i], v = state[P + i], EMAs of g and g²;
// θ −= lr/bias1 · m / (√v / √bias2 + eps).

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
