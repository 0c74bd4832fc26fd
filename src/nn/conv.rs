//! Conv2d (NCHW, W `[c_out, c_in, k_h, k_w]`, zero padding, stride): the f64 reference of the
//! kernels in shaders/conv.wgsl, with the same names. Batch tensors are `[rows, C, H, W]`.
//!   fwd y = conv(x, W) + b; tangent t_y = conv(t_x, W) + conv(x, Z_W) + Z_b;
//!   bwd g_W = corr(g_y, x), g_b = Σ g_y, g_x = convᵀ(g_y, W);
//!   rbwd r_W = corr(r_y, x) + corr(g_y, t_x), r_b = Σ r_y, r_x = convᵀ(r_y, W) + convᵀ(g_y, Z_W)

use super::Geometry;

/// Calls `f(oh, ow, ih, iw, kh, kw)` for every (output pixel, kernel tap) pair that reads a real
/// (not padded) input pixel.
fn taps(g: &Geometry, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    for oh in 0..g.h_out {
        for ow in 0..g.w_out {
            for kh in 0..g.k_h {
                let ih = (oh * g.stride_h + kh) as isize - g.pad_h as isize;
                if ih < 0 || ih >= g.h_in as isize {
                    continue;
                }
                for kw in 0..g.k_w {
                    let iw = (ow * g.stride_w + kw) as isize - g.pad_w as isize;
                    if iw < 0 || iw >= g.w_in as isize {
                        continue;
                    }
                    f(oh, ow, ih as usize, iw as usize, kh, kw);
                }
            }
        }
    }
}

fn xi(g: &Geometry, b: usize, c: usize, h: usize, w: usize) -> usize {
    ((b * g.c_in + c) * g.h_in + h) * g.w_in + w
}
fn yi(g: &Geometry, b: usize, c: usize, h: usize, w: usize) -> usize {
    ((b * g.c_out + c) * g.h_out + h) * g.w_out + w
}
fn wi(g: &Geometry, co: usize, ci: usize, kh: usize, kw: usize) -> usize {
    ((co * g.c_in + ci) * g.k_h + kh) * g.k_w + kw
}

/// y = conv(x, W) + b
pub fn fwd(g: &Geometry, rows: usize, w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; rows * g.out_len()];
    for r in 0..rows {
        for co in 0..g.c_out {
            for oh in 0..g.h_out {
                for ow in 0..g.w_out {
                    y[yi(g, r, co, oh, ow)] = b[co];
                }
            }
            for ci in 0..g.c_in {
                taps(g, |oh, ow, ih, iw, kh, kw| {
                    y[yi(g, r, co, oh, ow)] += w[wi(g, co, ci, kh, kw)] * x[xi(g, r, ci, ih, iw)];
                });
            }
        }
    }
    y
}

/// t_y = conv(t_x, W) + conv(x, Z_W) + Z_b (t_x = None when x does not depend on θ)
pub fn tangent(
    g: &Geometry,
    rows: usize,
    w: &[f64],
    z_w: &[f64],
    z_b: &[f64],
    x: &[f64],
    t_x: Option<&[f64]>,
) -> Vec<f64> {
    let mut t = fwd(g, rows, z_w, z_b, x);
    if let Some(t_x) = t_x {
        let zero = vec![0.0; g.c_out];
        for (a, b) in t.iter_mut().zip(fwd(g, rows, w, &zero, t_x)) {
            *a += b;
        }
    }
    t
}

/// Returns (g_W, g_b, g_x).
pub fn bwd(g: &Geometry, rows: usize, w: &[f64], x: &[f64], g_y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut g_w = vec![0.0; g.weight_len()];
    let mut g_b = vec![0.0; g.c_out];
    let mut g_x = vec![0.0; rows * g.in_len()];
    for r in 0..rows {
        for co in 0..g.c_out {
            for oh in 0..g.h_out {
                for ow in 0..g.w_out {
                    g_b[co] += g_y[yi(g, r, co, oh, ow)];
                }
            }
            for ci in 0..g.c_in {
                taps(g, |oh, ow, ih, iw, kh, kw| {
                    let gy = g_y[yi(g, r, co, oh, ow)];
                    g_w[wi(g, co, ci, kh, kw)] += gy * x[xi(g, r, ci, ih, iw)];
                    g_x[xi(g, r, ci, ih, iw)] += gy * w[wi(g, co, ci, kh, kw)];
                });
            }
        }
    }
    (g_w, g_b, g_x)
}

/// Returns (r_W, r_b, r_x).
#[allow(clippy::too_many_arguments)]
pub fn rbwd(
    g: &Geometry,
    rows: usize,
    w: &[f64],
    z_w: &[f64],
    x: &[f64],
    t_x: Option<&[f64]>,
    g_y: &[f64],
    r_y: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut r_w, r_b, mut r_x) = bwd(g, rows, w, x, r_y);
    if let Some(t_x) = t_x {
        for (a, b) in r_w.iter_mut().zip(bwd(g, rows, w, t_x, g_y).0) {
            *a += b;
        }
    }
    for (a, b) in r_x.iter_mut().zip(bwd(g, rows, z_w, x, g_y).2) {
        *a += b;
    }
    (r_w, r_b, r_x)
}

/// `conv2d(out, k, s=1, p=0, bias=true)` (also `conv`): `nn.Conv2d(in, out, k, s, p)` on
/// `[C, H, W]` inputs, zero padding.
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &["conv2d"],
    parse: |args| matches!(args.name.as_str(), "conv2d" | "conv").then(|| parse(args)),
    text: |layer| match *layer {
        super::Layer::Conv2d { out, kernel, stride, padding, bias } => {
            use super::text::{bias_text, pair_text};
            Some(super::op::LayerText {
                text: format!(
                    "conv2d({out}, k={}, s={}, p={}{})",
                    pair_text(kernel),
                    pair_text(stride),
                    pair_text(padding),
                    bias_text(bias)
                ),
                torch: "Conv2d",
                params: true,
            })
        }
        _ => None,
    },
    resolve: |layer, cx| match *layer {
        super::Layer::Conv2d { out, kernel, stride, padding, bias } => {
            Some(resolve(out, (kernel, stride, padding), bias, cx))
        }
        _ => None,
    },
};

fn parse(args: &super::text::Args<'_>) -> crate::error::Result<super::Layer> {
    let a = args.read(&[
        &["out", "out_channels"],
        &["k", "kernel", "kernel_size"],
        &["s", "stride"],
        &["p", "padding"],
        &["bias"],
    ])?;
    let out = args.required(a[0], "give the output channels, e.g. conv2d(16, k=3)")?;
    let kernel = args.required(a[1], "give the kernel size, e.g. k=3")?;
    Ok(super::Layer::Conv2d {
        out: args.number(out)?,
        kernel: args.pair(kernel)?,
        stride: args.pair_or(a[2], (1, 1))?,
        padding: args.pair_or(a[3], (0, 0))?,
        bias: args.bias(a[4])?,
    })
}

/// (kernel, stride, padding) as (rows, columns) pairs.
type Window = ((usize, usize), (usize, usize), (usize, usize));

fn resolve(
    out: usize,
    (kernel, stride, padding): Window,
    bias: bool,
    cx: &mut super::op::Resolving<'_>,
) -> crate::error::Result<Option<super::LayerOp>> {
    let (c, h, w) = cx.planes()?;
    let geom = Geometry::new(cx.what, (c, h, w), out, kernel, stride, padding)?;
    let fan_in = c * kernel.0 * kernel.1;
    let shape = vec![out, c, kernel.0, kernel.1];
    let w_off = cx.params.add(cx.name("weight"), shape, fan_in, super::ParamRole::Weight);
    let b_off = cx.params.bias(bias, cx.name("bias"), out, fan_in);
    cx.shape = vec![out, geom.h_out, geom.w_out];
    Ok(Some(super::LayerOp::Conv2d(ConvOp { geom, w_off, b_off })))
}

/// A resolved convolution: W `[c_out, c_in, k_h, k_w]` at `w_off` in θ, b at `b_off` (the zero
/// sink for `bias=false`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOp {
    /// Shapes.
    pub geom: Geometry,
    /// Offset of W in θ.
    pub w_off: usize,
    /// Offset of b in θ.
    pub b_off: usize,
}

impl super::op::Op for ConvOp {
    fn describe(&self) -> String {
        let g = &self.geom;
        format!("conv {}->{} k{}x{} {}x{}", g.c_in, g.c_out, g.k_h, g.k_w, g.h_out, g.w_out)
    }

    fn first_param(&self) -> Option<usize> {
        Some(self.w_off)
    }

    fn reads_input_tangent(&self) -> bool {
        true
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let (e, g) = (cx.env, &self.geom);
        let (wl, bl) = (g.weight_len(), g.c_out);
        let w = e.param(self.w_off, wl);
        let y = fwd(g, e.rows, w, e.param(self.b_off, bl), cx.x());
        let t = e
            .curvature()
            .then(|| tangent(g, e.rows, w, e.dir(self.w_off, wl), e.dir(self.b_off, bl), cx.x(), cx.t_x_unless_data()));
        (y, t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        let (e, g) = (cx.env, &self.geom);
        let w = e.param(self.w_off, g.weight_len());
        let g_y = cx.g_y();
        let offsets = (self.w_off, self.b_off);
        cx.put_backward(offsets, bwd(g, e.rows, w, cx.x(), &g_y));
        if e.curvature() {
            let z_w = e.dir(self.w_off, g.weight_len());
            cx.put_r_backward(offsets, rbwd(g, e.rows, w, z_w, cx.x(), cx.t_x_unless_data(), &g_y, &cx.r_y()));
        }
    }

    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        _: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        plan(cx, meta, &self.geom, (self.w_off, self.b_off))
    }

    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        let (g, name) = (&self.geom, cx.module_name(self.w_off));
        let module = format!(
            "nn.Conv2d({}, {}, kernel_size=({}, {}), stride=({}, {}), padding=({}, {}){})",
            g.c_in,
            g.c_out,
            g.k_h,
            g.k_w,
            g.stride_h,
            g.stride_w,
            g.pad_h,
            g.pad_w,
            cx.bias_arg(self.b_off)
        );
        Ok((cx.module(&name, module, cx.x())?, true))
    }
}

/// The convolution's dispatches in each pass and its uniforms: naive (one output per invocation;
/// weight gradients a workgroup per weight where the reduction is long on a real GPU) or tiled
/// (implicit GEMM, 8 channels × 8 pixels forward and for the input cotangents, × 8 taps for the
/// weight gradients, by row windows for 3-wide kernels of column stride 1, tangent and
/// R-backward fused with their primal).
fn plan(
    cx: &super::plan::LayerContext,
    meta: &mut crate::nn::meta::LayerMeta,
    geom: &Geometry,
    (w_off, b_off): (usize, usize),
) -> super::plan::LayerPasses {
    use super::plan::{Items, LayerPasses};
    use super::KernelSet;
    geom.write_meta(meta);
    meta.w_off = w_off as u32;
    meta.b_off = b_off as u32;
    let (n_x, n_y) = (geom.in_len() as u32, geom.out_len() as u32);
    let d = |kernel, items| cx.d(kernel, items);
    let mut p = LayerPasses::default();
    match cx.kernels {
        KernelSet::Naive => {
            p.fwd.push(d(kernels::ConvFwd, Items::PerRow(n_y)));
            p.tangent.push(d(kernels::ConvTangent, Items::PerRow(n_y)));
            // one item per weight and per bias, each a sum over batch × output plane: a workgroup
            // per item where that sum is long and the adapter is a real GPU, one invocation per
            // item on CPU adapters (barriers cost more than they save there)
            let params = (geom.weight_len() + geom.c_out) as u32;
            let reduction = cx.rows * geom.h_out * geom.w_out;
            let (wb, wr) = if reduction > 256 && cx.tuning.workgroup_reductions {
                (kernels::ConvBwdW, kernels::ConvRbwdW)
            } else {
                (kernels::ConvBwdWSerial, kernels::ConvRbwdWSerial)
            };
            p.bwd.push(d(wb, Items::Fixed(params)));
            p.rbwd.push(d(wr, Items::Fixed(params)));
            if cx.has_input_grad {
                p.bwd.push(d(kernels::ConvBwdX, Items::PerRow(n_x)));
                p.rbwd.push(d(kernels::ConvRbwdX, Items::PerRow(n_x)));
            }
        }
        KernelSet::Tiled | KernelSet::Shared => {
            // a lone tangent / R-backward pass runs the fused kernel: it rewrites y (∇W, g_x) with
            // bit-identical values
            // (kernels 3 wide with a column stride of 1 by row windows: their taps share loads;
            // the input cotangents' row tiles are the same for both kernels)
            let (fwd, fwd_tangent, out_tiles) = if geom.by_row_windows() {
                let tiles = Items::RowTiles {
                    channels: geom.c_out as u32,
                    height: geom.h_out as u32,
                    tiles_per_row: geom.w_out.div_ceil(PIXEL_TILE) as u32,
                };
                (kernels::ConvFwdRowsTiled, kernels::ConvFwdTangentRowsTiled, tiles)
            } else {
                let tiles = Items::PixelTiles { channels: geom.c_out as u32, plane: (geom.h_out * geom.w_out) as u32 };
                (kernels::ConvFwdTiled, kernels::ConvFwdTangentTiled, tiles)
            };
            let in_tiles = Items::RowTiles {
                channels: geom.c_in as u32,
                height: geom.h_in as u32,
                tiles_per_row: geom.input_tiles_per_row() as u32,
            };
            let split = WeightGradientSplit::new(cx, geom);
            meta.split_len = split.split_len as u32;
            // scratch offsets relative to the layer's scratch region (`plan_layers` adds its
            // start): the weight-gradient partials, then the packings (vec4-aligned): W's or
            // g_y's, then with curvature Z_W's
            let copies = if cx.curvature { 2 } else { 1 };
            meta.aux_off = 0;
            meta.aux_r_off = if cx.curvature { split.partial_len() as u32 } else { 0 };
            let pack = PackedWeights::new(geom);
            let input_pack = if cx.has_input_grad { pack.input } else { 0 };
            let weight_len = 4 * pack.forward.max(input_pack);
            let pack_len = weight_len.max(4 * cx.rows * pack.cotangents_per_row);
            let pack_off = (split.partial_len() * copies).next_multiple_of(4);
            meta.pack_off = pack_off as u32;
            // (without curvature nothing reads Z_W: the offset stays inside the region)
            let z_len = if cx.curvature { weight_len } else { 0 };
            meta.pack_z_off = (pack_off + if cx.curvature { pack_len } else { 0 }) as u32;
            p.scratch = pack_off + pack_len + z_len;
            p.rebase_scratch = Some(|meta, base| {
                meta.aux_off += base;
                meta.aux_r_off += base;
                meta.pack_off += base;
                meta.pack_z_off += base;
            });
            let params = Items::SplitTiles {
                tiles: weight_gradient_tiles(geom) as u32,
                plane: (geom.h_out * geom.w_out) as u32,
                split_len: split.split_len as u32,
            };
            let outputs = Items::Fixed((geom.c_out * (geom.c_in * geom.k_h * geom.k_w + 1)) as u32);
            let (fwd_pack, input_pack) = (Items::Fixed(pack.forward as u32), Items::Fixed(pack.input as u32));
            let cotangent_pack = Items::PerRow(pack.cotangents_per_row as u32);
            p.fwd.push(d(kernels::ConvPackFwd, fwd_pack));
            p.fwd.push(d(fwd, out_tiles));
            p.tangent.push(d(kernels::ConvPackFwdZ, fwd_pack));
            p.tangent.push(d(fwd_tangent, out_tiles));
            p.fwd_tangent = Some(p.tangent.clone());
            p.bwd.push(d(kernels::ConvPackDy, cotangent_pack));
            let (bwd_w, rbwd_w) = if geom.by_row_windows() {
                (kernels::ConvBwdWRowsTiled, kernels::ConvBwdRbwdWRowsTiled)
            } else {
                (kernels::ConvBwdWTiled, kernels::ConvBwdRbwdWTiled)
            };
            p.bwd.push(d(bwd_w, params));
            p.bwd.push(d(kernels::ConvBwdWReduce, outputs));
            p.rbwd.push(d(kernels::ConvPackDy, cotangent_pack));
            p.rbwd.push(d(rbwd_w, params));
            p.rbwd.push(d(kernels::ConvBwdRbwdWReduce, outputs));
            if cx.has_input_grad {
                p.bwd.push(d(kernels::ConvPackBwd, input_pack));
                let (bwd_x, rbwd_x) = if geom.by_row_windows() {
                    (kernels::ConvBwdXRowsTiled, kernels::ConvBwdRbwdXRowsTiled)
                } else {
                    (kernels::ConvBwdXTiled, kernels::ConvBwdRbwdXTiled)
                };
                p.bwd.push(d(bwd_x, in_tiles));
                p.rbwd.push(d(kernels::ConvPackBwdZ, input_pack));
                p.rbwd.push(d(rbwd_x, in_tiles));
                p.rbwd_rewrites_input_grad = true;
            }
            p.bwd_rbwd = Some(p.rbwd.clone());
        }
    }
    p
}

/// How the tiled weight-gradient kernels split their reduction over the batch × output plane
/// (shaders/conv_tiled.wgsl, "split over the reduction"): enough invocations to fill the adapter
/// (`KernelTuning::weight_gradient_items`: a few workgroups per core on a CPU adapter, per
/// compute unit on a GPU), but no run shorter than [`MIN_SPLIT`] pixels and no more scratch than
/// one copy of the layer's output activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WeightGradientSplit {
    /// Pixels (b, oh, ow) per split.
    pub split_len: usize,
    /// Splits at the largest batch.
    pub splits: usize,
    /// Outputs of the weight gradient: c_out × (taps + 1).
    pub outputs: usize,
}

/// Channels of a tile of the tiled kernels: output channels forward and in the weight
/// gradients, input channels in the input cotangents (`WT` in shaders/conv_tiled.wgsl; the
/// tile's other side is [`PIXEL_TILE`] pixels, [`INPUT_COLUMN_TILE`] columns or
/// [`WEIGHT_TAP_TILE`] kernel taps).
pub const CHANNEL_TILE: usize = 8;

/// Pixels of a forward (and tangent) tile of the tiled kernels (`PT` in shaders/conv_tiled.wgsl).
pub const PIXEL_TILE: usize = 8;

/// Columns of one input row in an input-cotangent tile (`IT` in shaders/conv_tiled.wgsl).
pub const INPUT_COLUMN_TILE: usize = 8;

/// Columns (kernel taps and the bias) of a weight-gradient tile of the tiled kernels (`JT` in
/// shaders/conv_tiled.wgsl).
pub const WEIGHT_TAP_TILE: usize = 8;

/// Groups of three taps (one kernel row of one input channel) in a weight-gradient tile of the
/// row-window kernels ([`Geometry::by_row_windows`]; shaders/conv_tiled.wgsl, "weight
/// gradients, 3-wide kernels of stride 1").
pub const WEIGHT_GROUP_TILE: usize = 3;

/// Tiles of the weight gradient [c_out, taps + 1]: `CHANNEL_TILE` output channels ×
/// `WEIGHT_TAP_TILE` columns each, or by row windows × `WEIGHT_GROUP_TILE` groups of three
/// taps (the bias column a group of its own).
fn weight_gradient_tiles(geom: &Geometry) -> usize {
    let columns = if geom.by_row_windows() {
        (geom.c_in * geom.k_h + 1).div_ceil(WEIGHT_GROUP_TILE)
    } else {
        (geom.c_in * geom.k_h * geom.k_w + 1).div_ceil(WEIGHT_TAP_TILE)
    };
    geom.c_out.div_ceil(CHANNEL_TILE) * columns
}

/// The tiled kernels' packed copies of W (and Z_W) and of g_y, in vec4s
/// (shaders/conv_tiled.wgsl, "packed weights"): 4 channels to a vec4, in groups padded to whole
/// 8-channel tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedWeights {
    /// W in the forward and tangent layout: [2·⌈c_out/8⌉ groups of output channels][taps].
    pub forward: usize,
    /// W in the input cotangents' layout: [2·⌈c_in/8⌉ groups of input channels][c_out][k_h·k_w].
    pub input: usize,
    /// g_y for the weight gradients, per row: [2·⌈c_out/8⌉ groups][h_out·w_out].
    pub cotangents_per_row: usize,
}

impl PackedWeights {
    /// The packed lengths for `geom`.
    pub fn new(geom: &Geometry) -> PackedWeights {
        let groups = |channels: usize| channels.div_ceil(CHANNEL_TILE) * (CHANNEL_TILE / 4);
        let kk = geom.k_h * geom.k_w;
        PackedWeights {
            forward: groups(geom.c_out) * geom.c_in * kk,
            input: groups(geom.c_in) * geom.c_out * kk,
            cotangents_per_row: groups(geom.c_out) * geom.h_out * geom.w_out,
        }
    }
}

/// The shortest run of pixels a split takes (below it the partials cost more than they save).
pub(crate) const MIN_SPLIT: usize = 32;

impl WeightGradientSplit {
    /// The split for `geom` at the context's largest batch and adapter class.
    pub fn new(cx: &super::plan::LayerContext, geom: &Geometry) -> WeightGradientSplit {
        Self::for_sizes(geom, cx.rows, cx.tuning.weight_gradient_items)
    }

    fn for_sizes(geom: &Geometry, rows: usize, target_items: usize) -> WeightGradientSplit {
        let taps = geom.c_in * geom.k_h * geom.k_w;
        let outputs = geom.c_out * (taps + 1);
        let tiles = weight_gradient_tiles(geom);
        let pixels = rows * geom.h_out * geom.w_out;
        let wanted = target_items.div_ceil(tiles).min(pixels.div_ceil(MIN_SPLIT));
        let affordable = (rows * geom.out_len() / outputs).max(1);
        let split_len = pixels.div_ceil(wanted.min(affordable).max(1));
        WeightGradientSplit { split_len, splits: pixels.div_ceil(split_len), outputs }
    }

    /// Floats of one set of partials (∇θ's or H z's), at the largest batch; 0 with one split.
    pub fn partial_len(&self) -> usize {
        if self.splits > 1 {
            self.splits * self.outputs
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::AdapterClass;
    use crate::nn::KernelTuning;

    const CPU_TARGET_ITEMS: usize = 16 * 256;
    const GPU_TARGET_ITEMS: usize = 256 * 256;

    #[test]
    fn the_targets_follow_the_adapter_class() {
        assert_eq!(KernelTuning::for_class(AdapterClass::Cpu).weight_gradient_items, CPU_TARGET_ITEMS);
        assert_eq!(KernelTuning::for_class(AdapterClass::Discrete).weight_gradient_items, GPU_TARGET_ITEMS);
    }

    fn geometry(c_in: usize, hw: usize, c_out: usize) -> Geometry {
        Geometry::new("conv", (c_in, hw, hw), c_out, (3, 3), (1, 1), (1, 1)).unwrap()
    }

    #[test]
    fn the_weight_gradient_split_fills_the_adapter_within_its_scratch() {
        // the MNIST CNN's first conv at batch 128: 2 tiles (8 channels × 10 columns) over
        // 100,352 pixels
        let g = geometry(1, 28, 8);
        let s = WeightGradientSplit::for_sizes(&g, 128, CPU_TARGET_ITEMS);
        let tiles = weight_gradient_tiles(&g);
        assert_eq!(tiles, 2);
        // (splits are whole runs of pixels, so the count rounds down a little)
        assert!(s.splits * tiles * 100 >= CPU_TARGET_ITEMS * 95, "{s:?}");
        assert!(s.split_len >= MIN_SPLIT);
        assert!(s.splits * s.split_len >= 128 * 28 * 28 && (s.splits - 1) * s.split_len < 128 * 28 * 28);
        // at batch 64 the shortest split binds first: 1,568 runs of 32 pixels, 3,136 invocations
        let s = WeightGradientSplit::for_sizes(&g, 64, CPU_TARGET_ITEMS);
        assert_eq!((s.split_len, s.splits), (MIN_SPLIT, 64 * 28 * 28 / MIN_SPLIT));
        // no more scratch than the layer's output
        for (g, rows) in [(geometry(8, 14, 16), 64), (geometry(16, 7, 32), 1), (geometry(3, 32, 64), 128)] {
            for target in [CPU_TARGET_ITEMS, GPU_TARGET_ITEMS] {
                let s = WeightGradientSplit::for_sizes(&g, rows, target);
                assert!(s.partial_len() <= rows * g.out_len(), "{s:?}");
                assert!(s.splits >= 1 && s.splits * s.split_len >= rows * g.h_out * g.w_out);
            }
        }
        // a short reduction is not split: the kernel stores its tile itself, no scratch
        let s = WeightGradientSplit::for_sizes(&geometry(4, 2, 4), 1, GPU_TARGET_ITEMS);
        assert_eq!((s.splits, s.partial_len()), (1, 0));
    }
}

/// The convolution's WGSL module and its kernels (naive and register-tiled sets).
pub mod kernels {
    crate::wgsl_kernels! {
        CONV = ("conv", Layer, ["common.wgsl", "layer_bindings.wgsl", "conv.wgsl", "conv_tiled.wgsl"]) {
            ConvFwd "conv_fwd",
            ConvTangent "conv_tangent",
            ConvBwdW "conv_bwd_w" WorkgroupPerItem,
            ConvBwdX "conv_bwd_x",
            ConvRbwdW "conv_rbwd_w" WorkgroupPerItem,
            ConvRbwdX "conv_rbwd_x",
            ConvBwdWSerial "conv_bwd_w_serial",
            ConvRbwdWSerial "conv_rbwd_w_serial",
            ConvFwdTiled "conv_fwd_tiled",
            ConvFwdTangentTiled "conv_fwd_tangent_tiled",
            ConvFwdRowsTiled "conv_fwd_rows_tiled",
            ConvFwdTangentRowsTiled "conv_fwd_tangent_rows_tiled",
            ConvBwdXRowsTiled "conv_bwd_x_rows_tiled",
            ConvBwdRbwdXRowsTiled "conv_bwd_rbwd_x_rows_tiled",
            ConvBwdWRowsTiled "conv_bwd_w_rows_tiled",
            ConvBwdRbwdWRowsTiled "conv_bwd_rbwd_w_rows_tiled",
            ConvBwdXTiled "conv_bwd_x_tiled",
            ConvBwdRbwdXTiled "conv_bwd_rbwd_x_tiled",
            ConvBwdWTiled "conv_bwd_w_tiled",
            ConvBwdRbwdWTiled "conv_bwd_rbwd_w_tiled",
            ConvBwdWReduce "conv_bwd_w_reduce",
            ConvBwdRbwdWReduce "conv_bwd_rbwd_w_reduce",
            ConvPackFwd "conv_pack_fwd",
            ConvPackFwdZ "conv_pack_fwd_z",
            ConvPackBwd "conv_pack_bwd",
            ConvPackBwdZ "conv_pack_bwd_z",
            ConvPackDy "conv_pack_dy",
        }
    }
}
