// Definitions shared by every shader module; src/gpu/kernels.rs prepends this file.
// The structs mirror `LayerMeta` and `BatchMeta` in src/gpu/meta.rs field for field.

struct LayerMeta {
    n_in: u32, n_out: u32, w_off: u32, b_off: u32,
    x_off: u32, y_off: u32, t_x_off: u32, t_y_off: u32,
    g_x_off: u32, g_y_off: u32, r_x_off: u32, r_y_off: u32,
    // bit 0: the input x depends on θ (has a tangent and needs a cotangent);
    // bit 1: accumulate into stats instead of overwriting (evaluation over several chunks)
    flags: u32, target_off: u32, loss_off: u32, hit_off: u32,
    lse_off: u32, t_loss_off: u32, target_width: u32, aux_off: u32,
    // convolution / pooling geometry (NCHW); unused by dense layers
    c_in: u32, h_in: u32, w_in: u32, c_out: u32,
    h_out: u32, w_out: u32, k_h: u32, k_w: u32,
    stride_h: u32, stride_w: u32, pad_h: u32, pad_w: u32,
    // dense epilogues (tiled kernels): act_fwd ≠ 0 applies the activation that follows the layer
    // (post_* = its output node) in forward and tangent; act_bwd ≠ 0 applies the activation that
    // precedes it (pre_* = its input node) to the input cotangents; codes in activation_math.wgsl
    act_fwd: u32, act_bwd: u32, post_x_off: u32, post_t_off: u32,
    pre_x_off: u32, pre_t_off: u32, pre_g_off: u32, pre_r_off: u32,
    // tiled conv weight gradients split over their reduction (conv_tiled.wgsl): pixels per split;
    // the H z partials' scratch (aux_off holds the ∇θ partials)
    split_len: u32, aux_r_off: u32,
    // normalisation (norm.wgsl): 0 BatchNorm, 1 LayerNorm; ε and the running statistics'
    // momentum as f32 bits; where the layer's running statistics start in `stats`
    norm_kind: u32, norm_eps_bits: u32, norm_momentum_bits: u32, run_off: u32,
    // tiled conv (conv_tiled.wgsl): where its weights (and Z_W) sit packed as vec4s in scratch
    pack_off: u32, pack_z_off: u32,
};

struct BatchMeta {
    // norm_mode: 0 batch statistics, 1 batch statistics + update the running ones, 2 running
    // statistics (BatchNorm's eval mode); src/gpu/meta.rs NORM_*
    rows: u32, norm_mode: u32, _pad1: u32, _pad2: u32,
};

const WORKGROUP: u32 = 256u;
// Elements per invocation of the element-wise kernels (activations, the residual add): the
// layer's uniforms, which sit in a storage buffer, are read once per QUAD elements instead of once
// per element (`Items::Quads` in src/nn/plan.rs).
const QUAD: u32 = 4u;

// `n` as a loop bound or branch condition that a driver cannot fold to a constant. `id` is the
// invocation's global_invocation_id or workgroup_id; every dispatch is (x, y, 1)
// (src/gpu/dispatch.rs), so id.z is 0 and this is n, but it is not a uniform, so Mesa 22's
// lavapipe (Debian 12's, the CI's) does not "inline" it. That driver recompiles a pipeline (NIR and
// LLVM, 1–10 ms) at every bind when substituting the values of its uniforms halves its code, with
// no cache: the lone dense weight gradients at batch 2–9 were such pipelines (BENCHMARKS.md,
// "Kernels lavapipe recompiled at every dispatch"). One add anywhere else.
fn runtime_value(n: u32, id: vec3<u32>) -> u32 { return n + id.z; }

// Dispatches are 2-D when more than 65535 workgroups are needed (src/gpu/dispatch.rs);
// this flattens the invocation id back to one item index.
fn item_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP;
}


// For kernels that run one WORKGROUP per item (reductions over a long axis): the item index.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
