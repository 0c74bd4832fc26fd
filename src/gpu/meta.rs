//! Uniform structs shared with the shaders. Each mirrors a WGSL struct field for field
//! (shaders/common.wgsl and shaders/optim_bindings.wgsl); `tests/shaders.rs` checks the sizes.
//! Field meanings are documented once, in the WGSL.
#![allow(missing_docs)]

use bytemuck::{Pod, Zeroable};

/// Offsets (in f32 elements) and sizes for one layer or loss kernel. Unused fields stay 0; the
/// arena offsets count from the start of the layer's window of the arena (`ArenaWindows`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LayerMeta {
    pub n_in: u32,
    pub n_out: u32,
    pub w_off: u32,
    pub b_off: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub t_x_off: u32,
    pub t_y_off: u32,
    pub g_x_off: u32,
    pub g_y_off: u32,
    pub r_x_off: u32,
    pub r_y_off: u32,
    pub flags: u32,
    pub target_off: u32,
    pub loss_off: u32,
    pub hit_off: u32,
    pub lse_off: u32,
    pub t_loss_off: u32,
    pub target_width: u32,
    pub aux_off: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_h: u32,
    pub pad_w: u32,
    pub act_fwd: u32,
    pub act_bwd: u32,
    pub post_x_off: u32,
    pub post_t_off: u32,
    pub pre_x_off: u32,
    pub pre_t_off: u32,
    pub pre_g_off: u32,
    pub pre_r_off: u32,
    pub split_len: u32,
    pub aux_r_off: u32,
    pub norm_kind: u32,
    pub norm_eps_bits: u32,
    pub norm_momentum_bits: u32,
    pub run_off: u32,
}

/// Which binding of the activation arena an offset field of [`LayerMeta`] indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaBinding {
    /// `work` (binding 6 of `BindLayout::Layer`, 5 of `Gather`): the layer's own nodes
    Main,
    /// `side` (binding 8): scratch (`aux_off`, `aux_r_off`) and a residual add's block input
    Side,
}

impl LayerMeta {
    /// Visits every field that is an offset into the activation arena, with the binding the
    /// kernels read it through: `pre_*` are the block input's slots in `side` for a residual add
    /// (`pre_in_side`) and a folded neighbour's in `work` for a dense layer. A field left at 0 is
    /// unused (the arena never places a slot at 0, see `ArenaLayout`).
    pub fn visit_arena_offsets(&mut self, pre_in_side: bool, mut f: impl FnMut(ArenaBinding, &mut u32)) {
        use ArenaBinding::*;
        for off in [
            &mut self.x_off,
            &mut self.y_off,
            &mut self.t_x_off,
            &mut self.t_y_off,
            &mut self.g_x_off,
            &mut self.g_y_off,
            &mut self.r_x_off,
            &mut self.r_y_off,
            &mut self.target_off,
            &mut self.loss_off,
            &mut self.hit_off,
            &mut self.lse_off,
            &mut self.t_loss_off,
            &mut self.post_x_off,
            &mut self.post_t_off,
        ] {
            f(Main, off);
        }
        let pre = if pre_in_side { Side } else { Main };
        for off in [&mut self.pre_x_off, &mut self.pre_t_off, &mut self.pre_g_off, &mut self.pre_r_off] {
            f(pre, off);
        }
        f(Side, &mut self.aux_off);
        f(Side, &mut self.aux_r_off);
    }
}

/// `LayerMeta::flags`: the layer's input depends on θ (it has a tangent and needs a cotangent).
pub const FLAG_INPUT_HAS_TANGENT: u32 = 1;
/// `LayerMeta::flags`: loss_reduce adds to the stats instead of overwriting them.
pub const FLAG_ACCUMULATE: u32 = 2;
/// `LayerMeta::flags`: a residual add's block input has a tangent (it is not the data); add.wgsl.
pub const FLAG_SKIP_HAS_TANGENT: u32 = 4;

/// The number of rows in the current batch and where normalisation layers take their
/// statistics from (`NORM_*`); written once per submit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BatchMeta {
    pub rows: u32,
    pub norm_mode: u32,
    pub _pad: [u32; 2],
}

/// `BatchMeta::norm_mode`: batch statistics (train mode), running statistics untouched.
pub const NORM_BATCH_STATS: u32 = 0;
/// `BatchMeta::norm_mode`: batch statistics, and the forward updates the running statistics (a
/// training step).
pub const NORM_UPDATE_RUNNING: u32 = 1;
/// `BatchMeta::norm_mode`: BatchNorm uses its running statistics (eval mode).
pub const NORM_RUNNING_STATS: u32 = 2;

/// A slice of the parameter arena for the probe / curvature / optimizer kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SliceMeta {
    pub off: u32,
    pub len: u32,
    pub group_len: u32,
    pub n_params: u32,
    pub sample: u32,
    pub n_samples: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
}

/// Per-step optimizer scalars; written once per step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepMeta {
    pub t: u32,
    pub t_curv: u32,
    pub update_curv: u32,
    pub flags: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub hessian_power: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub bias1: f32,
    pub bias2: f32,
    pub gamma: f32,
    pub grad_clip: f32,
}

/// `StepMeta::flags`: Nesterov momentum (SGD).
pub const STEP_NESTEROV: u32 = 1;
/// `StepMeta::flags`: decoupled weight decay (AdamW).
pub const STEP_DECOUPLED: u32 = 2;
/// `StepMeta::flags`: AdaHessian's Fold rule, v takes the kept D at every step (davda54/timm).
pub const STEP_FOLD_EVERY_STEP: u32 = 4;

/// Slots of the `stats` buffer.
pub mod stat {
    /// Σ_b ℓ_b over the batch (or over all evaluated chunks).
    pub const LOSS: usize = 0;
    /// Number of rows whose argmax equals the label.
    pub const HITS: usize = 1;
    /// Σ_b t_ℓ_b, the directional derivative ⟨∇L, z⟩ times B.
    pub const T_LOSS: usize = 2;
    /// ‖∇L‖², for gradient clipping.
    pub const GRAD_SUMSQ: usize = 3;
    /// Length of the loss statistics; BatchNorm's running statistics follow them in the same
    /// buffer (`run_off` of a layer counts from here).
    pub const LEN: usize = 8;
}
