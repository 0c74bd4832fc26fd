// The end of a residual block, y = x + s(skip): x (x_off, t_x_off, g_x_off, r_x_off) is the
// body's output, skip (pre_x_off, pre_t_off) the block's input, read through the `side` binding
// (the block input sits several nodes back in the arena), s the shortcut (identity, or He et
// al.'s option A: s(v)[n, c, i, j] = v[n, c − p, s·i, s·j] for p ≤ c < p + C_in, else 0, with
// s = stride_h, p = pad_h; c/h/w_in the block input's shape, c/h/w_out the output's; a flat
// block is C = D, H = W = 1). The reference is ShortcutGeom::apply / adjoint in src/nn/residual.rs.
//   fwd      y = x + s(skip)              tangent  t_y = t_x + s(t_skip)
//   bwd      g_x = g_y, g'_skip = sᵀ g_y   rbwd     r_x = r_y, r'_skip = sᵀ r_y
// The block input has a second consumer (the body's first layer), whose backward writes its
// cotangent g_skip; this layer writes its share into a second slot (pre_g_off, pre_r_off, in
// `side`), and fanout_sum / fanout_sum_r add that slot in after the body's first layer has run
// (both run before anything reads g_skip). sᵀ is a gather: each input element has at most one
// output.

const FLAG_SKIP_HAS_TANGENT: u32 = 4u;

// the block-input element option A copies output element i from, or -1 for a zero channel
fn shortcut_source(i: u32) -> i32 {
    let plane_out = layer.h_out * layer.w_out;
    let n = i / (layer.c_out * plane_out);
    let c = (i / plane_out) % layer.c_out;
    let h = (i / layer.w_out) % layer.h_out;
    let w = i % layer.w_out;
    if (c < layer.pad_h || c >= layer.pad_h + layer.c_in) { return -1; }
    let s = layer.stride_h;
    return i32(((n * layer.c_in + c - layer.pad_h) * layer.h_in + s * h) * layer.w_in + s * w);
}

// the output element that block-input element j is copied to, or -1 if s drops it
fn shortcut_target(j: u32) -> i32 {
    let plane_in = layer.h_in * layer.w_in;
    let n = j / (layer.c_in * plane_in);
    let c = (j / plane_in) % layer.c_in;
    let h = (j / layer.w_in) % layer.h_in;
    let w = j % layer.w_in;
    let s = layer.stride_h;
    if (h % s != 0u || w % s != 0u || h / s >= layer.h_out || w / s >= layer.w_out) { return -1; }
    return i32(((n * layer.c_out + c + layer.pad_h) * layer.h_out + h / s) * layer.w_out + w / s);
}

fn add_out_len() -> u32 { return batch.rows * layer.n_out; }
fn add_in_len() -> u32 { return batch.rows * layer.n_in; }

@compute @workgroup_size(256)
fn add_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= add_out_len()) { return; }
    let src = shortcut_source(i);
    var s = 0.0;
    if (src >= 0) { s = side[layer.pre_x_off + u32(src)]; }
    work[layer.y_off + i] = work[layer.x_off + i] + s;
}

@compute @workgroup_size(256)
fn add_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= add_out_len()) { return; }
    var t = 0.0;
    if (input_has_tangent()) { t = work[layer.t_x_off + i]; }
    let src = shortcut_source(i);
    if (src >= 0 && (layer.flags & FLAG_SKIP_HAS_TANGENT) != 0u) { t += side[layer.pre_t_off + u32(src)]; }
    work[layer.t_y_off + i] = t;
}

// g_x = g_y (the body's output)
@compute @workgroup_size(256)
fn add_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= add_out_len()) { return; }
    work[layer.g_x_off + i] = work[layer.g_y_off + i];
}

// r_x = r_y
@compute @workgroup_size(256)
fn add_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= add_out_len()) { return; }
    work[layer.r_x_off + i] = work[layer.r_y_off + i];
}

// g'_skip = sᵀ g_y, one invocation per block-input element
@compute @workgroup_size(256)
fn add_bwd_skip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= add_in_len()) { return; }
    let dst = shortcut_target(j);
    var g = 0.0;
    if (dst >= 0) { g = work[layer.g_y_off + u32(dst)]; }
    side[layer.pre_g_off + j] = g;
}

// r'_skip = sᵀ r_y
@compute @workgroup_size(256)
fn add_rbwd_skip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= add_in_len()) { return; }
    let dst = shortcut_target(j);
    var r = 0.0;
    if (dst >= 0) { r = work[layer.r_y_off + u32(dst)]; }
    side[layer.pre_r_off + j] = r;
}

// g_skip += g'_skip over the block input's n_in features (x_off-less: g_x_off is g_skip here; the
// sums have their own meta, whose window is the block input's node: both slots are in `work`)
@compute @workgroup_size(256)
fn fanout_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= add_in_len()) { return; }
    work[layer.g_x_off + j] += work[layer.pre_g_off + j];
}

// r_skip += r'_skip
@compute @workgroup_size(256)
fn fanout_sum_r(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= add_in_len()) { return; }
    work[layer.r_x_off + j] += work[layer.pre_r_off + j];
}
