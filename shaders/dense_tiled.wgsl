// Dense layer, register-tiled: the same maths as dense.wgsl (read its header first), but every
// invocation owns a TILE × TILE block of the output and keeps it in registers, so each value it
// loads feeds TILE multiply-adds instead of one. Per contracted index the naive kernels load 2
// values per multiply-add; these load 2·TILE values per TILE² multiply-adds (TILE = 4: 4× fewer).
//
// Where two products share operands they are computed in one kernel (the `*_tangent`/`*_rbwd`
// fusions below): y and t_y share x and W; g_x and r_gx share W and g_y; g_W and r_gW share g_y
// and x. A fused kernel reads each shared operand once.
//
// Edges: rows/columns of a tile past the tensor's end load a clamped (valid) index and are never
// stored, so there are no branches in the inner loops.
// Order: every output is summed over its contracted index in increasing order, starting from its
// bias (fwd) or from 0, exactly like the naive kernels: a fixed order, bit-reproducible per adapter.

const TILE: u32 = 4u;
const LANE: vec4<u32> = vec4<u32>(0u, 1u, 2u, 3u);

fn tile_count(n: u32) -> u32 { return (n + TILE - 1u) / TILE; }

// The four indices start..start+3, clamped to n − 1 (always loadable).
fn clamped(start: u32, n: u32) -> vec4<u32> { return min(vec4<u32>(start) + LANE, vec4<u32>(n - 1u)); }

// theta / z / work at four indices
fn theta4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(theta[i.x], theta[i.y], theta[i.z], theta[i.w]); }
fn z4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(z[i.x], z[i.y], z[i.z], z[i.w]); }
fn work4(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(work[i.x], work[i.y], work[i.z], work[i.w]); }

// A tile of a [rows, n] batch tensor at work offset `off`: row r0 + r gets a_r in columns c0..c0+3.
// (Written out row by row: a dynamically indexed local array costs lavapipe a stack round trip.)
struct Tile { r0: u32, c0: u32, };
fn store_row(off: u32, row: u32, rows: u32, c0: u32, n: u32, v: vec4<f32>) {
    if (row >= rows) { return; }
    let at = off + row * n + c0;
    if (c0 < n) { work[at] = v.x; }
    if (c0 + 1u < n) { work[at + 1u] = v.y; }
    if (c0 + 2u < n) { work[at + 2u] = v.z; }
    if (c0 + 3u < n) { work[at + 3u] = v.w; }
}
fn store_rows(off: u32, t: Tile, rows: u32, n: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    store_row(off, t.r0, rows, t.c0, n, a0);
    store_row(off, t.r0 + 1u, rows, t.c0, n, a1);
    store_row(off, t.r0 + 2u, rows, t.c0, n, a2);
    store_row(off, t.r0 + 3u, rows, t.c0, n, a3);
}

// ---- activation epilogues (src/nn/network.rs decides; maths in activation_math.wgsl)
// A dense layer followed by an activation (layer.act_fwd ≠ 0) also writes the activation's output
// post = f(y) and its tangent t_post = f′(y) t_y; one preceded by an activation (layer.act_bwd ≠ 0)
// also writes the activation's input cotangent g_pre = f′(x_pre) g_x and its R-op
// r_pre = f′(x_pre) r_x + f″(x_pre) t_pre g_x. The same formulas as the activation kernels, so
// the fusion is exact; it saves the activation's dispatches and a pass over the node.

// Four values of row `row` of a [rows, n] tensor at work offset `off`, columns c0.. (clamped).
fn row4(off: u32, row: u32, rows: u32, c0: u32, n: u32) -> vec4<f32> {
    return work4(off + min(row, rows - 1u) * n + clamped(c0, n));
}
fn act4(code: u32, x: vec4<f32>) -> array<vec3<f32>, 4> {
    return array<vec3<f32>, 4>(act_eval(code, x.x), act_eval(code, x.y), act_eval(code, x.z), act_eval(code, x.w));
}
fn post_row(row: u32, rows: u32, c0: u32, n: u32, y: vec4<f32>) {
    let a = act4(layer.act_fwd, y);
    store_row(layer.post_x_off, row, rows, c0, n, vec4<f32>(a[0].x, a[1].x, a[2].x, a[3].x));
}
fn post_tangent_row(row: u32, rows: u32, c0: u32, n: u32, y: vec4<f32>, t: vec4<f32>) {
    let a = act4(layer.act_fwd, y);
    store_row(layer.post_t_off, row, rows, c0, n, vec4<f32>(a[0].y, a[1].y, a[2].y, a[3].y) * t);
}
// post = f(y) for a tile whose pre-activations y are in registers
fn store_post(t: Tile, rows: u32, n: u32, y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>) {
    if (layer.act_fwd == ACT_NONE) { return; }
    post_row(t.r0, rows, t.c0, n, y0);
    post_row(t.r0 + 1u, rows, t.c0, n, y1);
    post_row(t.r0 + 2u, rows, t.c0, n, y2);
    post_row(t.r0 + 3u, rows, t.c0, n, y3);
}
fn pre_cotangent_row(row: u32, rows: u32, c0: u32, n: u32, g: vec4<f32>) {
    let a = act4(layer.act_bwd, row4(layer.pre_x_off, row, rows, c0, n));
    store_row(layer.pre_g_off, row, rows, c0, n, vec4<f32>(a[0].y, a[1].y, a[2].y, a[3].y) * g);
}
fn pre_r_row(row: u32, rows: u32, c0: u32, n: u32, g: vec4<f32>, r: vec4<f32>) {
    let a = act4(layer.act_bwd, row4(layer.pre_x_off, row, rows, c0, n));
    let d1 = vec4<f32>(a[0].y, a[1].y, a[2].y, a[3].y);
    // ReLU (f″ = 0): the pre-activation tangent is not kept, so it is not read
    if (layer.act_bwd == ACT_RELU) { store_row(layer.pre_r_off, row, rows, c0, n, d1 * r); return; }
    let t_pre = row4(layer.pre_t_off, row, rows, c0, n);
    let d2 = vec4<f32>(a[0].z, a[1].z, a[2].z, a[3].z);
    store_row(layer.pre_r_off, row, rows, c0, n, d1 * r + d2 * t_pre * g);
}
// g_pre = f′(x_pre) g_x for a tile of input cotangents in registers
fn store_pre_cotangent(t: Tile, rows: u32, n: u32, g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>) {
    if (layer.act_bwd == ACT_NONE) { return; }
    pre_cotangent_row(t.r0, rows, t.c0, n, g0);
    pre_cotangent_row(t.r0 + 1u, rows, t.c0, n, g1);
    pre_cotangent_row(t.r0 + 2u, rows, t.c0, n, g2);
    pre_cotangent_row(t.r0 + 3u, rows, t.c0, n, g3);
}
// r_pre = f′ r_x + f″ t_pre g_x for a tile of R-cotangents in registers; g_x from registers
// (fused kernel) or from the layer's input cotangent (written by the backward pass)
fn store_pre_r(t: Tile, rows: u32, n: u32, g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>,
               r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>) {
    if (layer.act_bwd == ACT_NONE) { return; }
    pre_r_row(t.r0, rows, t.c0, n, g0, r0);
    pre_r_row(t.r0 + 1u, rows, t.c0, n, g1, r1);
    pre_r_row(t.r0 + 2u, rows, t.c0, n, g2, r2);
    pre_r_row(t.r0 + 3u, rows, t.c0, n, g3, r3);
}

// The tile of invocation idx over a [rows, cols] output, columns fastest.
fn batch_tile(idx: u32, rows: u32, cols: u32) -> Tile {
    let tc = tile_count(cols);
    return Tile((idx / tc) * TILE, (idx % tc) * TILE);
}
fn batch_tiles(rows: u32, cols: u32) -> u32 { return tile_count(rows) * tile_count(cols); }

// ---------------------------------------------------------------- forward (and tangent)

// y[b, o] = b[o] + Σ_i x[b, i] W[o, i]            tile: 4 rows b × 4 outputs o
@compute @workgroup_size(256)
fn dense_fwd_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_forward(item_index(gid, nwg), true, false);
}

// The tangent alone (a second probe on the same forward pass):
// t_y[b, o] = Z_b[o] + Σ_i (x[b, i] Z_W[o, i] + t_x[b, i] W[o, i])
@compute @workgroup_size(256)
fn dense_tangent_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_forward(item_index(gid, nwg), false, true);
}

// Forward and tangent in one pass over x and W (both formulas above)
@compute @workgroup_size(256)
fn dense_fwd_tangent_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_forward(item_index(gid, nwg), true, true);
}

// Where a forward tile's sums start, for output columns `cols`: b (values) and Z_b (tangent).
fn forward_start(cols: vec4<u32>, values: bool, tangent: bool) -> array<vec4<f32>, 2> {
    var start = array<vec4<f32>, 2>();
    if (values) { start[0] = theta4(layer.b_off + cols); }
    if (tangent) { start[1] = z4(layer.b_off + cols); }
    return start;
}

// The tile of y (`values`) and / or t_y (`tangent`) of invocation idx, with the epilogue of an
// activation after the layer; the entry points pass constants, so each compiles to its own loop
// (the input-tangent branch is hoisted out of it).
fn dense_forward(idx: u32, values: bool, tangent: bool) {
    let rows = batch.rows;
    let n_in = layer.n_in;
    let n_out = layer.n_out;
    if (idx >= batch_tiles(rows, n_out)) { return; }
    let t = batch_tile(idx, rows, n_out);
    let r = clamped(t.r0, rows) * n_in;
    let x_row = layer.x_off + r;
    let tx_row = layer.t_x_off + r;
    let cols = clamped(t.c0, n_out);
    let w_row = layer.w_off + cols * n_in;
    let start = forward_start(cols, values, tangent);
    var y0 = start[0]; var y1 = start[0]; var y2 = start[0]; var y3 = start[0];
    var t0 = start[1]; var t1 = start[1]; var t2 = start[1]; var t3 = start[1];
    if (tangent && input_has_tangent()) {
        for (var i = 0u; i < n_in; i++) {
            let w = theta4(w_row + i);
            let zw = z4(w_row + i);
            let x = vec4<f32>(work[x_row.x + i], work[x_row.y + i], work[x_row.z + i], work[x_row.w + i]);
            if (values) { y0 += x.x * w; y1 += x.y * w; y2 += x.z * w; y3 += x.w * w; }
            t0 += x.x * zw + work[tx_row.x + i] * w;
            t1 += x.y * zw + work[tx_row.y + i] * w;
            t2 += x.z * zw + work[tx_row.z + i] * w;
            t3 += x.w * zw + work[tx_row.w + i] * w;
        }
    } else {
        for (var i = 0u; i < n_in; i++) {
            let x = vec4<f32>(work[x_row.x + i], work[x_row.y + i], work[x_row.z + i], work[x_row.w + i]);
            if (values) {
                let w = theta4(w_row + i);
                y0 += x.x * w; y1 += x.y * w; y2 += x.z * w; y3 += x.w * w;
            }
            if (tangent) {
                let zw = z4(w_row + i);
                t0 += x.x * zw; t1 += x.y * zw; t2 += x.z * zw; t3 += x.w * zw;
            }
        }
    }
    dense_forward_store(t, rows, n_out, values, tangent, y0, y1, y2, y3, t0, t1, t2, t3);
}

// Stores a forward tile: y (and the activation after the layer, if folded) and / or t_y (and the
// activation's tangent), from registers. Shared by the register- and workgroup-tiled kernels.
fn dense_forward_store(t: Tile, rows: u32, n_out: u32, values: bool, tangent: bool,
                       y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>,
                       t0: vec4<f32>, t1: vec4<f32>, t2: vec4<f32>, t3: vec4<f32>) {
    if (values) {
        store_rows(layer.y_off, t, rows, n_out, y0, y1, y2, y3);
        store_post(t, rows, n_out, y0, y1, y2, y3);
    }
    if (tangent) {
        store_rows(layer.t_y_off, t, rows, n_out, t0, t1, t2, t3);
        if (layer.act_fwd != ACT_NONE) {
            // the pre-activations from registers (fused kernel) or from the forward pass
            let p0 = select(row4(layer.y_off, t.r0, rows, t.c0, n_out), y0, values);
            let p1 = select(row4(layer.y_off, t.r0 + 1u, rows, t.c0, n_out), y1, values);
            let p2 = select(row4(layer.y_off, t.r0 + 2u, rows, t.c0, n_out), y2, values);
            let p3 = select(row4(layer.y_off, t.r0 + 3u, rows, t.c0, n_out), y3, values);
            post_tangent_row(t.r0, rows, t.c0, n_out, p0, t0);
            post_tangent_row(t.r0 + 1u, rows, t.c0, n_out, p1, t1);
            post_tangent_row(t.r0 + 2u, rows, t.c0, n_out, p2, t2);
            post_tangent_row(t.r0 + 3u, rows, t.c0, n_out, p3, t3);
        }
    }
}

// ---------------------------------------------------------------- input cotangents

// g_x[b, i] = Σ_o g_y[b, o] W[o, i]                tile: 4 rows b × 4 inputs i (W's row is contiguous in i)
@compute @workgroup_size(256)
fn dense_bwd_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_input_cotangents(item_index(gid, nwg), true, false);
}

// r_gx[b, i] = Σ_o (r_y[b, o] W[o, i] + g_y[b, o] Z_W[o, i])
@compute @workgroup_size(256)
fn dense_rbwd_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_input_cotangents(item_index(gid, nwg), false, true);
}

// g_x and r_gx in one pass over W and g_y (both formulas above)
@compute @workgroup_size(256)
fn dense_bwd_rbwd_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_input_cotangents(item_index(gid, nwg), true, true);
}

// The tile of g_x (`grad`) and / or r_gx (`r_op`) of invocation idx, with the epilogue of an
// activation before the layer; the entry points pass constants.
fn dense_input_cotangents(idx: u32, grad: bool, r_op: bool) {
    let rows = batch.rows;
    let n_in = layer.n_in;
    let n_out = layer.n_out;
    if (idx >= batch_tiles(rows, n_in)) { return; }
    let t = batch_tile(idx, rows, n_in);
    let r = clamped(t.r0, rows) * n_out;
    let g_row = layer.g_y_off + r;
    let r_row = layer.r_y_off + r;
    let w_col = layer.w_off + clamped(t.c0, n_in);
    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    for (var o = 0u; o < n_out; o++) {
        let w = theta4(w_col + o * n_in);
        let g = vec4<f32>(work[g_row.x + o], work[g_row.y + o], work[g_row.z + o], work[g_row.w + o]);
        if (grad) { g0 += g.x * w; g1 += g.y * w; g2 += g.z * w; g3 += g.w * w; }
        if (r_op) {
            let zw = z4(w_col + o * n_in);
            r0 += work[r_row.x + o] * w + g.x * zw;
            r1 += work[r_row.y + o] * w + g.y * zw;
            r2 += work[r_row.z + o] * w + g.z * zw;
            r3 += work[r_row.w + o] * w + g.w * zw;
        }
    }
    dense_input_cotangents_store(t, rows, n_in, grad, r_op, g0, g1, g2, g3, r0, r1, r2, r3);
}

// Stores an input-cotangent tile: g_x (and the cotangent of the activation before the layer, if
// folded) and / or r_gx (and the activation's R-op), from registers. Shared by the register- and
// workgroup-tiled kernels.
fn dense_input_cotangents_store(t: Tile, rows: u32, n_in: u32, grad: bool, r_op: bool,
                                g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>,
                                r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>) {
    if (grad) {
        store_rows(layer.g_x_off, t, rows, n_in, g0, g1, g2, g3);
        store_pre_cotangent(t, rows, n_in, g0, g1, g2, g3);
    }
    if (r_op) {
        store_rows(layer.r_x_off, t, rows, n_in, r0, r1, r2, r3);
        if (layer.act_bwd != ACT_NONE) {
            // g_x from registers (fused kernel) or from the backward pass
            let f0 = select(row4(layer.g_x_off, t.r0, rows, t.c0, n_in), g0, grad);
            let f1 = select(row4(layer.g_x_off, t.r0 + 1u, rows, t.c0, n_in), g1, grad);
            let f2 = select(row4(layer.g_x_off, t.r0 + 2u, rows, t.c0, n_in), g2, grad);
            let f3 = select(row4(layer.g_x_off, t.r0 + 3u, rows, t.c0, n_in), g3, grad);
            store_pre_r(t, rows, n_in, f0, f1, f2, f3, r0, r1, r2, r3);
        }
    }
}

// ---------------------------------------------------------------- parameter gradients
// The output is W's [n_out, n_in + 1] with the bias as the extra column i = n_in, where x ≡ 1 and
// t_x ≡ 0. Tiles are 4 outputs o × 4 columns i; the contracted index is the batch row b.

struct ParamTile { o0: u32, i0: u32, };
fn param_tiles() -> u32 { return tile_count(layer.n_out) * tile_count(layer.n_in + 1u); }
fn param_tile(idx: u32) -> ParamTile {
    let tc = tile_count(layer.n_in + 1u);
    return ParamTile((idx / tc) * TILE, (idx % tc) * TILE);
}

// Writes a [4 o × 4 i] tile of a weight gradient into `which` (0: ∇θ, 1: H z), bias column
// included; row o0 + r holds a_r.
fn store_param_row(which: u32, o: u32, i0: u32, v: vec4<f32>) {
    if (o >= layer.n_out) { return; }
    for (var c = 0u; c < TILE; c++) {
        let i = i0 + c;
        if (i > layer.n_in) { return; }
        let at = select(layer.w_off + o * layer.n_in + i, layer.b_off + o, i == layer.n_in);
        let value = select(select(select(v.w, v.z, c == 2u), v.y, c == 1u), v.x, c == 0u);
        if (which == 0u) { g_theta[at] = value; } else { r_theta[at] = value; }
    }
}
fn store_param(which: u32, t: ParamTile, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    store_param_row(which, t.o0, t.i0, a0);
    store_param_row(which, t.o0 + 1u, t.i0, a1);
    store_param_row(which, t.o0 + 2u, t.i0, a2);
    store_param_row(which, t.o0 + 3u, t.i0, a3);
}

// Columns i0..i0+3 of a [rows, n_in] tensor for row b, with the bias column reading `one`
// (1 for x, 0 for t_x); `mask` marks the bias column.
fn param_cols(off: u32, b: u32, cols: vec4<u32>, mask: vec4<bool>, one: f32) -> vec4<f32> {
    return select(work4(off + b * layer.n_in + cols), vec4<f32>(one), mask);
}

// g_W[o, i] = Σ_b g_y[b, o] x[b, i];  g_b[o] = Σ_b g_y[b, o]
@compute @workgroup_size(256)
fn dense_bwd_w_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_weight_gradients(item_index(gid, nwg), true, false, runtime_value(batch.rows, gid));
}

// r_gW[o, i] = Σ_b (r_y[b, o] x[b, i] + g_y[b, o] t_x[b, i]);  r_gb[o] = Σ_b r_y[b, o]
@compute @workgroup_size(256)
fn dense_rbwd_w_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_weight_gradients(item_index(gid, nwg), false, true, runtime_value(batch.rows, gid));
}

// ∇θ and H z of the layer's parameters in one pass over g_y and x (both formulas above)
@compute @workgroup_size(256)
fn dense_bwd_rbwd_w_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dense_weight_gradients(item_index(gid, nwg), true, true, runtime_value(batch.rows, gid));
}

// The tile of ∇θ (`grad`) and / or H z (`r_op`) of invocation idx, summed over `rows` batch rows
// (batch.rows, through `runtime_value`). The entry points pass constants, so each compiles to its
// own loop; the input-tangent branch is hoisted out of it.
fn dense_weight_gradients(idx: u32, grad: bool, r_op: bool, rows: u32) {
    if (idx >= param_tiles()) { return; }
    let t = param_tile(idx);
    let n_out = layer.n_out;
    let outs = clamped(t.o0, n_out);
    let cols = clamped(t.i0, layer.n_in);
    let bias_col = vec4<u32>(t.i0) + LANE == vec4<u32>(layer.n_in);
    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    if (r_op && input_has_tangent()) {
        for (var b = 0u; b < rows; b++) {
            let x = param_cols(layer.x_off, b, cols, bias_col, 1.0);
            let tx = param_cols(layer.t_x_off, b, cols, bias_col, 0.0);
            let g = work4(layer.g_y_off + b * n_out + outs);
            let r = work4(layer.r_y_off + b * n_out + outs);
            if (grad) { g0 += g.x * x; g1 += g.y * x; g2 += g.z * x; g3 += g.w * x; }
            r0 += r.x * x + g.x * tx; r1 += r.y * x + g.y * tx; r2 += r.z * x + g.z * tx; r3 += r.w * x + g.w * tx;
        }
    } else {
        for (var b = 0u; b < rows; b++) {
            let x = param_cols(layer.x_off, b, cols, bias_col, 1.0);
            if (grad) {
                let g = work4(layer.g_y_off + b * n_out + outs);
                g0 += g.x * x; g1 += g.y * x; g2 += g.z * x; g3 += g.w * x;
            }
            if (r_op) {
                let r = work4(layer.r_y_off + b * n_out + outs);
                r0 += r.x * x; r1 += r.y * x; r2 += r.z * x; r3 += r.w * x;
            }
        }
    }
    if (grad) { store_param(0u, t, g0, g1, g2, g3); }
    if (r_op) { store_param(1u, t, r0, r1, r2, r3); }
}
