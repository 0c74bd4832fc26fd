//! One op of a resolved model and what it owns. Each op file (dense.rs, conv.rs, pool.rs,
//! activation.rs, norm.rs, residual.rs) defines the op's resolved struct (shapes and θ offsets)
//! and implements [`Op`] for it, beside its f64 maths and its WGSL kernels:
//!
//! - its f64 reference in the whole-model pass (forward, tangent, backward, R-backward): the
//!   oracle the GPU is tested against, itself tested against finite differences;
//! - its GPU plan: uniforms, dispatches per pass, and what it keeps for the backward passes
//!   (max pooling's argmax, normalisation's statistics);
//! - its line of `model.py` (the PyTorch module);
//! - a one-line description for per-layer tables.
//!
//! [`super::LayerOp`] lists the ops once (`ops!` in mod.rs), so the whole-model reference
//! (reference.rs), the network planner (network.rs) and the exporter (pytorch.rs) hold no
//! per-op match.
//!
//! On the model-text side, each op file also declares a [`LayerFamily`]: the [`super::Layer`]s
//! it owns, how they are parsed and written in the model text, and how each is resolved at the
//! shape before it (its output shape, its parameter tensors with their names, roles and fan-in
//! for the initialiser, its running statistics). `FAMILIES` in mod.rs lists them once. A new op
//! is then its file (maths, struct, `Op`, family, WGSL), its `Layer` variant, one `ops!` and one
//! `FAMILIES` entry, and its tests.

use super::meta::LayerMeta;
use super::norm::{Statistics, Stats};
use super::plan::{ArenaLayout, LayerContext, LayerPasses, NodeOffsets};
use super::reference::NormMode;
use super::text::Args;
use super::{Layer, LayerOp, ParamLayout, Resolved};
use crate::error::{Error, Result};

/// The model-text side of one op file's layers (see the module docs).
pub(crate) struct LayerFamily {
    /// Its layers' names, as the unknown-layer error lists them.
    pub names: &'static [&'static str],
    /// Parses a layer whose name (or alias) is its own; None for any other name.
    pub parse: fn(&Args<'_>) -> Option<Result<Layer>>,
    /// The text form of one of its layers and what it is; None for another family's layer.
    pub text: fn(&Layer) -> Option<LayerText>,
    /// Resolves one of its layers at the shape so far, setting the output shape: its op, or
    /// Ok(None) for a layer that computes nothing (flatten, identity); None for another
    /// family's layer.
    pub resolve: fn(&Layer, &mut Resolving<'_>) -> Option<Result<Option<LayerOp>>>,
}

/// A layer's text form, its PyTorch module's name and whether it has parameters.
pub(crate) struct LayerText {
    pub text: String,
    pub torch: &'static str,
    pub params: bool,
}

/// One layer's place in the model being resolved.
pub(crate) struct Resolving<'a> {
    /// `layer 3 (Conv2d)`, for errors.
    pub what: &'a str,
    /// The module its tensors are named under: `3`, or `2.body.0` inside a residual block.
    pub module: &'a str,
    /// The shape of one row so far; the layer sets its output's.
    pub shape: Vec<usize>,
    /// θ's tensors and the running statistics laid out so far.
    pub params: &'a mut ParamLayout,
}

impl Resolving<'_> {
    /// A shape error about this layer: `layer 3 (Linear) <why>`.
    pub fn error(&self, why: &str) -> Error {
        Error::Shape(format!("{} {why}", self.what))
    }

    /// The input as (channels, height, width), or an error saying the layer needs images.
    pub fn planes(&self) -> Result<(usize, usize, usize)> {
        match self.shape[..] {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(self.error(&format!("needs a [channels, height, width] input but gets {:?}", self.shape))),
        }
    }

    /// `{module}.{field}`, a tensor's name.
    pub fn name(&self, field: &str) -> String {
        format!("{}.{field}", self.module)
    }
}

/// What every op of a resolved model provides (see the module docs).
pub(crate) trait Op {
    /// The op and its shape in a few words ("dense 64->32"), for the dispatch profile.
    fn describe(&self) -> String;

    /// The θ offset of its first tensor (the weight, γ) when it has parameters: its tensors'
    /// names share that tensor's prefix.
    fn first_param(&self) -> Option<usize> {
        None
    }

    /// A node it reads besides its input (a residual add's skip).
    fn skip(&self) -> Option<usize> {
        None
    }

    /// Whether its R-backward reads its input's tangent (then the arena keeps that tangent:
    /// `plan::tangent_kept`).
    fn reads_input_tangent(&self) -> bool;

    /// The f64 forward y and, when the pass has a direction z, its tangent ẏ = J z.
    fn reference_forward(&self, cx: &mut Forward<'_>) -> (Vec<f64>, Option<Vec<f64>>);

    /// The f64 backward (and, with a direction, R-backward): writes its parameters' gradient
    /// and H z entries and sends cotangents (R-cotangents) to the nodes it reads, which sum
    /// them ([`Backward::send`]).
    fn reference_backward(&self, cx: &mut Backward<'_>);

    /// Its uniforms and its dispatches in each pass.
    fn plan(&self, cx: &LayerContext, meta: &mut LayerMeta, site: &mut PlanSite<'_>) -> LayerPasses;

    /// Its expression in model.py's `forward` (registering any module it needs in `__init__`),
    /// and whether its output is a 4-D `[N, C, H, W]` tensor there.
    fn torch(&self, cx: &mut TorchLine<'_>) -> Result<(String, bool), std::fmt::Error>;
}

/// What a whole-model reference pass gives every op: the model, the statistics mode, the batch
/// size, θ and the direction z (both followed by the zero bias sink, `Resolved::bias_sink`).
#[derive(Clone, Copy)]
pub(crate) struct PassEnv<'a> {
    pub model: &'a Resolved,
    pub mode: NormMode<'a>,
    pub rows: usize,
    pub theta: &'a [f64],
    pub z: Option<&'a [f64]>,
}

impl<'a> PassEnv<'a> {
    /// θ[off .. off + len].
    pub fn param(&self, off: usize, len: usize) -> &'a [f64] {
        &self.theta[off..off + len]
    }

    /// z[off .. off + len] (call only with a direction).
    pub fn dir(&self, off: usize, len: usize) -> &'a [f64] {
        let z = self.z.expect("a direction z");
        &z[off..off + len]
    }

    /// Whether the pass computes H z.
    pub fn curvature(&self) -> bool {
        self.z.is_some()
    }

    /// Where a normalisation layer takes its statistics from: its running slice in eval mode,
    /// else the batch's (LayerNorm, which has no running entry, always the row's).
    pub fn statistics(&self, running: Option<usize>) -> Statistics<'a> {
        match (self.mode, running) {
            (NormMode::Eval(arena), Some(i)) => {
                let r = &self.model.running[i];
                Statistics::Fixed {
                    mean: &arena[r.offset..r.offset + r.channels],
                    var: &arena[r.offset + r.channels..r.offset + 2 * r.channels],
                }
            }
            _ => Statistics::Batch,
        }
    }
}

/// The values and tangents an op reads, in a reference pass.
#[derive(Clone, Copy)]
pub(crate) struct Reads<'a> {
    /// The node the op reads.
    pub input: usize,
    /// Every node's value (node 0 the data).
    pub nodes: &'a [Vec<f64>],
    /// Every node's tangent (filled only with a direction).
    pub tangents: &'a [Vec<f64>],
}

impl<'a> Reads<'a> {
    /// The input x.
    pub fn x(&self) -> &'a [f64] {
        &self.nodes[self.input]
    }

    /// The input's tangent ẋ (with a direction).
    pub fn t_x(&self) -> &'a [f64] {
        &self.tangents[self.input]
    }

    /// ẋ, or None when the input is the data (whose tangent is zero: the op skips its term).
    pub fn t_x_unless_data(&self) -> Option<&'a [f64]> {
        (self.input > 0).then(|| self.t_x())
    }
}

/// One op's view of the reference forward pass (its reads through `Deref`).
pub(crate) struct Forward<'a> {
    pub env: PassEnv<'a>,
    pub reads: Reads<'a>,
    /// Each train-mode BatchNorm's batch statistics (running index, statistics, values per
    /// channel), for the running-statistics update.
    pub batch_stats: &'a mut Vec<(usize, Stats, usize)>,
}

impl<'a> std::ops::Deref for Forward<'a> {
    type Target = Reads<'a>;
    fn deref(&self) -> &Reads<'a> {
        &self.reads
    }
}

/// One op's view of the reference backward pass, run in reverse layer order (its reads
/// through `Deref`).
pub(crate) struct Backward<'a> {
    pub env: PassEnv<'a>,
    pub reads: Reads<'a>,
    /// The node it wrote.
    pub output: usize,
    /// Cotangents ∂L/∂node, summed over a node's readers.
    pub g: &'a mut [Vec<f64>],
    /// R-cotangents (the tangent of g along z), likewise summed.
    pub r: &'a mut [Vec<f64>],
    /// ∇θ L (with the bias sink).
    pub grad: &'a mut [f64],
    /// H z (with the bias sink), with a direction.
    pub hz: Option<&'a mut [f64]>,
}

impl<'a> std::ops::Deref for Backward<'a> {
    type Target = Reads<'a>;
    fn deref(&self) -> &Reads<'a> {
        &self.reads
    }
}

impl Backward<'_> {
    /// The output's cotangent g_y (complete: every reader of the output ran before).
    pub fn g_y(&self) -> Vec<f64> {
        self.g[self.output].clone()
    }

    /// The output's R-cotangent r_y (with a direction).
    pub fn r_y(&self) -> Vec<f64> {
        self.r[self.output].clone()
    }

    /// Adds a cotangent into `node`'s: a node read twice (a residual block's input) gets the
    /// sum of what both readers send back.
    pub fn send(&mut self, node: usize, g: Vec<f64>) {
        add_into(&mut self.g[node], g);
    }

    /// Adds an R-cotangent into `node`'s.
    pub fn send_r(&mut self, node: usize, r: Vec<f64>) {
        add_into(&mut self.r[node], r);
    }

    /// A layer with a weight (γ) at `w_off` and a bias (β) at `b_off`: stores their gradient
    /// (an op owns its tensors' entries) and sends the input cotangent.
    pub fn put_backward(&mut self, (w_off, b_off): (usize, usize), (g_w, g_b, g_x): (Vec<f64>, Vec<f64>, Vec<f64>)) {
        self.grad[w_off..w_off + g_w.len()].copy_from_slice(&g_w);
        self.grad[b_off..b_off + g_b.len()].copy_from_slice(&g_b);
        self.send(self.input, g_x);
    }

    /// The same layer's R-backward: stores its H z entries and sends the input R-cotangent.
    pub fn put_r_backward(&mut self, (w_off, b_off): (usize, usize), (r_w, r_b, r_x): (Vec<f64>, Vec<f64>, Vec<f64>)) {
        if let Some(hz) = self.hz.as_deref_mut() {
            hz[w_off..w_off + r_w.len()].copy_from_slice(&r_w);
            hz[b_off..b_off + r_b.len()].copy_from_slice(&r_b);
        }
        self.send_r(self.input, r_x);
    }
}

fn add_into(slot: &mut Vec<f64>, v: Vec<f64>) {
    if slot.is_empty() {
        *slot = v;
    } else {
        slot.iter_mut().zip(v).for_each(|(a, b)| *a += b);
    }
}

/// Where an op is planned: the model, the activation arena it takes scratch from, its index.
pub(crate) struct PlanSite<'a> {
    pub model: &'a Resolved,
    pub layout: &'a mut ArenaLayout,
    /// The op's index in `model.layers`.
    pub layer: usize,
}

impl PlanSite<'_> {
    /// Floats of the activation arena of the op's own (kept from forward to backward).
    pub fn take(&mut self, len: usize) -> u32 {
        self.layout.take(len)
    }

    /// A node's slots in the arena.
    pub fn node(&self, i: usize) -> NodeOffsets {
        self.layout.nodes[i]
    }

    /// Whether the op is not the first reader of node `i` ([`Resolved::is_second_reader`]).
    pub fn second_reader(&self, i: usize) -> bool {
        self.model.is_second_reader(self.layer, i)
    }
}

/// One line of model.py's `forward`: `h{output} = <expression>`.
pub(crate) struct TorchLine<'a> {
    pub model: &'a Resolved,
    /// `__init__`'s body so far (the modules registered).
    pub init: &'a mut String,
    /// The node read.
    pub input: usize,
    /// Whether each node is a 4-D tensor in PyTorch.
    pub four_d: &'a [bool],
}

impl TorchLine<'_> {
    /// The input's Python name, `h{input}`.
    pub fn x(&self) -> String {
        format!("h{}", self.input)
    }

    /// Whether the input is 4-D.
    pub fn input_four_d(&self) -> bool {
        self.four_d[self.input]
    }

    /// The input flattened to `[N, F]` where it is 4-D (flatten is free here, not in PyTorch).
    pub fn flat_x(&self) -> String {
        if self.input_four_d() {
            format!("torch.flatten({}, 1)", self.x())
        } else {
            self.x()
        }
    }

    /// The module name of the tensors starting at θ offset `off` (`layer1.0.conv1`).
    pub fn module_name(&self, off: usize) -> String {
        self.model
            .params
            .iter()
            .find(|p| p.offset == off)
            .map_or(String::new(), |p| p.name.rsplit_once('.').map_or(p.name.clone(), |(prefix, _)| prefix.to_string()))
    }

    /// `, bias=False` for a bias-free layer (its bias lives in the zero sink after θ).
    pub fn bias_arg(&self, b_off: usize) -> &'static str {
        if b_off >= self.model.n_params {
            ", bias=False"
        } else {
            ""
        }
    }

    /// Registers `module` (Python source) under `name` and returns the call of it on `input`.
    pub fn module(&mut self, name: &str, module: String, input: String) -> Result<String, std::fmt::Error> {
        use std::fmt::Write;
        writeln!(self.init, "        _put(self, {name:?}, {module})")?;
        Ok(format!("self.get_submodule({name:?})({input})"))
    }
}
