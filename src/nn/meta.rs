//! A layer's uniforms, mirrored field for field from `LayerMeta` in shaders/common.wgsl
//! (`tests/shaders.rs` checks the size). Field meanings are documented once, in the WGSL.
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
    pub pack_off: u32,
    pub pack_z_off: u32,
}

/// Which binding of the activation arena an offset field of [`LayerMeta`] indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaBinding {
    /// `work` (binding 6 of `BindLayout::Layer`, 5 of `Gather`): the layer's own nodes
    Main,
    /// `side` (binding 8): scratch (`aux_off`, `aux_r_off`, the conv's `pack_off`,
    /// `pack_z_off`) and a residual add's block input
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
        f(Side, &mut self.pack_off);
        f(Side, &mut self.pack_z_off);
    }
}

/// `LayerMeta::flags`: the layer's input depends on θ (it has a tangent and needs a cotangent).
pub const FLAG_INPUT_HAS_TANGENT: u32 = 1;
/// `LayerMeta::flags`: loss_reduce adds to the stats instead of overwriting them.
pub const FLAG_ACCUMULATE: u32 = 2;
/// `LayerMeta::flags`: a residual add's block input has a tangent (it is not the data); add.wgsl.
pub const FLAG_SKIP_HAS_TANGENT: u32 = 4;
