//! The seam between what is optimized and how: an [`Objective`] is a point θ in its flat arenas
//! that can record the four passes (loss, directional derivative, gradient, H z). A network on a
//! mini-batch and a point on a 2-D test surface are objectives; the optimizers and the curvature
//! tools step or probe any objective without knowing which.

use crate::gpu::Gpu;

/// Which of the four passes to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// x_{l+1} = layer(x_l), then the per-row loss.
    Forward,
    /// t_{l+1} = R{x_{l+1}} for the direction in `z`, then the per-row ⟨∇ℓ, t⟩.
    Tangent,
    /// g_L from the loss, then g_x and ∇θ back through the layers.
    Backward,
    /// r_L from the loss, then r_x and H z back through the layers.
    RBackward,
    /// Forward and Tangent together (needs the direction in `z` before the forward pass); the
    /// tiled kernels compute y and t_y of a dense layer in one kernel.
    ForwardTangent,
    /// Backward and RBackward together; the tiled kernels compute ∇θ and H z of a dense layer in
    /// one kernel.
    BackwardRBackward,
}

/// The flat f32 arenas shared by the layer, loss and optimizer kernels.
pub struct Arenas {
    pub(crate) theta: wgpu::Buffer,
    pub(crate) g_theta: wgpu::Buffer,
    pub(crate) z: wgpu::Buffer,
    pub(crate) r_theta: wgpu::Buffer,
    pub(crate) work: wgpu::Buffer,
    pub(crate) stats: wgpu::Buffer,
    pub(crate) index: wgpu::Buffer,
    /// a small buffer bound where a layer's `side` binding (scratch, a block input) is unused
    pub(crate) unused: wgpu::Buffer,
}

/// Something an optimizer can step: parameters θ in [`Arenas`] and the passes at θ.
pub trait Objective {
    /// The arenas: θ, ∇θ, the direction z, H z, the activations and the stats.
    fn arenas(&self) -> &Arenas;
    /// The number of parameters P.
    fn n_params(&self) -> usize;
    /// Records one phase at the current θ (Forward also leaves the loss in the stats).
    fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase);
}
