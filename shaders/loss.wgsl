// Losses over the network output y [B, K] (K = layer.n_in), both reduction='mean' as in PyTorch.
// Per-row terms are stored unscaled (ℓ_b) and summed by loss_reduce; the batch loss is Σ_b ℓ_b / B.
//
// Softmax cross-entropy with integer labels c_b (stored as f32 in work[target_off + b]),
// p = softmax(y_b), t = t_y (tangent of the logits):
//   fwd      ℓ_b = lse(y_b) − y_b[c_b]                  (also stores lse and whether argmax = c_b)
//   tangent  t_ℓ_b = Σ_k (p_k − 1[k = c_b]) t_k          (directional derivative ⟨∇L, z⟩ per row)
//   bwd      g_y = (p − onehot) / B
//   rbwd     r_y = (p ⊙ t − p (pᵀ t)) / B
// Mean squared error with targets τ [B, K] (work[target_off + b*K + k]):
//   fwd      ℓ_b = Σ_k (y − τ)² / K                     (so that Σ_b ℓ_b / B = F.mse_loss)
//   tangent  t_ℓ_b = Σ_k 2 (y − τ) t_k / K
//   bwd      g_y = 2 (y − τ) / (B K)
//   rbwd     r_y = 2 t_y / (B K)

const STAT_LOSS: u32 = 0u;
const STAT_HITS: u32 = 1u;
const STAT_T_LOSS: u32 = 2u;

fn label_of(b: u32) -> u32 { return u32(work[layer.target_off + b]); }
fn logit(b: u32, k: u32) -> f32 { return work[layer.x_off + b * layer.n_in + k]; }
fn softmax_p(b: u32, k: u32) -> f32 { return exp(logit(b, k) - work[layer.lse_off + b]); }

@compute @workgroup_size(256)
fn cross_entropy_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    cross_entropy_forward_row(b);
}

fn cross_entropy_forward_row(b: u32) {
    let k_n = layer.n_in;
    var best = logit(b, 0u);
    var best_k = 0u;
    for (var k = 1u; k < k_n; k++) {
        let v = logit(b, k);
        if (v > best) { best = v; best_k = k; }
    }
    var s = 0.0;
    for (var k = 0u; k < k_n; k++) { s += exp(logit(b, k) - best); }
    let lse = best + log(s);
    let c = label_of(b);
    work[layer.lse_off + b] = lse;
    work[layer.loss_off + b] = lse - logit(b, c);
    work[layer.hit_off + b] = select(0.0, 1.0, best_k == c);
}

@compute @workgroup_size(256)
fn cross_entropy_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    cross_entropy_tangent_row(b);
}

fn cross_entropy_tangent_row(b: u32) {
    let c = label_of(b);
    var acc = 0.0;
    for (var k = 0u; k < layer.n_in; k++) {
        let onehot = select(0.0, 1.0, k == c);
        acc += (softmax_p(b, k) - onehot) * work[layer.t_x_off + b * layer.n_in + k];
    }
    work[layer.t_loss_off + b] = acc;
}

@compute @workgroup_size(256)
fn cross_entropy_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let b = idx / layer.n_in;
    let k = idx % layer.n_in;
    let onehot = select(0.0, 1.0, k == label_of(b));
    work[layer.g_x_off + idx] = (softmax_p(b, k) - onehot) / f32(batch.rows);
}

@compute @workgroup_size(256)
fn cross_entropy_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let b = idx / layer.n_in;
    let k = idx % layer.n_in;
    let t_row = layer.t_x_off + b * layer.n_in;
    var pt = 0.0;
    for (var j = 0u; j < layer.n_in; j++) { pt += softmax_p(b, j) * work[t_row + j]; }
    work[layer.r_x_off + idx] = softmax_p(b, k) * (work[t_row + k] - pt) / f32(batch.rows);
}

@compute @workgroup_size(256)
fn mse_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    mse_forward_row(b);
}

fn mse_forward_row(b: u32) {
    var acc = 0.0;
    for (var k = 0u; k < layer.n_in; k++) {
        let e = work[layer.x_off + b * layer.n_in + k] - work[layer.target_off + b * layer.n_in + k];
        acc += e * e;
    }
    work[layer.loss_off + b] = acc / f32(layer.n_in);
    work[layer.hit_off + b] = 0.0;
}

@compute @workgroup_size(256)
fn mse_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    mse_tangent_row(b);
}

fn mse_tangent_row(b: u32) {
    var acc = 0.0;
    for (var k = 0u; k < layer.n_in; k++) {
        let i = b * layer.n_in + k;
        acc += 2.0 * (work[layer.x_off + i] - work[layer.target_off + i]) * work[layer.t_x_off + i];
    }
    work[layer.t_loss_off + b] = acc / f32(layer.n_in);
}

@compute @workgroup_size(256)
fn mse_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let scale = 2.0 / f32(batch.rows * layer.n_in);
    work[layer.g_x_off + idx] = scale * (work[layer.x_off + idx] - work[layer.target_off + idx]);
}

@compute @workgroup_size(256)
fn mse_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let scale = 2.0 / f32(batch.rows * layer.n_in);
    work[layer.r_x_off + idx] = scale * work[layer.t_x_off + idx];
}

// ---- fused pairs (tiled sets): forward + tangent and backward + R-backward, the same formulas
// as above, one dispatch instead of two. Cross-entropy's fused backward runs one invocation per
// row, so pᵀt is summed once per row (the separate rbwd kernel sums it once per output: O(K²)
// per row). Within an invocation the tangent reads the log-sum-exp the forward just stored.

@compute @workgroup_size(256)
fn cross_entropy_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    cross_entropy_forward_row(b);
    cross_entropy_tangent_row(b);
}

@compute @workgroup_size(256)
fn cross_entropy_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    let c = label_of(b);
    let row = b * layer.n_in;
    let t_row = layer.t_x_off + row;
    var pt = 0.0;
    for (var j = 0u; j < layer.n_in; j++) { pt += softmax_p(b, j) * work[t_row + j]; }
    for (var k = 0u; k < layer.n_in; k++) {
        let p = softmax_p(b, k);
        let onehot = select(0.0, 1.0, k == c);
        work[layer.g_x_off + row + k] = (p - onehot) / f32(batch.rows);
        work[layer.r_x_off + row + k] = p * (work[t_row + k] - pt) / f32(batch.rows);
    }
}

@compute @workgroup_size(256)
fn mse_fwd_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = item_index(gid, nwg);
    if (b >= batch.rows) { return; }
    mse_forward_row(b);
    mse_tangent_row(b);
}

@compute @workgroup_size(256)
fn mse_bwd_rbwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let scale = 2.0 / f32(batch.rows * layer.n_in);
    work[layer.g_x_off + idx] = scale * (work[layer.x_off + idx] - work[layer.target_off + idx]);
    work[layer.r_x_off + idx] = scale * work[layer.t_x_off + idx];
}

// stats[LOSS] = Σ_b ℓ_b, stats[HITS] = Σ_b hit_b, stats[T_LOSS] = Σ_b t_ℓ_b, by ONE workgroup with a
// fixed tree order (deterministic). With FLAG_ACCUMULATE the sums are added to what is there.
var<workgroup> partial: array<vec3<f32>, 256>;

@compute @workgroup_size(256)
fn loss_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var acc = vec3<f32>(0.0);
    for (var b = t; b < batch.rows; b += WORKGROUP) {
        acc += vec3<f32>(work[layer.loss_off + b], work[layer.hit_off + b], work[layer.t_loss_off + b]);
    }
    partial[t] = acc;
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) { partial[t] += partial[t + stride]; }
        workgroupBarrier();
    }
    if (t == 0u) {
        var total = partial[0];
        if ((layer.flags & FLAG_ACCUMULATE) != 0u) {
            total += vec3<f32>(stats[STAT_LOSS], stats[STAT_HITS], stats[STAT_T_LOSS]);
        }
        stats[STAT_LOSS] = total.x;
        stats[STAT_HITS] = total.y;
        stats[STAT_T_LOSS] = total.z;
    }
}
