// Dense forward (and tangent) products staged through workgroup memory: the "shared" kernel set
// (src/gpu/mod.rs `KernelSet::Shared`). A workgroup of 16 × 16 invocations owns a 64 × 64 block
// of y (64 batch rows × 64 outputs); each invocation keeps its 4 × 4 tile in registers, as in
// dense_tiled.wgsl. The contracted axis is walked in chunks of SHARED_K: the workgroup loads the
// chunk of x (and t_x) for its 64 rows and of W (and Z_W) for its 64 outputs into workgroup
// memory once, and every invocation reads its operands from there. Per chunk a value loaded from
// global memory feeds 64 multiply-adds (16 invocations × a 4-wide tile) instead of 4.
//
// Workgroup memory: 4 tiles × 64 × SHARED_K floats = 8 KiB (WebGPU's default limit is 16 KiB).
// Order: each output starts from its bias (or Z_b) and adds the contracted terms in increasing
// order, with the register kernels' expressions, so a fixed order per adapter, as everywhere.
// Edges: loads are clamped to valid indices; chunk ends and stores are bounded by the sizes.
// Every invocation reaches every barrier: the block and the chunk loop depend only on the
// workgroup and the layer's sizes, which are uniform.

const SHARED_BLOCK: u32 = 64u;
const SHARED_K: u32 = 8u;
const SHARED_TILE_LEN: u32 = 512u;   // SHARED_BLOCK * SHARED_K

var<workgroup> x_chunk: array<f32, 512>;    // [64 rows][SHARED_K]
var<workgroup> tx_chunk: array<f32, 512>;   // [64 rows][SHARED_K] (tangent with an input tangent)
var<workgroup> w_chunk: array<f32, 512>;    // [64 outputs][SHARED_K]
var<workgroup> zw_chunk: array<f32, 512>;   // [64 outputs][SHARED_K] (tangent)

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
        case 0u: { return vec4<f32>(x_chunk[i.x], x_chunk[i.y], x_chunk[i.z], x_chunk[i.w]); }
        case 1u: { return vec4<f32>(tx_chunk[i.x], tx_chunk[i.y], tx_chunk[i.z], tx_chunk[i.w]); }
        case 2u: { return vec4<f32>(w_chunk[i.x], w_chunk[i.y], w_chunk[i.z], w_chunk[i.w]); }
        default: { return vec4<f32>(zw_chunk[i.x], zw_chunk[i.y], zw_chunk[i.z], zw_chunk[i.w]); }
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
            x_chunk[j] = work[x_at];
            if (values || with_tx) { w_chunk[j] = theta[w_at]; }
            if (tangent) { zw_chunk[j] = z[w_at]; }
            if (with_tx) { tx_chunk[j] = work[layer.t_x_off + min(row0 + q, rows - 1u) * n_in + k]; }
        }
        workgroupBarrier();
        let kn = min(SHARED_K, n_in - k0);
        for (var kk = 0u; kk < kn; kk++) {
            let x = chunk4(0u, tr, kk);
            if (values) {
                let w = chunk4(2u, tc, kk);
                y0 += x.x * w; y1 += x.y * w; y2 += x.z * w; y3 += x.w * w;
            }
            if (tangent) {
                let zw = chunk4(3u, tc, kk);
                if (with_tx) {
                    let w = chunk4(2u, tc, kk);
                    let tx = chunk4(1u, tr, kk);
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
