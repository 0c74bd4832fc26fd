//! The end of a residual block (shaders/add.wgsl): y = x + s(skip), and the sum of the two
//! cotangents at the block's input, which has two consumers. The shortcut's f64 reference is
//! `ShortcutGeom::apply` / `adjoint` (src/nn/mod.rs); the whole-model reference accumulates
//! cotangents at every node read twice.

use super::plan::{Items, LayerContext, LayerPasses, NodeOffsets};
use super::ShortcutGeom;
use crate::nn::meta::{LayerMeta, FLAG_SKIP_HAS_TANGENT};
use kernels::*;

/// The add's dispatches: forward and tangent per output element; backward copies g_y to the
/// body's output and gathers sᵀ g_y into the skip node (not for the data, which needs no
/// cotangent): into its second slot when the add is its second reader (the block input of an
/// identity or pad shortcut), else into its own (the projection's output); likewise the R-ops.
pub(crate) fn plan(
    cx: &LayerContext,
    meta: &mut LayerMeta,
    geom: &ShortcutGeom,
    skip: usize,
    s: NodeOffsets,
    second_reader: bool,
) -> LayerPasses {
    geom.write_meta(meta);
    meta.pre_x_off = s.x;
    meta.pre_t_off = s.t;
    (meta.pre_g_off, meta.pre_r_off) = if second_reader { (s.g2, s.r2) } else { (s.g, s.r) };
    if skip > 0 {
        meta.flags |= FLAG_SKIP_HAS_TANGENT;
    }
    let out = Items::PerRow(geom.out_len() as u32);
    let inp = Items::PerRow(geom.in_len() as u32);
    let (mut bwd, mut rbwd) = (vec![cx.d(AddBwd, out)], vec![cx.d(AddRbwd, out)]);
    if skip > 0 {
        bwd.push(cx.d(AddBwdSkip, inp));
        rbwd.push(cx.d(AddRbwdSkip, inp));
    }
    LayerPasses {
        fwd: vec![cx.d(AddFwd, out)],
        tangent: vec![cx.d(AddTangent, out)],
        bwd,
        rbwd,
        fwd_tangent: None,
        bwd_rbwd: None,
        rbwd_rewrites_input_grad: false,
        scratch: 0,
    }
}

/// The sum g_skip += g'_skip (and r) for a block input of `width` features, recorded right
/// after the backward of the block's first layer (the node's other consumer) and before the
/// node's producer reads it: appended to that layer's backward lists. `group` is the sum's own
/// uniforms slot.
pub(crate) fn fan_in_sums(first: &mut LayerPasses, group: usize, meta: &mut LayerMeta, width: usize, s: NodeOffsets) {
    meta.n_in = width as u32;
    meta.g_x_off = s.g;
    meta.pre_g_off = s.g2;
    meta.r_x_off = s.r;
    meta.pre_r_off = s.r2;
    let d = |kernel| super::plan::Dispatch { kernel, group, items: Items::PerRow(width as u32) };
    first.bwd.push(d(FanoutSum));
    if first.rbwd_rewrites_input_grad {
        // the lone R-backward rewrote g_x with the body's share only: add the shortcut's again
        first.rbwd.push(d(FanoutSum));
    }
    first.rbwd.push(d(FanoutSumR));
    if let Some(fused) = first.bwd_rbwd.as_mut() {
        fused.push(d(FanoutSum));
        fused.push(d(FanoutSumR));
    }
}

/// The residual add's WGSL module and its kernels (and the fan-out sums of a node read twice).
pub mod kernels {
    crate::wgsl_kernels! {
        ADD = ("add", Layer, ["common.wgsl", "layer_bindings.wgsl", "add.wgsl"]) {
            AddFwd "add_fwd",
            AddTangent "add_tangent",
            AddBwd "add_bwd",
            AddRbwd "add_rbwd",
            AddBwdSkip "add_bwd_skip",
            AddRbwdSkip "add_rbwd_skip",
            FanoutSum "fanout_sum",
            FanoutSumR "fanout_sum_r",
        }
    }
}
