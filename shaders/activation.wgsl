// Element-wise activations y = f(x) over a [B, n] node (n = layer.n_in = layer.n_out).
// With f' and f'' the first two derivatives at the pre-activation x:
//   fwd      y    = f(x)
//   tangent  t_y  = f'(x) t_x
//   bwd      g_x  = f'(x) g_y
//   rbwd     r_gx = f'(x) r_gy + f''(x) t_x g_y     (ReLU: f'' = 0, and t_x is not read)
// The per-element maths f, f′, f″ live in activation_math.wgsl (shared with the tiled dense
// kernels, which apply an adjacent activation in their epilogue: src/nn/network.rs).

// ---- entry points -------------------------------------------------------------------------

// Each invocation takes QUAD consecutive elements (shaders/common.wgsl) and reads the layer's
// offsets once for them (`Act`; `layer` is a storage buffer, and on CPU adapters each read of it
// is a loop over the lanes).
struct Act { len: u32, x: u32, y: u32, t_x: u32, t_y: u32, g_x: u32, g_y: u32, r_x: u32, r_y: u32, };
fn act() -> Act {
    return Act(batch.rows * layer.n_in, layer.x_off, layer.y_off, layer.t_x_off, layer.t_y_off, layer.g_x_off,
               layer.g_y_off, layer.r_x_off, layer.r_y_off);
}
fn x_at(o: Act, i: u32) -> f32 { return work[o.x + i]; }
fn write_tangent(o: Act, i: u32, d1: f32) { work[o.t_y + i] = d1 * work[o.t_x + i]; }
fn write_bwd(o: Act, i: u32, d1: f32) { work[o.g_x + i] = d1 * work[o.g_y + i]; }
fn write_rbwd(o: Act, i: u32, d1: f32, d2: f32) {
    work[o.r_x + i] = d1 * work[o.r_y + i] + d2 * work[o.t_x + i] * work[o.g_y + i];
}
// f″ ≡ 0 (ReLU): r_gx = f′ r_gy, and the input tangent is not read. It is not kept either: the
// arena lends its slot to other nodes once the tangent pass is done (src/nn/plan.rs)
fn write_rbwd_linear(o: Act, i: u32, d1: f32) { work[o.r_x + i] = d1 * work[o.r_y + i]; }

@compute @workgroup_size(256)
fn relu_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        work[o.y + i] = relu_f(x_at(o, i));
    }
}
@compute @workgroup_size(256)
fn relu_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_tangent(o, i, relu_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_bwd(o, i, relu_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn relu_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_rbwd_linear(o, i, relu_d1(x_at(o, i)));
    }
}

@compute @workgroup_size(256)
fn tanh_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        work[o.y + i] = tanh_f(x_at(o, i));
    }
}
@compute @workgroup_size(256)
fn tanh_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_tangent(o, i, tanh_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn tanh_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_bwd(o, i, tanh_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn tanh_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        let x = x_at(o, i);
        write_rbwd(o, i, tanh_d1(x), tanh_d2(x));
    }
}

@compute @workgroup_size(256)
fn sigmoid_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        work[o.y + i] = sigmoid_f(x_at(o, i));
    }
}
@compute @workgroup_size(256)
fn sigmoid_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_tangent(o, i, sigmoid_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn sigmoid_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_bwd(o, i, sigmoid_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn sigmoid_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        let x = x_at(o, i);
        write_rbwd(o, i, sigmoid_d1(x), sigmoid_d2(x));
    }
}

@compute @workgroup_size(256)
fn softplus_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        work[o.y + i] = softplus_f(x_at(o, i));
    }
}
@compute @workgroup_size(256)
fn softplus_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_tangent(o, i, softplus_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn softplus_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_bwd(o, i, softplus_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn softplus_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        let x = x_at(o, i);
        write_rbwd(o, i, softplus_d1(x), softplus_d2(x));
    }
}

@compute @workgroup_size(256)
fn gelu_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        work[o.y + i] = gelu_f(x_at(o, i));
    }
}
@compute @workgroup_size(256)
fn gelu_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_tangent(o, i, gelu_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn gelu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        write_bwd(o, i, gelu_d1(x_at(o, i)));
    }
}
@compute @workgroup_size(256)
fn gelu_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        let x = x_at(o, i);
        write_rbwd(o, i, gelu_d1(x), gelu_d2(x));
    }
}

// ---- fused pairs (tiled sets): forward + tangent and backward + R-backward, each reading x once
// and evaluating f, f′, f″ together (act_eval: the same functions as above, so the same values).
// The code is a constant per entry point, so the switch in act_eval folds away.
fn fwd_tangent_at(o: Act, i: u32, code: u32) {
    let a = act_eval(code, x_at(o, i));
    work[o.y + i] = a.x;
    write_tangent(o, i, a.y);
}
// g_x first, then r_x: where r_x shares the input tangent's slot (src/nn/plan.rs), write_rbwd
// reads t_x[i] before it writes r_x[i], element by element as in the separate kernels
fn bwd_rbwd_at(o: Act, i: u32, code: u32) {
    let a = act_eval(code, x_at(o, i));
    write_bwd(o, i, a.y);
    if (code == ACT_RELU) { write_rbwd_linear(o, i, a.y); } else { write_rbwd(o, i, a.y, a.z); }
}

@compute @workgroup_size(256)
fn relu_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        fwd_tangent_at(o, i, 2u);
    }
}
@compute @workgroup_size(256)
fn relu_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        bwd_rbwd_at(o, i, 2u);
    }
}
@compute @workgroup_size(256)
fn tanh_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        fwd_tangent_at(o, i, 3u);
    }
}
@compute @workgroup_size(256)
fn tanh_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        bwd_rbwd_at(o, i, 3u);
    }
}
@compute @workgroup_size(256)
fn sigmoid_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        fwd_tangent_at(o, i, 4u);
    }
}
@compute @workgroup_size(256)
fn sigmoid_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        bwd_rbwd_at(o, i, 4u);
    }
}
@compute @workgroup_size(256)
fn softplus_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        fwd_tangent_at(o, i, 5u);
    }
}
@compute @workgroup_size(256)
fn softplus_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        bwd_rbwd_at(o, i, 5u);
    }
}
@compute @workgroup_size(256)
fn gelu_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        fwd_tangent_at(o, i, 6u);
    }
}
@compute @workgroup_size(256)
fn gelu_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = act();
    let i0 = item_index(gid, nwg) * QUAD;
    for (var i = i0; i < min(i0 + QUAD, o.len); i++) {
        bwd_rbwd_at(o, i, 6u);
    }
}
