// Normalisation (BatchNorm1d/2d, LayerNorm), PyTorch semantics; the algebra is in src/nn/norm.rs,
// whose f64 functions are these kernels' reference.
//
// A group is what one set of statistics covers:
//   norm_kind 0 (BatchNorm): channel c of a [rows, C, P] batch (C = c_in, P = h_in = H·W, 1 for
//                            1-D), m = rows·P values, γ and β indexed by c;
//   norm_kind 1 (LayerNorm): row n of a [rows, D] batch (D = n_in), m = D values, γ, β by feature.
//
//   μ = mean x, σ² = mean (x − μ)² (biased), r = (σ² + ε)^(−1/2), x̂ = (x − μ) r, y = γ x̂ + β
//   tangent      c = mean(x̂ t), t_x̂ = r (t − mean t − x̂ c), t_y = γ t_x̂ + z_γ x̂ + z_β
//   bwd          u = γ g_y, A = Σ u, B = Σ u x̂, g_x = (r/m)(m u − A − x̂ B)
//   rbwd         R{u} = z_γ g_y + γ r_y, A' = Σ R{u}, B' = Σ (R{u} x̂ + u t_x̂), t_r = −r² c,
//                R{g_x} = (t_r/m)(m u − A − x̂ B) + (r/m)(m R{u} − A' − t_x̂ B − x̂ B')
// With the running statistics (batch.norm_mode 2, BatchNorm's eval mode) μ and r are constants:
//   t_x̂ = r t, g_x = r u, R{g_x} = r R{u}.
//
// Every pass is three kernels, so that a group's m values (131,072 for a ResNet's first channel
// at batch 128) spread over many workgroups instead of one per channel (16 of them: a sixth of a
// GPU's compute units):
//   *_partial  one 256-invocation workgroup per chunk of `split_len` values of a group (the last
//              chunk shorter) walks its values in a fixed strided order and tree-reduces its sums
//              into the chunk's partial (8 floats at pack_off + 8 (g S + j), S chunks a group);
//   *_total    one invocation per group folds its S partials in chunk order into the group's
//              totals: the forward's μ, r and the tangent's mean t, c into `aux` (kept for the
//              backward passes), the backward's into the totals after the partials, BatchNorm's
//              parameter gradients into g_theta / r_theta;
//   (apply)    the element-wise outputs, a workgroup per chunk again.
// (Folding the partials in the apply kernels instead, with a tree per workgroup, saves the
// totals' dispatches but measured 3-4% slower AdaHessian and 7-11% slower Adam steps on lavapipe,
// whose barriers are dear, than before the split.) The
// fused passes share walks: the forward's outputs with the tangent's partial sums, the backward's
// outputs with the R-backward's. Fixed orders throughout, so reruns are bit-identical. The
// forward's variance is exact in two passes without E[x²] − μ²: each chunk keeps its own sum S_j
// and squared deviations M2_j about its own mean (the chunk's second read is a cache hit),
// combined as Chan et al.:
//   μ = Σ_j S_j / m,  M2 = Σ_j M2_j + n_j (S_j / n_j − μ)².
// LayerNorm's γ and β gradients span every row, so layernorm_bwd_params / layernorm_rbwd_params
// sum them over the rows, one invocation per feature.
//
// Saved per layer in the activation arena at aux_off (the `side` binding; 4 floats per group): μ, r (forward) and
// mean t, c (tangent), read by the backward kernels of the same step. The partials are scratch of
// the pass at pack_off (`side` too), shared with the other layers.
// Running statistics (BatchNorm) live in `stats` at run_off: μ_run [C], then σ²_run [C]; the
// forward updates them when batch.norm_mode is 1 (a training step):
//   μ_run ← (1 − momentum) μ_run + momentum μ,  σ²_run ← (1 − momentum) σ²_run + momentum σ² m/(m − 1)
// Hazard: the R-backward's input slot r_x may share storage with the input tangent t_x (a kept
// tangent's slot takes the R-cotangent, src/nn/plan.rs): norm_rbwd_partial reads every t_x in a
// dispatch of its own, and norm_rbwd / norm_bwd_rbwd read each element's t_x before they write
// its r_x.

const NORM_BATCH_STATS: u32 = 0u;
const NORM_UPDATE_RUNNING: u32 = 1u;
const NORM_RUNNING_STATS: u32 = 2u;

var<workgroup> sums: array<vec4<f32>, 256>;

// Tree-reduces four partial sums over the workgroup; every invocation gets the totals. Must be
// reached by every invocation of the workgroup (uniform control flow).
fn group_sum4(t: u32, v: vec4<f32>) -> vec4<f32> {
    sums[t] = v;
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) { sums[t] += sums[t + stride]; }
        workgroupBarrier();
    }
    let total = sums[0];
    workgroupBarrier();
    return total;
}

fn norm_groups() -> u32 {
    if (layer.norm_kind == 0u) { return layer.c_in; }
    return batch.rows;
}
fn norm_m() -> u32 {
    if (layer.norm_kind == 0u) { return batch.rows * layer.h_in; }
    return layer.n_in;
}
// chunks of a group at this batch (split_len: a multiple of WORKGROUP, src/nn/norm.rs)
fn norm_chunks() -> u32 { return (norm_m() + layer.split_len - 1u) / layer.split_len; }

// The chunk a workgroup of a *_partial or apply kernel walks: values k = start + t, + 256, ..
// below end of group g. Uniform per workgroup.
struct NormChunk { g: u32, j: u32, start: u32, end: u32, };
fn norm_chunk(wid: vec3<u32>, nwg: vec3<u32>) -> NormChunk {
    let item = group_index(wid, nwg);
    let chunks = norm_chunks();
    let j = item % chunks;
    let start = j * layer.split_len;
    return NormChunk(item / chunks, j, start, min(start + layer.split_len, norm_m()));
}
// where chunk j of group g keeps its 8 floats of partial sums
fn norm_partial_at(g: u32, j: u32) -> u32 { return layer.pack_off + 8u * (g * norm_chunks() + j); }

// The values of a group walked incrementally: invocation t visits k = k0, k0 + 256, .. as
// (row, col) = (k / P, k % P) with P values of the group per batch row (BatchNorm: the plane,
// LayerNorm: the row, whose k < P); flat index (within a node) row · row_len + base + col. The
// divisions run once per invocation instead of once per value (an integer division by a uniform
// is a scalar loop on CPU adapters such as lavapipe and SwiftShader).
struct NormWalk { row: u32, col: u32, d_row: u32, d_col: u32, plane: u32, base: u32, row_len: u32, }
fn norm_walk(g: u32, k0: u32) -> NormWalk {
    let bn = layer.norm_kind == 0u;
    let plane = select(layer.n_in, layer.h_in, bn);
    let channels = select(1u, layer.c_in, bn);
    return NormWalk(k0 / plane, k0 % plane, WORKGROUP / plane, WORKGROUP % plane, plane, g * plane, channels * plane);
}
fn norm_walk_at(w: NormWalk) -> u32 { return w.row * w.row_len + w.base + w.col; }
fn norm_walk_next(w: NormWalk) -> NormWalk {
    var n = w;
    n.row += w.d_row;
    n.col += w.d_col;
    if (n.col >= w.plane) { n.col -= w.plane; n.row += 1u; }
    return n;
}
// index of the γ / β of that value
fn norm_param(g: u32, k: u32) -> u32 {
    if (layer.norm_kind == 0u) { return g; }
    return k;
}
// γ, β, z_γ, z_β of a value. BatchNorm's are its group's: each kernel's body is specialised
// (per_feature false) to load them once before its loops (`own`), since on CPU adapters every
// storage load is a loop over the lanes, even one whose address all lanes share. LayerNorm's
// (per_feature true) are the value's feature's, p = k, loaded per value.
struct NormAffine { gamma: f32, beta: f32, z_gamma: f32, z_beta: f32, };
// `with_z`: the tangent and R-backward read z_γ, z_β; a network without curvature has no z of
// length P, so the forward and backward never read it.
fn norm_own_affine(g: u32, with_z: bool) -> NormAffine {
    let p = norm_param(g, 0u);   // BatchNorm: g; LayerNorm: 0, a valid index the body never uses
    var a = NormAffine(theta[layer.w_off + p], theta[layer.b_off + p], 0.0, 0.0);
    if (with_z) {
        a.z_gamma = z[layer.w_off + p];
        a.z_beta = z[layer.b_off + p];
    }
    return a;
}
fn norm_gamma(per_feature: bool, k: u32, own: NormAffine) -> f32 {
    if (per_feature) { return theta[layer.w_off + k]; }
    return own.gamma;
}
fn norm_beta(per_feature: bool, k: u32, own: NormAffine) -> f32 {
    if (per_feature) { return theta[layer.b_off + k]; }
    return own.beta;
}
fn norm_z_gamma(per_feature: bool, k: u32, own: NormAffine) -> f32 {
    if (per_feature) { return z[layer.w_off + k]; }
    return own.z_gamma;
}
fn norm_z_beta(per_feature: bool, k: u32, own: NormAffine) -> f32 {
    if (per_feature) { return z[layer.b_off + k]; }
    return own.z_beta;
}
fn norm_eps() -> f32 { return bitcast<f32>(layer.norm_eps_bits); }
fn norm_fixed() -> bool { return layer.norm_kind == 0u && batch.norm_mode == NORM_RUNNING_STATS; }
// The layer's offsets, read once per invocation: `layer` is a storage buffer, and on CPU adapters
// each read of it inside a loop would be a load per lane per value.
struct NormOffsets { x: u32, y: u32, t_x: u32, t_y: u32, g_x: u32, g_y: u32, r_x: u32, r_y: u32, has_t: bool, };
fn norm_offsets() -> NormOffsets {
    return NormOffsets(layer.x_off, layer.y_off, layer.t_x_off, layer.t_y_off, layer.g_x_off,
                       layer.g_y_off, layer.r_x_off, layer.r_y_off, input_has_tangent());
}
fn norm_tangent_at(o: NormOffsets, i: u32) -> f32 {
    if (o.has_t) { return work[o.t_x + i]; }
    return 0.0;
}

// μ and r of group g: the saved batch statistics, or the running ones in eval mode
struct NormStats { mu: f32, r: f32, };
fn saved_stats(g: u32) -> NormStats {
    if (norm_fixed()) {
        let c = layer.c_in;
        return NormStats(stats[layer.run_off + g], inverseSqrt(stats[layer.run_off + c + g] + norm_eps()));
    }
    return NormStats(side[layer.aux_off + 4u * g], side[layer.aux_off + 4u * g + 1u]);
}
// the tangent's mean t and c of group g, saved by norm_tangent_total
struct NormTangentStats { mean_t: f32, c: f32, };
fn saved_tangent_stats(g: u32) -> NormTangentStats {
    return NormTangentStats(side[layer.aux_off + 4u * g + 2u], side[layer.aux_off + 4u * g + 3u]);
}
fn norm_store_partial(ch: NormChunk, a: vec4<f32>, b: vec4<f32>) {
    let at = norm_partial_at(ch.g, ch.j);
    side[at] = a.x;
    side[at + 1u] = a.y;
    side[at + 2u] = a.z;
    side[at + 3u] = a.w;
    side[at + 4u] = b.x;
    side[at + 5u] = b.y;
    side[at + 6u] = b.z;
    side[at + 7u] = b.w;
}
fn norm_load_partial(at: u32) -> vec4<f32> {
    return vec4<f32>(side[at], side[at + 1u], side[at + 2u], side[at + 3u]);
}
// Σ over the chunks of group g of partial words 0..3 (`second`: words 4..7), in chunk order: one
// invocation per group (the *_total kernels)
fn norm_fold(g: u32, second: bool) -> vec4<f32> {
    let first = norm_partial_at(g, 0u) + select(0u, 4u, second);
    let chunks = norm_chunks();
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < chunks; j++) { acc += norm_load_partial(first + 8u * j); }
    return acc;
}
// the group's totals of a backward pass, kept from its *_total kernel to its outputs
fn norm_total_at(g: u32) -> u32 { return layer.pack_off + 8u * norm_groups() * norm_chunks() + 4u * g; }
fn norm_store_total(g: u32, v: vec4<f32>) {
    let at = norm_total_at(g);
    side[at] = v.x;
    side[at + 1u] = v.y;
    side[at + 2u] = v.z;
    side[at + 3u] = v.w;
}

// ---- forward: the batch statistics, then y = γ x̂ + β

@compute @workgroup_size(256)
fn norm_fwd_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups() || norm_fixed()) { return; }   // uniform per workgroup: safe before barriers
    let t = lid.x;
    let x = layer.x_off;
    // two passes over the chunk (mean, then squared deviations): no cancellation in E[x²] − μ²
    var acc = 0.0;
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        acc += work[x + norm_walk_at(w)];
        w = norm_walk_next(w);
    }
    let sum = group_sum4(t, vec4<f32>(acc, 0.0, 0.0, 0.0)).x;
    let mean = sum / f32(ch.end - ch.start);
    var dev = 0.0;
    w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let d = work[x + norm_walk_at(w)] - mean;
        dev += d * d;
        w = norm_walk_next(w);
    }
    let m2 = group_sum4(t, vec4<f32>(dev, 0.0, 0.0, 0.0)).x;
    if (t == 0u) { norm_store_partial(ch, vec4<f32>(sum, m2, 0.0, 0.0), vec4<f32>(0.0)); }
}

// The batch statistics from the chunks' partials (Chan et al.'s combination), saved for the
// passes after; a training step also folds them into the running statistics.
@compute @workgroup_size(256)
fn norm_fwd_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = item_index(gid, nwg);
    if (g >= norm_groups() || norm_fixed()) { return; }
    let values = norm_m();
    let m = f32(values);
    let chunks = norm_chunks();
    let len = layer.split_len;
    let first = norm_partial_at(g, 0u);
    var sum = 0.0;
    for (var j = 0u; j < chunks; j++) { sum += side[first + 8u * j]; }
    let mu = sum / m;
    var m2 = 0.0;
    for (var j = 0u; j < chunks; j++) {
        let at = first + 8u * j;
        let n = f32(min(len, values - j * len));   // the last chunk may be shorter
        let d = side[at] / n - mu;
        m2 += side[at + 1u] + n * d * d;
    }
    let var_b = m2 / m;
    side[layer.aux_off + 4u * g] = mu;
    side[layer.aux_off + 4u * g + 1u] = inverseSqrt(var_b + norm_eps());
    if (layer.norm_kind == 0u && batch.norm_mode == NORM_UPDATE_RUNNING) {
        let c = layer.c_in;
        let mom = bitcast<f32>(layer.norm_momentum_bits);
        let unbiased = var_b * m / (m - 1.0);
        stats[layer.run_off + g] = (1.0 - mom) * stats[layer.run_off + g] + mom * mu;
        stats[layer.run_off + c + g] = (1.0 - mom) * stats[layer.run_off + c + g] + mom * unbiased;
    }
}

@compute @workgroup_size(256)
fn norm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_forward(ch, lid.x, false, false); } else { norm_forward(ch, lid.x, true, false); }
}

// The forward's outputs and, in a ForwardTangent pass, the tangent's partial sums in the same walk
// (norm_fwd_partial, norm_fwd_total, this, norm_tangent_total, norm_tangent): one read of x fewer.
@compute @workgroup_size(256)
fn norm_fwd_tangent_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_forward(ch, lid.x, false, true); } else { norm_forward(ch, lid.x, true, true); }
}
fn norm_forward(ch: NormChunk, t: u32, per_feature: bool, tangent_sums: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, false);
    let s = saved_stats(ch.g);
    let sums_wanted = tangent_sums && !norm_fixed() && o.has_t;   // uniform
    var acc = vec4<f32>(0.0);
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let xh = (work[o.x + i] - s.mu) * s.r;
        work[o.y + i] = norm_gamma(per_feature, k, own) * xh + norm_beta(per_feature, k, own);
        if (sums_wanted) {
            let tx = work[o.t_x + i];
            acc += vec4<f32>(tx, xh * tx, 0.0, 0.0);
        }
        w = norm_walk_next(w);
    }
    if (sums_wanted) {
        let tot = group_sum4(t, acc);
        if (t == 0u) { norm_store_partial(ch, tot, vec4<f32>(0.0)); }
    }
}

// ---- tangent: mean t and c = mean x̂ t, then t_y

@compute @workgroup_size(256)
fn norm_tangent_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    let o = norm_offsets();
    if (ch.g >= norm_groups() || norm_fixed() || !o.has_t) { return; }
    let t = lid.x;
    let s = saved_stats(ch.g);
    var acc = vec4<f32>(0.0);
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let tx = work[o.t_x + i];
        acc += vec4<f32>(tx, (work[o.x + i] - s.mu) * s.r * tx, 0.0, 0.0);
        w = norm_walk_next(w);
    }
    let tot = group_sum4(t, acc);
    if (t == 0u) { norm_store_partial(ch, tot, vec4<f32>(0.0)); }
}

@compute @workgroup_size(256)
fn norm_tangent_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = item_index(gid, nwg);
    if (g >= norm_groups()) { return; }
    var tot = vec4<f32>(0.0);
    if (!norm_fixed() && input_has_tangent()) { tot = norm_fold(g, false) / f32(norm_m()); }
    side[layer.aux_off + 4u * g + 2u] = tot.x;
    side[layer.aux_off + 4u * g + 3u] = tot.y;
}

@compute @workgroup_size(256)
fn norm_tangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_tangent_body(ch, lid.x, false); } else { norm_tangent_body(ch, lid.x, true); }
}
fn norm_tangent_body(ch: NormChunk, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, true);
    let s = saved_stats(ch.g);
    let ts = saved_tangent_stats(ch.g);
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let xh = (work[o.x + i] - s.mu) * s.r;
        let txh = s.r * (norm_tangent_at(o, i) - ts.mean_t - xh * ts.c);
        work[o.t_y + i] = norm_gamma(per_feature, k, own) * txh + norm_z_gamma(per_feature, k, own) * xh
            + norm_z_beta(per_feature, k, own);
        w = norm_walk_next(w);
    }
}

// ---- backward: (A, B, Σ g_y, Σ g_y x̂), the last two BatchNorm's g_β, g_γ; then g_x

@compute @workgroup_size(256)
fn norm_bwd_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_bwd_sums(ch, lid.x, false); } else { norm_bwd_sums(ch, lid.x, true); }
}
fn norm_bwd_sums(ch: NormChunk, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, false);
    let s = saved_stats(ch.g);
    var acc = vec4<f32>(0.0);
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let u = norm_gamma(per_feature, k, own) * gy;
        let xh = (work[o.x + i] - s.mu) * s.r;
        acc += vec4<f32>(u, u * xh, gy, gy * xh);
        w = norm_walk_next(w);
    }
    let tot = group_sum4(t, acc);
    if (t == 0u) { norm_store_partial(ch, tot, vec4<f32>(0.0)); }
}

@compute @workgroup_size(256)
fn norm_bwd_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = item_index(gid, nwg);
    if (g >= norm_groups()) { return; }
    let tot = norm_fold(g, false);
    norm_store_total(g, tot);
    if (layer.norm_kind == 0u) {
        g_theta[layer.b_off + g] = tot.z;
        g_theta[layer.w_off + g] = tot.w;
    }
}

@compute @workgroup_size(256)
fn norm_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_backward(ch, lid.x, false); } else { norm_backward(ch, lid.x, true); }
}
fn norm_backward(ch: NormChunk, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, false);
    let m = f32(norm_m());
    let s = saved_stats(ch.g);
    let tot = norm_load_partial(norm_total_at(ch.g));
    let fixed = norm_fixed();
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let u = norm_gamma(per_feature, k, own) * work[o.g_y + i];
        let xh = (work[o.x + i] - s.mu) * s.r;
        if (fixed) {
            work[o.g_x + i] = s.r * u;
        } else {
            work[o.g_x + i] = s.r / m * (m * u - tot.x - xh * tot.y);
        }
        w = norm_walk_next(w);
    }
}

// ---- R-backward: (A, B, A', B') and (Σ g_y, Σ g_y x̂, Σ r_y, Σ (r_y x̂ + g_y t_x̂)), the last two
// BatchNorm's H z of β and γ; then R{g_x} (and, fused with the backward, g_x: norm_bwd_rbwd)

@compute @workgroup_size(256)
fn norm_rbwd_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_rbwd_sums(ch, lid.x, false); } else { norm_rbwd_sums(ch, lid.x, true); }
}
fn norm_rbwd_sums(ch: NormChunk, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, true);
    let s = saved_stats(ch.g);
    let ts = saved_tangent_stats(ch.g);
    var acc = vec4<f32>(0.0);
    var acc_p = vec4<f32>(0.0);
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let ry = work[o.r_y + i];
        let gamma = norm_gamma(per_feature, k, own);
        let u = gamma * gy;
        let ru = norm_z_gamma(per_feature, k, own) * gy + gamma * ry;
        let xh = (work[o.x + i] - s.mu) * s.r;
        let txh = s.r * (norm_tangent_at(o, i) - ts.mean_t - xh * ts.c);
        acc += vec4<f32>(u, u * xh, ru, ru * xh + u * txh);
        acc_p += vec4<f32>(gy, gy * xh, ry, ry * xh + gy * txh);
        w = norm_walk_next(w);
    }
    let tot = group_sum4(t, acc);
    let tot_p = group_sum4(t, acc_p);
    if (t == 0u) { norm_store_partial(ch, tot, tot_p); }
}

@compute @workgroup_size(256)
fn norm_rbwd_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = item_index(gid, nwg);
    if (g >= norm_groups()) { return; }
    norm_r_totals(g, false);
}
// ... and with the backward's parameter gradients (a BackwardRBackward pass)
@compute @workgroup_size(256)
fn norm_bwd_rbwd_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = item_index(gid, nwg);
    if (g >= norm_groups()) { return; }
    norm_r_totals(g, true);
}
fn norm_r_totals(g: u32, with_g_theta: bool) {
    norm_store_total(g, norm_fold(g, false));
    if (layer.norm_kind == 0u) {
        let tot_p = norm_fold(g, true);
        if (with_g_theta) {
            g_theta[layer.b_off + g] = tot_p.x;
            g_theta[layer.w_off + g] = tot_p.y;
        }
        r_theta[layer.b_off + g] = tot_p.z;
        r_theta[layer.w_off + g] = tot_p.w;
    }
}

@compute @workgroup_size(256)
fn norm_rbwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_r_backward(ch, lid.x, false, false); } else { norm_r_backward(ch, lid.x, true, false); }
}

// The backward and R-backward in one BackwardRBackward pass (norm_rbwd_partial,
// norm_bwd_rbwd_total, this): g_x and R{g_x} from one read of g_y, r_y, x, t.
@compute @workgroup_size(256)
fn norm_bwd_rbwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = norm_chunk(wid, nwg);
    if (ch.g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_r_backward(ch, lid.x, false, true); } else { norm_r_backward(ch, lid.x, true, true); }
}
fn norm_r_backward(ch: NormChunk, t: u32, per_feature: bool, with_g_x: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(ch.g, true);
    let m = f32(norm_m());
    let s = saved_stats(ch.g);
    let ts = saved_tangent_stats(ch.g);
    let tot = norm_load_partial(norm_total_at(ch.g));
    let fixed = norm_fixed();
    let t_r = -s.r * s.r * ts.c;
    var w = norm_walk(ch.g, ch.start + t);
    for (var k = ch.start + t; k < ch.end; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let gamma = norm_gamma(per_feature, k, own);
        let u = gamma * gy;
        let ru = norm_z_gamma(per_feature, k, own) * gy + gamma * work[o.r_y + i];
        let xh = (work[o.x + i] - s.mu) * s.r;
        // read this element's tangent before its R-cotangent (possibly the same slot) is written
        let txh = s.r * (norm_tangent_at(o, i) - ts.mean_t - xh * ts.c);
        if (fixed) {
            if (with_g_x) { work[o.g_x + i] = s.r * u; }
            work[o.r_x + i] = s.r * ru;
        } else {
            let centred = m * u - tot.x - xh * tot.y;
            if (with_g_x) { work[o.g_x + i] = s.r / m * centred; }
            work[o.r_x + i] = t_r / m * centred + s.r / m * (m * ru - tot.z - txh * tot.y - xh * tot.w);
        }
        w = norm_walk_next(w);
    }
}

// LayerNorm's γ and β gradients, one invocation per feature d: g_γ[d] = Σ_n g_y x̂, g_β[d] = Σ_n g_y
@compute @workgroup_size(256)
fn layernorm_bwd_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = norm_offsets();
    let d = item_index(gid, nwg);
    if (d >= layer.n_in) { return; }
    var gg = 0.0;
    var gb = 0.0;
    for (var n = 0u; n < batch.rows; n++) {
        let i = n * layer.n_in + d;
        let s = saved_stats(n);
        let gy = work[o.g_y + i];
        gg += gy * (work[o.x + i] - s.mu) * s.r;
        gb += gy;
    }
    g_theta[layer.w_off + d] = gg;
    g_theta[layer.b_off + d] = gb;
}

// ... and their R-ops: H z of γ[d] = Σ_n (r_y x̂ + g_y t_x̂), of β[d] = Σ_n r_y. Runs before
// norm_rbwd, which may overwrite t_x with r_x.
@compute @workgroup_size(256)
fn layernorm_rbwd_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = norm_offsets();
    let d = item_index(gid, nwg);
    if (d >= layer.n_in) { return; }
    var rg = 0.0;
    var rb = 0.0;
    for (var n = 0u; n < batch.rows; n++) {
        let i = n * layer.n_in + d;
        let s = saved_stats(n);
        let mean_t = side[layer.aux_off + 4u * n + 2u];
        let c = side[layer.aux_off + 4u * n + 3u];
        let xh = (work[o.x + i] - s.mu) * s.r;
        let txh = s.r * (norm_tangent_at(o, i) - mean_t - xh * c);
        let ry = work[o.r_y + i];
        rg += ry * xh + work[o.g_y + i] * txh;
        rb += ry;
    }
    r_theta[layer.w_off + d] = rg;
    r_theta[layer.b_off + d] = rb;
}
