// Conv2d, NCHW, weight W [c_out, c_in, k_h, k_w] (PyTorch layout), zero padding, stride:
//   y[b, co, oh, ow] = b[co] + Σ_{ci, kh, kw} W[co, ci, kh, kw] x[b, ci, oh·s_h + kh − p_h, ow·s_w + kw − p_w]
// Forward-over-reverse, with conv(x, W) the map above and convᵀ its adjoint:
//   fwd      y    = conv(x, W) + b
//   tangent  t_y  = conv(t_x, W) + conv(x, Z_W) + Z_b
//   bwd      g_W  = corr(g_y, x),  g_b = Σ_{b,oh,ow} g_y,  g_x = convᵀ(g_y, W)
//   rbwd     r_gW = corr(r_y, x) + corr(g_y, t_x),  r_gb = Σ r_y,  r_gx = convᵀ(r_y, W) + convᵀ(g_y, Z_W)
// fwd/tangent/bwd_x/rbwd_x loop over one receptive field per invocation; bwd_w/rbwd_w reduce over
// the batch and the output plane with one WORKGROUP per weight (256 threads, fixed tree order),
// so they fill a real GPU even when a layer has few weights.

fn x_index(b: u32, c: u32, h: u32, w: u32) -> u32 {
    return ((b * layer.c_in + c) * layer.h_in + h) * layer.w_in + w;
}
fn y_index(b: u32, c: u32, h: u32, w: u32) -> u32 {
    return ((b * layer.c_out + c) * layer.h_out + h) * layer.w_out + w;
}
fn w_index(co: u32, ci: u32, kh: u32, kw: u32) -> u32 {
    return ((co * layer.c_in + ci) * layer.k_h + kh) * layer.k_w + kw;
}
fn y_len() -> u32 { return batch.rows * layer.c_out * layer.h_out * layer.w_out; }
fn x_len() -> u32 { return batch.rows * layer.c_in * layer.h_in * layer.w_in; }

// Σ over the receptive field of output (b, co, oh, ow) of kernel[co, ...] · input[b, ...];
// `use_z` picks the probe Z_W instead of W, `src_off` the work offset of the input tensor.
fn receptive_sum(b: u32, co: u32, oh: u32, ow: u32, use_z: bool, src_off: u32) -> f32 {
    var acc = 0.0;
    for (var ci = 0u; ci < layer.c_in; ci++) {
        for (var kh = 0u; kh < layer.k_h; kh++) {
            let ih = i32(oh * layer.stride_h + kh) - i32(layer.pad_h);
            if (ih < 0 || ih >= i32(layer.h_in)) { continue; }
            for (var kw = 0u; kw < layer.k_w; kw++) {
                let iw = i32(ow * layer.stride_w + kw) - i32(layer.pad_w);
                if (iw < 0 || iw >= i32(layer.w_in)) { continue; }
                let wi = layer.w_off + w_index(co, ci, kh, kw);
                // (a branch, not a select: without curvature z is not P long and is never read)
                var k = theta[wi];
                if (use_z) { k = z[wi]; }
                acc += k * work[src_off + x_index(b, ci, u32(ih), u32(iw))];
            }
        }
    }
    return acc;
}

// Σ over every output (b, co, oh, ow) that reads input (b, ci, ih, iw) of kernel[co, ci, kh, kw] ·
// cot[b, co, oh, ow]: the adjoint of receptive_sum.
fn adjoint_sum(b: u32, ci: u32, ih: u32, iw: u32, use_z: bool, src_off: u32) -> f32 {
    var acc = 0.0;
    for (var co = 0u; co < layer.c_out; co++) {
        for (var kh = 0u; kh < layer.k_h; kh++) {
            let nh = i32(ih + layer.pad_h) - i32(kh);
            if (nh < 0 || nh % i32(layer.stride_h) != 0) { continue; }
            let oh = u32(nh) / layer.stride_h;
            if (oh >= layer.h_out) { continue; }
            for (var kw = 0u; kw < layer.k_w; kw++) {
                let nw = i32(iw + layer.pad_w) - i32(kw);
                if (nw < 0 || nw % i32(layer.stride_w) != 0) { continue; }
                let ow = u32(nw) / layer.stride_w;
                if (ow >= layer.w_out) { continue; }
                let wi = layer.w_off + w_index(co, ci, kh, kw);
                // (a branch, not a select: without curvature z is not P long and is never read)
                var k = theta[wi];
                if (use_z) { k = z[wi]; }
                acc += k * work[src_off + y_index(b, co, oh, ow)];
            }
        }
    }
    return acc;
}

struct Nchw { b: u32, c: u32, h: u32, w: u32, };
fn split_y(i: u32) -> Nchw {
    let w = i % layer.w_out;
    let h = (i / layer.w_out) % layer.h_out;
    let c = (i / (layer.w_out * layer.h_out)) % layer.c_out;
    return Nchw(i / (layer.w_out * layer.h_out * layer.c_out), c, h, w);
}
fn split_x(i: u32) -> Nchw {
    let w = i % layer.w_in;
    let h = (i / layer.w_in) % layer.h_in;
    let c = (i / (layer.w_in * layer.h_in)) % layer.c_in;
    return Nchw(i / (layer.w_in * layer.h_in * layer.c_in), c, h, w);
}

@compute @workgroup_size(256)
fn conv_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= y_len()) { return; }
    let o = split_y(i);
    work[layer.y_off + i] = theta[layer.b_off + o.c] + receptive_sum(o.b, o.c, o.h, o.w, false, layer.x_off);
}

@compute @workgroup_size(256)
fn conv_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= y_len()) { return; }
    let o = split_y(i);
    var acc = z[layer.b_off + o.c] + receptive_sum(o.b, o.c, o.h, o.w, true, layer.x_off);
    if (input_has_tangent()) {
        acc += receptive_sum(o.b, o.c, o.h, o.w, false, layer.t_x_off);
    }
    work[layer.t_y_off + i] = acc;
}

@compute @workgroup_size(256)
fn conv_bwd_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= x_len()) { return; }
    let p = split_x(i);
    work[layer.g_x_off + i] = adjoint_sum(p.b, p.c, p.h, p.w, false, layer.g_y_off);
}

@compute @workgroup_size(256)
fn conv_rbwd_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= x_len()) { return; }
    let p = split_x(i);
    work[layer.r_x_off + i] = adjoint_sum(p.b, p.c, p.h, p.w, false, layer.r_y_off)
        + adjoint_sum(p.b, p.c, p.h, p.w, true, layer.g_y_off);
}

var<workgroup> partial: array<f32, 256>;

// Tree-reduces `value` over the workgroup; the sum is valid in thread 0.
fn workgroup_sum(t: u32, value: f32) -> f32 {
    partial[t] = value;
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) { partial[t] += partial[t + stride]; }
        workgroupBarrier();
    }
    return partial[0];
}

// Σ over (b, oh, ow) of cot[b, co, oh, ow] · inp[b, ci, oh·s + kh − p, ow·s + kw − p], this thread's share
fn correlate_share(t: u32, co: u32, ci: u32, kh: u32, kw: u32, cot: u32, inp: u32) -> f32 {
    var acc = 0.0;
    let plane = layer.h_out * layer.w_out;
    for (var r = t; r < batch.rows * plane; r += WORKGROUP) {
        let b = r / plane;
        let oh = (r % plane) / layer.w_out;
        let ow = r % layer.w_out;
        let ih = i32(oh * layer.stride_h + kh) - i32(layer.pad_h);
        let iw = i32(ow * layer.stride_w + kw) - i32(layer.pad_w);
        if (ih < 0 || ih >= i32(layer.h_in) || iw < 0 || iw >= i32(layer.w_in)) { continue; }
        acc += work[cot + y_index(b, co, oh, ow)] * work[inp + x_index(b, ci, u32(ih), u32(iw))];
    }
    return acc;
}

// Σ over (b, oh, ow) of cot[b, co, oh, ow], this thread's share
fn plane_share(t: u32, co: u32, cot: u32) -> f32 {
    var acc = 0.0;
    let plane = layer.h_out * layer.w_out;
    for (var r = t; r < batch.rows * plane; r += WORKGROUP) {
        acc += work[cot + y_index(r / plane, co, (r % plane) / layer.w_out, r % layer.w_out)];
    }
    return acc;
}

struct Weight { co: u32, ci: u32, kh: u32, kw: u32, };
fn split_w(j: u32) -> Weight {
    let kw = j % layer.k_w;
    let kh = (j / layer.k_w) % layer.k_h;
    let ci = (j / (layer.k_w * layer.k_h)) % layer.c_in;
    return Weight(j / (layer.k_w * layer.k_h * layer.c_in), ci, kh, kw);
}
fn n_weights() -> u32 { return layer.c_out * layer.c_in * layer.k_h * layer.k_w; }

// one workgroup per weight j < n_weights, then one per bias
@compute @workgroup_size(256)
fn conv_bwd_w(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = group_index(wid, nwg);
    if (j >= n_weights() + layer.c_out) { return; }   // uniform per workgroup: safe before barriers
    let t = lid.x;
    var share = 0.0;
    if (j < n_weights()) {
        let k = split_w(j);
        share = correlate_share(t, k.co, k.ci, k.kh, k.kw, layer.g_y_off, layer.x_off);
    } else {
        share = plane_share(t, j - n_weights(), layer.g_y_off);
    }
    let total = workgroup_sum(t, share);
    if (t == 0u) {
        if (j < n_weights()) { g_theta[layer.w_off + j] = total; } else { g_theta[layer.b_off + j - n_weights()] = total; }
    }
}

@compute @workgroup_size(256)
fn conv_rbwd_w(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = group_index(wid, nwg);
    if (j >= n_weights() + layer.c_out) { return; }
    let t = lid.x;
    var share = 0.0;
    if (j < n_weights()) {
        let k = split_w(j);
        share = correlate_share(t, k.co, k.ci, k.kh, k.kw, layer.r_y_off, layer.x_off);
        if (input_has_tangent()) {
            share += correlate_share(t, k.co, k.ci, k.kh, k.kw, layer.g_y_off, layer.t_x_off);
        }
    } else {
        share = plane_share(t, j - n_weights(), layer.r_y_off);
    }
    let total = workgroup_sum(t, share);
    if (t == 0u) {
        if (j < n_weights()) { r_theta[layer.w_off + j] = total; } else { r_theta[layer.b_off + j - n_weights()] = total; }
    }
}

// The same two reductions with ONE INVOCATION per weight (then per bias) looping over the batch
// and plane serially: cheaper where barriers are expensive (CPU adapters) or the reduction is
// short; src/nn/network.rs picks the variant per layer.
fn serial_sum(j: u32, cot: u32, inp: u32) -> f32 {
    var acc = 0.0;
    if (j < n_weights()) {
        let k = split_w(j);
        for (var t = 0u; t < WORKGROUP; t++) { acc += correlate_share(t, k.co, k.ci, k.kh, k.kw, cot, inp); }
    } else {
        for (var t = 0u; t < WORKGROUP; t++) { acc += plane_share(t, j - n_weights(), cot); }
    }
    return acc;
}

@compute @workgroup_size(256)
fn conv_bwd_w_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= n_weights() + layer.c_out) { return; }
    let total = serial_sum(j, layer.g_y_off, layer.x_off);
    if (j < n_weights()) { g_theta[layer.w_off + j] = total; } else { g_theta[layer.b_off + j - n_weights()] = total; }
}

@compute @workgroup_size(256)
fn conv_rbwd_w_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = item_index(gid, nwg);
    if (j >= n_weights() + layer.c_out) { return; }
    var total = serial_sum(j, layer.r_y_off, layer.x_off);
    if (j < n_weights() && input_has_tangent()) { total += serial_sum(j, layer.g_y_off, layer.t_x_off); }
    if (j < n_weights()) { r_theta[layer.w_off + j] = total; } else { r_theta[layer.b_off + j - n_weights()] = total; }
}
