//! Element-wise activations: the choice enum and the f64 reference of shaders/activation.wgsl.
//!   fwd y = f(x); tangent t_y = f'(x) t_x; bwd g_x = f'(x) g_y; rbwd r_x = f'(x) r_y + f''(x) t_x g_y

use crate::gpu::Kernel;

/// Activation functions, defined exactly as PyTorch's modules of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `nn.Identity`
    Identity,
    /// `nn.ReLU` (f'(0) = 0)
    Relu,
    /// `nn.Tanh`
    Tanh,
    /// `nn.Sigmoid`
    Sigmoid,
    /// `nn.Softplus(beta=1, threshold=20)`
    Softplus,
    /// `nn.GELU()` (exact erf form)
    Gelu,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softplus,
        Activation::Gelu,
    ];

    /// The lower-case name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
            Activation::Gelu => "gelu",
        }
    }

    /// The PyTorch module.
    pub fn torch_name(self) -> &'static str {
        match self {
            Activation::Identity => "Identity",
            Activation::Relu => "ReLU",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::Softplus => "Softplus",
            Activation::Gelu => "GELU",
        }
    }

    /// Parses a name from [`Activation::name`].
    pub fn parse(name: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == name.to_ascii_lowercase())
    }

    /// The code the tiled dense kernels' epilogues know it by (`act_eval` in
    /// shaders/activation_math.wgsl; 0 means no activation).
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 1,
            Activation::Relu => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
            Activation::Softplus => 5,
            Activation::Gelu => 6,
        }
    }

    /// The (fwd, tangent, bwd, rbwd) kernels; None for the identity, which runs nothing.
    pub fn kernels(self) -> Option<[Kernel; 4]> {
        use kernels::*;
        match self {
            Activation::Identity => None,
            Activation::Relu => Some([ReluFwd, ReluTangent, ReluBwd, ReluRbwd]),
            Activation::Tanh => Some([TanhFwd, TanhTangent, TanhBwd, TanhRbwd]),
            Activation::Sigmoid => Some([SigmoidFwd, SigmoidTangent, SigmoidBwd, SigmoidRbwd]),
            Activation::Softplus => Some([SoftplusFwd, SoftplusTangent, SoftplusBwd, SoftplusRbwd]),
            Activation::Gelu => Some([GeluFwd, GeluTangent, GeluBwd, GeluRbwd]),
        }
    }

    /// The fused (forward + tangent, backward + R-backward) kernels the tiled sets use; None for
    /// the identity.
    pub fn fused_kernels(self) -> Option<[Kernel; 2]> {
        use kernels::*;
        match self {
            Activation::Identity => None,
            Activation::Relu => Some([ReluFwdTangent, ReluBwdRbwd]),
            Activation::Tanh => Some([TanhFwdTangent, TanhBwdRbwd]),
            Activation::Sigmoid => Some([SigmoidFwdTangent, SigmoidBwdRbwd]),
            Activation::Softplus => Some([SoftplusFwdTangent, SoftplusBwdRbwd]),
            Activation::Gelu => Some([GeluFwdTangent, GeluBwdRbwd]),
        }
    }

    /// The activation's dispatches (one invocation per element in every pass, the tiled sets
    /// fusing forward + tangent and backward + R-backward; none for the identity) and its
    /// uniforms.
    fn plan(
        self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        n: usize,
    ) -> super::plan::LayerPasses {
        meta.n_in = n as u32;
        meta.n_out = n as u32;
        let (Some(kernels), Some([fwd_tangent, bwd_rbwd])) = (self.kernels(), self.fused_kernels()) else {
            return super::plan::LayerPasses::default();
        };
        let mut p = super::plan::LayerPasses::per_quad(cx.group, kernels, n as u32);
        if cx.kernels.tiled() {
            let items = super::plan::Items::Quads(n as u32);
            p.fwd_tangent = Some(vec![cx.d(fwd_tangent, items)]);
            p.bwd_rbwd = Some(vec![cx.d(bwd_rbwd, items)]);
        }
        p
    }

    /// f(x) in f64.
    pub fn f(self, x: f64) -> f64 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Softplus => {
                if x > 20.0 {
                    x
                } else {
                    x.max(0.0) + (-x.abs()).exp().ln_1p()
                }
            }
            Activation::Gelu => x * normal_cdf(x),
        }
    }

    /// f'(x) in f64.
    pub fn d1(self, x: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            // sech² x without the cancellation of 1 − tanh² x (0 in f64 beyond |x| ≈ 19)
            Activation::Tanh => tanh_d1(x),
            Activation::Sigmoid => sigmoid(x) * sigmoid(-x),
            Activation::Softplus => {
                if x > 20.0 {
                    1.0
                } else {
                    sigmoid(x)
                }
            }
            Activation::Gelu => normal_cdf(x) + x * normal_pdf(x),
        }
    }

    /// f''(x) in f64.
    pub fn d2(self, x: f64) -> f64 {
        match self {
            Activation::Identity | Activation::Relu => 0.0,
            Activation::Tanh => -2.0 * x.tanh() * tanh_d1(x),
            Activation::Sigmoid => sigmoid(x) * sigmoid(-x) * (sigmoid(-x) - sigmoid(x)),
            Activation::Softplus => {
                if x > 20.0 {
                    0.0
                } else {
                    sigmoid(x) * sigmoid(-x)
                }
            }
            Activation::Gelu => normal_pdf(x) * (2.0 - x * x),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// y = f(x)
pub fn fwd(act: Activation, x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| act.f(v)).collect()
}

/// t_y = f'(x) t_x
pub fn tangent(act: Activation, x: &[f64], t_x: &[f64]) -> Vec<f64> {
    x.iter().zip(t_x).map(|(&v, &t)| act.d1(v) * t).collect()
}

/// g_x = f'(x) g_y
pub fn bwd(act: Activation, x: &[f64], g_y: &[f64]) -> Vec<f64> {
    x.iter().zip(g_y).map(|(&v, &g)| act.d1(v) * g).collect()
}

/// r_x = f'(x) r_y + f''(x) t_x g_y
pub fn rbwd(act: Activation, x: &[f64], t_x: &[f64], g_y: &[f64], r_y: &[f64]) -> Vec<f64> {
    (0..x.len()).map(|i| act.d1(x[i]) * r_y[i] + act.d2(x[i]) * t_x[i] * g_y[i]).collect()
}

/// `relu`, `tanh`, `sigmoid`, `softplus`, `gelu`, `identity`: no arguments, the input's shape;
/// the identity computes nothing and is dropped when resolved.
pub(crate) const FAMILY: super::op::LayerFamily = super::op::LayerFamily {
    names: &["relu", "tanh", "sigmoid", "softplus", "gelu", "identity"],
    parse: |args| {
        let act = Activation::parse(&args.name)?;
        Some(args.none().map(|_| super::Layer::Activation(act)))
    },
    text: |layer| match *layer {
        super::Layer::Activation(act) => {
            Some(super::op::LayerText { text: act.name().into(), torch: act.torch_name(), params: false })
        }
        _ => None,
    },
    resolve: |layer, cx| match *layer {
        super::Layer::Activation(Activation::Identity) => Some(Ok(None)),
        super::Layer::Activation(act) => {
            Some(Ok(Some(super::LayerOp::Activation(ActivationOp { act, n: cx.shape.iter().product() }))))
        }
        _ => None,
    },
};

/// A resolved element-wise activation over `n` features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivationOp {
    /// Which f.
    pub act: Activation,
    /// Width.
    pub n: usize,
}

impl super::op::Op for ActivationOp {
    fn describe(&self) -> String {
        format!("{:?} {}", self.act, self.n).to_lowercase()
    }

    /// f″ t_x g_y: every activation but ReLU (f″ = 0) reads the input's tangent.
    fn reads_input_tangent(&self) -> bool {
        self.act != Activation::Relu
    }

    fn reference_forward(&self, cx: &mut super::op::Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>) {
        let t = cx.env.curvature().then(|| tangent(self.act, cx.x(), cx.t_x()));
        (fwd(self.act, cx.x()), t)
    }

    fn reference_backward(&self, cx: &mut super::op::Backward<'_>) {
        let g_y = cx.g_y();
        cx.send(cx.input, bwd(self.act, cx.x(), &g_y));
        if cx.env.curvature() {
            cx.send_r(cx.input, rbwd(self.act, cx.x(), cx.t_x(), &g_y, &cx.r_y()));
        }
    }

    fn plan(
        &self,
        cx: &super::plan::LayerContext,
        meta: &mut crate::nn::meta::LayerMeta,
        _: &mut super::op::PlanSite<'_>,
    ) -> super::plan::LayerPasses {
        self.act.plan(cx, meta, self.n)
    }

    fn torch(&self, cx: &mut super::op::TorchLine<'_>) -> Result<(String, bool), std::fmt::Error> {
        let x = cx.x();
        let call = match self.act {
            Activation::Identity => x,
            Activation::Relu => format!("F.relu({x})"),
            Activation::Tanh => format!("torch.tanh({x})"),
            Activation::Sigmoid => format!("torch.sigmoid({x})"),
            // PyTorch's defaults are the ones the kernels use: beta 1, threshold 20; GELU's erf form
            Activation::Softplus => format!("F.softplus({x})"),
            Activation::Gelu => format!("F.gelu({x})"),
        };
        Ok((call, cx.input_four_d()))
    }
}

/// sech² x = 4e / (1 + e)², e = exp(−2|x|): accurate in relative terms for every x.
fn tanh_d1(x: f64) -> f64 {
    let e = (-2.0 * x.abs()).exp();
    4.0 * e / ((1.0 + e) * (1.0 + e))
}

/// The activations' WGSL module and their kernels.
pub mod kernels {
    crate::wgsl_kernels! {
        ACTIVATION = ("activation", Layer, ["common.wgsl", "layer_bindings.wgsl", "side.wgsl", "activation_math.wgsl", "activation.wgsl"]) {
            ReluFwd "relu_fwd",
            ReluTangent "relu_tangent",
            ReluBwd "relu_bwd",
            ReluRbwd "relu_rbwd",
            TanhFwd "tanh_fwd",
            TanhTangent "tanh_tangent",
            TanhBwd "tanh_bwd",
            TanhRbwd "tanh_rbwd",
            SigmoidFwd "sigmoid_fwd",
            SigmoidTangent "sigmoid_tangent",
            SigmoidBwd "sigmoid_bwd",
            SigmoidRbwd "sigmoid_rbwd",
            SoftplusFwd "softplus_fwd",
            SoftplusTangent "softplus_tangent",
            SoftplusBwd "softplus_bwd",
            SoftplusRbwd "softplus_rbwd",
            GeluFwd "gelu_fwd",
            GeluTangent "gelu_tangent",
            GeluBwd "gelu_bwd",
            GeluRbwd "gelu_rbwd",
            ReluFwdTangent "relu_fwd_tangent",
            ReluBwdRbwd "relu_bwd_rbwd",
            TanhFwdTangent "tanh_fwd_tangent",
            TanhBwdRbwd "tanh_bwd_rbwd",
            SigmoidFwdTangent "sigmoid_fwd_tangent",
            SigmoidBwdRbwd "sigmoid_bwd_rbwd",
            SoftplusFwdTangent "softplus_fwd_tangent",
            SoftplusBwdRbwd "softplus_bwd_rbwd",
            GeluFwdTangent "gelu_fwd_tangent",
            GeluBwdRbwd "gelu_bwd_rbwd",
        }
    }
}
