// Normalisation (BatchNorm1d/2d, LayerNorm), PyTorch semantics; the algebra is in src/nn/norm.rs,
// whose f64 functions are these kernels' reference.
//
// A group is what one set of statistics covers:
//   norm_kind 0 (BatchNorm): channel c of a [rows, C, P] batch (C = c_in, P = h_in = H·W, 1 for
//                            1-D), m = rows·P values, γ and β indexed by c;
//   norm_kind 1 (LayerNorm): row n of a [rows, D] batch (D = n_in), m = D values, γ, β by feature.
// One 256-invocation workgroup per group walks its m values in a fixed strided order and
// tree-reduces the partial sums, so reruns are bit-identical.
//
//   μ = mean x, σ² = mean (x − μ)² (biased), r = (σ² + ε)^(−1/2), x̂ = (x − μ) r, y = γ x̂ + β
//   tangent      c = mean(x̂ t), t_x̂ = r (t − mean t − x̂ c), t_y = γ t_x̂ + z_γ x̂ + z_β
//   bwd          u = γ g_y, A = Σ u, B = Σ u x̂, g_x = (r/m)(m u − A − x̂ B)
//   rbwd         R{u} = z_γ g_y + γ r_y, A' = Σ R{u}, B' = Σ (R{u} x̂ + u t_x̂), t_r = −r² c,
//                R{g_x} = (t_r/m)(m u − A − x̂ B) + (r/m)(m R{u} − A' − t_x̂ B − x̂ B')
// With the running statistics (batch.norm_mode 2, BatchNorm's eval mode) μ and r are constants:
//   t_x̂ = r t, g_x = r u, R{g_x} = r R{u}.
// Parameter gradients: BatchNorm's γ, β belong to one group, so its workgroup writes them; a
// LayerNorm feature spans every row, so layernorm_bwd_params / layernorm_rbwd_params sum them
// over the rows, one invocation per feature.
//
// Saved per layer in the activation arena at aux_off (the `side` binding; 4 floats per group): μ, r (forward) and
// mean t, c (tangent), read by the backward kernels of the same step.
// Running statistics (BatchNorm) live in `stats` at run_off: μ_run [C], then σ²_run [C]; the
// forward updates them when batch.norm_mode is 1 (a training step):
//   μ_run ← (1 − momentum) μ_run + momentum μ,  σ²_run ← (1 − momentum) σ²_run + momentum σ² m/(m − 1)
// Hazard: the R-backward's input slot r_x may share storage with the input tangent t_x (a kept
// tangent's slot takes the R-cotangent, src/nn/plan.rs): every element is read by its own group
// only, and each group reads all its t_x before a barrier and writes r_x after it.

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
// flat index (within a node) of the k-th value of group g
fn norm_at(g: u32, k: u32) -> u32 {
    if (layer.norm_kind == 0u) {
        let plane = layer.h_in;
        return ((k / plane) * layer.c_in + g) * plane + k % plane;
    }
    return g * layer.n_in + k;
}
// The same indices walked incrementally: invocation t visits k = t, t + 256, .. of its group, k
// as (row, col) = (k / P, k % P) with P values of the group per batch row (BatchNorm: the plane,
// LayerNorm: the row, whose k < P). The divisions run once per invocation instead of once per
// value (an integer division by a uniform is a scalar loop on CPU adapters such as lavapipe and
// SwiftShader); the values and their order are norm_at's.
struct NormWalk { row: u32, col: u32, d_row: u32, d_col: u32, plane: u32, base: u32, row_len: u32, }
fn norm_walk(g: u32, t: u32) -> NormWalk {
    let bn = layer.norm_kind == 0u;
    let plane = select(layer.n_in, layer.h_in, bn);
    let channels = select(1u, layer.c_in, bn);
    return NormWalk(t / plane, t % plane, WORKGROUP / plane, WORKGROUP % plane, plane, g * plane, channels * plane);
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
struct NormOffsets { m: u32, x: u32, y: u32, t_x: u32, t_y: u32, g_x: u32, g_y: u32, r_x: u32, r_y: u32, has_t: bool, };
fn norm_offsets() -> NormOffsets {
    return NormOffsets(norm_m(), layer.x_off, layer.y_off, layer.t_x_off, layer.t_y_off, layer.g_x_off,
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

@compute @workgroup_size(256)
fn norm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= norm_groups()) { return; }   // uniform per workgroup: safe before barriers
    if (layer.norm_kind == 0u) { norm_forward(g, lid.x, false); } else { norm_forward(g, lid.x, true); }
}
fn norm_forward(g: u32, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(g, false);
    let m = o.m;
    var s = NormStats(0.0, 0.0);
    if (norm_fixed()) {
        s = saved_stats(g);
    } else {
        // two passes (mean, then squared deviations): no cancellation in E[x²] − μ²
        var acc = 0.0;
        var w = norm_walk(g, t);
        for (var k = t; k < m; k += WORKGROUP) {
            acc += work[o.x + norm_walk_at(w)];
            w = norm_walk_next(w);
        }
        let mu = group_sum4(t, vec4<f32>(acc, 0.0, 0.0, 0.0)).x / f32(m);
        var dev = 0.0;
        w = norm_walk(g, t);
        for (var k = t; k < m; k += WORKGROUP) {
            let d = work[o.x + norm_walk_at(w)] - mu;
            dev += d * d;
            w = norm_walk_next(w);
        }
        let var_b = group_sum4(t, vec4<f32>(dev, 0.0, 0.0, 0.0)).x / f32(m);
        s = NormStats(mu, inverseSqrt(var_b + norm_eps()));
        if (t == 0u) {
            side[layer.aux_off + 4u * g] = mu;
            side[layer.aux_off + 4u * g + 1u] = s.r;
            if (layer.norm_kind == 0u && batch.norm_mode == NORM_UPDATE_RUNNING) {
                let c = layer.c_in;
                let mom = bitcast<f32>(layer.norm_momentum_bits);
                let unbiased = var_b * f32(m) / f32(m - 1u);
                stats[layer.run_off + g] = (1.0 - mom) * stats[layer.run_off + g] + mom * mu;
                stats[layer.run_off + c + g] = (1.0 - mom) * stats[layer.run_off + c + g] + mom * unbiased;
            }
        }
    }
    var w = norm_walk(g, t);
    for (var k = t; k < m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let xh = (work[o.x + i] - s.mu) * s.r;
        work[o.y + i] = norm_gamma(per_feature, k, own) * xh + norm_beta(per_feature, k, own);
        w = norm_walk_next(w);
    }
}

// Σ t and Σ x̂ t over group g (this invocation's share), as a vec4 (x, y)
fn tangent_share(g: u32, t: u32, s: NormStats) -> vec4<f32> {
    let o = norm_offsets();
    var acc = vec4<f32>(0.0);
    if (!o.has_t) { return acc; }
    var w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let tx = work[o.t_x + i];
        acc += vec4<f32>(tx, (work[o.x + i] - s.mu) * s.r * tx, 0.0, 0.0);
        w = norm_walk_next(w);
    }
    return acc;
}

@compute @workgroup_size(256)
fn norm_tangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_tangent_body(g, lid.x, false); } else { norm_tangent_body(g, lid.x, true); }
}
fn norm_tangent_body(g: u32, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(g, true);
    let m = f32(o.m);
    let s = saved_stats(g);
    var mean_t = 0.0;
    var c = 0.0;
    if (!norm_fixed()) {
        let tot = group_sum4(t, tangent_share(g, t, s));
        mean_t = tot.x / m;
        c = tot.y / m;
    }
    if (t == 0u) {
        side[layer.aux_off + 4u * g + 2u] = mean_t;
        side[layer.aux_off + 4u * g + 3u] = c;
    }
    var w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let xh = (work[o.x + i] - s.mu) * s.r;
        let txh = s.r * (norm_tangent_at(o, i) - mean_t - xh * c);
        work[o.t_y + i] = norm_gamma(per_feature, k, own) * txh + norm_z_gamma(per_feature, k, own) * xh
            + norm_z_beta(per_feature, k, own);
        w = norm_walk_next(w);
    }
}

@compute @workgroup_size(256)
fn norm_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_backward(g, lid.x, false); } else { norm_backward(g, lid.x, true); }
}
fn norm_backward(g: u32, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(g, false);
    let m = f32(o.m);
    let s = saved_stats(g);
    // (A, B, Σ g_y, Σ g_y x̂); the last two are BatchNorm's g_β, g_γ
    var acc = vec4<f32>(0.0);
    var w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let u = norm_gamma(per_feature, k, own) * gy;
        let xh = (work[o.x + i] - s.mu) * s.r;
        acc += vec4<f32>(u, u * xh, gy, gy * xh);
        w = norm_walk_next(w);
    }
    let tot = group_sum4(t, acc);
    if (t == 0u && layer.norm_kind == 0u) {
        g_theta[layer.b_off + g] = tot.z;
        g_theta[layer.w_off + g] = tot.w;
    }
    let fixed = norm_fixed();
    w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
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

@compute @workgroup_size(256)
fn norm_rbwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= norm_groups()) { return; }
    if (layer.norm_kind == 0u) { norm_r_backward(g, lid.x, false); } else { norm_r_backward(g, lid.x, true); }
}
fn norm_r_backward(g: u32, t: u32, per_feature: bool) {
    let o = norm_offsets();
    let own = norm_own_affine(g, true);
    let m = f32(o.m);
    let s = saved_stats(g);
    let mean_t = side[layer.aux_off + 4u * g + 2u];
    let c = side[layer.aux_off + 4u * g + 3u];
    let fixed = norm_fixed();
    // (A, B, A', B'), then (Σ r_y, Σ (r_y x̂ + g_y t_x̂)) for BatchNorm's H z of β and γ
    var acc = vec4<f32>(0.0);
    var acc_p = vec4<f32>(0.0);
    var w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let ry = work[o.r_y + i];
        let gamma = norm_gamma(per_feature, k, own);
        let u = gamma * gy;
        let ru = norm_z_gamma(per_feature, k, own) * gy + gamma * ry;
        let xh = (work[o.x + i] - s.mu) * s.r;
        let txh = s.r * (norm_tangent_at(o, i) - mean_t - xh * c);
        acc += vec4<f32>(u, u * xh, ru, ru * xh + u * txh);
        acc_p += vec4<f32>(ry, ry * xh + gy * txh, 0.0, 0.0);
        w = norm_walk_next(w);
    }
    let tot = group_sum4(t, acc);
    let tot_p = group_sum4(t, acc_p);
    storageBarrier();
    if (t == 0u && layer.norm_kind == 0u) {
        r_theta[layer.b_off + g] = tot_p.x;
        r_theta[layer.w_off + g] = tot_p.y;
    }
    let t_r = -s.r * s.r * c;
    w = norm_walk(g, t);
    for (var k = t; k < o.m; k += WORKGROUP) {
        let i = norm_walk_at(w);
        let gy = work[o.g_y + i];
        let gamma = norm_gamma(per_feature, k, own);
        let u = gamma * gy;
        let ru = norm_z_gamma(per_feature, k, own) * gy + gamma * work[o.r_y + i];
        let xh = (work[o.x + i] - s.mu) * s.r;
        // read this element's tangent before its R-cotangent (possibly the same slot) is written
        let txh = s.r * (norm_tangent_at(o, i) - mean_t - xh * c);
        if (fixed) {
            work[o.r_x + i] = s.r * ru;
        } else {
            work[o.r_x + i] = t_r / m * (m * u - tot.x - xh * tot.y)
                + s.r / m * (m * ru - tot.z - txh * tot.y - xh * tot.w);
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
