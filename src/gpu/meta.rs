//! The uniforms every kernel family shares, mirrored field for field from shaders/common.wgsl
//! (`tests/shaders.rs` checks the sizes): the per-submit batch uniform and the slots of the
//! `stats` buffer. A layer's uniforms are `nn::meta::LayerMeta`, an optimizer's
//! `optim::meta::{SliceMeta, StepMeta}`. Field meanings are documented once, in the WGSL.
#![allow(missing_docs)]

use bytemuck::{Pod, Zeroable};

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
