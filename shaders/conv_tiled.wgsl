// Conv2d as an implicit GEMM with register tiles: the same maths as conv.wgsl (read its header
// first), without materialising im2col. Every invocation owns a block of its output and keeps it
// in registers:
//   forward / tangent   8 output channels co × 8 output pixels (b, oh, ow)   K = (ci, kh, kw)
//                       (kernels 3 wide of column stride 1: × 8 columns of one output row,
//                       and input cotangents by the same row windows)
//   input cotangents    8 input channels ci × 8 input pixels (b, ih, iw)     K = (co, kh, kw)
//                       (8 columns of one row in one stride phase: only the live taps)
//   weight gradients    8 output channels co × 8 kernel taps (ci, kh, kw)    K = (b, oh, ow)
//                       (kernels 3 wide of column stride 1: × 3 kernel rows (ci, kh) of 3 taps)
// so each loaded weight feeds 8 pixels, each loaded activation 8 channels and, in the weight
// gradients, each loaded g_y 8 taps (far fewer loads than one output per invocation, and the
// receptive-field index maths is shared by the block).
// Fused pairs as in dense_tiled.wgsl: y with t_y, g_x with r_gx, ∇W with H z. The kernels of a
// fused pair also serve a lone tangent or R-backward pass: they recompute y (or g_x, ∇W) from
// unchanged inputs with the same code, so the rewritten values are bit-identical.
// Pixels past the end load a clamped index and are never stored; zero padding is a select.
// Order: a fixed order per output (bias first): forward and input cotangents walk the kernel taps
// outermost and the channels inside (the tap's masks and addresses are computed once for all
// channels), weight gradients walk the pixels in order within each split.

// Weights (and the weight gradients' g_y) are read packed (below): 4 channels to a vec4, so a
// tile's 8 weights of a tap are two loads, not eight.

// The scratch binding (shaders/layer_bindings.wgsl) as vec4s: the packings, and the weight
// gradients' split partials (floats, through side_get / side_set).
@group(0) @binding(8) var<storage, read_write> side4: array<vec4<f32>>;
fn side_get(i: u32) -> f32 { return side4[i >> 2u][i & 3u]; }
fn side_set(i: u32, v: f32) { side4[i >> 2u][i & 3u] = v; }

const CT: u32 = 4u;
// Pixels of the forward tile (two CT halves; `PIXEL_TILE` in src/nn/conv.rs), and columns of the
// input-cotangent tile (`Geometry::input_tiles_per_row`).
const PT: u32 = 8u;
const IT: u32 = 8u;
// Channels of the forward, input-cotangent and weight-gradient tiles (two CT halves; `CHANNEL_TILE` in
// src/nn/conv.rs). On CPU adapters every load is one scalar access per lane, so loads, not
// multiply-adds, bound these kernels: a taller tile loads less per product.
const WT: u32 = 8u;
// Columns (kernel taps and the bias) of the weight-gradient tile (two CT halves;
// `WEIGHT_TAP_TILE` in src/nn/conv.rs).
const JT: u32 = 8u;
const CLANE: vec4<u32> = vec4<u32>(0u, 1u, 2u, 3u);

fn ctiles(n: u32) -> u32 { return (n + CT - 1u) / CT; }
fn cclamp(start: u32, n: u32) -> vec4<u32> { return min(vec4<u32>(start) + CLANE, vec4<u32>(n - 1u)); }
fn cwork4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(work[i.x], work[i.y], work[i.z], work[i.w]); }
fn ctheta4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(theta[i.x], theta[i.y], theta[i.z], theta[i.w]); }
fn cz4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(z[i.x], z[i.y], z[i.z], z[i.w]); }

// ---------------------------------------------------------------- packed weights
// On CPU adapters (lavapipe, SwiftShader) a storage load whose address differs between lanes is
// a loop over the lanes, and a vec4 load is one such loop where four scalar loads are four
// (BENCHMARKS.md, "Packed conv weights"). The tiles read 8 channels of one tap at a time,
// which W's layout [c_out, c_in, k_h, k_w] keeps `taps` (forward) or k_h·k_w (input cotangents)
// apart. So each pass first copies W (and Z_W for the tangent and R passes) into scratch with
// the 4 channels of one tap side by side, zero past the layer's channels:
//   forward           [2·⌈c_out/8⌉ groups][taps]              (W[4g..4g+3, k]),  k = (ci, kh, kw)
//   input cotangents  [2·⌈c_in/8⌉ groups][c_out][k_h·k_w]     (W[co, 4g..4g+3, kh, kw])
// at pack_off (Z_W's at pack_z_off), in vec4s; the same values the tiles loaded one by one, so
// every sum is unchanged to the bit. (The copy is c_out·taps values; a tile pass reads each of
// them batch·plane/4 times.) The weight gradients read no weights but g_y (and r_y) for 8
// output channels of one pixel, a plane apart: their passes pack g_y the same way,
// [rows][2·⌈c_out/8⌉ groups][h_out·w_out] (g_y[b, 4g..4g+3, oh, ow]), and each value packed once
// is read by all ⌈(taps + 1)/8⌉ column tiles. One pass uses one packing at a time (the backward
// packs g_y for the weight gradient, then W over it for the input cotangents), so the packings
// share the region. r_y is not packed: a second batch-sized copy would take AdaHessian's memory
// past 1.5× Adam's on ResNet-20 at small batches (tests/memory.rs). Sizes: `PackedWeights` in
// src/nn/conv.rs.
fn conv_fwd_pack_len() -> u32 { return 2u * ((layer.c_out + WT - 1u) / WT) * layer.c_in * layer.k_h * layer.k_w; }
fn conv_bwd_pack_len() -> u32 { return 2u * ((layer.c_in + WT - 1u) / WT) * layer.c_out * layer.k_h * layer.k_w; }
fn conv_out_groups() -> u32 { return 2u * ((layer.c_out + WT - 1u) / WT); }

@compute @workgroup_size(256)
fn conv_pack_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_pack(item_index(gid, nwg), false, false);
}
@compute @workgroup_size(256)
fn conv_pack_fwd_z(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_pack(item_index(gid, nwg), false, true);
}
@compute @workgroup_size(256)
fn conv_pack_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_pack(item_index(gid, nwg), true, false);
}
@compute @workgroup_size(256)
fn conv_pack_bwd_z(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_pack(item_index(gid, nwg), true, true);
}

@compute @workgroup_size(256)
fn conv_pack_dy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    let plane = layer.h_out * layer.w_out;
    let groups = conv_out_groups();
    if (idx >= batch.rows * groups * plane) { return; }
    let b = idx / (groups * plane);
    let co = ((idx / plane) % groups) * CT + CLANE;
    let live = co < vec4<u32>(layer.c_out);
    let at = (b * layer.c_out + min(co, vec4<u32>(layer.c_out - 1u))) * plane + idx % plane;
    side4[layer.pack_off / 4u + idx] = select(vec4<f32>(), cwork4(layer.g_y_off + at), live);
}

fn conv_pack(idx: u32, input_layout: bool, with_z: bool) {
    let kk = layer.k_h * layer.k_w;
    let taps = layer.c_in * kk;
    var at: vec4<u32>;
    var live: vec4<bool>;
    if (input_layout) {
        if (idx >= conv_bwd_pack_len()) { return; }
        let per_group = layer.c_out * kk;
        let ci = (idx / per_group) * CT + CLANE;
        let co = (idx % per_group) / kk;
        live = ci < vec4<u32>(layer.c_in);
        at = co * taps + min(ci, vec4<u32>(layer.c_in - 1u)) * kk + idx % kk;
    } else {
        if (idx >= conv_fwd_pack_len()) { return; }
        let co = (idx / taps) * CT + CLANE;
        live = co < vec4<u32>(layer.c_out);
        at = min(co, vec4<u32>(layer.c_out - 1u)) * taps + idx % taps;
    }
    side4[layer.pack_off / 4u + idx] = select(vec4<f32>(), ctheta4(layer.w_off + at), live);
    if (with_z) {
        side4[layer.pack_z_off / 4u + idx] = select(vec4<f32>(), cz4(layer.w_off + at), live);
    }
}

// Four pixels of a [rows, C, H, W] tensor, decomposed once per invocation.
struct Pixels { b: vec4<u32>, h: vec4<u32>, w: vec4<u32>, };
fn pixels(start: u32, count: u32, height: u32, width: u32) -> Pixels {
    let p = cclamp(start, count);
    let plane = height * width;
    return Pixels(p / plane, (p % plane) / width, p % width);
}

// Stores a [4 channels × 4 pixels] tile (a_c: channel c0 + c, its components pixels p0..p0+3) of
// a [rows, C, H, W] tensor at work offset `off`. (Written out: a dynamically indexed local array
// costs lavapipe a stack round trip per element.)
fn store_channel(off: u32, ch: u32, channels: u32, p0: u32, count: u32, plane: u32, v: vec4<f32>) {
    if (ch >= channels) { return; }
    for (var l = 0u; l < CT; l++) {
        let p = p0 + l;
        if (p >= count) { return; }
        let value = select(select(select(v.w, v.z, l == 2u), v.y, l == 1u), v.x, l == 0u);
        work[off + ((p / plane) * channels + ch) * plane + p % plane] = value;
    }
}
fn store_pixels(off: u32, c0: u32, channels: u32, p0: u32, count: u32, height: u32, width: u32,
                a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    let plane = height * width;
    store_channel(off, c0, channels, p0, count, plane, a0);
    store_channel(off, c0 + 1u, channels, p0, count, plane, a1);
    store_channel(off, c0 + 2u, channels, p0, count, plane, a2);
    store_channel(off, c0 + 3u, channels, p0, count, plane, a3);
}

// ---------------------------------------------------------------- forward (and tangent)

// y[b, co, oh, ow] = b[co] + Σ_{ci, kh, kw} W[co, ci, kh, kw] x[b, ci, oh·s + kh − p, ow·s + kw − p]
@compute @workgroup_size(256)
fn conv_fwd_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_forward(item_index(gid, nwg), false);
}

// y as above and t_y = Z_b + conv(x, Z_W) + conv(t_x, W), reading x, t_x, W and Z_W once.
@compute @workgroup_size(256)
fn conv_fwd_tangent_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_forward(item_index(gid, nwg), true);
}

// The forward tile is 8 output channels (halves a, b) × 8 pixels (halves A, B of 4): each tap's
// 8 loaded x (and t_x) feed 8 channels and its 8 weights are two packed vec4 loads, 10 loads for
// 64 products (20 for 192 with the tangent), where 8 × 4 tiles took 6 for 32 (12 for 96) and
// unpacked weights 12 (24). Channel tiles run fastest. The accumulators outnumber the CPU's
// vector registers and spill to the stack: a stack access is one vector instruction, a storage
// load on a CPU adapter a loop over the lanes.
fn conv_pixel_tiles(count: u32) -> u32 { return (count + PT - 1u) / PT; }

// A forward tile's bias b (and with the tangent z_b) for its channel halves a and b. (z only in
// the tangent: a network without curvature has no z of length P.)
struct ForwardBias { a: vec4<f32>, b: vec4<f32>, z_a: vec4<f32>, z_b: vec4<f32>, };
fn forward_bias(co_a: vec4<u32>, co_b: vec4<u32>, tangent: bool) -> ForwardBias {
    var f = ForwardBias(ctheta4(layer.b_off + co_a), ctheta4(layer.b_off + co_b), vec4<f32>(), vec4<f32>());
    if (tangent) {
        f.z_a = cz4(layer.b_off + co_a);
        f.z_b = cz4(layer.b_off + co_b);
    }
    return f;
}

fn conv_forward(idx: u32, tangent: bool) {
    let count = batch.rows * layer.h_out * layer.w_out;
    let tco = (layer.c_out + WT - 1u) / WT;
    if (idx >= tco * conv_pixel_tiles(count)) { return; }
    let c0 = (idx % tco) * WT;
    let p0 = (idx / tco) * PT;
    let qa = pixels(p0, count, layer.h_out, layer.w_out);
    let qb = pixels(p0 + CT, count, layer.h_out, layer.w_out);
    let base_ha = vec4<i32>(qa.h * layer.stride_h) - i32(layer.pad_h);
    let base_wa = vec4<i32>(qa.w * layer.stride_w) - i32(layer.pad_w);
    let base_hb = vec4<i32>(qb.h * layer.stride_h) - i32(layer.pad_h);
    let base_wb = vec4<i32>(qb.w * layer.stride_w) - i32(layer.pad_w);
    let in_plane = layer.h_in * layer.w_in;
    let x_img_a = qa.b * layer.c_in * in_plane;
    let x_img_b = qb.b * layer.c_in * in_plane;
    let taps = layer.c_in * layer.k_h * layer.k_w;
    let co_a = cclamp(c0, layer.c_out);
    let co_b = cclamp(c0 + CT, layer.c_out);
    // the tile's two packed channel groups: a at w_a + k, b at w_a + taps + k (Z_W's at z_a)
    let w_a = layer.pack_off / 4u + (c0 / CT) * taps;
    let z_a = layer.pack_z_off / 4u + (c0 / CT) * taps;
    let has_t = tangent && input_has_tangent();
    let bias = forward_bias(co_a, co_b, tangent);
    let bias_a = bias.a;
    let bias_b = bias.b;
    let zb_a = bias.z_a;
    let zb_b = bias.z_b;
    // y[c] / t[c]: channel c0 + c % 8 of pixel half A (c < 8) or B (c ≥ 8), its 4 pixels in the
    // components
    var y0 = vec4<f32>(bias_a.x); var y1 = vec4<f32>(bias_a.y); var y2 = vec4<f32>(bias_a.z); var y3 = vec4<f32>(bias_a.w);
    var y4 = vec4<f32>(bias_b.x); var y5 = vec4<f32>(bias_b.y); var y6 = vec4<f32>(bias_b.z); var y7 = vec4<f32>(bias_b.w);
    var y8 = vec4<f32>(bias_a.x); var y9 = vec4<f32>(bias_a.y); var y10 = vec4<f32>(bias_a.z); var y11 = vec4<f32>(bias_a.w);
    var y12 = vec4<f32>(bias_b.x); var y13 = vec4<f32>(bias_b.y); var y14 = vec4<f32>(bias_b.z); var y15 = vec4<f32>(bias_b.w);
    var t0 = vec4<f32>(zb_a.x); var t1 = vec4<f32>(zb_a.y); var t2 = vec4<f32>(zb_a.z); var t3 = vec4<f32>(zb_a.w);
    var t4 = vec4<f32>(zb_b.x); var t5 = vec4<f32>(zb_b.y); var t6 = vec4<f32>(zb_b.z); var t7 = vec4<f32>(zb_b.w);
    var t8 = vec4<f32>(zb_a.x); var t9 = vec4<f32>(zb_a.y); var t10 = vec4<f32>(zb_a.z); var t11 = vec4<f32>(zb_a.w);
    var t12 = vec4<f32>(zb_b.x); var t13 = vec4<f32>(zb_b.y); var t14 = vec4<f32>(zb_b.z); var t15 = vec4<f32>(zb_b.w);
    // taps outermost: the padding masks and addresses of a tap are the same for every input
    // channel, so they are computed once per tap, not per multiply-add (order: kh, kw, ci)
    let kk = layer.k_h * layer.k_w;
    let h_in = vec4<i32>(i32(layer.h_in));
    let w_in = vec4<i32>(i32(layer.w_in));
    // the layer's fields read once: `layer` is a storage buffer, and on CPU adapters each read
    // of it inside the loops would be a load per lane per iteration
    let c_in = layer.c_in;
    let x_off = layer.x_off;
    let t_x_off = layer.t_x_off;
    for (var kh = 0u; kh < layer.k_h; kh++) {
        let iha = base_ha + i32(kh);
        let ihb = base_hb + i32(kh);
        let ok_ha = (iha >= vec4<i32>(0)) & (iha < h_in);
        let ok_hb = (ihb >= vec4<i32>(0)) & (ihb < h_in);
        let row_a = x_img_a + vec4<u32>(clamp(iha, vec4<i32>(0), h_in - 1)) * layer.w_in;
        let row_b = x_img_b + vec4<u32>(clamp(ihb, vec4<i32>(0), h_in - 1)) * layer.w_in;
        for (var kw = 0u; kw < layer.k_w; kw++) {
            let iwa = base_wa + i32(kw);
            let iwb = base_wb + i32(kw);
            let ok_a = ok_ha & (iwa >= vec4<i32>(0)) & (iwa < w_in);
            let ok_b = ok_hb & (iwb >= vec4<i32>(0)) & (iwb < w_in);
            var at_a = row_a + vec4<u32>(clamp(iwa, vec4<i32>(0), w_in - 1));
            var at_b = row_b + vec4<u32>(clamp(iwb, vec4<i32>(0), w_in - 1));
            var k = kh * layer.k_w + kw;
            for (var ci = 0u; ci < c_in; ci++) {
                let xa = select(vec4<f32>(), cwork4(x_off + at_a), ok_a);
                let xb = select(vec4<f32>(), cwork4(x_off + at_b), ok_b);
                let wa = side4[w_a + k];
                let wb = side4[w_a + taps + k];
                y0 += wa.x * xa; y1 += wa.y * xa; y2 += wa.z * xa; y3 += wa.w * xa;
                y4 += wb.x * xa; y5 += wb.y * xa; y6 += wb.z * xa; y7 += wb.w * xa;
                y8 += wa.x * xb; y9 += wa.y * xb; y10 += wa.z * xb; y11 += wa.w * xb;
                y12 += wb.x * xb; y13 += wb.y * xb; y14 += wb.z * xb; y15 += wb.w * xb;
                if (tangent) {
                    let za = side4[z_a + k];
                    let zb = side4[z_a + taps + k];
                    t0 += za.x * xa; t1 += za.y * xa; t2 += za.z * xa; t3 += za.w * xa;
                    t4 += zb.x * xa; t5 += zb.y * xa; t6 += zb.z * xa; t7 += zb.w * xa;
                    t8 += za.x * xb; t9 += za.y * xb; t10 += za.z * xb; t11 += za.w * xb;
                    t12 += zb.x * xb; t13 += zb.y * xb; t14 += zb.z * xb; t15 += zb.w * xb;
                    if (has_t) {
                        let txa = select(vec4<f32>(), cwork4(t_x_off + at_a), ok_a);
                        let txb = select(vec4<f32>(), cwork4(t_x_off + at_b), ok_b);
                        t0 += wa.x * txa; t1 += wa.y * txa; t2 += wa.z * txa; t3 += wa.w * txa;
                        t4 += wb.x * txa; t5 += wb.y * txa; t6 += wb.z * txa; t7 += wb.w * txa;
                        t8 += wa.x * txb; t9 += wa.y * txb; t10 += wa.z * txb; t11 += wa.w * txb;
                        t12 += wb.x * txb; t13 += wb.y * txb; t14 += wb.z * txb; t15 += wb.w * txb;
                    }
                }
                at_a += vec4<u32>(in_plane);
                at_b += vec4<u32>(in_plane);
                k += kk;
            }
        }
    }
    store_pixels(layer.y_off, c0, layer.c_out, p0, count, layer.h_out, layer.w_out, y0, y1, y2, y3);
    store_pixels(layer.y_off, c0 + CT, layer.c_out, p0, count, layer.h_out, layer.w_out, y4, y5, y6, y7);
    store_pixels(layer.y_off, c0, layer.c_out, p0 + CT, count, layer.h_out, layer.w_out, y8, y9, y10, y11);
    store_pixels(layer.y_off, c0 + CT, layer.c_out, p0 + CT, count, layer.h_out, layer.w_out, y12, y13, y14, y15);
    if (tangent) {
        store_pixels(layer.t_y_off, c0, layer.c_out, p0, count, layer.h_out, layer.w_out, t0, t1, t2, t3);
        store_pixels(layer.t_y_off, c0 + CT, layer.c_out, p0, count, layer.h_out, layer.w_out, t4, t5, t6, t7);
        store_pixels(layer.t_y_off, c0, layer.c_out, p0 + CT, count, layer.h_out, layer.w_out, t8, t9, t10, t11);
        store_pixels(layer.t_y_off, c0 + CT, layer.c_out, p0 + CT, count, layer.h_out, layer.w_out, t12, t13, t14, t15);
    }
}

// ---------------------------------------------------------------- forward, 3-wide kernels of stride 1

// The same y and t_y for kernels 3 wide with a column stride of 1 (the ResNets' 3 × 3 convs but
// their downsampling ones), from tiles of 8 output channels × 8 columns of one output row
// (b, oh, ow0..ow0+7): the three taps of a kernel row read the same 10 input columns shifted by
// one, so each (kh, ci) loads those 10 values (and 10 of t_x) once for its three taps, where the
// pixel tiles above load 24 (`Geometry::by_row_windows`; 20 loads instead of 48 per 3 taps
// with the tangent, W's and Z_W's 12 vec4s unchanged). Order per output: bias, then kh, ci, kw.
// A row's last tile may be partial; its columns past w_out are never stored.
@compute @workgroup_size(256)
fn conv_fwd_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_forward_rows(item_index(gid, nwg), false);
}

@compute @workgroup_size(256)
fn conv_fwd_tangent_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_forward_rows(item_index(gid, nwg), true);
}

fn conv_output_row_tiles() -> u32 { return (layer.w_out + PT - 1u) / PT; }

// A window's 10 columns first, first + 1, .. of a row `width` long: which lie inside it (the
// others are padding) and their clamped indices (0–3, 4–7, 8–9), computed once per tile.
struct WindowColumns { ok0: vec4<bool>, ok1: vec4<bool>, ok2: vec2<bool>, col0: vec4<u32>, col1: vec4<u32>, col2: vec2<u32>, };
fn window_columns(first: i32, width: i32) -> WindowColumns {
    let j0 = vec4<i32>(first) + vec4<i32>(0, 1, 2, 3);
    let j1 = j0 + vec4<i32>(4);
    let j2 = j0.xy + vec2<i32>(8);
    return WindowColumns((j0 >= vec4<i32>(0)) & (j0 < vec4<i32>(width)), (j1 >= vec4<i32>(0)) & (j1 < vec4<i32>(width)),
                         (j2 >= vec2<i32>(0)) & (j2 < vec2<i32>(width)),
                         vec4<u32>(clamp(j0, vec4<i32>(0), vec4<i32>(width - 1))),
                         vec4<u32>(clamp(j1, vec4<i32>(0), vec4<i32>(width - 1))),
                         vec2<u32>(clamp(j2, vec2<i32>(0), vec2<i32>(width - 1))));
}
// The window's values in the row at work offset off + row (q0: columns 0–3, q1: 4–7, q2.xy:
// 8, 9), zero in the padding and everywhere where the row itself is padding (`row_ok` false).
struct Window { q0: vec4<f32>, q1: vec4<f32>, q2: vec4<f32>, };
fn load_window(off: u32, row: u32, c: WindowColumns, row_ok: bool) -> Window {
    let at = off + row;
    let v8 = select(0.0, work[at + c.col2.x], c.ok2.x && row_ok);
    let v9 = select(0.0, work[at + c.col2.y], c.ok2.y && row_ok);
    return Window(select(vec4<f32>(), cwork4(vec4<u32>(at) + c.col0), c.ok0 & vec4<bool>(row_ok)),
                  select(vec4<f32>(), cwork4(vec4<u32>(at) + c.col1), c.ok1 & vec4<bool>(row_ok)),
                  vec4<f32>(v8, v9, 0.0, 0.0));
}
// columns shift..shift+3 of the window (pixel half A; half B, `window_b`: shift+4..shift+7),
// shift ∈ {0, 1, 2}: tap kw = shift in the forward, kw = 2 − shift in the input cotangents
fn window_a(w: Window, shift: u32) -> vec4<f32> {
    let s1 = vec4<f32>(w.q0.yzw, w.q1.x);
    let s2 = vec4<f32>(w.q0.zw, w.q1.xy);
    return select(select(s2, s1, shift == 1u), w.q0, shift == 0u);
}
fn window_b(w: Window, shift: u32) -> vec4<f32> {
    let s1 = vec4<f32>(w.q1.yzw, w.q2.x);
    let s2 = vec4<f32>(w.q1.zw, w.q2.xy);
    return select(select(s2, s1, shift == 1u), w.q1, shift == 0u);
}

fn conv_forward_rows(idx: u32, tangent: bool) {
    let w_out = layer.w_out;
    let tpr = conv_output_row_tiles();
    let tco = (layer.c_out + WT - 1u) / WT;
    if (idx >= tco * batch.rows * layer.h_out * tpr) { return; }
    let c0 = (idx % tco) * WT;
    let rest = idx / tco;
    let ow0 = (rest % tpr) * PT;
    let out_row = rest / tpr;              // b · h_out + oh
    let b = out_row / layer.h_out;
    let oh = out_row % layer.h_out;
    let in_plane = layer.h_in * layer.w_in;
    let x_img = b * layer.c_in * in_plane;
    // the window: input columns iw = ow0 − pad_w + j, j = 0..9
    let cols = window_columns(i32(ow0) - i32(layer.pad_w), i32(layer.w_in));
    let taps = layer.c_in * layer.k_h * 3u;
    let co_a = cclamp(c0, layer.c_out);
    let co_b = cclamp(c0 + CT, layer.c_out);
    let w_a = layer.pack_off / 4u + (c0 / CT) * taps;
    let z_a = layer.pack_z_off / 4u + (c0 / CT) * taps;
    let has_t = tangent && input_has_tangent();
    let bias = forward_bias(co_a, co_b, tangent);
    let bias_a = bias.a;
    let bias_b = bias.b;
    let zb_a = bias.z_a;
    let zb_b = bias.z_b;
    // as in conv_forward: y[c] / t[c] channel c0 + c % 8 of pixel half A (c < 8) or B (c ≥ 8)
    var y0 = vec4<f32>(bias_a.x); var y1 = vec4<f32>(bias_a.y); var y2 = vec4<f32>(bias_a.z); var y3 = vec4<f32>(bias_a.w);
    var y4 = vec4<f32>(bias_b.x); var y5 = vec4<f32>(bias_b.y); var y6 = vec4<f32>(bias_b.z); var y7 = vec4<f32>(bias_b.w);
    var y8 = vec4<f32>(bias_a.x); var y9 = vec4<f32>(bias_a.y); var y10 = vec4<f32>(bias_a.z); var y11 = vec4<f32>(bias_a.w);
    var y12 = vec4<f32>(bias_b.x); var y13 = vec4<f32>(bias_b.y); var y14 = vec4<f32>(bias_b.z); var y15 = vec4<f32>(bias_b.w);
    var t0 = vec4<f32>(zb_a.x); var t1 = vec4<f32>(zb_a.y); var t2 = vec4<f32>(zb_a.z); var t3 = vec4<f32>(zb_a.w);
    var t4 = vec4<f32>(zb_b.x); var t5 = vec4<f32>(zb_b.y); var t6 = vec4<f32>(zb_b.z); var t7 = vec4<f32>(zb_b.w);
    var t8 = vec4<f32>(zb_a.x); var t9 = vec4<f32>(zb_a.y); var t10 = vec4<f32>(zb_a.z); var t11 = vec4<f32>(zb_a.w);
    var t12 = vec4<f32>(zb_b.x); var t13 = vec4<f32>(zb_b.y); var t14 = vec4<f32>(zb_b.z); var t15 = vec4<f32>(zb_b.w);
    let c_in = layer.c_in;
    let k_h = layer.k_h;
    let kk = k_h * 3u;
    let x_off = layer.x_off;
    let t_x_off = layer.t_x_off;
    for (var kh = 0u; kh < k_h; kh++) {
        let ih = i32(oh * layer.stride_h + kh) - i32(layer.pad_h);
        let ok_h = ih >= 0 && ih < i32(layer.h_in);
        var row = x_img + u32(clamp(ih, 0, i32(layer.h_in) - 1)) * layer.w_in;
        var k = kh * 3u;
        for (var ci = 0u; ci < c_in; ci++) {
            let xw = load_window(x_off, row, cols, ok_h);
            var tw = Window(vec4<f32>(), vec4<f32>(), vec4<f32>());
            if (has_t) { tw = load_window(t_x_off, row, cols, ok_h); }
            for (var kw = 0u; kw < 3u; kw++) {
                let xa = window_a(xw, kw);
                let xb = window_b(xw, kw);
                let wa = side4[w_a + k + kw];
                let wb = side4[w_a + taps + k + kw];
                y0 += wa.x * xa; y1 += wa.y * xa; y2 += wa.z * xa; y3 += wa.w * xa;
                y4 += wb.x * xa; y5 += wb.y * xa; y6 += wb.z * xa; y7 += wb.w * xa;
                y8 += wa.x * xb; y9 += wa.y * xb; y10 += wa.z * xb; y11 += wa.w * xb;
                y12 += wb.x * xb; y13 += wb.y * xb; y14 += wb.z * xb; y15 += wb.w * xb;
                if (tangent) {
                    let za = side4[z_a + k + kw];
                    let zb = side4[z_a + taps + k + kw];
                    t0 += za.x * xa; t1 += za.y * xa; t2 += za.z * xa; t3 += za.w * xa;
                    t4 += zb.x * xa; t5 += zb.y * xa; t6 += zb.z * xa; t7 += zb.w * xa;
                    t8 += za.x * xb; t9 += za.y * xb; t10 += za.z * xb; t11 += za.w * xb;
                    t12 += zb.x * xb; t13 += zb.y * xb; t14 += zb.z * xb; t15 += zb.w * xb;
                    if (has_t) {
                        let txa = window_a(tw, kw);
                        let txb = window_b(tw, kw);
                        t0 += wa.x * txa; t1 += wa.y * txa; t2 += wa.z * txa; t3 += wa.w * txa;
                        t4 += wb.x * txa; t5 += wb.y * txa; t6 += wb.z * txa; t7 += wb.w * txa;
                        t8 += wa.x * txb; t9 += wa.y * txb; t10 += wa.z * txb; t11 += wa.w * txb;
                        t12 += wb.x * txb; t13 += wb.y * txb; t14 += wb.z * txb; t15 += wb.w * txb;
                    }
                }
            }
            row += in_plane;
            k += kk;
        }
    }
    // the row's pixels end at its last column: a partial tile stores only its live columns
    let p0 = out_row * w_out + ow0;
    let end = out_row * w_out + w_out;
    let h_out = layer.h_out;
    let c_out = layer.c_out;
    store_pixels(layer.y_off, c0, c_out, p0, end, h_out, w_out, y0, y1, y2, y3);
    store_pixels(layer.y_off, c0 + CT, c_out, p0, end, h_out, w_out, y4, y5, y6, y7);
    store_pixels(layer.y_off, c0, c_out, p0 + CT, end, h_out, w_out, y8, y9, y10, y11);
    store_pixels(layer.y_off, c0 + CT, c_out, p0 + CT, end, h_out, w_out, y12, y13, y14, y15);
    if (tangent) {
        store_pixels(layer.t_y_off, c0, c_out, p0, end, h_out, w_out, t0, t1, t2, t3);
        store_pixels(layer.t_y_off, c0 + CT, c_out, p0, end, h_out, w_out, t4, t5, t6, t7);
        store_pixels(layer.t_y_off, c0, c_out, p0 + CT, end, h_out, w_out, t8, t9, t10, t11);
        store_pixels(layer.t_y_off, c0 + CT, c_out, p0 + CT, end, h_out, w_out, t12, t13, t14, t15);
    }
}

// ---------------------------------------------------------------- input cotangents

// g_x[b, ci, ih, iw] = Σ_{co, kh, kw} W[co, ci, kh, kw] g_y[b, co, oh, ow] over the (oh, ow) with
// oh·s + kh − p = ih and ow·s + kw − p = iw
@compute @workgroup_size(256)
fn conv_bwd_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_input_cotangent(item_index(gid, nwg), false);
}

// g_x as above and r_gx = convᵀ(r_y, W) + convᵀ(g_y, Z_W), reading W and g_y once.
@compute @workgroup_size(256)
fn conv_bwd_rbwd_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_input_cotangent(item_index(gid, nwg), true);
}

// Tiles of the input cotangents: 8 channels × 8 pixels of one input row (b, ih) in one stride
// phase, columns iw = (8t + l)·s_w + φ for lanes l = 0..7 (φ = 0 .. s_w − 1, t the tile within
// the phase). All eight lanes then read the same kernel taps: only kh ≡ ih + p_h and
// kw ≡ iw + p_w (mod s) reach an output pixel, so a stride-s conv walks its ⌈k/s⌉² live taps, not
// all k² with most of them masked (a quarter of the taps of a 3 × 3 kernel at stride 2), and the
// lanes read neighbouring output columns ow = m + (φ + p_w − kw)/s_w. The sum per output runs over the live taps in the order of the
// masked walk (kh, kw, co), so the values are those of summing every tap with zeros.
// (At stride 1 a tile is 8 neighbouring pixels of one row.)
fn conv_input_tiles_per_phase() -> u32 { return (((layer.w_in + layer.stride_w - 1u) / layer.stride_w) + IT - 1u) / IT; }

// The tile is 8 input channels (halves a, b) × 8 columns (halves A, B of 4 lanes each): per
// live tap and output channel, 8 loaded g_y (and r_y) and two packed weight vec4s (four with Z_W)
// feed 64 products (192 fused). Accumulators g0..g7 are half A's channels, g8..g15 half B's.
fn conv_input_cotangent(idx: u32, r_op: bool) {
    let sh = layer.stride_h;
    let sw = layer.stride_w;
    let tc = (layer.c_in + WT - 1u) / WT;
    let per_phase = conv_input_tiles_per_phase();
    let row_tiles = sw * per_phase;
    if (idx >= tc * batch.rows * layer.h_in * row_tiles) { return; }
    let c0 = (idx % tc) * WT;
    let rest = idx / tc;
    let in_row = rest % row_tiles;
    let b = (rest / row_tiles) / layer.h_in;
    let ih = (rest / row_tiles) % layer.h_in;
    let phase = in_row / per_phase;
    let ma = vec4<u32>((in_row % per_phase) * IT) + CLANE;
    let mb = ma + vec4<u32>(CT);
    let iwa = ma * sw + phase;
    let iwb = mb * sw + phase;
    let live_a = iwa < vec4<u32>(layer.w_in);
    let live_b = iwb < vec4<u32>(layer.w_in);
    let out_plane = layer.h_out * layer.w_out;
    let y_img = b * layer.c_out * out_plane;
    let kk = layer.k_h * layer.k_w;
    // the tile's two packed channel groups: a at w_a + co·kk + tap, b one group (c_out·kk) on
    let per_group = layer.c_out * kk;
    let w_a = layer.pack_off / 4u + (c0 / CT) * per_group;
    let z_a = layer.pack_z_off / 4u + (c0 / CT) * per_group;
    // the live taps: kh = kh0, kh0 + s_h, .. (oh = (ih + p_h − kh)/s_h falls as kh rises) and
    // kw = kw0, kw0 + s_w, .. (lane l reads ow = m_l + ow0 − j for the j-th live kw)
    let nh = ih + layer.pad_h;
    let nw = phase + layer.pad_w;
    let kw0 = nw % sw;
    let ow0a = vec4<i32>(ma) + i32((nw - kw0) / sw);
    let ow0b = vec4<i32>(mb) + i32((nw - kw0) / sw);
    let w_out = vec4<i32>(i32(layer.w_out));
    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var g4 = vec4<f32>(); var g5 = vec4<f32>(); var g6 = vec4<f32>(); var g7 = vec4<f32>();
    var g8 = vec4<f32>(); var g9 = vec4<f32>(); var g10 = vec4<f32>(); var g11 = vec4<f32>();
    var g12 = vec4<f32>(); var g13 = vec4<f32>(); var g14 = vec4<f32>(); var g15 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    var r4 = vec4<f32>(); var r5 = vec4<f32>(); var r6 = vec4<f32>(); var r7 = vec4<f32>();
    var r8 = vec4<f32>(); var r9 = vec4<f32>(); var r10 = vec4<f32>(); var r11 = vec4<f32>();
    var r12 = vec4<f32>(); var r13 = vec4<f32>(); var r14 = vec4<f32>(); var r15 = vec4<f32>();
    // the layer's fields read once (see conv_forward)
    let c_out = layer.c_out;
    let g_y_off = layer.g_y_off;
    let r_y_off = layer.r_y_off;
    for (var kh = nh % sh; kh < layer.k_h && kh <= nh; kh += sh) {
        let oh = (nh - kh) / sh;
        if (oh >= layer.h_out) { continue; }
        let row = y_img + oh * layer.w_out;
        var owa = ow0a;
        var owb = ow0b;
        for (var kw = kw0; kw < layer.k_w; kw += sw) {
            let ok_a = live_a & (owa >= vec4<i32>(0)) & (owa < w_out);
            let ok_b = live_b & (owb >= vec4<i32>(0)) & (owb < w_out);
            var at_a = vec4<u32>(row) + vec4<u32>(clamp(owa, vec4<i32>(0), w_out - 1));
            var at_b = vec4<u32>(row) + vec4<u32>(clamp(owb, vec4<i32>(0), w_out - 1));
            var tap = kh * layer.k_w + kw;
            for (var co = 0u; co < c_out; co++) {
                let wa = side4[w_a + tap];
                let wb = side4[w_a + per_group + tap];
                let ga = select(vec4<f32>(), cwork4(g_y_off + at_a), ok_a);
                let gb = select(vec4<f32>(), cwork4(g_y_off + at_b), ok_b);
                g0 += wa.x * ga; g1 += wa.y * ga; g2 += wa.z * ga; g3 += wa.w * ga;
                g4 += wb.x * ga; g5 += wb.y * ga; g6 += wb.z * ga; g7 += wb.w * ga;
                g8 += wa.x * gb; g9 += wa.y * gb; g10 += wa.z * gb; g11 += wa.w * gb;
                g12 += wb.x * gb; g13 += wb.y * gb; g14 += wb.z * gb; g15 += wb.w * gb;
                if (r_op) {
                    let za = side4[z_a + tap];
                    let zb = side4[z_a + per_group + tap];
                    let ra = select(vec4<f32>(), cwork4(r_y_off + at_a), ok_a);
                    let rb = select(vec4<f32>(), cwork4(r_y_off + at_b), ok_b);
                    r0 += wa.x * ra + za.x * ga; r1 += wa.y * ra + za.y * ga; r2 += wa.z * ra + za.z * ga; r3 += wa.w * ra + za.w * ga;
                    r4 += wb.x * ra + zb.x * ga; r5 += wb.y * ra + zb.y * ga; r6 += wb.z * ra + zb.z * ga; r7 += wb.w * ra + zb.w * ga;
                    r8 += wa.x * rb + za.x * gb; r9 += wa.y * rb + za.y * gb; r10 += wa.z * rb + za.z * gb; r11 += wa.w * rb + za.w * gb;
                    r12 += wb.x * rb + zb.x * gb; r13 += wb.y * rb + zb.y * gb; r14 += wb.z * rb + zb.z * gb; r15 += wb.w * rb + zb.w * gb;
                }
                at_a += vec4<u32>(out_plane);
                at_b += vec4<u32>(out_plane);
                tap += kk;
            }
            owa -= vec4<i32>(1);
            owb -= vec4<i32>(1);
        }
    }
    let base = b * layer.c_in * layer.h_in * layer.w_in + ih * layer.w_in;
    store_row(layer.g_x_off + base, c0, iwa, live_a, g0, g1, g2, g3);
    store_row(layer.g_x_off + base, c0 + CT, iwa, live_a, g4, g5, g6, g7);
    store_row(layer.g_x_off + base, c0, iwb, live_b, g8, g9, g10, g11);
    store_row(layer.g_x_off + base, c0 + CT, iwb, live_b, g12, g13, g14, g15);
    if (r_op) {
        store_row(layer.r_x_off + base, c0, iwa, live_a, r0, r1, r2, r3);
        store_row(layer.r_x_off + base, c0 + CT, iwa, live_a, r4, r5, r6, r7);
        store_row(layer.r_x_off + base, c0, iwb, live_b, r8, r9, r10, r11);
        store_row(layer.r_x_off + base, c0 + CT, iwb, live_b, r12, r13, r14, r15);
    }
}

// The same g_x and r_gx for kernels 3 wide with a column stride of 1, by row windows as the
// forward's (`Geometry::by_row_windows`): input column iw receives from output columns
// ow = iw + p_w − kw, so the tile's 8 columns iw0.. read, for kw = 2, 1, 0, the output columns
// iw0 + p_w − 2 + j shifted by 0, 1, 2: each (kh, co) loads those 10 g_y (and 10 r_y) once for
// its three taps, where the tiles above load 24 (48). Order per output: kh, co, kw.
@compute @workgroup_size(256)
fn conv_bwd_x_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_input_cotangent_rows(item_index(gid, nwg), false);
}

@compute @workgroup_size(256)
fn conv_bwd_rbwd_x_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_input_cotangent_rows(item_index(gid, nwg), true);
}

fn conv_input_cotangent_rows(idx: u32, r_op: bool) {
    let sh = layer.stride_h;
    let tc = (layer.c_in + WT - 1u) / WT;
    let tpr = (layer.w_in + IT - 1u) / IT;
    if (idx >= tc * batch.rows * layer.h_in * tpr) { return; }
    let c0 = (idx % tc) * WT;
    let rest = idx / tc;
    let iw0 = (rest % tpr) * IT;
    let b = (rest / tpr) / layer.h_in;
    let ih = (rest / tpr) % layer.h_in;
    let iwa = vec4<u32>(iw0) + CLANE;
    let iwb = iwa + vec4<u32>(CT);
    let live_a = iwa < vec4<u32>(layer.w_in);
    let live_b = iwb < vec4<u32>(layer.w_in);
    let out_plane = layer.h_out * layer.w_out;
    let y_img = b * layer.c_out * out_plane;
    let kk = layer.k_h * 3u;
    let per_group = layer.c_out * kk;
    let w_a = layer.pack_off / 4u + (c0 / CT) * per_group;
    let z_a = layer.pack_z_off / 4u + (c0 / CT) * per_group;
    // the window: output columns ow = iw0 + p_w − 2 + j, j = 0..9
    let cols = window_columns(i32(iw0 + layer.pad_w) - 2, i32(layer.w_out));
    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var g4 = vec4<f32>(); var g5 = vec4<f32>(); var g6 = vec4<f32>(); var g7 = vec4<f32>();
    var g8 = vec4<f32>(); var g9 = vec4<f32>(); var g10 = vec4<f32>(); var g11 = vec4<f32>();
    var g12 = vec4<f32>(); var g13 = vec4<f32>(); var g14 = vec4<f32>(); var g15 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    var r4 = vec4<f32>(); var r5 = vec4<f32>(); var r6 = vec4<f32>(); var r7 = vec4<f32>();
    var r8 = vec4<f32>(); var r9 = vec4<f32>(); var r10 = vec4<f32>(); var r11 = vec4<f32>();
    var r12 = vec4<f32>(); var r13 = vec4<f32>(); var r14 = vec4<f32>(); var r15 = vec4<f32>();
    let c_out = layer.c_out;
    let k_h = layer.k_h;
    let h_out = layer.h_out;
    let g_y_off = layer.g_y_off;
    let r_y_off = layer.r_y_off;
    let nh = ih + layer.pad_h;
    for (var kh = nh % sh; kh < k_h && kh <= nh; kh += sh) {
        let oh = (nh - kh) / sh;
        if (oh >= h_out) { continue; }
        var row = y_img + oh * layer.w_out;
        var tap = kh * 3u;
        for (var co = 0u; co < c_out; co++) {
            let gw = load_window(g_y_off, row, cols, true);
            var rw = Window(vec4<f32>(), vec4<f32>(), vec4<f32>());
            if (r_op) { rw = load_window(r_y_off, row, cols, true); }
            for (var kw = 0u; kw < 3u; kw++) {
                let ga = window_a(gw, 2u - kw);
                let gb = window_b(gw, 2u - kw);
                let wa = side4[w_a + tap + kw];
                let wb = side4[w_a + per_group + tap + kw];
                g0 += wa.x * ga; g1 += wa.y * ga; g2 += wa.z * ga; g3 += wa.w * ga;
                g4 += wb.x * ga; g5 += wb.y * ga; g6 += wb.z * ga; g7 += wb.w * ga;
                g8 += wa.x * gb; g9 += wa.y * gb; g10 += wa.z * gb; g11 += wa.w * gb;
                g12 += wb.x * gb; g13 += wb.y * gb; g14 += wb.z * gb; g15 += wb.w * gb;
                if (r_op) {
                    let za = side4[z_a + tap + kw];
                    let zb = side4[z_a + per_group + tap + kw];
                    let ra = window_a(rw, 2u - kw);
                    let rb = window_b(rw, 2u - kw);
                    r0 += wa.x * ra + za.x * ga; r1 += wa.y * ra + za.y * ga; r2 += wa.z * ra + za.z * ga; r3 += wa.w * ra + za.w * ga;
                    r4 += wb.x * ra + zb.x * ga; r5 += wb.y * ra + zb.y * ga; r6 += wb.z * ra + zb.z * ga; r7 += wb.w * ra + zb.w * ga;
                    r8 += wa.x * rb + za.x * gb; r9 += wa.y * rb + za.y * gb; r10 += wa.z * rb + za.z * gb; r11 += wa.w * rb + za.w * gb;
                    r12 += wb.x * rb + zb.x * gb; r13 += wb.y * rb + zb.y * gb; r14 += wb.z * rb + zb.z * gb; r15 += wb.w * rb + zb.w * gb;
                }
            }
            row += out_plane;
            tap += kk;
        }
    }
    let base = b * layer.c_in * layer.h_in * layer.w_in + ih * layer.w_in;
    store_row(layer.g_x_off + base, c0, iwa, live_a, g0, g1, g2, g3);
    store_row(layer.g_x_off + base, c0 + CT, iwa, live_a, g4, g5, g6, g7);
    store_row(layer.g_x_off + base, c0, iwb, live_b, g8, g9, g10, g11);
    store_row(layer.g_x_off + base, c0 + CT, iwb, live_b, g12, g13, g14, g15);
    if (r_op) {
        store_row(layer.r_x_off + base, c0, iwa, live_a, r0, r1, r2, r3);
        store_row(layer.r_x_off + base, c0 + CT, iwa, live_a, r4, r5, r6, r7);
        store_row(layer.r_x_off + base, c0, iwb, live_b, r8, r9, r10, r11);
        store_row(layer.r_x_off + base, c0 + CT, iwb, live_b, r12, r13, r14, r15);
    }
}

// Stores a [4 channels × 4 columns] tile of one row of a [rows, c_in, h_in, w_in] tensor:
// a_c is channel c0 + c, its components the columns iw (where live); `row` is the row's offset
// in channel 0.
fn store_row_channel(row: u32, ch: u32, iw: vec4<u32>, live: vec4<bool>, v: vec4<f32>) {
    if (ch >= layer.c_in) { return; }
    let at = row + ch * layer.h_in * layer.w_in + iw;
    if (live.x) { work[at.x] = v.x; }
    if (live.y) { work[at.y] = v.y; }
    if (live.z) { work[at.z] = v.z; }
    if (live.w) { work[at.w] = v.w; }
}
fn store_row(row: u32, c0: u32, iw: vec4<u32>, live: vec4<bool>,
             a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    store_row_channel(row, c0, iw, live, a0);
    store_row_channel(row, c0 + 1u, iw, live, a1);
    store_row_channel(row, c0 + 2u, iw, live, a2);
    store_row_channel(row, c0 + 3u, iw, live, a3);
}

// ---------------------------------------------------------------- parameter gradients
// Output: [c_out, taps + 1], taps = c_in·k_h·k_w in W's layout, the bias as the extra column
// (x ≡ 1, t_x ≡ 0). Tiles: 8 output channels × 4 columns; the contracted index runs over the
// batch and the output plane: the pixels p = (b, oh, ow), in order.
//
// Split over the reduction: the first conv layers have few outputs (c_out × (taps + 1) = 80 for
// 8 channels of a 3 × 3 kernel on one input channel: 6 tiles) and a long reduction (50,176
// pixels at batch 64), so one invocation per tile would leave the adapter idle. Each invocation
// takes a tile and a run of `split_len` consecutive pixels (split s: pixels s·split_len ..).
// With one split it stores its tile into ∇θ / H z itself; with several it stores a partial tile
// to scratch (aux_off: [splits][c_out][taps + 1] for ∇θ, aux_r_off the same for H z) and the
// reduce kernels below sum each output's partials in split order. A fixed order per output, as
// everywhere; `split_len` is chosen per layer and adapter class (src/nn/conv.rs).

fn conv_pixels() -> u32 { return batch.rows * layer.h_out * layer.w_out; }
fn conv_splits() -> u32 { return (conv_pixels() + layer.split_len - 1u) / layer.split_len; }
fn conv_param_cols() -> u32 { return layer.c_in * layer.k_h * layer.k_w + 1u; }

// g_W[co, ci, kh, kw] = Σ_{b, oh, ow} g_y[b, co, oh, ow] x[b, ci, oh·s + kh − p, ow·s + kw − p];  g_b[co] = Σ g_y
@compute @workgroup_size(256)
fn conv_bwd_w_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_gradient(item_index(gid, nwg), false);
}

// ∇W as above and H z: r_gW = corr(r_y, x) + corr(g_y, t_x), r_gb = Σ r_y, reading g_y and x once.
@compute @workgroup_size(256)
fn conv_bwd_rbwd_w_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_gradient(item_index(gid, nwg), true);
}

// The weight-gradient tile is 8 output channels × 8 columns (channel halves a, b; column halves
// a, b): each pixel's 8 loaded x (and t_x) feed 8 channels and its 8 g_y are two packed vec4
// loads, 10 loads for 64 products backward and 26 for 192 fused with r_y unpacked (with 4
// columns: 6 for 32 and 18 for 96). The 128 fused accumulators spill to the stack, which on a
// CPU adapter costs far less than the loads they save (BENCHMARKS.md, "8-tap weight gradients").
fn conv_weight_channel_tiles() -> u32 { return (layer.c_out + WT - 1u) / WT; }
fn conv_weight_column_tiles(taps: u32) -> u32 { return (taps + 1u + JT - 1u) / JT; }

// One half of a weight-gradient tile's columns: 4 kernel taps (ci, kh, kw), or the bias column
// j = taps, clamped past the end (those columns are never stored).
struct TapColumns { ci_plane: vec4<u32>, kh: vec4<i32>, kw: vec4<i32>, bias: vec4<bool>, };
fn tap_columns(j0: u32, taps: u32, kk: u32) -> TapColumns {
    let j = cclamp(j0, taps);
    return TapColumns((j / kk) * layer.h_in * layer.w_in, vec4<i32>((j % kk) / layer.k_w) - i32(layer.pad_h),
                      vec4<i32>(j % layer.k_w) - i32(layer.pad_w), vec4<u32>(j0) + CLANE == vec4<u32>(taps));
}

fn conv_weight_gradient(idx: u32, r_op: bool) {
    let kk = layer.k_h * layer.k_w;
    let taps = layer.c_in * kk;
    let tc = conv_weight_column_tiles(taps);
    let tiles = conv_weight_channel_tiles() * tc;
    let splits = conv_splits();
    if (idx >= tiles * splits) { return; }
    let split = idx / tiles;
    let co0 = ((idx % tiles) / tc) * WT;
    let j0 = ((idx % tiles) % tc) * JT;
    let ca = tap_columns(j0, taps, kk);
    let cb = tap_columns(j0 + CT, taps, kk);
    let x_img_len = layer.c_in * layer.h_in * layer.w_in;
    let out_plane = layer.h_out * layer.w_out;
    // the tile's two packed channel groups of g_y: a at dy_a + (b·groups·plane + oh·w_out + ow),
    // b one plane on; r_y unpacked, channels co_a and co_b of the output row
    let groups = conv_out_groups();
    let dy_a = layer.pack_off / 4u + (co0 / CT) * out_plane;
    let co_a = cclamp(co0, layer.c_out) * out_plane;
    let co_b = cclamp(co0 + CT, layer.c_out) * out_plane;
    let r_y_off = layer.r_y_off;
    let has_t = r_op && input_has_tangent();
    let h_in = vec4<i32>(i32(layer.h_in));
    let w_in = vec4<i32>(i32(layer.w_in));
    // g (∇W) and r (H z) of channel c for columns a (…a) and b (…b)
    var g0a = vec4<f32>(); var g1a = vec4<f32>(); var g2a = vec4<f32>(); var g3a = vec4<f32>();
    var g4a = vec4<f32>(); var g5a = vec4<f32>(); var g6a = vec4<f32>(); var g7a = vec4<f32>();
    var g0b = vec4<f32>(); var g1b = vec4<f32>(); var g2b = vec4<f32>(); var g3b = vec4<f32>();
    var g4b = vec4<f32>(); var g5b = vec4<f32>(); var g6b = vec4<f32>(); var g7b = vec4<f32>();
    var r0a = vec4<f32>(); var r1a = vec4<f32>(); var r2a = vec4<f32>(); var r3a = vec4<f32>();
    var r4a = vec4<f32>(); var r5a = vec4<f32>(); var r6a = vec4<f32>(); var r7a = vec4<f32>();
    var r0b = vec4<f32>(); var r1b = vec4<f32>(); var r2b = vec4<f32>(); var r3b = vec4<f32>();
    var r4b = vec4<f32>(); var r5b = vec4<f32>(); var r6b = vec4<f32>(); var r7b = vec4<f32>();
    // this split's pixels, in order, as segments of output rows (b, oh): the row's input row,
    // its padding mask and base address are computed once per segment, the columns step by the
    // stride, and no pixel needs a division
    let p0 = split * layer.split_len;
    var left = min(layer.split_len, conv_pixels() - p0);
    var b = p0 / out_plane;
    var oh = (p0 % out_plane) / layer.w_out;
    var ow = p0 % layer.w_out;
    let stride_w = vec4<i32>(i32(layer.stride_w));
    // the layer's fields read once (see conv_forward)
    let w_out = layer.w_out;
    let h_out = layer.h_out;
    let stride_h = layer.stride_h;
    let x_off = layer.x_off;
    let t_x_off = layer.t_x_off;
    while (left > 0u) {
        let len = min(left, w_out - ow);
        let ih_a = i32(oh * stride_h) + ca.kh;
        let ih_b = i32(oh * stride_h) + cb.kh;
        let ok_ha = (ih_a >= vec4<i32>(0)) & (ih_a < h_in);
        let ok_hb = (ih_b >= vec4<i32>(0)) & (ih_b < h_in);
        let x_row_a = b * x_img_len + ca.ci_plane + vec4<u32>(clamp(ih_a, vec4<i32>(0), h_in - 1)) * layer.w_in;
        let x_row_b = b * x_img_len + cb.ci_plane + vec4<u32>(clamp(ih_b, vec4<i32>(0), h_in - 1)) * layer.w_in;
        let y_row = (b * groups) * out_plane + oh * w_out;
        let r_row = b * layer.c_out * out_plane + oh * w_out;
        var iw_a = i32(ow * layer.stride_w) + ca.kw;
        var iw_b = i32(ow * layer.stride_w) + cb.kw;
        for (var col = ow; col < ow + len; col++) {
            let ok_a = ok_ha & (iw_a >= vec4<i32>(0)) & (iw_a < w_in);
            let ok_b = ok_hb & (iw_b >= vec4<i32>(0)) & (iw_b < w_in);
            let at_a = x_row_a + vec4<u32>(clamp(iw_a, vec4<i32>(0), w_in - 1));
            let at_b = x_row_b + vec4<u32>(clamp(iw_b, vec4<i32>(0), w_in - 1));
            let xa = select(select(vec4<f32>(), cwork4(x_off + at_a), ok_a), vec4<f32>(1.0), ca.bias);
            let xb = select(select(vec4<f32>(), cwork4(x_off + at_b), ok_b), vec4<f32>(1.0), cb.bias);
            let ga = side4[dy_a + y_row + col];
            let gb = side4[dy_a + out_plane + y_row + col];
            g0a += ga.x * xa; g1a += ga.y * xa; g2a += ga.z * xa; g3a += ga.w * xa;
            g4a += gb.x * xa; g5a += gb.y * xa; g6a += gb.z * xa; g7a += gb.w * xa;
            g0b += ga.x * xb; g1b += ga.y * xb; g2b += ga.z * xb; g3b += ga.w * xb;
            g4b += gb.x * xb; g5b += gb.y * xb; g6b += gb.z * xb; g7b += gb.w * xb;
            if (r_op) {
                let ra = cwork4(r_y_off + r_row + co_a + col);
                let rb = cwork4(r_y_off + r_row + co_b + col);
                r0a += ra.x * xa; r1a += ra.y * xa; r2a += ra.z * xa; r3a += ra.w * xa;
                r4a += rb.x * xa; r5a += rb.y * xa; r6a += rb.z * xa; r7a += rb.w * xa;
                r0b += ra.x * xb; r1b += ra.y * xb; r2b += ra.z * xb; r3b += ra.w * xb;
                r4b += rb.x * xb; r5b += rb.y * xb; r6b += rb.z * xb; r7b += rb.w * xb;
                if (has_t) {
                    let txa = select(cwork4(t_x_off + at_a), vec4<f32>(), ca.bias | !ok_a);
                    let txb = select(cwork4(t_x_off + at_b), vec4<f32>(), cb.bias | !ok_b);
                    r0a += ga.x * txa; r1a += ga.y * txa; r2a += ga.z * txa; r3a += ga.w * txa;
                    r4a += gb.x * txa; r5a += gb.y * txa; r6a += gb.z * txa; r7a += gb.w * txa;
                    r0b += ga.x * txb; r1b += ga.y * txb; r2b += ga.z * txb; r3b += ga.w * txb;
                    r4b += gb.x * txb; r5b += gb.y * txb; r6b += gb.z * txb; r7b += gb.w * txb;
                }
            }
            iw_a += stride_w;
            iw_b += stride_w;
        }
        left -= len;
        ow += len;
        if (ow == w_out) {
            ow = 0u;
            oh++;
            if (oh == h_out) { oh = 0u; b++; }
        }
    }
    let whole = splits == 1u;
    conv_store_param(0u, whole, split, co0, j0, taps, g0a, g1a, g2a, g3a);
    conv_store_param(0u, whole, split, co0 + CT, j0, taps, g4a, g5a, g6a, g7a);
    conv_store_param(0u, whole, split, co0, j0 + CT, taps, g0b, g1b, g2b, g3b);
    conv_store_param(0u, whole, split, co0 + CT, j0 + CT, taps, g4b, g5b, g6b, g7b);
    if (r_op) {
        conv_store_param(1u, whole, split, co0, j0, taps, r0a, r1a, r2a, r3a);
        conv_store_param(1u, whole, split, co0 + CT, j0, taps, r4a, r5a, r6a, r7a);
        conv_store_param(1u, whole, split, co0, j0 + CT, taps, r0b, r1b, r2b, r3b);
        conv_store_param(1u, whole, split, co0 + CT, j0 + CT, taps, r4b, r5b, r6b, r7b);
    }
}

// ---------------------------------------------------------------- weight gradients, 3-wide kernels of stride 1

// The same ∇W and H z for kernels 3 wide with a column stride of 1 (`Geometry::by_row_windows`).
// Their taps come in groups of three, (ci, kh) with kw = 0, 1, 2, at columns j = 3·(ci·k_h + kh)
// + kw, and along an output row the three read x[ow − p_w + kw]: the value tap kw = 2 loads at
// column ow is the one kw = 1 reads at ow + 1 and kw = 0 at ow + 2. So a tile is 8 output
// channels × 3 groups (9 columns), each group keeps its last two x (and t_x) in registers as the
// columns step, and a pixel loads 3 x (3 t_x) where the 8-tap tiles load 8 per 8 taps. The bias
// column j = taps is the first column of group G = c_in·k_h, in the last tile.
@compute @workgroup_size(256)
fn conv_bwd_w_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_gradient_rows(item_index(gid, nwg), false);
}

@compute @workgroup_size(256)
fn conv_bwd_rbwd_w_rows_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_gradient_rows(item_index(gid, nwg), true);
}

// Tiles of 3 groups along the columns: ⌈(G + 1) / 3⌉, the bias column's group included.
fn conv_weight_group_tiles() -> u32 { return (layer.c_in * layer.k_h + 3u) / 3u; }

fn conv_weight_gradient_rows(idx: u32, r_op: bool) {
    let groups_g = layer.c_in * layer.k_h;
    let taps = groups_g * 3u;
    let tc = conv_weight_group_tiles();
    let tiles = conv_weight_channel_tiles() * tc;
    let splits = conv_splits();
    if (idx >= tiles * splits) { return; }
    let split = idx / tiles;
    let co0 = ((idx % tiles) / tc) * WT;
    let q0 = ((idx % tiles) % tc) * 3u;
    // the tile's groups q = q0 + i (components i = 0..2): input channel and kernel row, whether
    // the group exists, and the bias group (its first column is the bias: x ≡ 1)
    let q = vec3<u32>(q0) + vec3<u32>(0u, 1u, 2u);
    let live = q < vec3<u32>(groups_g);
    let bias = q == vec3<u32>(groups_g);
    let qc = min(q, vec3<u32>(groups_g - 1u));
    let ci_plane = (qc / layer.k_h) * layer.h_in * layer.w_in;
    let kh = vec3<i32>(qc % layer.k_h) - i32(layer.pad_h);
    let x_img_len = layer.c_in * layer.h_in * layer.w_in;
    let out_plane = layer.h_out * layer.w_out;
    // g_y packed (conv_pack_dy, as for the 8-tap tiles); r_y unpacked
    let groups = conv_out_groups();
    let dy_a = layer.pack_off / 4u + (co0 / CT) * out_plane;
    let co_a = cclamp(co0, layer.c_out) * out_plane;
    let co_b = cclamp(co0 + CT, layer.c_out) * out_plane;
    let r_y_off = layer.r_y_off;
    let has_t = r_op && input_has_tangent();
    let h_in = vec3<i32>(i32(layer.h_in));
    let w_in = i32(layer.w_in);
    // g{c}_{kw} (∇W) and r{c}_{kw} (H z): channel co0 + c, tap kw of the three groups
    var g0_0 = vec3<f32>(); var g0_1 = vec3<f32>(); var g0_2 = vec3<f32>();
    var g1_0 = vec3<f32>(); var g1_1 = vec3<f32>(); var g1_2 = vec3<f32>();
    var g2_0 = vec3<f32>(); var g2_1 = vec3<f32>(); var g2_2 = vec3<f32>();
    var g3_0 = vec3<f32>(); var g3_1 = vec3<f32>(); var g3_2 = vec3<f32>();
    var g4_0 = vec3<f32>(); var g4_1 = vec3<f32>(); var g4_2 = vec3<f32>();
    var g5_0 = vec3<f32>(); var g5_1 = vec3<f32>(); var g5_2 = vec3<f32>();
    var g6_0 = vec3<f32>(); var g6_1 = vec3<f32>(); var g6_2 = vec3<f32>();
    var g7_0 = vec3<f32>(); var g7_1 = vec3<f32>(); var g7_2 = vec3<f32>();
    var r0_0 = vec3<f32>(); var r0_1 = vec3<f32>(); var r0_2 = vec3<f32>();
    var r1_0 = vec3<f32>(); var r1_1 = vec3<f32>(); var r1_2 = vec3<f32>();
    var r2_0 = vec3<f32>(); var r2_1 = vec3<f32>(); var r2_2 = vec3<f32>();
    var r3_0 = vec3<f32>(); var r3_1 = vec3<f32>(); var r3_2 = vec3<f32>();
    var r4_0 = vec3<f32>(); var r4_1 = vec3<f32>(); var r4_2 = vec3<f32>();
    var r5_0 = vec3<f32>(); var r5_1 = vec3<f32>(); var r5_2 = vec3<f32>();
    var r6_0 = vec3<f32>(); var r6_1 = vec3<f32>(); var r6_2 = vec3<f32>();
    var r7_0 = vec3<f32>(); var r7_1 = vec3<f32>(); var r7_2 = vec3<f32>();
    let p0 = split * layer.split_len;
    var left = min(layer.split_len, conv_pixels() - p0);
    var b = p0 / out_plane;
    var oh = (p0 % out_plane) / layer.w_out;
    var ow = p0 % layer.w_out;
    let w_out = layer.w_out;
    let h_out = layer.h_out;
    let stride_h = layer.stride_h;
    let pad_w = i32(layer.pad_w);
    let x_off = layer.x_off;
    let t_x_off = layer.t_x_off;
    while (left > 0u) {
        let len = min(left, w_out - ow);
        let ih = i32(oh * stride_h) + kh;
        let ok_h = live & (ih >= vec3<i32>(0)) & (ih < h_in);
        let x_row = b * x_img_len + ci_plane + vec3<u32>(clamp(ih, vec3<i32>(0), h_in - 1)) * layer.w_in;
        let y_row = (b * groups) * out_plane + oh * w_out;
        let r_row = b * layer.c_out * out_plane + oh * w_out;
        // the window: x (and t_x) of the three groups at input columns iw − 2, iw − 1 carried,
        // iw = ow − p_w + 2 loaded at each column
        var iw = i32(ow) - pad_w;
        var x0 = row_values(x_off, x_row, iw, ok_h, w_in);
        var x1 = row_values(x_off, x_row, iw + 1, ok_h, w_in);
        var t0 = vec3<f32>();
        var t1 = vec3<f32>();
        if (has_t) {
            t0 = row_values(t_x_off, x_row, iw, ok_h, w_in);
            t1 = row_values(t_x_off, x_row, iw + 1, ok_h, w_in);
        }
        for (var col = ow; col < ow + len; col++) {
            let x2 = row_values(x_off, x_row, iw + 2, ok_h, w_in);
            // the bias group's first column reads 1, its others 0 (no x: the group is not live)
            let xb0 = select(x0, vec3<f32>(1.0), bias);
            let ga = side4[dy_a + y_row + col];
            let gb = side4[dy_a + out_plane + y_row + col];
            g0_0 += ga.x * xb0; g0_1 += ga.x * x1; g0_2 += ga.x * x2;
            g1_0 += ga.y * xb0; g1_1 += ga.y * x1; g1_2 += ga.y * x2;
            g2_0 += ga.z * xb0; g2_1 += ga.z * x1; g2_2 += ga.z * x2;
            g3_0 += ga.w * xb0; g3_1 += ga.w * x1; g3_2 += ga.w * x2;
            g4_0 += gb.x * xb0; g4_1 += gb.x * x1; g4_2 += gb.x * x2;
            g5_0 += gb.y * xb0; g5_1 += gb.y * x1; g5_2 += gb.y * x2;
            g6_0 += gb.z * xb0; g6_1 += gb.z * x1; g6_2 += gb.z * x2;
            g7_0 += gb.w * xb0; g7_1 += gb.w * x1; g7_2 += gb.w * x2;
            if (r_op) {
                let ra = cwork4(r_y_off + r_row + co_a + col);
                let rb = cwork4(r_y_off + r_row + co_b + col);
                r0_0 += ra.x * xb0; r0_1 += ra.x * x1; r0_2 += ra.x * x2;
                r1_0 += ra.y * xb0; r1_1 += ra.y * x1; r1_2 += ra.y * x2;
                r2_0 += ra.z * xb0; r2_1 += ra.z * x1; r2_2 += ra.z * x2;
                r3_0 += ra.w * xb0; r3_1 += ra.w * x1; r3_2 += ra.w * x2;
                r4_0 += rb.x * xb0; r4_1 += rb.x * x1; r4_2 += rb.x * x2;
                r5_0 += rb.y * xb0; r5_1 += rb.y * x1; r5_2 += rb.y * x2;
                r6_0 += rb.z * xb0; r6_1 += rb.z * x1; r6_2 += rb.z * x2;
                r7_0 += rb.w * xb0; r7_1 += rb.w * x1; r7_2 += rb.w * x2;
                if (has_t) {
                    let t2 = row_values(t_x_off, x_row, iw + 2, ok_h, w_in);
                    r0_0 += ga.x * t0; r0_1 += ga.x * t1; r0_2 += ga.x * t2;
                    r1_0 += ga.y * t0; r1_1 += ga.y * t1; r1_2 += ga.y * t2;
                    r2_0 += ga.z * t0; r2_1 += ga.z * t1; r2_2 += ga.z * t2;
                    r3_0 += ga.w * t0; r3_1 += ga.w * t1; r3_2 += ga.w * t2;
                    r4_0 += gb.x * t0; r4_1 += gb.x * t1; r4_2 += gb.x * t2;
                    r5_0 += gb.y * t0; r5_1 += gb.y * t1; r5_2 += gb.y * t2;
                    r6_0 += gb.z * t0; r6_1 += gb.z * t1; r6_2 += gb.z * t2;
                    r7_0 += gb.w * t0; r7_1 += gb.w * t1; r7_2 += gb.w * t2;
                    t0 = t1;
                    t1 = t2;
                }
            }
            x0 = x1;
            x1 = x2;
            iw += 1;
        }
        left -= len;
        ow += len;
        if (ow == w_out) {
            ow = 0u;
            oh++;
            if (oh == h_out) { oh = 0u; b++; }
        }
    }
    let whole = splits == 1u;
    conv_store_kernel_rows(0u, whole, split, co0, q0, taps, g0_0, g0_1, g0_2);
    conv_store_kernel_rows(0u, whole, split, co0 + 1u, q0, taps, g1_0, g1_1, g1_2);
    conv_store_kernel_rows(0u, whole, split, co0 + 2u, q0, taps, g2_0, g2_1, g2_2);
    conv_store_kernel_rows(0u, whole, split, co0 + 3u, q0, taps, g3_0, g3_1, g3_2);
    conv_store_kernel_rows(0u, whole, split, co0 + CT, q0, taps, g4_0, g4_1, g4_2);
    conv_store_kernel_rows(0u, whole, split, co0 + CT + 1u, q0, taps, g5_0, g5_1, g5_2);
    conv_store_kernel_rows(0u, whole, split, co0 + CT + 2u, q0, taps, g6_0, g6_1, g6_2);
    conv_store_kernel_rows(0u, whole, split, co0 + CT + 3u, q0, taps, g7_0, g7_1, g7_2);
    if (r_op) {
        conv_store_kernel_rows(1u, whole, split, co0, q0, taps, r0_0, r0_1, r0_2);
        conv_store_kernel_rows(1u, whole, split, co0 + 1u, q0, taps, r1_0, r1_1, r1_2);
        conv_store_kernel_rows(1u, whole, split, co0 + 2u, q0, taps, r2_0, r2_1, r2_2);
        conv_store_kernel_rows(1u, whole, split, co0 + 3u, q0, taps, r3_0, r3_1, r3_2);
        conv_store_kernel_rows(1u, whole, split, co0 + CT, q0, taps, r4_0, r4_1, r4_2);
        conv_store_kernel_rows(1u, whole, split, co0 + CT + 1u, q0, taps, r5_0, r5_1, r5_2);
        conv_store_kernel_rows(1u, whole, split, co0 + CT + 2u, q0, taps, r6_0, r6_1, r6_2);
        conv_store_kernel_rows(1u, whole, split, co0 + CT + 3u, q0, taps, r7_0, r7_1, r7_2);
    }
}

// x at input column iw of the three groups' rows, zero where the column or the row is padding
// (`w_in` passed in: read from `layer` inside the column loop it would be a load per lane)
fn row_values(off: u32, x_row: vec3<u32>, iw: i32, ok_h: vec3<bool>, w_in: i32) -> vec3<f32> {
    let ok = ok_h & vec3<bool>(iw >= 0 && iw < w_in);
    let at = x_row + vec3<u32>(u32(clamp(iw, 0, w_in - 1)));
    return select(vec3<f32>(), vec3<f32>(work[off + at.x], work[off + at.y], work[off + at.z]), ok);
}

// Writes output channel co's taps kw = 0, 1, 2 (a_kw) of groups q0..q0+2 (its components):
// columns j = 3·(q0 + i) + kw, as conv_store_param_row; columns past the bias (j > taps) are
// not stored.
fn conv_store_kernel_rows(which: u32, whole: bool, split: u32, co: u32, q0: u32, taps: u32,
                          a0: vec3<f32>, a1: vec3<f32>, a2: vec3<f32>) {
    for (var i = 0u; i < 3u; i++) {
        let j = 3u * (q0 + i);
        conv_store_param_value(which, whole, split, co, j, taps, a0[i]);
        conv_store_param_value(which, whole, split, co, j + 1u, taps, a1[i]);
        conv_store_param_value(which, whole, split, co, j + 2u, taps, a2[i]);
    }
}

// Writes a_c (output channel co0 + c; its components columns j0..j0+3) into ∇θ (which = 0) or
// H z (which = 1), column `taps` being the bias; or, when the reduction is split (`whole` false),
// into that split's partial [c_out, taps + 1] in scratch (the `side` binding).
fn conv_store_param_row(which: u32, whole: bool, split: u32, co: u32, j0: u32, taps: u32, v: vec4<f32>) {
    conv_store_param_value(which, whole, split, co, j0, taps, v.x);
    conv_store_param_value(which, whole, split, co, j0 + 1u, taps, v.y);
    conv_store_param_value(which, whole, split, co, j0 + 2u, taps, v.z);
    conv_store_param_value(which, whole, split, co, j0 + 3u, taps, v.w);
}
// Column j of output channel co (the bias where j = taps; nothing past it or past c_out).
fn conv_store_param_value(which: u32, whole: bool, split: u32, co: u32, j: u32, taps: u32, value: f32) {
    if (co >= layer.c_out || j > taps) { return; }
    if (!whole) {
        let partial = select(layer.aux_off, layer.aux_r_off, which == 1u) + (split * layer.c_out + co) * (taps + 1u);
        side_set(partial + j, value);
        return;
    }
    let at = select(layer.w_off + co * taps + j, layer.b_off + co, j == taps);
    if (which == 0u) { g_theta[at] = value; } else { r_theta[at] = value; }
}
fn conv_store_param(which: u32, whole: bool, split: u32, co0: u32, j0: u32, taps: u32,
                    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    conv_store_param_row(which, whole, split, co0, j0, taps, a0);
    conv_store_param_row(which, whole, split, co0 + 1u, j0, taps, a1);
    conv_store_param_row(which, whole, split, co0 + 2u, j0, taps, a2);
    conv_store_param_row(which, whole, split, co0 + 3u, j0, taps, a3);
}

// The sum of the partials of output idx of [c_out, taps + 1], in split order, into ∇θ
// (conv_bwd_w_reduce) or into ∇θ and H z (conv_bwd_rbwd_w_reduce). Nothing to do with one split
// (the split kernel stored the tile itself).
@compute @workgroup_size(256)
fn conv_bwd_w_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_reduce(item_index(gid, nwg), false);
}

@compute @workgroup_size(256)
fn conv_bwd_rbwd_w_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_weight_reduce(item_index(gid, nwg), true);
}

fn conv_weight_reduce(idx: u32, r_op: bool) {
    let cols = conv_param_cols();
    let len = layer.c_out * cols;
    let splits = conv_splits();
    if (idx >= len || splits == 1u) { return; }
    var g = 0.0;
    var r = 0.0;
    for (var s = 0u; s < splits; s++) {
        g += side_get(layer.aux_off + s * len + idx);
        if (r_op) { r += side_get(layer.aux_r_off + s * len + idx); }
    }
    let co = idx / cols;
    let j = idx % cols;
    let at = select(layer.w_off + co * (cols - 1u) + j, layer.b_off + co, j == cols - 1u);
    g_theta[at] = g;
    if (r_op) { r_theta[at] = r; }
}
