// adabelief_step: AdaBelief (src/optim/adabelief.rs; Zhuang et al. 2020, Algorithm 2, no
// rectification, decoupled decay). m = state[i], s = state[P + i];
// m = β1 m + (1 − β1) g;  s = β2 s + (1 − β2)(g − m)² + ε;
// θ ← θ (1 − lr wd) − lr (m / bias1) / (√(s / bias2) + ε).

@compute @workgroup_size(256)
fn adabelief_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let g = g_theta[i] * grad_scale();
    let m = step.beta1 * state[i] + (1.0 - step.beta1) * g;
    let belief = g - m;
    let s = step.beta2 * state[slice.n_params + i] + (1.0 - step.beta2) * belief * belief + step.eps;
    state[i] = m;
    state[slice.n_params + i] = s;
    let denom = sqrt(s / step.bias2) + step.eps;
    theta[i] = theta[i] * (1.0 - step.lr * step.weight_decay) - step.lr * (m / step.bias1) / denom;
}
