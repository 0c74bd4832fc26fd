// Element-wise activations y = f(x) over a [B, n] node (n = layer.n_in = layer.n_out).
// With f' and f'' the first two derivatives at the pre-activation x:
//   fwd      y    = f(x)
//   tangent  t_y  = f'(x) t_x
//   bwd      g_x  = f'(x) g_y
//   rbwd     r_gx = f'(x) r_gy + f''(x) t_x g_y     (ReLU: f'' = 0, and t_x is not read)
// The per-element maths f, f′, f″ live in activation_math.wgsl (shared with the tiled dense
// kernels, which apply an adjacent activation in their epilogue: src/nn/network.rs).

// ---- entry points -------------------------------------------------------------------------

fn act_items() -> u32 { return batch.rows * layer.n_in; }
fn x_at(i: u32) -> f32 { return work[layer.x_off + i]; }
fn write_tangent(i: u32, d1: f32) { work[layer.t_y_off + i] = d1 * work[layer.t_x_off + i]; }
fn write_bwd(i: u32, d1: f32) { work[layer.g_x_off + i] = d1 * work[layer.g_y_off + i]; }
fn write_rbwd(i: u32, d1: f32, d2: f32) {
    work[layer.r_x_off + i] = d1 * work[layer.r_y_off + i] + d2 * work[layer.t_x_off + i] * work[layer.g_y_off + i];
}
// f″ ≡ 0 (ReLU): r_gx = f′ r_gy, and the input tangent is not read. It is not kept either: the
// arena lends its slot to other nodes once the tangent pass is done (src/nn/plan.rs)
fn write_rbwd_linear(i: u32, d1: f32) { work[layer.r_x_off + i] = d1 * work[layer.r_y_off + i]; }

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
    write_rbwd_linear(i, relu_d1(x_at(i)));
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

// ---- fused pairs (tiled sets): forward + tangent and backward + R-backward, each reading x once
// and evaluating f, f′, f″ together (act_eval: the same functions as above, so the same values).
// The code is a constant per entry point, so the switch in act_eval folds away.
fn fwd_tangent_at(i: u32, code: u32) {
    let a = act_eval(code, x_at(i));
    work[layer.y_off + i] = a.x;
    write_tangent(i, a.y);
}
// g_x first, then r_x: where r_x shares the input tangent's slot (src/nn/plan.rs), write_rbwd
// reads t_x[i] before it writes r_x[i], element by element as in the separate kernels
fn bwd_rbwd_at(i: u32, code: u32) {
    let a = act_eval(code, x_at(i));
    write_bwd(i, a.y);
    if (code == ACT_RELU) { write_rbwd_linear(i, a.y); } else { write_rbwd(i, a.y, a.z); }
}

@compute @workgroup_size(256)
fn relu_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    fwd_tangent_at(i, 2u);
}
@compute @workgroup_size(256)
fn relu_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    bwd_rbwd_at(i, 2u);
}
@compute @workgroup_size(256)
fn tanh_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    fwd_tangent_at(i, 3u);
}
@compute @workgroup_size(256)
fn tanh_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    bwd_rbwd_at(i, 3u);
}
@compute @workgroup_size(256)
fn sigmoid_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    fwd_tangent_at(i, 4u);
}
@compute @workgroup_size(256)
fn sigmoid_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    bwd_rbwd_at(i, 4u);
}
@compute @workgroup_size(256)
fn softplus_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    fwd_tangent_at(i, 5u);
}
@compute @workgroup_size(256)
fn softplus_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    bwd_rbwd_at(i, 5u);
}
@compute @workgroup_size(256)
fn gelu_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    fwd_tangent_at(i, 6u);
}
@compute @workgroup_size(256)
fn gelu_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg); if (i >= act_items()) { return; }
    bwd_rbwd_at(i, 6u);
}
