// sgd_step: PyTorch SGD (src/optim/sgd.rs). d = g + wd θ; with momentum μ: buf = d (t = 1) or
// μ buf + (1 − dampening) d, kept in state[i]; d = nesterov ? d + μ buf : buf;  θ −= lr d.

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
