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

// Each invocation takes QUAD consecutive elements (shaders/common.wgsl): the shortcut's
// geometry and the offsets are read from `layer` once, and an element's (n, c, h, w) is
// decomposed once per invocation and then stepped (on CPU adapters each read of `layer` and each
// integer division by one of its values is a loop over the lanes; per element, they made the
// option-A kernels 4–5× a copy).
struct AddGeom { c_in: u32, h_in: u32, w_in: u32, c_out: u32, h_out: u32, w_out: u32, pad: u32, stride: u32, };
fn add_geom() -> AddGeom {
    return AddGeom(layer.c_in, layer.h_in, layer.w_in, layer.c_out, layer.h_out, layer.w_out, layer.pad_h, layer.stride_h);
}
// element (n, c, h, w) of a [rows, C, H, W] tensor, and the next one in memory order
struct Nchw { n: u32, c: u32, h: u32, w: u32, };
fn nchw(i: u32, c: u32, h: u32, w: u32) -> Nchw {
    let plane = h * w;
    return Nchw(i / (c * plane), (i / plane) % c, (i / w) % h, i % w);
}
fn nchw_next(p: Nchw, c: u32, h: u32, w: u32) -> Nchw {
    var q = p;
    q.w += 1u;
    if (q.w == w) { q.w = 0u; q.h += 1u; }
    if (q.h == h) { q.h = 0u; q.c += 1u; }
    if (q.c == c) { q.c = 0u; q.n += 1u; }
    return q;
}

// the block-input element option A copies output element p from, or -1 for a zero channel
fn shortcut_source(g: AddGeom, p: Nchw) -> i32 {
    if (p.c < g.pad || p.c >= g.pad + g.c_in) { return -1; }
    return i32(((p.n * g.c_in + p.c - g.pad) * g.h_in + g.stride * p.h) * g.w_in + g.stride * p.w);
}

// the output element that block-input element p is copied to, or -1 if s drops it
fn shortcut_target(g: AddGeom, p: Nchw) -> i32 {
    let s = g.stride;
    if (p.h % s != 0u || p.w % s != 0u || p.h / s >= g.h_out || p.w / s >= g.w_out) { return -1; }
    return i32(((p.n * g.c_out + p.c + g.pad) * g.h_out + p.h / s) * g.w_out + p.w / s);
}

fn add_out_len() -> u32 { return batch.rows * layer.n_out; }
fn add_in_len() -> u32 { return batch.rows * layer.n_in; }

// y = x + s(skip) (or, with `tangent`, t_y = t_x + s(t_skip)) over this invocation's elements
fn add_forward(q: u32, tangent: bool) {
    let len = add_out_len();
    let i0 = q * QUAD;
    if (i0 >= len) { return; }
    let g = add_geom();
    let x_off = select(layer.x_off, layer.t_x_off, tangent);
    let y_off = select(layer.y_off, layer.t_y_off, tangent);
    let skip_off = select(layer.pre_x_off, layer.pre_t_off, tangent);
    let has_x = !tangent || input_has_tangent();
    let has_skip = !tangent || (layer.flags & FLAG_SKIP_HAS_TANGENT) != 0u;
    var p = nchw(i0, g.c_out, g.h_out, g.w_out);
    for (var i = i0; i < min(i0 + QUAD, len); i++) {
        var v = 0.0;
        if (has_x) { v = work[x_off + i]; }
        let src = shortcut_source(g, p);
        if (!tangent) {
            var s = 0.0;   // y = x + 0 in a zero channel, as the reference adds it
            if (src >= 0) { s = side[skip_off + u32(src)]; }
            v = v + s;
        } else if (src >= 0 && has_skip) {
            v += side[skip_off + u32(src)];
        }
        work[y_off + i] = v;
        p = nchw_next(p, g.c_out, g.h_out, g.w_out);
    }
}

@compute @workgroup_size(256)
fn add_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_forward(item_index(gid, nwg), false);
}

@compute @workgroup_size(256)
fn add_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_forward(item_index(gid, nwg), true);
}

// dst[i] = src[i] (+ dst[i] with `accumulate`) over this invocation's `len`-element share, both in work
fn add_copy(q: u32, len: u32, src: u32, dst: u32, accumulate: bool) {
    let i0 = q * QUAD;
    for (var i = i0; i < min(i0 + QUAD, len); i++) {
        var v = work[src + i];
        if (accumulate) { v += work[dst + i]; }
        work[dst + i] = v;
    }
}

// g_x = g_y (the body's output)
@compute @workgroup_size(256)
fn add_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_copy(item_index(gid, nwg), add_out_len(), layer.g_y_off, layer.g_x_off, false);
}

// r_x = r_y
@compute @workgroup_size(256)
fn add_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_copy(item_index(gid, nwg), add_out_len(), layer.r_y_off, layer.r_x_off, false);
}

// g'_skip = sᵀ v (v = g_y, or r_y for the R-backward) over this invocation's block-input elements
fn add_skip_adjoint(q: u32, v_off: u32, dst_off: u32) {
    let len = add_in_len();
    let j0 = q * QUAD;
    if (j0 >= len) { return; }
    let g = add_geom();
    var p = nchw(j0, g.c_in, g.h_in, g.w_in);
    for (var j = j0; j < min(j0 + QUAD, len); j++) {
        let dst = shortcut_target(g, p);
        var v = 0.0;
        if (dst >= 0) { v = work[v_off + u32(dst)]; }
        side[dst_off + j] = v;
        p = nchw_next(p, g.c_in, g.h_in, g.w_in);
    }
}

@compute @workgroup_size(256)
fn add_bwd_skip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_skip_adjoint(item_index(gid, nwg), layer.g_y_off, layer.pre_g_off);
}

// r'_skip = sᵀ r_y
@compute @workgroup_size(256)
fn add_rbwd_skip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_skip_adjoint(item_index(gid, nwg), layer.r_y_off, layer.pre_r_off);
}

// g_skip += g'_skip over the block input's n_in features (x_off-less: g_x_off is g_skip here; the
// sums have their own meta, whose window is the block input's node: both slots are in `work`)
@compute @workgroup_size(256)
fn fanout_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_copy(item_index(gid, nwg), add_in_len(), layer.pre_g_off, layer.g_x_off, true);
}

// r_skip += r'_skip
@compute @workgroup_size(256)
fn fanout_sum_r(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    add_copy(item_index(gid, nwg), add_in_len(), layer.pre_r_off, layer.r_x_off, true);
}
