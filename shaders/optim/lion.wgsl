// lion_step: Lion (src/optim/lion.rs; Chen et al. 2023). m = state[i];
// c = β1 m + (1 − β1) g;  θ ← θ (1 − lr wd) − lr sign(c);  m ← β2 m + (1 − β2) g.
// WGSL's sign(0) is 0, as torch.sign.

@compute @workgroup_size(256)
fn lion_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let g = g_theta[i] * grad_scale();
    let m = state[i];
    let c = step.beta1 * m + (1.0 - step.beta1) * g;
    theta[i] = theta[i] * (1.0 - step.lr * step.weight_decay) - step.lr * sign(c);
    state[i] = step.beta2 * m + (1.0 - step.beta2) * g;
}
