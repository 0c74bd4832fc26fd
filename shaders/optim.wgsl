// What every optimizer's update shares (each method's own kernel is in shaders/optim/<name>.wgsl,
// appended to this module by the registry, src/optim/registry.rs). Each update is ONE dispatch
// over the flat arena of P parameters, element i independent, with m = state[i], v = state[P + i].
// g is the gradient times the global clipping factor min(1, c / (‖g‖ + 1e-6)) when c > 0
// (PyTorch's clip_grad_norm_), from grad_scale().

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
