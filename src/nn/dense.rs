//! Dense layer y = W x + b (W `[n_out, n_in]` row-major, as `nn.Linear`): the f64 reference of
//! the four kernels in shaders/dense.wgsl, with the same names and argument order.
//! Batch tensors are `[rows, n]` row-major; `z_w`, `z_b` are the probe's slices for W and b.

/// Sizes of one dense application.
#[derive(Clone, Copy, Debug)]
pub struct DenseShape {
    /// Batch rows B.
    pub rows: usize,
    /// Input width.
    pub n_in: usize,
    /// Output width.
    pub n_out: usize,
}

/// `y[b, o] = Σ_i W[o, i] x[b, i] + b[o]`
pub fn fwd(s: DenseShape, w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; s.rows * s.n_out];
    for r in 0..s.rows {
        for o in 0..s.n_out {
            let mut acc = b[o];
            for i in 0..s.n_in {
                acc += w[o * s.n_in + i] * x[r * s.n_in + i];
            }
            y[r * s.n_out + o] = acc;
        }
    }
    y
}

/// t_y = W t_x + Z_W x + Z_b (t_x = None when x does not depend on θ)
pub fn tangent(s: DenseShape, w: &[f64], z_w: &[f64], z_b: &[f64], x: &[f64], t_x: Option<&[f64]>) -> Vec<f64> {
    let mut t_y = fwd(s, z_w, z_b, x);
    if let Some(t_x) = t_x {
        let zero = vec![0.0; s.n_out];
        let w_t = fwd(s, w, &zero, t_x);
        for (a, b) in t_y.iter_mut().zip(w_t) {
            *a += b;
        }
    }
    t_y
}

/// Returns (g_W, g_b, g_x): g_W = g_yᵀ x, g_b = Σ_b g_y, g_x = g_y W
pub fn bwd(s: DenseShape, w: &[f64], x: &[f64], g_y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut g_w = vec![0.0; s.n_out * s.n_in];
    let mut g_b = vec![0.0; s.n_out];
    let mut g_x = vec![0.0; s.rows * s.n_in];
    for r in 0..s.rows {
        for o in 0..s.n_out {
            let gy = g_y[r * s.n_out + o];
            g_b[o] += gy;
            for i in 0..s.n_in {
                g_w[o * s.n_in + i] += gy * x[r * s.n_in + i];
                g_x[r * s.n_in + i] += gy * w[o * s.n_in + i];
            }
        }
    }
    (g_w, g_b, g_x)
}

/// Returns (r_gW, r_gb, r_gx): r_gW = r_yᵀ x + g_yᵀ t_x, r_gb = Σ_b r_y, r_gx = r_y W + g_y Z_W
#[allow(clippy::too_many_arguments)]
pub fn rbwd(
    s: DenseShape,
    w: &[f64],
    z_w: &[f64],
    x: &[f64],
    t_x: Option<&[f64]>,
    g_y: &[f64],
    r_y: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut r_w, r_b, mut r_x) = bwd(s, w, x, r_y);
    if let Some(t_x) = t_x {
        let (extra_w, _, _) = bwd(s, w, t_x, g_y);
        for (a, b) in r_w.iter_mut().zip(extra_w) {
            *a += b;
        }
    }
    let (_, _, extra_x) = bwd(s, z_w, x, g_y);
    for (a, b) in r_x.iter_mut().zip(extra_x) {
        *a += b;
    }
    (r_w, r_b, r_x)
}

/// `linear(out, bias=true)` (also `dense`): `nn.Linear(in, out)`, `in` the flat width before it.
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &["linear"],
    parse: |args| matches!(args.name.as_str(), "linear" | "dense").then(|| parse(args)),
    text: |layer| match *layer {
        super::Layer::Dense { out, bias } => Some(super::op::LayerText {
            text: format!("linear({out}{})", super::text::bias_text(bias)),
            torch: "Linear",
            params: true,
        }),
        _ => None,
    },
    resolve: |layer, cx| match *layer {
        super::Layer::Dense { out, bias } => Some(resolve(out, bias, cx)),
        _ => None,
    },
};

fn parse(args: &super::text::Args<'_>) -> crate::error::Result<super::Layer> {
    let a = args.read(&[&["out", "out_features"], &["bias"]])?;
    let out = args.required(a[0], "give the output width, e.g. linear(10)")?;
    Ok(super::Layer::Dense { out: args.number(out)?, bias: args.bias(a[1])? })
}

fn resolve(out: usize, bias: bool, cx: &mut super::op::Resolving<'_>) -> crate::error::Result<Option<super::LayerOp>> {
    if cx.shape.len() != 1 {
        return Err(cx.error(&format!("needs a flat input but gets {:?}; add Flatten before it", cx.shape)));
    }
    if out == 0 {
        return Err(cx.error("has 0 outputs"));
    }
    let n_in = cx.shape[0];
    let w_off = cx.params.add(cx.name("weight"), vec![out, n_in], n_in, super::ParamRole::Weight);
    let b_off = cx.params.bias(bias, cx.name("bias"), out, n_in);
    cx.shape = vec![out];
    Ok(Some(super::LayerOp::Dense(DenseOp { n_in, n_out: out, w_off, b_off })))
}

/// A resolved dense layer: W `[n_out, n_in]` at `w_off` in θ, b at `b_off` (the zero sink after
/// θ, `Resolved::bias_sink`, for `bias=false`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseOp {
    /// Input width.
    pub n_in: usize,
    /// Output width.
    pub n_out: usize,
    /// Offset of W in θ.
    pub w_off: usize,
    /// Offset of b in θ.
    pub b_off: usize,
}

impl DenseOp {
    fn shape(&self, rows: usize) -> DenseShape {
        DenseShape { rows, n_in: self.n_in, n_out: self.n_out }
    }
}

impl super::op::Op for DenseOp {
    fn describe(&self) -> String {
        format!("dense {}->{}", self.n_in, self.n_out)
    }

    fn first_param(&self) -> Option<usize> {
        Some(self.w_off)
    }

    fn reads_input_tangent(&self) -> bool {
        true
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let (e, s, wl) = (cx.env, self.shape(cx.env.rows), self.n_in * self.n_out);
        let w = e.param(self.w_off, wl);
        let y = fwd(s, w, e.param(self.b_off, self.n_out), cx.x());
        let t = e
            .curvature()
            .then(|| tangent(s, w, e.dir(self.w_off, wl), e.dir(self.b_off, self.n_out), cx.x(), cx.t_x_unless_data()));
        (y, t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        let (e, s, wl) = (cx.env, self.shape(cx.env.rows), self.n_in * self.n_out);
        let w = e.param(self.w_off, wl);
        let g_y = cx.g_y();
        let offsets = (self.w_off, self.b_off);
        cx.put_backward(offsets, bwd(s, w, cx.x(), &g_y));
        if e.curvature() {
            let z_w = e.dir(self.w_off, wl);
            cx.put_r_backward(offsets, rbwd(s, w, z_w, cx.x(), cx.t_x_unless_data(), &g_y, &cx.r_y()));
        }
    }

    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        _: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        plan(cx, meta, (self.n_in, self.n_out), (self.w_off, self.b_off))
    }

    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        let name = cx.module_name(self.w_off);
        let module = format!("nn.Linear({}, {}{})", self.n_in, self.n_out, cx.bias_arg(self.b_off));
        Ok((cx.module(&name, module, cx.flat_x())?, false))
    }
}

/// The dense layer's dispatches in each pass and its uniforms: naive (one output per
/// invocation), tiled (4 × 4 register tiles) or shared (64 × 64 blocks per workgroup staged
/// through workgroup memory, 4 × 4 register tiles within); in both tiled sets backward +
/// R-backward fused, and forward + tangent fused except on CPU adapters. The input cotangent only where the input depends on θ.
fn plan(
    cx: &super::plan::LayerContext,
    meta: &mut crate::nn::meta::LayerMeta,
    (n_in, n_out): (usize, usize),
    (w_off, b_off): (usize, usize),
) -> super::plan::LayerPasses {
    use super::plan::{Items, LayerPasses, SHARED_BLOCK, TILE};
    use super::KernelSet;
    meta.n_in = n_in as u32;
    meta.n_out = n_out as u32;
    meta.w_off = w_off as u32;
    meta.b_off = b_off as u32;
    let (n_in, n_out) = (n_in as u32, n_out as u32);
    let d = |kernel, items| cx.d(kernel, items);
    let mut p = LayerPasses::default();
    match cx.kernels {
        KernelSet::Naive => {
            let params = Items::Fixed(n_out * (n_in + 1));
            p.fwd.push(d(kernels::DenseFwd, Items::PerRow(n_out)));
            p.tangent.push(d(kernels::DenseTangent, Items::PerRow(n_out)));
            p.bwd.push(d(kernels::DenseBwdW, params));
            p.rbwd.push(d(kernels::DenseRbwdW, params));
            if cx.has_input_grad {
                p.bwd.push(d(kernels::DenseBwdX, Items::PerRow(n_in)));
                p.rbwd.push(d(kernels::DenseRbwdX, Items::PerRow(n_in)));
            }
        }
        KernelSet::Tiled | KernelSet::Shared => {
            // the kernels of each product: register tiles, or staged through workgroup memory
            let (fwd, tangent, fwd_tangent, out_items) = if cx.kernels == KernelSet::Shared {
                (
                    kernels::DenseFwdShared,
                    kernels::DenseTangentShared,
                    kernels::DenseFwdTangentShared,
                    Items::Blocks(n_out),
                )
            } else {
                (kernels::DenseFwdTiled, kernels::DenseTangentTiled, kernels::DenseFwdTangentTiled, Items::Tiles(n_out))
            };
            let (bwd_w, rbwd_w, bwd_rbwd_w, param_items) = if cx.kernels == KernelSet::Shared {
                let blocks = n_out.div_ceil(SHARED_BLOCK) * (n_in + 1).div_ceil(SHARED_BLOCK);
                (
                    kernels::DenseBwdWShared,
                    kernels::DenseRbwdWShared,
                    kernels::DenseBwdRbwdWShared,
                    Items::Fixed(blocks),
                )
            } else {
                let tiles = n_out.div_ceil(TILE) * (n_in + 1).div_ceil(TILE);
                (kernels::DenseBwdWTiled, kernels::DenseRbwdWTiled, kernels::DenseBwdRbwdWTiled, Items::Fixed(tiles))
            };
            let (bwd_x, rbwd_x, bwd_rbwd_x, in_items) = if cx.kernels == KernelSet::Shared {
                (kernels::DenseBwdXShared, kernels::DenseRbwdXShared, kernels::DenseBwdRbwdXShared, Items::Blocks(n_in))
            } else {
                (kernels::DenseBwdXTiled, kernels::DenseRbwdXTiled, kernels::DenseBwdRbwdXTiled, Items::Tiles(n_in))
            };
            p.fwd.push(d(fwd, out_items));
            p.tangent.push(d(tangent, out_items));
            // the fused forward + tangent kernel spills on CPU adapters (`KernelTuning`)
            if cx.tuning.fuse_dense_forward_tangent {
                p.fwd_tangent = Some(vec![d(fwd_tangent, out_items)]);
            }
            p.bwd.push(d(bwd_w, param_items));
            p.rbwd.push(d(rbwd_w, param_items));
            let mut fused = vec![d(bwd_rbwd_w, param_items)];
            if cx.has_input_grad {
                p.bwd.push(d(bwd_x, in_items));
                p.rbwd.push(d(rbwd_x, in_items));
                fused.push(d(bwd_rbwd_x, in_items));
            }
            p.bwd_rbwd = Some(fused);
        }
    }
    p
}

/// The dense layer's WGSL module and its kernels (naive, register-tiled and workgroup-tiled sets).
pub mod kernels {
    crate::wgsl_kernels! {
        DENSE = ("dense", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "activation_math.wgsl", "dense.wgsl", "dense_tiled.wgsl", "dense_shared.wgsl"]) {
            DenseFwd "dense_fwd",
            DenseTangent "dense_tangent",
            DenseBwdW "dense_bwd_w",
            DenseBwdX "dense_bwd_x",
            DenseRbwdW "dense_rbwd_w",
            DenseRbwdX "dense_rbwd_x",
            DenseFwdTiled "dense_fwd_tiled",
            DenseTangentTiled "dense_tangent_tiled",
            DenseFwdTangentTiled "dense_fwd_tangent_tiled",
            DenseBwdXTiled "dense_bwd_x_tiled",
            DenseRbwdXTiled "dense_rbwd_x_tiled",
            DenseBwdRbwdXTiled "dense_bwd_rbwd_x_tiled",
            DenseBwdWTiled "dense_bwd_w_tiled",
            DenseRbwdWTiled "dense_rbwd_w_tiled",
            DenseBwdRbwdWTiled "dense_bwd_rbwd_w_tiled",
            DenseFwdShared "dense_fwd_shared" WorkgroupPerItem,
            DenseTangentShared "dense_tangent_shared" WorkgroupPerItem,
            DenseFwdTangentShared "dense_fwd_tangent_shared" WorkgroupPerItem,
            DenseBwdXShared "dense_bwd_x_shared" WorkgroupPerItem,
            DenseRbwdXShared "dense_rbwd_x_shared" WorkgroupPerItem,
            DenseBwdRbwdXShared "dense_bwd_rbwd_x_shared" WorkgroupPerItem,
            DenseBwdWShared "dense_bwd_w_shared" WorkgroupPerItem,
            DenseRbwdWShared "dense_rbwd_w_shared" WorkgroupPerItem,
            DenseBwdRbwdWShared "dense_bwd_rbwd_w_shared" WorkgroupPerItem,
        }
    }
}
