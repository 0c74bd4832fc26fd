//! The optimizer kernels' uniforms, mirrored field for field from shaders/optim_bindings.wgsl
//! (`tests/shaders.rs` checks the sizes). Field meanings are documented once, in the WGSL.
#![allow(missing_docs)]

use bytemuck::{Pod, Zeroable};

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
