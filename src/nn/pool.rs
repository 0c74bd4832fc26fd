//! Max and average pooling (NCHW, no padding, floor mode): the f64 reference of shaders/pool.wgsl.
//! Max pooling routes tangents and cotangents through the argmax (first maximum in row-major
//! window order); average pooling is linear, so its tangent and R-backward are itself.

use super::Geometry;

/// For each output (rows × C × H_out × W_out), the flat input index of its window's maximum.
pub fn argmax(g: &Geometry, rows: usize, x: &[f64]) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows * g.out_len());
    for bc in 0..rows * g.c_in {
        let base = bc * g.h_in * g.w_in;
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                let mut best = base + oh * g.stride_h * g.w_in + ow * g.stride_w;
                for kh in 0..g.k_h {
                    for kw in 0..g.k_w {
                        let i = base + (oh * g.stride_h + kh) * g.w_in + ow * g.stride_w + kw;
                        if x[i] > x[best] {
                            best = i;
                        }
                    }
                }
                out.push(best);
            }
        }
    }
    out
}

/// y = x[argmax]; also the tangent (pass t_x with the argmax of x).
pub fn max_gather(arg: &[usize], v: &[f64]) -> Vec<f64> {
    arg.iter().map(|&i| v[i]).collect()
}

/// `g_x[i]` = Σ over outputs whose argmax is i of g_y; also rbwd (pass r_y).
pub fn max_scatter(arg: &[usize], g_y: &[f64], in_len: usize) -> Vec<f64> {
    let mut g_x = vec![0.0; in_len];
    for (o, &i) in arg.iter().enumerate() {
        g_x[i] += g_y[o];
    }
    g_x
}

/// y = mean over each window; also the tangent (pass t_x).
pub fn avg_fwd(g: &Geometry, rows: usize, x: &[f64]) -> Vec<f64> {
    let mut y = Vec::with_capacity(rows * g.out_len());
    let area = (g.k_h * g.k_w) as f64;
    for bc in 0..rows * g.c_in {
        let base = bc * g.h_in * g.w_in;
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                let mut acc = 0.0;
                for kh in 0..g.k_h {
                    for kw in 0..g.k_w {
                        acc += x[base + (oh * g.stride_h + kh) * g.w_in + ow * g.stride_w + kw];
                    }
                }
                y.push(acc / area);
            }
        }
    }
    y
}

/// g_x = adjoint of avg_fwd applied to g_y; also rbwd (pass r_y).
pub fn avg_bwd(g: &Geometry, rows: usize, g_y: &[f64]) -> Vec<f64> {
    let mut g_x = vec![0.0; rows * g.in_len()];
    let area = (g.k_h * g.k_w) as f64;
    let mut o = 0;
    for bc in 0..rows * g.c_in {
        let base = bc * g.h_in * g.w_in;
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                for kh in 0..g.k_h {
                    for kw in 0..g.k_w {
                        g_x[base + (oh * g.stride_h + kh) * g.w_in + ow * g.stride_w + kw] += g_y[o] / area;
                    }
                }
                o += 1;
            }
        }
    }
    g_x
}

/// `maxpool2d(k, s=k)`, `avgpool2d(k, s=k)` (no padding, floor mode) and `globalavgpool`
/// (`nn.AdaptiveAvgPool2d(1)`: `[C, H, W]` → `[C, 1, 1]`).
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &["maxpool2d", "avgpool2d", "globalavgpool"],
    parse: |args| {
        use super::Layer;
        let name = args.name.as_str();
        if matches!(name, "globalavgpool" | "gap" | "adaptiveavgpool2d") {
            return Some(args.none().map(|_| Layer::GlobalAvgPool));
        }
        matches!(name, "maxpool2d" | "maxpool" | "avgpool2d" | "avgpool").then(|| parse_window(args))
    },
    text: |layer| {
        use super::text::pair_text;
        use super::Layer;
        let (text, torch) = match *layer {
            Layer::MaxPool2d { kernel, stride } => {
                (format!("maxpool2d({}, s={})", pair_text(kernel), pair_text(stride)), "MaxPool2d")
            }
            Layer::AvgPool2d { kernel, stride } => {
                (format!("avgpool2d({}, s={})", pair_text(kernel), pair_text(stride)), "AvgPool2d")
            }
            Layer::GlobalAvgPool => ("globalavgpool".into(), "AdaptiveAvgPool2d"),
            _ => return None,
        };
        Some(super::op::LayerText { text, torch, params: false })
    },
    resolve: |layer, cx| {
        use super::{Layer, LayerOp};
        if !matches!(layer, Layer::MaxPool2d { .. } | Layer::AvgPool2d { .. } | Layer::GlobalAvgPool) {
            return None;
        }
        Some(cx.planes().and_then(|(c, h, w)| {
            let (kernel, stride) = match *layer {
                Layer::MaxPool2d { kernel, stride } | Layer::AvgPool2d { kernel, stride } => (kernel, stride),
                _ => ((h, w), (h, w)),
            };
            let geom = Geometry::new(cx.what, (c, h, w), c, kernel, stride, (0, 0))?;
            cx.shape = vec![c, geom.h_out, geom.w_out];
            Ok(Some(match layer {
                Layer::MaxPool2d { .. } => LayerOp::MaxPool2d(MaxPoolOp { geom }),
                _ => LayerOp::AvgPool2d(AvgPoolOp { geom }),
            }))
        }))
    },
};

/// `maxpool2d(k, s=k)` or `avgpool2d(k, s=k)`.
fn parse_window(args: &super::text::Args<'_>) -> crate::error::Result<super::Layer> {
    let name = args.name.as_str();
    let a = args.read(&[&["k", "kernel", "kernel_size"], &["s", "stride"]])?;
    let kernel = args.pair(args.required(a[0], &format!("give the window, e.g. {name}(2)"))?)?;
    let stride = args.pair_or(a[1], kernel)?;
    Ok(if name.starts_with("max") {
        super::Layer::MaxPool2d { kernel, stride }
    } else {
        super::Layer::AvgPool2d { kernel, stride }
    })
}

/// A resolved max pooling layer (it keeps each output's argmax from the forward pass for the
/// backward ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolOp {
    /// Shapes.
    pub geom: Geometry,
}

/// A resolved average pooling layer (also global average pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolOp {
    /// Shapes.
    pub geom: Geometry,
}

/// `{kind}pool k_hxk_w h_outxw_out`, for the dispatch profile.
fn describe(kind: &str, g: &Geometry) -> String {
    format!("{kind}pool {}x{} {}x{}", g.k_h, g.k_w, g.h_out, g.w_out)
}

/// PyTorch's `F.{kind}_pool2d` call on `x`.
fn torch_call(kind: &str, g: &Geometry, x: &str) -> String {
    format!("F.{kind}_pool2d({x}, kernel_size=({}, {}), stride=({}, {}))", g.k_h, g.k_w, g.stride_h, g.stride_w)
}

impl super::op::Op for MaxPoolOp {
    fn describe(&self) -> String {
        describe("max", &self.geom)
    }

    fn reads_input_tangent(&self) -> bool {
        false
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let arg = argmax(&self.geom, cx.env.rows, cx.x());
        let t = cx.env.curvature().then(|| max_gather(&arg, cx.t_x()));
        (max_gather(&arg, cx.x()), t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        let arg = argmax(&self.geom, cx.env.rows, cx.x());
        let in_len = cx.x().len();
        cx.send(cx.input, max_scatter(&arg, &cx.g_y(), in_len));
        if cx.env.curvature() {
            cx.send_r(cx.input, max_scatter(&arg, &cx.r_y(), in_len));
        }
    }

    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        site: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        let argmax = site.take(cx.rows * self.geom.out_len());
        plan_max(cx, meta, &self.geom, argmax)
    }

    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        Ok((torch_call("max", &self.geom, &cx.x()), true))
    }
}

impl super::op::Op for AvgPoolOp {
    fn describe(&self) -> String {
        describe("avg", &self.geom)
    }

    fn reads_input_tangent(&self) -> bool {
        false
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let t = cx.env.curvature().then(|| avg_fwd(&self.geom, cx.env.rows, cx.t_x()));
        (avg_fwd(&self.geom, cx.env.rows, cx.x()), t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        cx.send(cx.input, avg_bwd(&self.geom, cx.env.rows, &cx.g_y()));
        if cx.env.curvature() {
            cx.send_r(cx.input, avg_bwd(&self.geom, cx.env.rows, &cx.r_y()));
        }
    }

    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        _: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        plan_avg(cx, meta, &self.geom)
    }

    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        Ok((torch_call("avg", &self.geom, &cx.x()), true))
    }
}

/// Max pooling's dispatches (one invocation per output forward, per input backward) and its
/// uniforms; `aux_off` is its argmax scratch in the activation arena.
fn plan_max(
    cx: &super::plan::LayerContext,
    meta: &mut crate::nn::meta::LayerMeta,
    geom: &Geometry,
    aux_off: u32,
) -> super::plan::LayerPasses {
    use kernels::*;
    geom.write_meta(meta);
    meta.aux_off = aux_off;
    let kernels = [MaxpoolFwd, MaxpoolTangent, MaxpoolBwd, MaxpoolRbwd];
    let p = super::plan::LayerPasses::per_row(cx.group, kernels, geom.out_len() as u32, geom.in_len() as u32);
    with_fused_kernels(cx, p, [MaxpoolFwdTangent, MaxpoolBwdRbwd, MaxpoolTilingBwd, MaxpoolTilingBwdRbwd], geom)
}

/// The tiled sets (the naive set keeps one kernel per pass: the baseline) compute the output and
/// its tangent in one pass over each window, and both input cotangents of the backward +
/// R-backward pass in one walk over the windows: `[fwd_tangent, gather, tiling_bwd,
/// tiling_bwd_rbwd]`; where the windows tile the input exactly, the backward and the fused pass
/// run one invocation per window instead of one per input.
fn with_fused_kernels(
    cx: &super::plan::LayerContext,
    mut p: super::plan::LayerPasses,
    [fwd_tangent, gather, tiling_bwd, tiling_bwd_rbwd]: [crate::gpu::Kernel; 4],
    geom: &Geometry,
) -> super::plan::LayerPasses {
    use super::plan::Items::PerRow;
    if !cx.kernels.tiled() {
        return p;
    }
    p.fwd_tangent = Some(vec![cx.d(fwd_tangent, PerRow(geom.out_len() as u32))]);
    if windows_tile_the_input(geom) {
        let windows = PerRow(geom.out_len() as u32);
        p.bwd = vec![cx.d(tiling_bwd, windows)];
        p.bwd_rbwd = Some(vec![cx.d(tiling_bwd_rbwd, windows)]);
    } else {
        p.bwd_rbwd = Some(vec![cx.d(gather, PerRow(geom.in_len() as u32))]);
    }
    p
}

/// Every input lies in exactly one window: stride = kernel and the windows cover the plane.
pub(crate) fn windows_tile_the_input(g: &Geometry) -> bool {
    g.stride_h == g.k_h && g.stride_w == g.k_w && g.h_in == g.h_out * g.k_h && g.w_in == g.w_out * g.k_w
}

/// Average pooling's dispatches and uniforms.
fn plan_avg(
    cx: &super::plan::LayerContext,
    meta: &mut crate::nn::meta::LayerMeta,
    geom: &Geometry,
) -> super::plan::LayerPasses {
    use kernels::*;
    geom.write_meta(meta);
    let kernels = [AvgpoolFwd, AvgpoolTangent, AvgpoolBwd, AvgpoolRbwd];
    let p = super::plan::LayerPasses::per_row(cx.group, kernels, geom.out_len() as u32, geom.in_len() as u32);
    with_fused_kernels(cx, p, [AvgpoolFwdTangent, AvgpoolBwdRbwd, AvgpoolTilingBwd, AvgpoolTilingBwdRbwd], geom)
}

/// The pooling layers' WGSL module and its kernels.
pub mod kernels {
    crate::wgsl_kernels! {
        POOL = ("pool", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "pool.wgsl"]) {
            MaxpoolFwd "maxpool_fwd",
            MaxpoolTangent "maxpool_tangent",
            MaxpoolBwd "maxpool_bwd",
            MaxpoolRbwd "maxpool_rbwd",
            AvgpoolFwd "avgpool_fwd",
            AvgpoolTangent "avgpool_tangent",
            AvgpoolBwd "avgpool_bwd",
            AvgpoolRbwd "avgpool_rbwd",
            MaxpoolBwdRbwd "maxpool_bwd_rbwd",
            AvgpoolBwdRbwd "avgpool_bwd_rbwd",
            MaxpoolTilingBwd "maxpool_tiling_bwd",
            MaxpoolTilingBwdRbwd "maxpool_tiling_bwd_rbwd",
            AvgpoolTilingBwd "avgpool_tiling_bwd",
            AvgpoolTilingBwdRbwd "avgpool_tiling_bwd_rbwd",
            MaxpoolFwdTangent "maxpool_fwd_tangent",
            AvgpoolFwdTangent "avgpool_fwd_tangent",
        }
    }
}
