// Dense products staged through workgroup memory: the "shared" kernel set (src/gpu/mod.rs
// `KernelSet::Shared`), for every contraction of the four passes. A workgroup of 16 × 16
// invocations owns a 64 × 64 block of the output; each invocation keeps its 4 × 4 tile in
// registers, as in dense_tiled.wgsl (whose epilogues these kernels share). The contracted axis is
// walked in chunks of SHARED_K: the workgroup loads the chunk of each operand for its block into
// workgroup memory once, and every invocation reads its operands from there. Per chunk a value
// loaded from global memory feeds 64 multiply-adds (16 invocations × a 4-wide tile) instead of 4.
//
//   output block (rows × cols)       contracted   row-side operands   col-side operands
//   y, t_y:   batch rows × outputs    inputs i     x, t_x              W, Z_W
//   g_x, r_gx: batch rows × inputs    outputs o    g_y, r_y            W, Z_W (transposed)
//   ∇W, (Hz)_W: outputs × inputs + 1  batch rows b g_y, r_y (transp.)  x, t_x (bias column 1, 0)
//
// Workgroup memory: 4 chunks × 64 × SHARED_K floats = 8 KiB (WebGPU's default limit is 16 KiB).
// Each chunk is stored [64 block positions][SHARED_K]; staging loads walk the operand's
// contiguous axis across neighbouring invocations (coalesced on a GPU).
// Order: each output starts from its bias (or Z_b, or 0) and adds the contracted terms in
// increasing order, with the register kernels' expressions: a fixed order per adapter.
// Edges: loads are clamped to valid indices; chunk ends and stores are bounded by the sizes.
// Every invocation reaches every barrier: the block and the chunk loop depend only on the
// workgroup and the layer's sizes, which are uniform.

const SHARED_BLOCK: u32 = 64u;
const SHARED_K: u32 = 8u;
const SHARED_TILE_LEN: u32 = 512u;   // SHARED_BLOCK * SHARED_K

// the chunks, [64 block positions][SHARED_K] each (roles in the table above)
var<workgroup> row_a: array<f32, 512>;      // x | g_y | g_y
var<workgroup> row_b: array<f32, 512>;      // t_x | r_y | r_y
var<workgroup> col_a: array<f32, 512>;      // W | W | x
var<workgroup> col_b: array<f32, 512>;      // Z_W | Z_W | t_x

const ROW_A: u32 = 0u;
const ROW_B: u32 = 1u;
const COL_A: u32 = 2u;
const COL_B: u32 = 3u;

// ---------------------------------------------------------------- forward (and tangent)

// y = W x + b
@compute @workgroup_size(256)
fn dense_fwd_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    dense_forward_shared(group_index(wid, nwg), lid, true, false);
}

// t_y = Z_b + Σ_i (x Z_W + t_x W)
@compute @workgroup_size(256)
fn dense_tangent_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    dense_forward_shared(group_index(wid, nwg), lid, false, true);
}

// both, from one staging of x and W
@compute @workgroup_size(256)
fn dense_fwd_tangent_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    dense_forward_shared(group_index(wid, nwg), lid, true, true);
}

// The four SHARED_K-strided values of a chunk at rows (or outputs) 4q..4q+3, position kk.
fn chunk4(which: u32, q: u32, kk: u32) -> vec4<f32> {
    let at = vec4<u32>(4u * q) + LANE;
    let i = at * SHARED_K + vec4<u32>(kk);
    switch which {
        case 0u: { return vec4<f32>(row_a[i.x], row_a[i.y], row_a[i.z], row_a[i.w]); }
        case 1u: { return vec4<f32>(row_b[i.x], row_b[i.y], row_b[i.z], row_b[i.w]); }
        case 2u: { return vec4<f32>(col_a[i.x], col_a[i.y], col_a[i.z], col_a[i.w]); }
        default: { return vec4<f32>(col_b[i.x], col_b[i.y], col_b[i.z], col_b[i.w]); }
    }
}

fn dense_forward_shared(block: u32, lid: u32, values: bool, tangent: bool) {
    let rows = batch.rows;
    let n_in = layer.n_in;
    let n_out = layer.n_out;
    let blocks_c = (n_out + SHARED_BLOCK - 1u) / SHARED_BLOCK;
    // a whole workgroup past the last block (a 2-D dispatch rounds up) leaves together: uniform
    if (block >= ((rows + SHARED_BLOCK - 1u) / SHARED_BLOCK) * blocks_c) { return; }
    let row0 = (block / blocks_c) * SHARED_BLOCK;
    let col0 = (block % blocks_c) * SHARED_BLOCK;
    let tr = lid / 16u;                      // this invocation's rows: row0 + 4 tr ..
    let tc = lid % 16u;                      // and outputs: col0 + 4 tc ..
    let t = Tile(row0 + 4u * tr, col0 + 4u * tc);
    let with_tx = tangent && input_has_tangent();

    let start = forward_start(clamped(t.c0, n_out), values, tangent);
    var y0 = start[0]; var y1 = start[0]; var y2 = start[0]; var y3 = start[0];
    var t0 = start[1]; var t1 = start[1]; var t2 = start[1]; var t3 = start[1];

    for (var k0 = 0u; k0 < n_in; k0 += SHARED_K) {
        // stage the chunk: 512 values of each operand, two per invocation
        for (var e = 0u; e < 2u; e++) {
            let j = lid + e * 256u;
            let q = j / SHARED_K;            // row (x) or output (W) within the block
            let k = min(k0 + j % SHARED_K, n_in - 1u);
            let x_at = layer.x_off + min(row0 + q, rows - 1u) * n_in + k;
            let w_at = layer.w_off + min(col0 + q, n_out - 1u) * n_in + k;
            row_a[j] = work[x_at];
            if (values || with_tx) { col_a[j] = theta[w_at]; }
            if (tangent) { col_b[j] = z[w_at]; }
            if (with_tx) { row_b[j] = work[layer.t_x_off + min(row0 + q, rows - 1u) * n_in + k]; }
        }
        workgroupBarrier();
        let kn = min(SHARED_K, n_in - k0);
        for (var kk = 0u; kk < kn; kk++) {
            let x = chunk4(ROW_A, tr, kk);
            if (values) {
                let w = chunk4(COL_A, tc, kk);
                y0 += x.x * w; y1 += x.y * w; y2 += x.z * w; y3 += x.w * w;
            }
            if (tangent) {
                let zw = chunk4(COL_B, tc, kk);
                if (with_tx) {
                    let w = chunk4(COL_A, tc, kk);
                    let tx = chunk4(ROW_B, tr, kk);
                    t0 += x.x * zw + tx.x * w; t1 += x.y * zw + tx.y * w;
                    t2 += x.z * zw + tx.z * w; t3 += x.w * zw + tx.w * w;
                } else {
                    t0 += x.x * zw; t1 += x.y * zw; t2 += x.z * zw; t3 += x.w * zw;
                }
            }
        }
        workgroupBarrier();
    }
    dense_forward_store(t, rows, n_out, values, tangent, y0, y1, y2, y3, t0, t1, t2, t3);
}

// ---------------------------------------------------------------- input cotangents

// g_x = g_y W
@compute @workgroup_size(256)
fn dense_bwd_x_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    dense_input_cotangents_shared(group_index(wid, nwg), lid, true, false);
}

// r_gx = r_y W + g_y Z_W
@compute @workgroup_size(256)
fn dense_rbwd_x_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    dense_input_cotangents_shared(group_index(wid, nwg), lid, false, true);
}

// both, from one staging of g_y and W
@compute @workgroup_size(256)
fn dense_bwd_rbwd_x_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    dense_input_cotangents_shared(group_index(wid, nwg), lid, true, true);
}

fn dense_input_cotangents_shared(block: u32, lid: u32, grad: bool, r_op: bool) {
    let rows = batch.rows;
    let n_in = layer.n_in;
    let n_out = layer.n_out;
    let blocks_c = (n_in + SHARED_BLOCK - 1u) / SHARED_BLOCK;
    if (block >= ((rows + SHARED_BLOCK - 1u) / SHARED_BLOCK) * blocks_c) { return; }
    let row0 = (block / blocks_c) * SHARED_BLOCK;
    let col0 = (block % blocks_c) * SHARED_BLOCK;
    let tr = lid / 16u;
    let tc = lid % 16u;
    let t = Tile(row0 + 4u * tr, col0 + 4u * tc);

    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    for (var o0 = 0u; o0 < n_out; o0 += SHARED_K) {
        for (var e = 0u; e < 2u; e++) {
            let j = lid + e * 256u;
            // g_y, r_y [rows, n_out]: SHARED_K consecutive outputs of each of the block's rows
            let q = j / SHARED_K;
            let y_at = min(row0 + q, rows - 1u) * n_out + min(o0 + j % SHARED_K, n_out - 1u);
            row_a[j] = work[layer.g_y_off + y_at];
            if (r_op) { row_b[j] = work[layer.r_y_off + y_at]; }
            // W[o, i] (rows of W are contiguous in i): the block's 64 inputs for each output
            let qi = j % SHARED_BLOCK;
            let kk = j / SHARED_BLOCK;
            let w_at = layer.w_off + min(o0 + kk, n_out - 1u) * n_in + min(col0 + qi, n_in - 1u);
            col_a[qi * SHARED_K + kk] = theta[w_at];
            if (r_op) { col_b[qi * SHARED_K + kk] = z[w_at]; }
        }
        workgroupBarrier();
        let kn = min(SHARED_K, n_out - o0);
        for (var kk = 0u; kk < kn; kk++) {
            let w = chunk4(COL_A, tc, kk);
            let g = chunk4(ROW_A, tr, kk);
            if (grad) { g0 += g.x * w; g1 += g.y * w; g2 += g.z * w; g3 += g.w * w; }
            if (r_op) {
                let zw = chunk4(COL_B, tc, kk);
                let r = chunk4(ROW_B, tr, kk);
                r0 += r.x * w + g.x * zw; r1 += r.y * w + g.y * zw;
                r2 += r.z * w + g.z * zw; r3 += r.w * w + g.w * zw;
            }
        }
        workgroupBarrier();
    }
    dense_input_cotangents_store(t, rows, n_in, grad, r_op, g0, g1, g2, g3, r0, r1, r2, r3);
}

// ---------------------------------------------------------------- parameter gradients
// The output is W's [n_out, n_in + 1] with the bias as the extra column i = n_in (x ≡ 1,
// t_x ≡ 0), in 64 × 64 blocks of outputs × columns; the contracted index is the batch row.

// ∇W = g_yᵀ x, ∇b = Σ_b g_y
@compute @workgroup_size(256)
fn dense_bwd_w_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    dense_weight_gradients_shared(group_index(wid, nwg), lid, true, false, runtime_value(batch.rows, wid));
}

// (H z)_W = r_yᵀ x + g_yᵀ t_x, (H z)_b = Σ_b r_y
@compute @workgroup_size(256)
fn dense_rbwd_w_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    dense_weight_gradients_shared(group_index(wid, nwg), lid, false, true, runtime_value(batch.rows, wid));
}

// both, from one staging of g_y and x
@compute @workgroup_size(256)
fn dense_bwd_rbwd_w_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    dense_weight_gradients_shared(group_index(wid, nwg), lid, true, true, runtime_value(batch.rows, wid));
}

// `rows`: batch.rows, through `runtime_value` (common.wgsl)
fn dense_weight_gradients_shared(block: u32, lid: u32, grad: bool, r_op: bool, rows: u32) {
    let n_in = layer.n_in;
    let n_out = layer.n_out;
    let blocks_c = (n_in + SHARED_BLOCK) / SHARED_BLOCK;        // ceil((n_in + 1) / 64)
    if (block >= ((n_out + SHARED_BLOCK - 1u) / SHARED_BLOCK) * blocks_c) { return; }
    let o0 = (block / blocks_c) * SHARED_BLOCK;
    let i0 = (block % blocks_c) * SHARED_BLOCK;
    let tr = lid / 16u;                      // this invocation's outputs: o0 + 4 tr ..
    let tc = lid % 16u;                      // and columns: i0 + 4 tc ..
    let t = ParamTile(o0 + 4u * tr, i0 + 4u * tc);
    let with_tx = r_op && input_has_tangent();

    var g0 = vec4<f32>(); var g1 = vec4<f32>(); var g2 = vec4<f32>(); var g3 = vec4<f32>();
    var r0 = vec4<f32>(); var r1 = vec4<f32>(); var r2 = vec4<f32>(); var r3 = vec4<f32>();
    for (var b0 = 0u; b0 < rows; b0 += SHARED_K) {
        for (var e = 0u; e < 2u; e++) {
            let j = lid + e * 256u;
            // batch row b0 + kk of g_y, r_y (the block's 64 outputs) and of x, t_x (its 64
            // columns), each contiguous across neighbouring invocations
            let q = j % SHARED_BLOCK;
            let kk = j / SHARED_BLOCK;
            let b = min(b0 + kk, rows - 1u);
            let at = q * SHARED_K + kk;
            let y_at = b * n_out + min(o0 + q, n_out - 1u);
            if (grad || with_tx) { row_a[at] = work[layer.g_y_off + y_at]; }
            if (r_op) { row_b[at] = work[layer.r_y_off + y_at]; }
            let i = i0 + q;
            let x_at = b * n_in + min(i, n_in - 1u);
            col_a[at] = select(work[layer.x_off + x_at], 1.0, i == n_in);
            if (with_tx) { col_b[at] = select(work[layer.t_x_off + x_at], 0.0, i == n_in); }
        }
        workgroupBarrier();
        let kn = min(SHARED_K, rows - b0);
        for (var kk = 0u; kk < kn; kk++) {
            let x = chunk4(COL_A, tc, kk);
            if (grad) {
                let g = chunk4(ROW_A, tr, kk);
                g0 += g.x * x; g1 += g.y * x; g2 += g.z * x; g3 += g.w * x;
            }
            if (r_op) {
                let r = chunk4(ROW_B, tr, kk);
                if (with_tx) {
                    let g = chunk4(ROW_A, tr, kk);
                    let tx = chunk4(COL_B, tc, kk);
                    r0 += r.x * x + g.x * tx; r1 += r.y * x + g.y * tx;
                    r2 += r.z * x + g.z * tx; r3 += r.w * x + g.w * tx;
                } else {
                    r0 += r.x * x; r1 += r.y * x; r2 += r.z * x; r3 += r.w * x;
                }
            }
        }
        workgroupBarrier();
    }
    if (grad) { store_param(0u, t, g0, g1, g2, g3); }
    if (r_op) { store_param(1u, t, r0, r1, r2, r3); }
}
