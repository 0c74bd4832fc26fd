// Dense layer y = W x + b with W [n_out, n_in] (PyTorch nn.Linear layout), batch rows b.
// Forward-over-reverse (ALGORITHM.md §3), Z_W / Z_b the probe's slices of z:
//   fwd      y    = W x + b
//   tangent  t_y  = W t_x + Z_W x + Z_b              (W t_x only when x depends on θ)
//   bwd      g_W  = g_yᵀ x   (summed over the batch), g_b = Σ_b g_y,  g_x = Wᵀ g_y
//   rbwd     r_gW = r_yᵀ x + g_yᵀ t_x,  r_gb = Σ_b r_y,  r_gx = Wᵀ r_y + Z_Wᵀ g_y
// Every invocation owns one output element and loops over the contracted axis: no atomics,
// a fixed summation order, so results are bit-reproducible on one adapter.

fn w_at(o: u32, i: u32) -> f32 { return theta[layer.w_off + o * layer.n_in + i]; }
fn zw_at(o: u32, i: u32) -> f32 { return z[layer.w_off + o * layer.n_in + i]; }

// y[b, o] = Σ_i W[o, i] x[b, i] + b[o]
@compute @workgroup_size(256)
fn dense_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_out) { return; }
    let b = idx / layer.n_out;
    let o = idx % layer.n_out;
    let x_row = layer.x_off + b * layer.n_in;
    var acc = theta[layer.b_off + o];
    for (var i = 0u; i < layer.n_in; i++) {
        acc += w_at(o, i) * work[x_row + i];
    }
    work[layer.y_off + idx] = acc;
}

// t_y[b, o] = Σ_i (W[o, i] t_x[b, i] + Z_W[o, i] x[b, i]) + Z_b[o]
@compute @workgroup_size(256)
fn dense_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_out) { return; }
    let b = idx / layer.n_out;
    let o = idx % layer.n_out;
    let x_row = layer.x_off + b * layer.n_in;
    var acc = z[layer.b_off + o];
    for (var i = 0u; i < layer.n_in; i++) {
        acc += zw_at(o, i) * work[x_row + i];
    }
    if (input_has_tangent()) {
        let t_row = layer.t_x_off + b * layer.n_in;
        for (var i = 0u; i < layer.n_in; i++) {
            acc += w_at(o, i) * work[t_row + i];
        }
    }
    work[layer.t_y_off + idx] = acc;
}

// g_W[o, i] = Σ_b g_y[b, o] x[b, i] for i < n_in;  g_b[o] = Σ_b g_y[b, o] for the extra column i = n_in
@compute @workgroup_size(256)
fn dense_bwd_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    let cols = layer.n_in + 1u;
    if (idx >= layer.n_out * cols) { return; }
    let o = idx / cols;
    let i = idx % cols;
    var acc = 0.0;
    if (i == layer.n_in) {
        for (var b = 0u; b < batch.rows; b++) {
            acc += work[layer.g_y_off + b * layer.n_out + o];
        }
        g_theta[layer.b_off + o] = acc;
    } else {
        for (var b = 0u; b < batch.rows; b++) {
            acc += work[layer.g_y_off + b * layer.n_out + o] * work[layer.x_off + b * layer.n_in + i];
        }
        g_theta[layer.w_off + o * layer.n_in + i] = acc;
    }
}

// g_x[b, i] = Σ_o W[o, i] g_y[b, o]
@compute @workgroup_size(256)
fn dense_bwd_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let b = idx / layer.n_in;
    let i = idx % layer.n_in;
    let g_row = layer.g_y_off + b * layer.n_out;
    var acc = 0.0;
    for (var o = 0u; o < layer.n_out; o++) {
        acc += w_at(o, i) * work[g_row + o];
    }
    work[layer.g_x_off + idx] = acc;
}

// r_gW[o, i] = Σ_b (r_y[b, o] x[b, i] + g_y[b, o] t_x[b, i]);  r_gb[o] = Σ_b r_y[b, o]
@compute @workgroup_size(256)
fn dense_rbwd_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    let cols = layer.n_in + 1u;
    if (idx >= layer.n_out * cols) { return; }
    let o = idx / cols;
    let i = idx % cols;
    var acc = 0.0;
    if (i == layer.n_in) {
        for (var b = 0u; b < batch.rows; b++) {
            acc += work[layer.r_y_off + b * layer.n_out + o];
        }
        r_theta[layer.b_off + o] = acc;
    } else {
        let tangent = input_has_tangent();
        for (var b = 0u; b < batch.rows; b++) {
            let yo = b * layer.n_out + o;
            let xi = b * layer.n_in + i;
            acc += work[layer.r_y_off + yo] * work[layer.x_off + xi];
            if (tangent) {
                acc += work[layer.g_y_off + yo] * work[layer.t_x_off + xi];
            }
        }
        r_theta[layer.w_off + o * layer.n_in + i] = acc;
    }
}

// r_gx[b, i] = Σ_o (W[o, i] r_y[b, o] + Z_W[o, i] g_y[b, o])
@compute @workgroup_size(256)
fn dense_rbwd_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let b = idx / layer.n_in;
    let i = idx % layer.n_in;
    let row = b * layer.n_out;
    var acc = 0.0;
    for (var o = 0u; o < layer.n_out; o++) {
        acc += w_at(o, i) * work[layer.r_y_off + row + o] + zw_at(o, i) * work[layer.g_y_off + row + o];
    }
    work[layer.r_x_off + idx] = acc;
}
