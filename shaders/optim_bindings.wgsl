// Bindings shared by the probe, curvature and optimizer kernels (`BindLayout::Optim`).
// Each of them is one dispatch over a slice of the flat parameter arena (usually all of it).
//   theta    θ                      g_theta  ∇L (read only here)
//   z        the probe               r_theta  H z from the last rbwd pass
//   curv     the curvature estimate D (AdaHessian: |z ⊙ Hz|, averaged; Sophia-H: z ⊙ Hz)
//   state    optimizer moments: first moment m in [0, P), second moment / curvature EMA in [P, 2P)
//   stats    scalars shared with the loss kernels; stats[STAT_GRAD_SUMSQ] = ‖g‖²

struct SliceMeta {
    off: u32, len: u32, group_len: u32, n_params: u32,
    sample: u32, n_samples: u32, seed_lo: u32, seed_hi: u32,
};

// Written once per step by the host (src/optim/mod.rs, StepMeta): the step counters, the
// hyper-parameters (so schedules need no new bind group) and the bias corrections
// bias1 and bias2 (each method's own, e.g. 1 − β1^t), computed in f64 on the host.
struct StepMeta {
    t: u32, t_curv: u32, update_curv: u32, flags: u32,
    lr: f32, beta1: f32, beta2: f32, eps: f32,
    weight_decay: f32, hessian_power: f32, momentum: f32, dampening: f32,
    bias1: f32, bias2: f32, gamma: f32, grad_clip: f32,
};

const STEP_NESTEROV: u32 = 1u;
const STEP_DECOUPLED: u32 = 2u;
const STEP_FOLD_EVERY_STEP: u32 = 4u;
const STAT_GRAD_SUMSQ: u32 = 3u;

@group(0) @binding(0) var<uniform> slice: SliceMeta;
@group(0) @binding(1) var<uniform> step: StepMeta;
@group(0) @binding(2) var<storage, read_write> theta: array<f32>;
@group(0) @binding(3) var<storage, read> g_theta: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read> r_theta: array<f32>;
@group(0) @binding(6) var<storage, read_write> curv: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
