// Random probes and the curvature estimate built from H z.
//
// Probes are a pure function of (seed, step, sample, parameter index) through a counter-based
// hash, so a run is reproducible and independent of the dispatch layout; src/probe.rs mirrors
// the hash bit for bit on the CPU. Rademacher: z_i = ±1 with probability ½ each (mean zero:
// ALGORITHM.md §5's first pitfall). Gaussian: Box–Muller on two hashed uniforms.
//
//   curv_accumulate   D ← [sample > 0] D + z ⊙ Hz / n_samples     (signed mean over probes)
//   curv_abs          D ← |D|                                      (AdaHessian, after the mean)
//   curv_group_mean   D ← mean of D over consecutive groups of group_len inside the slice
//                     (a Dense weight row for average_dense; a kh×kw window for Conv2d kernels)

// PCG hash (Jarzynski & Olano 2020), a bijection on u32
fn pcg_hash(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// pcg(pcg(counter) ⊕ key(seed, step, sample)): the counter is hashed before the key enters, so
// two steps' probes are never the same sequence read at permuted indices (src/probe.rs)
fn probe_hash(counter: u32) -> u32 {
    let seed = pcg_hash(slice.seed_lo ^ pcg_hash(slice.seed_hi));
    let key = pcg_hash(slice.sample ^ pcg_hash(step.t ^ seed));
    return pcg_hash(pcg_hash(counter) ^ key);
}

// uniform in (0, 1], never 0, from the top 24 bits
fn unit_open(h: u32) -> f32 { return (f32(h >> 8u) + 1.0) / 16777216.0; }

@compute @workgroup_size(256)
fn probe_rademacher(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    z[i] = select(-1.0, 1.0, (probe_hash(i) >> 31u) == 1u);
}

@compute @workgroup_size(256)
fn probe_gaussian(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let u1 = unit_open(probe_hash(2u * i));
    let u2 = unit_open(probe_hash(2u * i + 1u));
    z[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

@compute @workgroup_size(256)
fn curv_accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    let estimate = z[i] * r_theta[i] / f32(slice.n_samples);
    curv[i] = select(curv[i] + estimate, estimate, slice.sample == 0u);
}

@compute @workgroup_size(256)
fn curv_abs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= slice.n_params) { return; }
    curv[i] = abs(curv[i]);
}

@compute @workgroup_size(256)
fn curv_group_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = item_index(gid, nwg);
    if (group >= slice.len / slice.group_len) { return; }
    let start = slice.off + group * slice.group_len;
    var acc = 0.0;
    for (var j = 0u; j < slice.group_len; j++) { acc += curv[start + j]; }
    let mean = acc / f32(slice.group_len);
    for (var j = 0u; j < slice.group_len; j++) { curv[start + j] = mean; }
}
