//! Models: the architecture description, its parameter layout (PyTorch `nn.Sequential` names and
//! shapes), initialisation, the f64 reference of every layer, and the GPU network.

pub mod activation;
pub mod conv;
pub mod dense;
pub mod kernel_set;
pub mod loss;
pub mod meta;
pub(crate) mod network;
pub mod norm;
pub(crate) mod op;
pub(crate) mod plan;
pub mod pool;
pub mod pytorch;
pub mod reference;
pub mod residual;
pub mod text;

pub use activation::Activation;
pub use kernel_set::{KernelSet, KernelTuning};
pub use loss::Loss;
pub use network::{Batch, BnMode, BoundData, Evaluation, MemoryUse, Network, NetworkOptions, OnBatch, Phase};
pub use residual::ShortcutGeom;

use crate::error::{Error, Result};
use crate::probe::SplitMix64;

/// One layer of a sequential model, in PyTorch order, with PyTorch's semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `nn.Linear(in, out)`; `in` is the (flat) width of whatever comes before.
    Dense {
        /// Output features.
        out: usize,
        /// With a bias (`bias=False` in PyTorch: none, as before a BatchNorm).
        bias: bool,
    },
    /// `nn.Conv2d(in, out, kernel, stride, padding, bias)` on `[C, H, W]` inputs, zero padding.
    Conv2d {
        /// Output channels.
        out: usize,
        /// (k_h, k_w).
        kernel: (usize, usize),
        /// (s_h, s_w).
        stride: (usize, usize),
        /// (p_h, p_w).
        padding: (usize, usize),
        /// With a bias (`bias=False`: none).
        bias: bool,
    },
    /// `nn.MaxPool2d(kernel, stride)` (no padding, floor mode).
    MaxPool2d {
        /// (k_h, k_w).
        kernel: (usize, usize),
        /// (s_h, s_w).
        stride: (usize, usize),
    },
    /// `nn.AvgPool2d(kernel, stride)` (no padding, floor mode).
    AvgPool2d {
        /// (k_h, k_w).
        kernel: (usize, usize),
        /// (s_h, s_w).
        stride: (usize, usize),
    },
    /// `nn.AdaptiveAvgPool2d(1)`: `[C, H, W]` → `[C, 1, 1]`.
    GlobalAvgPool,
    /// `nn.Flatten()`: `[C, H, W]` → `[C·H·W]` (free: NCHW is already row-major).
    Flatten,
    /// An element-wise activation (`nn.ReLU()`, `nn.Tanh()`, ...).
    Activation(Activation),
    /// `nn.BatchNorm2d(C)` on `[C, H, W]` inputs (ε 1e-5, momentum 0.1, affine, running
    /// statistics tracked): per channel over the batch and the plane.
    BatchNorm2d,
    /// `nn.BatchNorm1d(F)` on flat `[F]` inputs: per feature over the batch.
    BatchNorm1d,
    /// `nn.LayerNorm(shape)` over the whole of each row (ε 1e-5, affine), γ and β of the
    /// input's shape.
    LayerNorm,
    /// Opens a residual block: the layers up to the matching [`Layer::EndResidual`] are its body
    /// f, and the block computes f(x) + s(x) with the shortcut s. Named as a module holding
    /// `body` (an `nn.Sequential`): its layers' parameters are `{block}.body.{j}.weight`.
    Residual(Shortcut),
    /// Closes the residual block opened last (blocks do not nest).
    EndResidual,
}

/// The shortcut of a residual block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// s(x) = x: the body keeps the shape.
    Identity,
    /// He et al.'s CIFAR "option A": s(x)[n, c, i, j] = x[n, c − p, s·i, s·j] for
    /// p ≤ c < p + C_in, else 0, with p = (C_out − C_in)/2 and the stride s the body's spatial
    /// subsampling; no parameters.
    Pad,
    /// He et al.'s "option B", the projection: a 1×1 convolution with the body's stride and
    /// output channels (no bias), then BatchNorm2d: `shortcut.0` and `shortcut.1` of the block,
    /// as the common PyTorch CIFAR ResNets name them. It runs before the body (it reads only the
    /// block input), so that the add's two operands lie in separate slots of the arena.
    Conv,
}

impl Shortcut {
    /// The text form's name (`residual(shortcut=pad)`).
    pub fn name(self) -> &'static str {
        match self {
            Shortcut::Identity => "identity",
            Shortcut::Pad => "pad",
            Shortcut::Conv => "conv",
        }
    }
}

/// A model: input shape, layers (with residual blocks), loss, and how its tensors are named.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Shape of one input row: `[features]` or `[channels, height, width]`.
    pub input: Vec<usize>,
    /// Layers in order; parameter names follow their index as in `nn.Sequential`.
    pub layers: Vec<Layer>,
    /// The loss applied to the last layer's output.
    pub loss: Loss,
    /// The names of its parameters and buffers.
    pub naming: Naming,
}

/// How a model's tensors are named (they are its state_dict's keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Naming {
    /// `nn.Sequential`'s: `{index}.weight`, and `{block}.body.{j}.weight` inside a residual
    /// block.
    #[default]
    Sequential,
    /// The widely used PyTorch CIFAR ResNet's (`conv1`, `bn1`, `layer{1,2,3}.{i}.conv1/bn1/
    /// conv2/bn2`, `linear`): a stem conv + BatchNorm, then blocks of conv, BatchNorm, conv,
    /// BatchNorm (a stage starts where a block's first conv has a stride), then one linear layer.
    ResNetCifar,
}

impl Naming {
    /// The text form's name (`names resnet_cifar`).
    pub fn name(self) -> &'static str {
        match self {
            Naming::Sequential => "sequential",
            Naming::ResNetCifar => "resnet_cifar",
        }
    }

    /// Parses `sequential` or `resnet_cifar`.
    pub fn parse(text: &str) -> Result<Naming> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "sequential" => Ok(Naming::Sequential),
            "resnet_cifar" => Ok(Naming::ResNetCifar),
            other => Err(Error::Config(format!("unknown naming '{other}'; use sequential or resnet_cifar"))),
        }
    }
}

/// A CIFAR ResNet (He et al. 2016, §4.2): depth 6n + 2, a 3×3 stem of `width` channels, three
/// stages of n basic blocks (3×3 conv, BatchNorm, ReLU, 3×3 conv, BatchNorm, plus the shortcut,
/// then ReLU) at width, 2·width and 4·width, the last two starting with stride 2 and an option-A
/// shortcut; global average pooling and a linear layer. Convolutions have no bias (BatchNorm
/// follows each). `shortcuts = false` drops every shortcut (Li et al.'s "noshort" networks).
pub fn resnet_cifar(depth: usize, width: usize, shortcuts: bool, input: &[usize], classes: usize) -> Result<ModelSpec> {
    resnet_cifar_with(depth, width, ResNetVariant { shortcuts, batch_norm: true, projection: false }, input, classes)
}

/// Which parts of He et al.'s CIFAR ResNet a preset keeps: the two comparisons of the curvature
/// literature drop one each (Li et al. 2018: the shortcuts; PyHessian: BatchNorm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetVariant {
    /// The blocks' shortcuts (`:noshort` drops them: a plain deep CNN).
    pub shortcuts: bool,
    /// BatchNorm after every conv (`:nobn` drops it; the convs stay bias-free, nothing else
    /// changes).
    pub batch_norm: bool,
    /// He et al.'s option B where the stride and width change (`:proj`): a 1×1 conv + BatchNorm
    /// shortcut (`layer2.0.shortcut.0`, `.1`) instead of option A's parameter-free padding.
    pub projection: bool,
}

/// [`resnet_cifar`] with or without its shortcuts and BatchNorm layers.
pub fn resnet_cifar_with(
    depth: usize,
    width: usize,
    variant: ResNetVariant,
    input: &[usize],
    classes: usize,
) -> Result<ModelSpec> {
    let ResNetVariant { shortcuts, batch_norm, projection } = variant;
    if depth < 8 || (depth - 2) % 6 != 0 {
        return Err(Error::Config(format!(
            "a CIFAR ResNet has depth 6n+2 (8, 14, 20, 32, 44, 56, 110, ...), not {depth}"
        )));
    }
    // He et al.'s deepest CIFAR ResNet is 1202 layers; a depth far past it is a typo, and its
    // layer list alone would exhaust memory before any size check
    if depth > MAX_RESNET_DEPTH {
        return Err(Error::Config(format!(
            "a CIFAR ResNet of depth {depth} is deeper than this library builds (at most {MAX_RESNET_DEPTH}; He et al. \
             went to 1202)"
        )));
    }
    if projection && !(shortcuts && batch_norm) {
        return Err(Error::Config(
            "the projection shortcut (:proj, option B: 1×1 conv + BatchNorm) needs the shortcuts and BatchNorm; \
             it cannot go with :noshort or :nobn"
                .into(),
        ));
    }
    if width == 0 || (width % 2 != 0 && !projection) {
        return Err(Error::Config(format!(
            "the ResNet's first width must be even and > 0 (option A pads channels in pairs), not {width}"
        )));
    }
    if input.len() != 3 {
        return Err(Error::Config(format!(
            "a ResNet needs images [channels, height, width], not inputs of shape {input:?}"
        )));
    }
    let n = (depth - 2) / 6;
    let conv =
        |out, stride| Layer::Conv2d { out, kernel: (3, 3), stride: (stride, stride), padding: (1, 1), bias: false };
    let bn = || batch_norm.then_some(Layer::BatchNorm2d);
    let mut layers: Vec<Layer> =
        [Some(conv(width, 1)), bn(), Some(Layer::Activation(Activation::Relu))].into_iter().flatten().collect();
    for stage in 0..3 {
        let w = width << stage;
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let body: Vec<Layer> =
                [Some(conv(w, stride)), bn(), Some(Layer::Activation(Activation::Relu)), Some(conv(w, 1)), bn()]
                    .into_iter()
                    .flatten()
                    .collect();
            if shortcuts {
                let shortcut = match (stride > 1, projection) {
                    (false, _) => Shortcut::Identity,
                    (true, false) => Shortcut::Pad,
                    (true, true) => Shortcut::Conv,
                };
                layers.push(Layer::Residual(shortcut));
                layers.extend(body);
                layers.push(Layer::EndResidual);
            } else {
                layers.extend(body);
            }
            layers.push(Layer::Activation(Activation::Relu));
        }
    }
    layers.extend([Layer::GlobalAvgPool, Layer::Flatten, Layer::Dense { out: classes, bias: true }]);
    let spec = ModelSpec { input: input.to_vec(), layers, loss: Loss::CrossEntropy, naming: Naming::ResNetCifar };
    spec.resolve()?;
    Ok(spec)
}

/// `resnet20`, `resnet:DEPTH`, `resnet:DEPTH:WIDTH`, `resnet:DEPTH:WIDTH:noshort`,
/// `resnet:DEPTH:WIDTH:nobn` or `resnet:DEPTH:WIDTH:noshort+nobn` (width 16 by default) for images
/// of `input` shape and `classes` classes; None when `text` is not one.
pub fn parse_resnet(text: &str, input: &[usize], classes: usize) -> Option<Result<ModelSpec>> {
    let text = text.trim().to_ascii_lowercase();
    let rest = text.strip_prefix("resnet:").map(str::to_string).or_else(|| {
        text.strip_prefix("resnet")
            .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
    })?;
    let parts: Vec<&str> = rest.split(':').collect();
    let number = |what: &str, s: &str| {
        s.parse::<usize>().map_err(|_| Error::Config(format!("resnet:{rest}: the {what} '{s}' is not a whole number")))
    };
    let parsed = (|| {
        let depth = number("depth", parts[0])?;
        let width = match parts.get(1) {
            Some(w) => number("width", w)?,
            None => 16,
        };
        let mut variant = ResNetVariant { shortcuts: true, batch_norm: true, projection: false };
        for flag in parts.get(2).map_or(Vec::new(), |f| f.split('+').collect()) {
            match flag {
                "noshort" if variant.shortcuts => variant.shortcuts = false,
                "nobn" if variant.batch_norm => variant.batch_norm = false,
                "proj" if !variant.projection => variant.projection = true,
                "noshort" | "nobn" | "proj" => {
                    return Err(Error::Config(format!("resnet:{rest}: '{flag}' is given twice")));
                }
                other => {
                    return Err(Error::Config(format!(
                        "resnet:{rest}: '{other}' is not 'noshort', 'nobn' or 'proj' (resnet:DEPTH:WIDTH:noshort, \
                         resnet:DEPTH:WIDTH:nobn, resnet:DEPTH:WIDTH:noshort+nobn, or resnet:DEPTH:WIDTH:proj for \
                         option-B shortcuts)"
                    )))
                }
            }
        }
        if parts.len() > 3 {
            return Err(Error::Config(format!(
                "resnet:{rest}: use resnet:DEPTH, resnet:DEPTH:WIDTH or resnet:DEPTH:WIDTH:noshort (or :nobn, \
                 :noshort+nobn, :proj)"
            )));
        }
        resnet_cifar_with(depth, width, variant, input, classes)
    })();
    Some(parsed)
}

impl ModelSpec {
    /// An MLP `widths[0] → widths[1] → … → widths[n]` with `activation` between Dense layers
    /// (none after the last), e.g. `mlp(&[64, 128, 10], Tanh, CrossEntropy)` is
    /// `Sequential(Linear(64,128), Tanh(), Linear(128,10))`.
    pub fn mlp(widths: &[usize], activation: Activation, loss: Loss) -> ModelSpec {
        let mut layers = Vec::new();
        for (i, w) in widths.iter().enumerate().skip(1) {
            layers.push(Layer::Dense { out: *w, bias: true });
            if i + 1 < widths.len() {
                layers.push(Layer::Activation(activation));
            }
        }
        ModelSpec { input: vec![widths.first().copied().unwrap_or(0)], layers, loss, naming: Naming::Sequential }
    }

    /// Checks every shape (errors name the layer, its index and the shapes) and lays out the
    /// parameters.
    pub fn resolve(&self) -> Result<Resolved> {
        if self.input.is_empty() || self.input.contains(&0) || !(self.input.len() == 1 || self.input.len() == 3) {
            return Err(Error::Shape(format!(
                "the input shape {:?} must be [features] or [channels, height, width], all > 0",
                self.input
            )));
        }
        let row = self.input.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&v| v <= MAX_ELEMENTS);
        if row.is_none() || self.input.iter().any(|&d| d > MAX_EXTENT && self.input.len() == 3) {
            return Err(Error::Shape(format!(
                "the input shape {:?} is more than this library addresses (at most 2^31 values a row, each image \
                 side and the channels at most 2^24)",
                self.input
            )));
        }
        if !self.layers.iter().any(|l| l.has_params()) {
            return Err(Error::Shape(
                "the model has no layer with parameters (linear, conv2d, batchnorm, layernorm), so nothing to train"
                    .into(),
            ));
        }
        let mut shape = self.input.clone();
        let mut nodes = vec![shape.iter().product::<usize>()];
        let mut layers: Vec<ResolvedLayer> = Vec::new();
        let mut arena = ParamLayout::default();
        // the module names: top-level layers by their nn.Sequential index; inside a residual
        // block, `{block}.body.{j}`
        struct Open {
            top: usize,
            inner: usize,
            skip: usize,
            shape: Vec<usize>,
            shortcut: Shortcut,
            at: usize,
            /// the resolved layers before the body (where a projection shortcut is inserted)
            first_layer: usize,
        }
        let mut top = 0usize;
        let mut block: Option<Open> = None;
        for (flat, layer) in self.layers.iter().enumerate() {
            let input = nodes.len() - 1;
            let what = format!("layer {flat} ({})", layer.torch_name());
            let module = match &block {
                Some(b) => format!("{}.body.{}", b.top, b.inner),
                None => top.to_string(),
            };
            let index = module;
            // the nn.Sequential index of the top-level module this layer belongs to
            let top_index = block.as_ref().map_or(top, |b| b.top);
            match *layer {
                Layer::Residual(shortcut) => {
                    if let Some(b) = &block {
                        return Err(Error::Shape(format!(
                            "{what}: residual blocks do not nest (the block opened at layer {} is still open)",
                            b.at
                        )));
                    }
                    block = Some(Open {
                        top,
                        inner: 0,
                        skip: input,
                        shape: shape.clone(),
                        shortcut,
                        at: flat,
                        first_layer: layers.len(),
                    });
                    continue;
                }
                Layer::EndResidual => {
                    let b =
                        block.take().ok_or_else(|| Error::Shape(format!("{what}: '}}' closes no residual block")))?;
                    if b.inner == 0 {
                        return Err(Error::Shape(format!("{what}: the residual block has no layers")));
                    }
                    let (skip, geom) = if b.shortcut == Shortcut::Conv {
                        // the projection: conv 1×1 (stride s, C_out) and BatchNorm2d on the block
                        // input, inserted before the body; the add then sums two nodes of one shape
                        let (&[c, h, w], &[c_out, h_out, w_out]) = (b.shape.as_slice(), shape.as_slice()) else {
                            return Err(Error::Shape(format!(
                                "{what}: the conv shortcut (option B) needs images [C, H, W] in and out of the body, \
                                 not {:?} to {shape:?}",
                                b.shape
                            )));
                        };
                        let stride = h.div_ceil(h_out);
                        if stride == 0 || w.div_ceil(stride) != w_out || h.div_ceil(stride) != h_out {
                            return Err(Error::Shape(format!(
                                "{what}: the conv shortcut (option B, a 1×1 conv of one stride s) maps {:?} to \
                                 [C, ⌈H/s⌉, ⌈W/s⌉] only, but the body ends with {shape:?}",
                                b.shape
                            )));
                        }
                        let geom = Geometry::new(&what, (c, h, w), c_out, (1, 1), (stride, stride), (0, 0))?;
                        let w_off = arena.add(
                            format!("{}.shortcut.0.weight", b.top),
                            vec![c_out, c, 1, 1],
                            c,
                            ParamRole::Weight,
                        );
                        let no_bias = arena.no_bias(c_out);
                        let kind = norm::NormKind::Batch { channels: c_out, plane: h_out * w_out };
                        let prefix = format!("{}.shortcut.1", b.top);
                        let g_off = arena.add(format!("{prefix}.weight"), vec![c_out], 1, ParamRole::NormScale);
                        let beta_off = arena.add(format!("{prefix}.bias"), vec![c_out], 1, ParamRole::NormShift);
                        let running = arena.running_stats(prefix, c_out);
                        // two nodes after the block input; the body's nodes move up by two
                        let (at, width) = (b.skip + 1, c_out * h_out * w_out);
                        nodes.splice(at..at, [width, width]);
                        for l in &mut layers[b.first_layer..] {
                            l.output += 2;
                            if l.input >= at {
                                l.input += 2;
                            }
                        }
                        let projection = [
                            ResolvedLayer {
                                torch_index: b.top,
                                input: b.skip,
                                output: at,
                                op: LayerOp::Conv2d(conv::ConvOp { geom, w_off, b_off: no_bias }),
                            },
                            ResolvedLayer {
                                torch_index: b.top,
                                input: at,
                                output: at + 1,
                                op: LayerOp::Norm(norm::NormOp {
                                    kind,
                                    w_off: g_off,
                                    b_off: beta_off,
                                    running: Some(running),
                                }),
                            },
                        ];
                        layers.splice(b.first_layer..b.first_layer, projection);
                        (at + 1, ShortcutGeom::new(&what, Shortcut::Identity, &shape, &shape)?)
                    } else {
                        (b.skip, ShortcutGeom::new(&what, b.shortcut, &b.shape, &shape)?)
                    };
                    let input = nodes.len() - 1;
                    nodes.push(shape.iter().product());
                    layers.push(ResolvedLayer {
                        torch_index: b.top,
                        input,
                        output: input + 1,
                        op: LayerOp::Add(residual::AddOp { skip, shortcut: geom }),
                    });
                    top += 1;
                    continue;
                }
                _ => {}
            }
            match &mut block {
                Some(b) => b.inner += 1,
                None => top += 1,
            }
            let mut cx = op::Resolving { what: &what, module: &index, shape, params: &mut arena };
            let resolved = FAMILIES.iter().find_map(|family| (family.resolve)(layer, &mut cx));
            shape = cx.shape;
            let op = resolved.ok_or_else(|| Error::Shape(format!("{what}: no layer family resolves it")))??;
            if let Some(op) = op {
                nodes.push(shape.iter().product());
                layers.push(ResolvedLayer { torch_index: top_index, input, output: input + 1, op });
            }
        }
        if let Some(b) = block {
            return Err(Error::Shape(format!("the residual block opened at layer {} is never closed with '}}'", b.at)));
        }
        if shape.len() != 1 {
            return Err(Error::Shape(format!(
                "the model ends with shape {shape:?}; the loss needs a flat output: add Flatten and a Linear layer"
            )));
        }
        let ParamLayout { mut params, n_params, mut running, sink } = arena;
        if n_params > u32::MAX as usize / 2 {
            let count = if n_params == usize::MAX { "more than 2^64".to_string() } else { n_params.to_string() };
            return Err(Error::Shape(format!("{count} parameters is more than this library addresses (2^31)")));
        }
        // a bias-free layer's bias is the sink just past θ: zero to read, ignored where written
        for l in &mut layers {
            if let LayerOp::Dense(dense::DenseOp { b_off, .. }) | LayerOp::Conv2d(conv::ConvOp { b_off, .. }) =
                &mut l.op
            {
                if *b_off == NO_BIAS {
                    *b_off = n_params;
                }
            }
        }
        if self.naming == Naming::ResNetCifar {
            rename_resnet_cifar(&layers, &mut params, &mut running)?;
        }
        Ok(Resolved { nodes, layers, params, n_params, running, bias_sink: sink, loss: self.loss })
    }

    /// Parameters initialised as PyTorch's `nn.Linear` / `nn.Conv2d` defaults do (kaiming_uniform
    /// with a = √5, i.e. weights and biases U(−1/√fan_in, 1/√fan_in), fan_in = in·k_h·k_w), from a
    /// seeded generator; normalisation layers as γ = 1, β = 0; the CIFAR ResNet's weights
    /// N(0, 2/fan_in) as its `kaiming_normal_`.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let resolved = self.resolve()?;
        let mut rng = SplitMix64::new(seed);
        let mut theta = vec![0f32; resolved.n_params];
        for p in &resolved.params {
            // normalisation layers start as the identity map: γ = 1, β = 0 (PyTorch's reset)
            match p.role {
                ParamRole::NormScale => theta[p.offset..p.offset + p.len()].fill(1.0),
                ParamRole::NormShift => theta[p.offset..p.offset + p.len()].fill(0.0),
                ParamRole::Weight | ParamRole::Bias => {}
            }
            if matches!(p.role, ParamRole::NormScale | ParamRole::NormShift) {
                continue;
            }
            if self.naming == Naming::ResNetCifar && p.role == ParamRole::Weight {
                // the CIFAR ResNet's own init: kaiming_normal_ (fan_in, gain √2) for every conv and
                // linear weight; biases keep PyTorch's default below
                let std = (2.0 / p.fan_in as f64).sqrt();
                for v in &mut theta[p.offset..p.offset + p.len()] {
                    *v = (std * rng.normal()) as f32;
                }
                continue;
            }
            let bound = 1.0 / (p.fan_in as f64).sqrt();
            for v in &mut theta[p.offset..p.offset + p.len()] {
                *v = (bound * (2.0 * rng.next_f64() - 1.0)) as f32;
            }
        }
        Ok(theta)
    }
}

impl Layer {
    /// Whether the layer has parameters.
    pub fn has_params(&self) -> bool {
        self.text_form().params
    }

    /// The PyTorch module this layer is.
    pub fn torch_name(&self) -> &'static str {
        self.text_form().torch
    }

    /// Its text form and what it is, from the family that owns it (every variant has one: the
    /// unit test `every_layer_has_one_family` checks it).
    pub(crate) fn text_form(&self) -> op::LayerText {
        FAMILIES.iter().find_map(|family| (family.text)(self)).unwrap_or_else(|| op::LayerText {
            text: format!("{self:?}"),
            torch: "?",
            params: false,
        })
    }
}

/// `flatten`: `nn.Flatten()`, `[C, H, W]` → `[C·H·W]`; free (NCHW is already row-major), so it
/// resolves to no op.
const FLATTEN: op::LayerFamily = op::LayerFamily {
    names: &["flatten"],
    parse: |args| (args.name == "flatten").then(|| args.none().map(|_| Layer::Flatten)),
    text: |layer| {
        matches!(layer, Layer::Flatten).then(|| op::LayerText {
            text: "flatten".into(),
            torch: "Flatten",
            params: false,
        })
    },
    resolve: |layer, cx| {
        matches!(layer, Layer::Flatten).then(|| {
            cx.shape = vec![cx.shape.iter().product()];
            Ok(None)
        })
    },
};

/// Every layer family, in the order the unknown-layer error lists their names: each op file's
/// (and flatten's) text form, parser and resolution (see `op::LayerFamily`).
pub(crate) const FAMILIES: &[op::LayerFamily] =
    &[dense::FAMILY, conv::FAMILY, pool::FAMILY, FLATTEN, norm::FAMILY, activation::FAMILY, residual::FAMILY];

/// θ's tensors and the BatchNorm running statistics, laid out as a model is resolved.
#[derive(Default)]
pub(crate) struct ParamLayout {
    /// The tensors so far, in arena order.
    pub params: Vec<ParamTensor>,
    /// Floats of θ so far.
    pub n_params: usize,
    /// The BatchNorm layers' running statistics so far.
    pub running: Vec<RunningStats>,
    /// The longest bias a bias-free layer does not have (the zero sink after θ, `bias_sink`).
    pub sink: usize,
}

impl ParamLayout {
    /// A tensor of `shape` at the end of θ; its offset.
    /// (Saturating: a model whose P overflows is refused by `resolve` before any offset is used.)
    pub fn add(&mut self, name: String, shape: Vec<usize>, fan_in: usize, role: ParamRole) -> usize {
        let offset = self.n_params;
        let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
        self.n_params = self.n_params.saturating_add(len);
        self.params.push(ParamTensor { name, shape, offset, fan_in, role });
        offset
    }

    /// A layer's bias of `out` values: a tensor, or for `bias=false` a placeholder offset that
    /// becomes the zero sink after θ once θ's length is known.
    pub fn bias(&mut self, bias: bool, name: String, out: usize, fan_in: usize) -> usize {
        if bias {
            self.add(name, vec![out], fan_in, ParamRole::Bias)
        } else {
            self.no_bias(out)
        }
    }

    /// The placeholder offset of a missing bias of `out` values (the zero sink after θ).
    pub fn no_bias(&mut self, out: usize) -> usize {
        self.sink = self.sink.max(out);
        NO_BIAS
    }

    /// A BatchNorm's running statistics of `channels` under `prefix`; its index.
    pub fn running_stats(&mut self, prefix: String, channels: usize) -> usize {
        let offset = self.running.iter().map(|r| 2 * r.channels).sum();
        self.running.push(RunningStats { prefix, channels, offset });
        self.running.len() - 1
    }
}

/// The geometry of a Conv2d or pooling layer (NCHW); field for field the tail of `LayerMeta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Output height ⌊(h_in + 2 p_h − k_h) / s_h⌋ + 1.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical zero padding.
    pub pad_h: usize,
    /// Horizontal zero padding.
    pub pad_w: usize,
}

impl Geometry {
    /// Writes the geometry into a layer's uniforms (and n_in, n_out as the flat sizes).
    pub(crate) fn write_meta(&self, meta: &mut crate::nn::meta::LayerMeta) {
        let u = |v: usize| v as u32;
        meta.c_in = u(self.c_in);
        meta.h_in = u(self.h_in);
        meta.w_in = u(self.w_in);
        meta.c_out = u(self.c_out);
        meta.h_out = u(self.h_out);
        meta.w_out = u(self.w_out);
        meta.k_h = u(self.k_h);
        meta.k_w = u(self.k_w);
        meta.stride_h = u(self.stride_h);
        meta.stride_w = u(self.stride_w);
        meta.pad_h = u(self.pad_h);
        meta.pad_w = u(self.pad_w);
        meta.n_in = u(self.in_len());
        meta.n_out = u(self.out_len());
    }
}

impl Geometry {
    fn new(
        what: &str,
        (c, h, w): (usize, usize, usize),
        c_out: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Geometry> {
        if c_out == 0 || kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 {
            return Err(Error::Shape(format!("{what}: channels, kernel and stride must all be at least 1")));
        }
        // the kernels index with u32: no size may overflow it (nor the arithmetic below usize)
        let sizes = [c, h, w, c_out, kernel.0, kernel.1, stride.0, stride.1, padding.0, padding.1];
        if sizes.iter().any(|&v| v > MAX_EXTENT) {
            return Err(Error::Shape(format!(
                "{what}: channels {c_out}, kernel {kernel:?}, stride {stride:?} or padding {padding:?} on the input \
                 [{c}, {h}, {w}] is more than this library addresses (each at most 2^24)"
            )));
        }
        if h + 2 * padding.0 < kernel.0 || w + 2 * padding.1 < kernel.1 {
            return Err(Error::Shape(format!(
                "{what}: kernel {kernel:?} is larger than its padded input [{c}, {h}, {w}] (padding {padding:?})"
            )));
        }
        let (h_out, w_out) =
            ((h + 2 * padding.0 - kernel.0) / stride.0 + 1, (w + 2 * padding.1 - kernel.1) / stride.1 + 1);
        let out_len = c_out.checked_mul(h_out).and_then(|v| v.checked_mul(w_out)).filter(|&v| v <= MAX_ELEMENTS);
        let weight_len =
            c_out.checked_mul(c).and_then(|v| v.checked_mul(kernel.0 * kernel.1)).filter(|&v| v <= MAX_ELEMENTS);
        if out_len.is_none() || weight_len.is_none() {
            return Err(Error::Shape(format!(
                "{what}: its output [{c_out}, {h_out}, {w_out}] or its weight [{c_out}, {c}, {}, {}] has more than 2^31 \
                 values, more than this library addresses",
                kernel.0, kernel.1
            )));
        }
        Ok(Geometry {
            c_in: c,
            h_in: h,
            w_in: w,
            c_out,
            h_out,
            w_out,
            k_h: kernel.0,
            k_w: kernel.1,
            stride_h: stride.0,
            stride_w: stride.1,
            pad_h: padding.0,
            pad_w: padding.1,
        })
    }

    /// Elements of one input row.
    pub fn in_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }

    /// Elements of one output row.
    pub fn out_len(&self) -> usize {
        self.c_out * self.h_out * self.w_out
    }

    /// Elements of a Conv2d weight `[c_out, c_in, k_h, k_w]`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k_h * self.k_w
    }

    /// Tiles of 8 columns per input row in the tiled conv's input cotangents: for each of the
    /// `stride_w` phases, ⌈⌈w_in / stride_w⌉ / 8⌉ (`IT` in shaders/conv_tiled.wgsl, "input
    /// cotangents").
    pub fn input_tiles_per_row(&self) -> usize {
        self.stride_w * self.w_in.div_ceil(self.stride_w).div_ceil(conv::INPUT_COLUMN_TILE)
    }

    /// Whether the tiled conv forward (and tangent) and input cotangents run by row windows: a
    /// kernel 3 wide with a column stride of 1, whose three taps of a kernel row read the same
    /// columns shifted by one (shaders/conv_tiled.wgsl, "3-wide kernels of stride 1").
    pub fn by_row_windows(&self) -> bool {
        self.k_w == 3 && self.stride_w == 1
    }

    /// Invocations of the tiled conv's input-cotangent kernels at a batch of `rows`.
    pub fn input_cotangent_tiles(&self, rows: usize) -> usize {
        self.c_in.div_ceil(conv::CHANNEL_TILE) * rows * self.h_in * self.input_tiles_per_row()
    }
}

/// What a parameter tensor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamRole {
    /// A weight matrix `[out, in]`.
    Weight,
    /// A bias vector `[out]`.
    Bias,
    /// γ of a normalisation layer (1 at init; 1-D for BatchNorm, the row's shape for LayerNorm).
    NormScale,
    /// β of a normalisation layer (0 at init).
    NormShift,
}

impl ParamRole {
    /// A weight matrix or filter bank (the tensors Li et al.'s filter normalisation rescales;
    /// biases and normalisation parameters get zero directions there).
    pub fn is_weight(self) -> bool {
        self == ParamRole::Weight
    }
}

/// A BatchNorm layer's running statistics: not parameters (no gradient, no weight decay, no
/// optimizer state), kept beside θ and saved under PyTorch's buffer names.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// The layer's name prefix (`"3"` for `3.running_mean`).
    pub prefix: String,
    /// Channels C.
    pub channels: usize,
    /// Offset of `running_mean` [C] in the running-statistics arena; `running_var` follows it.
    pub offset: usize,
}

/// One named parameter tensor: a slice of the flat arena.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamTensor {
    /// `nn.Sequential` name, e.g. `"0.weight"`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// First element in the arena.
    pub offset: usize,
    /// Fan-in used by the initialiser.
    pub fan_in: usize,
    /// Weight or bias.
    pub role: ParamRole,
}

impl ParamTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for an empty tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Renames the `nn.Sequential` tensor names to the CIFAR ResNet's ([`Naming::ResNetCifar`]).
fn rename_resnet_cifar(
    layers: &[ResolvedLayer],
    params: &mut [ParamTensor],
    running: &mut [RunningStats],
) -> Result<()> {
    let refuse = |why: &str| {
        Error::Shape(format!(
            "names resnet_cifar: {why}; the CIFAR ResNet names need a conv + BatchNorm stem, blocks of conv, BatchNorm, \
             conv, BatchNorm (or, with no BatchNorm anywhere, a conv stem and blocks of two convs), and one linear layer \
             at the end"
        ))
    };
    // the parameterised layers, in order, with the offset of their first tensor; a block's
    // projection shortcut (`{block}.shortcut.{0,1}`) aside, named after its block below
    let name_at = |off: usize| params.iter().find(|p| p.offset == off).map_or(String::new(), |p| p.name.clone());
    let (shortcut_ops, ops): (Vec<(&LayerOp, usize)>, Vec<(&LayerOp, usize)>) = layers
        .iter()
        .filter_map(|l| Some((&l.op, l.op.op().first_param()?)))
        .partition(|(_, off)| name_at(*off).contains(".shortcut."));
    let is_conv = |op: &LayerOp| matches!(op, LayerOp::Conv2d(_));
    let is_bn = |op: &LayerOp| matches!(op, LayerOp::Norm(norm::NormOp { kind: norm::NormKind::Batch { .. }, .. }));
    // without any BatchNorm (`resnet:...:nobn`) the stem is a conv and the blocks conv, conv
    let with_bn = ops.iter().any(|(op, _)| is_bn(op));
    let (stem, block_names): (usize, &[&str]) =
        if with_bn { (2, &["conv1", "bn1", "conv2", "bn2"]) } else { (1, &["conv1", "conv2"]) };
    let kinds_match = |ops: &[(&LayerOp, usize)]| {
        ops.iter().enumerate().all(|(i, (op, _))| if with_bn && i % 2 == 1 { is_bn(op) } else { is_conv(op) })
    };
    if ops.len() < stem + 1 || !kinds_match(&ops[..stem]) || !matches!(ops[ops.len() - 1].0, LayerOp::Dense(_)) {
        return Err(refuse("the layers do not start with conv, BatchNorm and end with linear"));
    }
    let blocks = &ops[stem..ops.len() - 1];
    if blocks.len() % block_names.len() != 0 {
        return Err(refuse("the blocks are not groups of four"));
    }
    let mut names: Vec<(usize, String)> = vec![(ops[0].1, "conv1".into())];
    if with_bn {
        names.push((ops[1].1, "bn1".into()));
    }
    let (mut stage, mut index) = (1usize, 0usize);
    for (b, block) in blocks.chunks(block_names.len()).enumerate() {
        if !kinds_match(block) {
            return Err(refuse(&format!("block {b} is not conv, BatchNorm, conv, BatchNorm")));
        }
        if b > 0 && matches!(block[0].0, LayerOp::Conv2d(c) if c.geom.stride_h > 1) {
            stage += 1;
            index = 0;
        }
        for (op, name) in block.iter().zip(block_names) {
            names.push((op.1, format!("layer{stage}.{index}.{name}")));
        }
        // `{top}.body.0.weight` → the block's projection `{top}.shortcut.{j}`
        let top = name_at(block[0].1).split('.').next().unwrap_or_default().to_string();
        for &(_, off) in &shortcut_ops {
            if let Some(j) = name_at(off).strip_prefix(&format!("{top}.shortcut.")).and_then(|r| r.split('.').next()) {
                names.push((off, format!("layer{stage}.{index}.shortcut.{j}")));
            }
        }
        index += 1;
    }
    names.push((ops[ops.len() - 1].1, "linear".into()));
    // a layer's tensors all share the prefix of its weight (its first tensor)
    let renames: Vec<(String, String)> = names
        .iter()
        .filter_map(|(off, new)| {
            let p = params.iter().find(|p| p.offset == *off)?;
            let old = p.name.rsplit_once('.')?.0.to_string();
            Some((old, new.clone()))
        })
        .collect();
    let rename = |name: &str| -> Option<String> {
        let (prefix, field) = name.rsplit_once('.')?;
        renames.iter().find(|(old, _)| old == prefix).map(|(_, new)| format!("{new}.{field}"))
    };
    for p in params.iter_mut() {
        if let Some(n) = rename(&p.name) {
            p.name = n;
        }
    }
    for r in running.iter_mut() {
        if let Some((_, new)) = renames.iter().find(|(old, _)| *old == r.prefix) {
            r.prefix = new.clone();
        }
    }
    Ok(())
}

/// The deepest `resnet:DEPTH` preset (6n + 2 with n = 500).
const MAX_RESNET_DEPTH: usize = 3002;

/// The largest channel count, spatial size, kernel, stride or padding a layer takes.
const MAX_EXTENT: usize = 1 << 24;
/// The most values one row of a layer's output or one weight may have (the kernels index with
/// u32; θ as a whole is held to 2^31 too, with room for the bias sink after it).
const MAX_ELEMENTS: usize = 1 << 31;

/// Placeholder `b_off` of a bias-free layer until P is known.
const NO_BIAS: usize = usize::MAX;

/// Lists the ops once: [`LayerOp`] (one variant wrapping each op's resolved struct, defined in
/// the op's own file) and its dispatch to that struct's [`op::Op`] implementation, through which
/// the whole-model reference, the network planner and the PyTorch exporter reach every op.
macro_rules! ops {
    ($($(#[$doc:meta])* $variant:ident($op:ty),)*) => {
        /// A layer after shape inference: its op's resolved struct (shapes and θ offsets).
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum LayerOp {
            $($(#[$doc])* $variant($op),)*
        }

        impl LayerOp {
            /// The op's implementation of everything a model does with a layer.
            pub(crate) fn op(&self) -> &dyn op::Op {
                match self {
                    $(LayerOp::$variant(op) => op,)*
                }
            }
        }
    };
}

ops! {
    /// y = W x + b (`nn.Linear`).
    Dense(dense::DenseOp),
    /// `nn.Conv2d`.
    Conv2d(conv::ConvOp),
    /// Max pooling (it keeps an argmax per output).
    MaxPool2d(pool::MaxPoolOp),
    /// Average pooling (and global average pooling).
    AvgPool2d(pool::AvgPoolOp),
    /// Normalisation (BatchNorm, LayerNorm).
    Norm(norm::NormOp),
    /// The end of a residual block: body output + shortcut(block input).
    Add(residual::AddOp),
    /// An element-wise activation.
    Activation(activation::ActivationOp),
}

impl LayerOp {
    /// The op and its shape in a few words ("dense 64->32", "conv 16->32 k3x3 16x16").
    pub fn describe(&self) -> String {
        self.op().describe()
    }
}

/// A layer between two nodes (tensors) of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedLayer {
    /// Index in `nn.Sequential` (of the residual block, for a layer inside one).
    pub torch_index: usize,
    /// Node read.
    pub input: usize,
    /// Node written.
    pub output: usize,
    /// What it computes.
    pub op: LayerOp,
}

/// A checked model: node widths, layers and the parameter layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Width of every node; node 0 is the input, the last the output fed to the loss.
    pub nodes: Vec<usize>,
    /// Layers that compute something (identities are dropped).
    pub layers: Vec<ResolvedLayer>,
    /// Parameter tensors in arena order.
    pub params: Vec<ParamTensor>,
    /// Total number of parameters P.
    pub n_params: usize,
    /// The BatchNorm layers' running statistics, in layer order.
    pub running: Vec<RunningStats>,
    /// Floats after θ that bias-free layers (`bias=false`) use as their bias: the GPU's θ, z, ∇θ
    /// and H z arenas are this much longer than P, the kernels read zeros there and write their
    /// bias gradients there, and nothing reads or updates it (optimizers, readbacks and the
    /// probes cover θ's P values only). Such a layer's `b_off` is P.
    pub bias_sink: usize,
    /// The loss.
    pub loss: Loss,
}

impl Resolved {
    /// Width of the output node.
    pub fn output_width(&self) -> usize {
        *self.nodes.last().unwrap_or(&0)
    }

    /// The tensor with this name.
    pub fn param(&self, name: &str) -> Option<&ParamTensor> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Floats of the running-statistics arena (μ_run and σ²_run of every BatchNorm channel).
    pub fn running_len(&self) -> usize {
        self.running.iter().map(|r| 2 * r.channels).sum()
    }

    /// The running statistics at the start of training, as PyTorch's: μ_run = 0, σ²_run = 1.
    pub fn initial_running(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.running_len()];
        for r in &self.running {
            out[r.offset + r.channels..r.offset + 2 * r.channels].fill(1.0);
        }
        out
    }

    /// The layers that read node `i` (as their input, or as an add's skip), in order. A node
    /// read by two (a residual block's input: by the body and by the add or the projection
    /// shortcut) sums its cotangents from two slots: the first reader writes g, the second g2.
    pub(crate) fn readers(&self, i: usize) -> Vec<usize> {
        let reads = |l: &ResolvedLayer| l.input == i || l.op.op().skip() == Some(i);
        self.layers.iter().enumerate().filter(|(_, l)| reads(l)).map(|(k, _)| k).collect()
    }

    /// Whether layer `k` reads node `i` but is not its first reader: it then sends its cotangents
    /// to the node's second slots, summed into the first after the first reader's backward.
    pub(crate) fn is_second_reader(&self, k: usize, i: usize) -> bool {
        self.readers(i).first().is_some_and(|&first| first != k)
    }

    /// Whether a layer other than the first reader of node `i` reads it (see [`Resolved::readers`]).
    pub(crate) fn is_fan_out(&self, i: usize) -> bool {
        self.readers(i).len() > 1
    }

    /// Whether the model branches (a residual block): then nodes have more than one consumer.
    pub fn is_graph(&self) -> bool {
        self.layers.iter().any(|l| matches!(l.op, LayerOp::Add(_)))
    }

    /// Whether any layer normalises with batch statistics in train mode (BatchNorm).
    pub fn has_batch_norm(&self) -> bool {
        !self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every layer; the match makes a new variant fail to compile here until it is
    /// listed (and so checked below).
    fn one_of_each() -> Vec<Layer> {
        let every = vec![
            Layer::Dense { out: 3, bias: false },
            Layer::Conv2d { out: 4, kernel: (3, 1), stride: (2, 1), padding: (1, 0), bias: true },
            Layer::MaxPool2d { kernel: (2, 2), stride: (1, 2) },
            Layer::AvgPool2d { kernel: (3, 3), stride: (3, 3) },
            Layer::GlobalAvgPool,
            Layer::Flatten,
            Layer::BatchNorm2d,
            Layer::BatchNorm1d,
            Layer::LayerNorm,
            Layer::Residual(Shortcut::Pad),
            Layer::EndResidual,
        ];
        for layer in &every {
            match layer {
                Layer::Dense { .. }
                | Layer::Conv2d { .. }
                | Layer::MaxPool2d { .. }
                | Layer::AvgPool2d { .. }
                | Layer::GlobalAvgPool
                | Layer::Flatten
                | Layer::Activation(_)
                | Layer::BatchNorm2d
                | Layer::BatchNorm1d
                | Layer::LayerNorm
                | Layer::Residual(_)
                | Layer::EndResidual => {}
            }
        }
        every.into_iter().chain(Activation::ALL.map(Layer::Activation)).collect()
    }

    #[test]
    fn every_layer_has_one_family_and_its_text_parses_back() {
        for layer in one_of_each() {
            let owners: Vec<String> = FAMILIES.iter().filter_map(|f| (f.text)(&layer)).map(|t| t.text).collect();
            assert_eq!(owners.len(), 1, "{layer:?} is written by {owners:?}");
            if layer == Layer::EndResidual {
                continue; // a brace, read by the block tokenizer
            }
            let text = layer.text_form().text;
            let text = text.trim_end_matches(" {");
            assert_eq!(text::parse_layer(0, text).unwrap(), layer, "{text}");
            assert_ne!(layer.text_form().torch, "?");
        }
    }

    #[test]
    fn the_activation_family_names_every_activation() {
        let mut listed: Vec<&str> = activation::FAMILY.names.to_vec();
        let mut all: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
        listed.sort_unstable();
        all.sort_unstable();
        assert_eq!(listed, all);
    }

    #[test]
    fn an_unknown_layer_lists_every_familys_names() {
        let e = text::parse_layer(2, "convv(3)").unwrap_err().to_string();
        for name in FAMILIES.iter().flat_map(|f| f.names.iter()) {
            assert!(e.contains(name), "{e} lacks {name}");
        }
        assert!(e.contains("layer 2 'convv(3)': unknown layer 'convv'"), "{e}");
    }
}
