// 2-D pooling, NCHW, no padding, floor mode (PyTorch defaults), kernel (k_h, k_w), stride (s_h, s_w);
// c_in = c_out. Global average pooling is avg-pooling with the whole plane as the window.
// Max pooling (the argmax a, the first maximum in row-major window order, is saved by fwd as the
// in-plane index h·w_in + w in aux[b, c, oh, ow], the `side` binding at aux_off):
//   fwd      y = x[a],  tangent t_y = t_x[a],  bwd g_x[i] = Σ_{windows with a = i} g_y,  rbwd likewise with r_y
// Average pooling (linear, so its R-ops are itself):
//   fwd      y = mean_window x,  tangent t_y = mean_window t_x,  bwd g_x[i] = Σ_{windows ∋ i} g_y / (k_h k_w),  rbwd likewise
// bwd/rbwd gather over the few windows that contain an input: no atomics, deterministic; the fused
// *_bwd_rbwd kernels compute both from one walk over those windows (tiled sets).

fn px_index(b: u32, c: u32, h: u32, w: u32) -> u32 {
    return ((b * layer.c_in + c) * layer.h_in + h) * layer.w_in + w;
}
fn py_index(b: u32, c: u32, h: u32, w: u32) -> u32 {
    return ((b * layer.c_out + c) * layer.h_out + h) * layer.w_out + w;
}
fn pool_out_len() -> u32 { return batch.rows * layer.c_out * layer.h_out * layer.w_out; }
fn pool_in_len() -> u32 { return batch.rows * layer.c_in * layer.h_in * layer.w_in; }

struct Site { bc: u32, h: u32, w: u32, };   // bc = b·C + c
fn out_site(i: u32) -> Site {
    return Site(i / (layer.h_out * layer.w_out), (i / layer.w_out) % layer.h_out, i % layer.w_out);
}
fn in_site(i: u32) -> Site {
    return Site(i / (layer.h_in * layer.w_in), (i / layer.w_in) % layer.h_in, i % layer.w_in);
}

// first and one-past-last output rows (or columns) whose window covers input row `i`
fn covering(i: u32, k: u32, s: u32, n_out: u32) -> vec2<u32> {
    let first = select((i + s - k) / s, 0u, i + 1u < k);   // ceil((i − k + 1) / s), clamped at 0
    let last = min(i / s + 1u, n_out);
    return vec2<u32>(first, last);
}

@compute @workgroup_size(256)
fn maxpool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    maxpool_forward(i, false);
}

// forward and tangent in one pass (tiled sets): t_y = t_x at the argmax just found
@compute @workgroup_size(256)
fn maxpool_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    maxpool_forward(i, true);
}

fn maxpool_forward(i: u32, tangent: bool) {
    let o = out_site(i);
    let base = layer.x_off + o.bc * layer.h_in * layer.w_in;
    var best_at = (o.h * layer.stride_h) * layer.w_in + o.w * layer.stride_w;
    var best = work[base + best_at];
    for (var kh = 0u; kh < layer.k_h; kh++) {
        for (var kw = 0u; kw < layer.k_w; kw++) {
            let at = (o.h * layer.stride_h + kh) * layer.w_in + o.w * layer.stride_w + kw;
            let v = work[base + at];
            if (v > best) { best = v; best_at = at; }
        }
    }
    work[layer.y_off + i] = best;
    side[layer.aux_off + i] = f32(best_at);
    if (tangent) { work[layer.t_y_off + i] = work[layer.t_x_off + o.bc * layer.h_in * layer.w_in + best_at]; }
}

@compute @workgroup_size(256)
fn maxpool_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    let o = out_site(i);
    let at = u32(side[layer.aux_off + i]);
    work[layer.t_y_off + i] = work[layer.t_x_off + o.bc * layer.h_in * layer.w_in + at];
}

// Σ of the cotangents (g_y, and r_y with `both`) over the windows that contain input i: for max
// pooling only those whose argmax it is, for average pooling all of them, / the window's area.
// The index maths (divisions, which CPU adapters run lane by lane) is shared by the two sums.
fn pool_gather(i: u32, max: bool, both: bool) -> vec2<f32> {
    let p = in_site(i);
    let at = f32(p.h * layer.w_in + p.w);
    let rh = covering(p.h, layer.k_h, layer.stride_h, layer.h_out);
    let rw = covering(p.w, layer.k_w, layer.stride_w, layer.w_out);
    var acc = vec2<f32>();
    for (var oh = rh.x; oh < rh.y; oh++) {
        for (var ow = rw.x; ow < rw.y; ow++) {
            let o = (p.bc * layer.h_out + oh) * layer.w_out + ow;
            if (max && side[layer.aux_off + o] != at) { continue; }
            acc.x += work[layer.g_y_off + o];
            if (both) { acc.y += work[layer.r_y_off + o]; }
        }
    }
    if (max) { return acc; }
    return acc / f32(layer.k_h * layer.k_w);
}

@compute @workgroup_size(256)
fn maxpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    work[layer.g_x_off + i] = pool_gather(i, true, false).x;
}

@compute @workgroup_size(256)
fn maxpool_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    work[layer.r_x_off + i] = pool_gather(i, true, true).y;
}

// both cotangents in one pass over the windows (the backward + R-backward pass)
@compute @workgroup_size(256)
fn maxpool_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    let acc = pool_gather(i, true, true);
    work[layer.g_x_off + i] = acc.x;
    work[layer.r_x_off + i] = acc.y;
}

fn window_mean(i: u32, src_off: u32) -> f32 {
    let o = out_site(i);
    let base = src_off + o.bc * layer.h_in * layer.w_in;
    var acc = 0.0;
    for (var kh = 0u; kh < layer.k_h; kh++) {
        for (var kw = 0u; kw < layer.k_w; kw++) {
            acc += work[base + (o.h * layer.stride_h + kh) * layer.w_in + o.w * layer.stride_w + kw];
        }
    }
    return acc / f32(layer.k_h * layer.k_w);
}

@compute @workgroup_size(256)
fn avgpool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    work[layer.y_off + i] = window_mean(i, layer.x_off);
}

@compute @workgroup_size(256)
fn avgpool_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    work[layer.t_y_off + i] = window_mean(i, layer.t_x_off);
}

// forward and tangent in one pass (tiled sets): the same sums, sharing the window's index maths
@compute @workgroup_size(256)
fn avgpool_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_out_len()) { return; }
    let o = out_site(i);
    let base = o.bc * layer.h_in * layer.w_in;
    var acc = vec2<f32>();
    for (var kh = 0u; kh < layer.k_h; kh++) {
        for (var kw = 0u; kw < layer.k_w; kw++) {
            let at = base + (o.h * layer.stride_h + kh) * layer.w_in + o.w * layer.stride_w + kw;
            acc += vec2<f32>(work[layer.x_off + at], work[layer.t_x_off + at]);
        }
    }
    let mean = acc / f32(layer.k_h * layer.k_w);
    work[layer.y_off + i] = mean.x;
    work[layer.t_y_off + i] = mean.y;
}

@compute @workgroup_size(256)
fn avgpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    work[layer.g_x_off + i] = pool_gather(i, false, false).x;
}

@compute @workgroup_size(256)
fn avgpool_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    work[layer.r_x_off + i] = pool_gather(i, false, true).y;
}

// both cotangents in one pass over the windows (the backward + R-backward pass)
@compute @workgroup_size(256)
fn avgpool_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= pool_in_len()) { return; }
    let acc = pool_gather(i, false, true);
    work[layer.g_x_off + i] = acc.x;
    work[layer.r_x_off + i] = acc.y;
}

// ---- windows that tile the input exactly (stride = kernel, h_in = h_out·k_h, w_in = w_out·k_w:
// the common 2 × 2 pooling of an even plane): every input lies in exactly one window, so the
// backward (+ R-backward) pass can run one invocation per window and write its k_h·k_w inputs,
// with the same values as the gathers above (one term per input) but a quarter of the index
// maths and contiguous loads (src/nn/pool.rs picks these kernels only for such geometries).
fn pool_tiling_backward(i: u32, max: bool, r_op: bool) {
    if (i >= pool_out_len()) { return; }
    let o = out_site(i);
    let base = o.bc * layer.h_in * layer.w_in;
    let g = work[layer.g_y_off + i];
    let r = select(0.0, work[layer.r_y_off + i], r_op);
    let arg = select(0u, u32(side[layer.aux_off + i]), max);
    let area = f32(layer.k_h * layer.k_w);
    for (var kh = 0u; kh < layer.k_h; kh++) {
        for (var kw = 0u; kw < layer.k_w; kw++) {
            let at = (o.h * layer.stride_h + kh) * layer.w_in + o.w * layer.stride_w + kw;
            var gx = g / area;
            var rx = r / area;
            if (max) {
                gx = select(0.0, g, at == arg);
                rx = select(0.0, r, at == arg);
            }
            work[layer.g_x_off + base + at] = gx;
            if (r_op) { work[layer.r_x_off + base + at] = rx; }
        }
    }
}

@compute @workgroup_size(256)
fn maxpool_tiling_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pool_tiling_backward(item_index(gid, nwg), true, false);
}

@compute @workgroup_size(256)
fn maxpool_tiling_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pool_tiling_backward(item_index(gid, nwg), true, true);
}

@compute @workgroup_size(256)
fn avgpool_tiling_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pool_tiling_backward(item_index(gid, nwg), false, false);
}

@compute @workgroup_size(256)
fn avgpool_tiling_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pool_tiling_backward(item_index(gid, nwg), false, true);
}
