//! The end of a residual block (shaders/add.wgsl): y = x + s(skip), and the sum of the two
//! cotangents at the block's input, which has two consumers. The shortcut's f64 reference is
//! [`ShortcutGeom::apply`] / [`ShortcutGeom::adjoint`]; the whole-model reference accumulates
//! cotangents at every node read twice.

use super::op::{Backward, Forward, Op, PlanSite, TorchLine};
use super::plan::{Items, LayerContext, LayerPasses, NodeOffsets};
use super::Shortcut;
use crate::nn::meta::{LayerMeta, FLAG_SKIP_HAS_TANGENT};
use kernels::*;

/// `residual(shortcut=identity|pad|conv) {` opens a block and `}` closes it. They are the
/// graph's structure, not ops: `ModelSpec::resolve` handles them (the add, and option B's
/// projection); this family parses and writes them.
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &[],
    parse: |args| (args.name == "residual").then(|| parse(args)),
    text: |layer| {
        let (text, torch) = match *layer {
            super::Layer::Residual(shortcut) => (format!("residual(shortcut={}) {{", shortcut.name()), "Residual"),
            super::Layer::EndResidual => ("}".into(), "end of Residual"),
            _ => return None,
        };
        Some(super::op::LayerText { text, torch, params: false })
    },
    resolve: |_, _| None,
};

/// `residual(shortcut=...)`.
fn parse(args: &super::text::Args<'_>) -> crate::error::Result<super::Layer> {
    let a = args.read(&[&["shortcut"]])?;
    let shortcut = match a[0].unwrap_or("identity").to_ascii_lowercase().as_str() {
        "identity" | "id" => Shortcut::Identity,
        "pad" | "a" | "option_a" => Shortcut::Pad,
        "conv" | "b" | "option_b" | "projection" => Shortcut::Conv,
        other => {
            return Err(args.error(&format!(
                "unknown shortcut '{other}'; use identity, pad (option A: strided, zero channels) or conv (option \
                 B: 1×1 conv + BatchNorm)"
            )))
        }
    };
    Ok(super::Layer::Residual(shortcut))
}

/// The end of a resolved residual block: y = x + s(skip), where x (the layer's input) is the
/// body's output and `skip` the block's input node, which has two consumers (the body's first
/// layer and this one): its cotangents are the sum of what both send back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddOp {
    /// The block's input node.
    pub skip: usize,
    /// The shortcut s.
    pub shortcut: ShortcutGeom,
}

impl Op for AddOp {
    fn describe(&self) -> String {
        let s = &self.shortcut;
        format!("add {}x{}x{}->{}x{}x{}", s.c_in, s.h_in, s.w_in, s.c_out, s.h_out, s.w_out)
    }

    fn skip(&self) -> Option<usize> {
        Some(self.skip)
    }

    /// (the add's R-backward reads no tangent)
    fn reads_input_tangent(&self) -> bool {
        false
    }

    fn reference_forward(&self, cx: &mut Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let (rows, s) = (cx.env.rows, &self.shortcut);
        let y = cx.x().iter().zip(s.apply(rows, &cx.nodes[self.skip])).map(|(a, b)| a + b).collect();
        let t = cx.env.curvature().then(|| {
            let t_s = s.apply(rows, &cx.tangents[self.skip]);
            cx.t_x().iter().zip(t_s).map(|(a, b)| a + b).collect()
        });
        (y, t)
    }

    /// The body's output gets g_y, the block's input sᵀ g_y on top of what its other consumer
    /// (the body's first layer, later in the backward pass) sends back.
    fn reference_backward(&self, cx: &mut Backward<'_>) {
        let (rows, s) = (cx.env.rows, &self.shortcut);
        let g_y = cx.g_y();
        cx.send(cx.input, g_y.clone());
        cx.send(self.skip, s.adjoint(rows, &g_y));
        if cx.env.curvature() {
            let r_y = cx.r_y();
            cx.send_r(self.skip, s.adjoint(rows, &r_y));
            cx.send_r(cx.input, r_y);
        }
    }

    fn plan(&self, cx: &LayerContext, meta: &mut LayerMeta, site: &mut PlanSite<'_>) -> LayerPasses {
        plan(cx, meta, &self.shortcut, self.skip, site.node(self.skip), site.second_reader(self.skip))
    }

    /// The option-A shortcut subsamples by slicing and zero-pads channels as the kernels do.
    fn torch(&self, cx: &mut TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        let (s, x, skip) = (&self.shortcut, cx.x(), self.skip);
        let skip_value = if s.stride == 1 && s.c_in == s.c_out {
            format!("h{skip}")
        } else {
            format!(
                "_shortcut_a(h{skip}, stride={}, pad={}, c_out={}, size=({}, {}))",
                s.stride, s.pad, s.c_out, s.h_out, s.w_out
            )
        };
        Ok((format!("{x} + {skip_value}.reshape({x}.shape)"), cx.input_four_d()))
    }
}

/// The add's dispatches: forward and tangent per output element; backward copies g_y to the
/// body's output and gathers sᵀ g_y into the skip node (not for the data, which needs no
/// cotangent): into its second slot when the add is its second reader (the block input of an
/// identity or pad shortcut), else into its own (the projection's output); likewise the R-ops.
fn plan(
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
    let out = Items::Quads(geom.out_len() as u32);
    let inp = Items::Quads(geom.in_len() as u32);
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
        rebase_scratch: None,
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
    let d = |kernel| super::plan::Dispatch { kernel, group, items: Items::Quads(width as u32) };
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

/// A residual block's shortcut from the block input `[C_in, H_in, W_in]` (or `[D]`) to the
/// body's output shape: identity, or option A (stride and zero channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortcutGeom {
    /// Input channels (features for a flat block).
    pub c_in: usize,
    /// Input height (1 when flat).
    pub h_in: usize,
    /// Input width (1 when flat).
    pub w_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Spatial subsampling s (1 for identity).
    pub stride: usize,
    /// Zero channels p before the copied ones (C_out − C_in)/2.
    pub pad: usize,
}

impl ShortcutGeom {
    pub(super) fn new(
        what: &str,
        shortcut: Shortcut,
        input: &[usize],
        output: &[usize],
    ) -> crate::error::Result<ShortcutGeom> {
        let planes = |s: &[usize]| match *s {
            [c, h, w] => (c, h, w),
            [d] => (d, 1, 1),
            _ => (s.iter().product(), 1, 1),
        };
        let ((c_in, h_in, w_in), (c_out, h_out, w_out)) = (planes(input), planes(output));
        let geom = |stride, pad| ShortcutGeom { c_in, h_in, w_in, c_out, h_out, w_out, stride, pad };
        match shortcut {
            // (a conv shortcut's add sees the projection's output: an identity)
            Shortcut::Identity | Shortcut::Conv => {
                if input != output {
                    return Err(crate::error::Error::Shape(format!(
                        "{what}: the identity shortcut needs the body to keep its input's shape {input:?}, but it \
                         ends with {output:?}; use residual(shortcut=pad) for a stride / channel change"
                    )));
                }
                Ok(geom(1, 0))
            }
            Shortcut::Pad => {
                let stride = h_in.div_ceil(h_out.max(1));
                let fits = input.len() == output.len()
                    && c_out >= c_in
                    && (c_out - c_in) % 2 == 0
                    && h_in.div_ceil(stride) == h_out
                    && w_in.div_ceil(stride) == w_out;
                if !fits {
                    return Err(crate::error::Error::Shape(format!(
                        "{what}: the pad shortcut (option A) maps {input:?} to {output:?} only by one stride s for \
                         both axes (⌈H/s⌉, ⌈W/s⌉) and an even number of added channels"
                    )));
                }
                Ok(geom(stride, (c_out - c_in) / 2))
            }
        }
    }

    /// Elements of one output row.
    pub fn out_len(&self) -> usize {
        self.c_out * self.h_out * self.w_out
    }

    /// Elements of one input row.
    pub fn in_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }

    /// Every (input index, output index) pair the shortcut copies, for a batch of `rows`: option
    /// A maps input (n, c, s·i, s·j) to output (n, c + p, i, j); every other output is zero.
    fn copies(&self, rows: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..rows).flat_map(move |n| {
            (self.pad..self.pad + self.c_in).flat_map(move |c| {
                (0..self.h_out).flat_map(move |i| {
                    (0..self.w_out).map(move |j| {
                        let src = ((n * self.c_in + c - self.pad) * self.h_in + self.stride * i) * self.w_in
                            + self.stride * j;
                        (src, ((n * self.c_out + c) * self.h_out + i) * self.w_out + j)
                    })
                })
            })
        })
    }

    /// s(x) for one row-major batch: the identity, or option A's strided copy into the middle
    /// channels. Also the tangent (pass t_x).
    pub fn apply(&self, rows: usize, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; rows * self.out_len()];
        for (src, dst) in self.copies(rows) {
            y[dst] = x[src];
        }
        y
    }

    /// sᵀ g: the adjoint, scattering into the strided positions of the copied channels. Also
    /// the R-backward (pass r_y).
    pub fn adjoint(&self, rows: usize, g_y: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; rows * self.in_len()];
        for (src, dst) in self.copies(rows) {
            g[src] += g_y[dst];
        }
        g
    }

    /// Writes the geometry into the add kernel's uniforms (c/h/w in and out, stride_h = s,
    /// pad_h = p).
    pub(crate) fn write_meta(&self, meta: &mut crate::nn::meta::LayerMeta) {
        let u = |v: usize| v as u32;
        meta.c_in = u(self.c_in);
        meta.h_in = u(self.h_in);
        meta.w_in = u(self.w_in);
        meta.c_out = u(self.c_out);
        meta.h_out = u(self.h_out);
        meta.w_out = u(self.w_out);
        meta.stride_h = u(self.stride);
        meta.pad_h = u(self.pad);
        meta.n_in = u(self.in_len());
        meta.n_out = u(self.out_len());
    }
}

/// The residual add's WGSL module and its kernels (and the fan-out sums of a node read twice).
pub mod kernels {
    crate::wgsl_kernels! {
        ADD = ("add", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "add.wgsl"]) {
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
