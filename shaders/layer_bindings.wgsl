// Bindings shared by every layer and loss kernel (`BindLayout::Layer` in src/gpu/kernels.rs).
//
// All tensors live in flat f32 arenas and are addressed by element offsets:
//   theta      the parameters θ (length P); a layer's w and b are slices of it
//   z          the probe / direction of the Hessian-vector product (length P)
//   g_theta    ∇θ L (length P), written by the *_bwd kernels
//   r_theta    R{∇θ L} = H z (length P), written by the *_rbwd kernels
//   work       per-batch activations: for every node x, its tangent t_x = R{x},
//              its cotangent g_x = ∂L/∂x and r_x = R{g_x}; plus targets and per-row loss terms
//   stats      a few scalars (loss sum, hits, ...) read back on request
//   side       a second window of the same activation arena: a layer's scratch (aux_off,
//              aux_r_off: maxpool's argmax, BatchNorm's saved statistics, the split conv
//              weight-gradient partials) and a residual add's block input (pre_*_off)
// (`side`, binding 8, is declared beside this file: shaders/side.wgsl as floats, and by the
// conv module as vec4s for its packed weights, shaders/conv_tiled.wgsl.)
// `work` and `side` are windows of one arena buffer, each as large as the layer needs
// (src/nn/plan.rs, `ArenaLayout::windows`): the arena may be larger than one binding allows, and
// the offsets in `layer` count from the start of their window. The two never overlap.
// Row-major everywhere: a batch tensor [B, n] stores element (b, j) at b*n + j and a Dense
// weight [out, in] stores (o, i) at o*in + i, exactly as PyTorch does.

const FLAG_INPUT_HAS_TANGENT: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<storage, read> layer: LayerMeta;
@group(0) @binding(1) var<uniform> batch: BatchMeta;
@group(0) @binding(2) var<storage, read> theta: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_theta: array<f32>;
@group(0) @binding(5) var<storage, read_write> r_theta: array<f32>;
@group(0) @binding(6) var<storage, read_write> work: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

fn input_has_tangent() -> bool {
    return (layer.flags & FLAG_INPUT_HAS_TANGENT) != 0u;
}
