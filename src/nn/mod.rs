//! Models: the architecture description, its parameter layout (PyTorch `nn.Sequential` names and
//! shapes), initialisation, the f64 reference of every layer, and the GPU network.

pub mod activation;
pub mod dense;
pub mod loss;
pub(crate) mod network;
pub mod reference;

pub use activation::Activation;
pub use loss::Loss;
pub use network::{Batch, BoundData, Evaluation, Network, NetworkOptions, Phase};

use crate::error::{Error, Result};
use crate::probe::SplitMix64;

/// One layer of a sequential model, in PyTorch order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `nn.Linear(in, out)`; `in` is the width of whatever comes before.
    Dense {
        /// Output features.
        out: usize,
    },
    /// An element-wise activation (`nn.ReLU()`, `nn.Tanh()`, ...).
    Activation(Activation),
}

/// A sequential model: input width, layers, loss.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Features per input row.
    pub input: usize,
    /// Layers in order; parameter names follow their index as in `nn.Sequential`.
    pub layers: Vec<Layer>,
    /// The loss applied to the last layer's output.
    pub loss: Loss,
}

impl ModelSpec {
    /// An MLP `widths[0] → widths[1] → … → widths[n]` with `activation` between Dense layers
    /// (none after the last), e.g. `mlp(&[64, 128, 10], Tanh, CrossEntropy)` is
    /// `Sequential(Linear(64,128), Tanh(), Linear(128,10))`.
    pub fn mlp(widths: &[usize], activation: Activation, loss: Loss) -> ModelSpec {
        let mut layers = Vec::new();
        for (i, w) in widths.iter().enumerate().skip(1) {
            layers.push(Layer::Dense { out: *w });
            if i + 1 < widths.len() {
                layers.push(Layer::Activation(activation));
            }
        }
        ModelSpec {
            input: widths.first().copied().unwrap_or(0),
            layers,
            loss,
        }
    }

    /// Checks the shapes and lays out the parameters.
    pub fn resolve(&self) -> Result<Resolved> {
        if self.input == 0 {
            return Err(Error::Shape("the model's input width is 0".into()));
        }
        if !self.layers.iter().any(|l| matches!(l, Layer::Dense { .. })) {
            return Err(Error::Shape(
                "the model has no Dense layer, so nothing to train".into(),
            ));
        }
        let mut nodes = vec![self.input];
        let mut layers = Vec::new();
        let mut params = Vec::new();
        let mut n_params = 0usize;
        for (index, layer) in self.layers.iter().enumerate() {
            let input = nodes.len() - 1;
            let width = nodes[input];
            match *layer {
                Layer::Dense { out } => {
                    if out == 0 {
                        return Err(Error::Shape(format!("layer {index} (Dense) has 0 outputs")));
                    }
                    let w_off = n_params;
                    params.push(ParamTensor {
                        name: format!("{index}.weight"),
                        shape: vec![out, width],
                        offset: w_off,
                        fan_in: width,
                        role: ParamRole::Weight,
                    });
                    n_params += out * width;
                    let b_off = n_params;
                    params.push(ParamTensor {
                        name: format!("{index}.bias"),
                        shape: vec![out],
                        offset: b_off,
                        fan_in: width,
                        role: ParamRole::Bias,
                    });
                    n_params += out;
                    nodes.push(out);
                    layers.push(ResolvedLayer {
                        torch_index: index,
                        input,
                        output: input + 1,
                        op: LayerOp::Dense {
                            n_in: width,
                            n_out: out,
                            w_off,
                            b_off,
                        },
                    });
                }
                Layer::Activation(Activation::Identity) => {}
                Layer::Activation(act) => {
                    nodes.push(width);
                    layers.push(ResolvedLayer {
                        torch_index: index,
                        input,
                        output: input + 1,
                        op: LayerOp::Activation { act, n: width },
                    });
                }
            }
        }
        if n_params > u32::MAX as usize / 2 {
            return Err(Error::Shape(format!(
                "{n_params} parameters is more than this library addresses (2^31)"
            )));
        }
        Ok(Resolved {
            nodes,
            layers,
            params,
            n_params,
            loss: self.loss,
        })
    }

    /// Parameters initialised as PyTorch's `nn.Linear` default does (kaiming_uniform with a = √5,
    /// i.e. weights and biases U(−1/√fan_in, 1/√fan_in)), from a seeded generator.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let resolved = self.resolve()?;
        let mut rng = SplitMix64::new(seed);
        let mut theta = vec![0f32; resolved.n_params];
        for p in &resolved.params {
            let bound = 1.0 / (p.fan_in as f64).sqrt();
            for v in &mut theta[p.offset..p.offset + p.len()] {
                *v = (bound * (2.0 * rng.next_f64() - 1.0)) as f32;
            }
        }
        Ok(theta)
    }
}

/// What a parameter tensor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamRole {
    /// A weight matrix `[out, in]`.
    Weight,
    /// A bias vector `[out]`.
    Bias,
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

/// A layer after shape inference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerOp {
    /// y = W x + b, W at `w_off` ([n_out, n_in]), b at `b_off`.
    Dense {
        /// Input width.
        n_in: usize,
        /// Output width.
        n_out: usize,
        /// Offset of W in θ.
        w_off: usize,
        /// Offset of b in θ.
        b_off: usize,
    },
    /// y = f(x) over `n` features.
    Activation {
        /// Which f.
        act: Activation,
        /// Width.
        n: usize,
    },
}

/// A layer between two nodes (tensors) of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedLayer {
    /// Index in `nn.Sequential`.
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
}
