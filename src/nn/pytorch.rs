//! `model.py`: the source of a PyTorch `nn.Module` with exactly a model's architecture and
//! state_dict names, so a run's weights load with `load_state_dict(..., strict=True)` and give
//! the same outputs.
//!
//! The forward pass is written straight from the resolved layers, one line per layer (each op's
//! `Op::torch`, in its own file), each reading and writing a numbered node (`h3 = F.relu(h2)`),
//! so residual blocks are plain additions of an earlier node. Modules with parameters are
//! registered under their tensors' name prefixes (`layer1.0.conv1`, `3.body.0`), which makes the
//! state_dict's keys those of the safetensors file whatever the naming. Layers without
//! parameters are functional calls.
//!
//! Hazards the generator handles: flatten is free here (NCHW is row-major) but not in PyTorch,
//! so a tensor is flattened where a layer needs it flat (before Linear, BatchNorm1d and a 1-D
//! LayerNorm); a BatchNorm with 1×1 planes is BatchNorm2d on a 4-D tensor and BatchNorm1d on a
//! flat one (the same maths and the same tensors); the option-A shortcut subsamples by slicing
//! and zero-pads channels as the kernels do.

use super::op::TorchLine;
use super::{Loss, ModelSpec, Resolved};
use crate::error::Result;
use std::fmt::Write;

/// The Python source of `class Model(nn.Module)` for `spec`.
pub fn model_py(spec: &ModelSpec) -> Result<String> {
    let model = spec.resolve()?;
    Ok(render(spec, &model).expect("formatting into a String cannot fail"))
}

fn render(spec: &ModelSpec, model: &Resolved) -> std::result::Result<String, std::fmt::Error> {
    let mut init = String::new();
    let mut forward = String::new();
    // whether each node is a 4-D [N, C, H, W] tensor in PyTorch (else [N, F])
    let mut four_d = vec![false; model.nodes.len()];
    four_d[0] = spec.input.len() == 3;
    for layer in &model.layers {
        let (i, o) = (layer.input, layer.output);
        let mut cx = TorchLine { model, init: &mut init, input: i, four_d: &four_d };
        let (line, out_four_d) = layer.op.op().torch(&mut cx)?;
        writeln!(forward, "        h{o} = {line}")?;
        four_d[o] = out_four_d;
    }
    let last = model.nodes.len() - 1;
    let (c, h, w) = match spec.input[..] {
        [c, h, w] => (c, h, w),
        _ => (model.nodes[0], 1, 1),
    };
    let input_shape = if spec.input.len() == 3 { format!("({c}, {h}, {w})") } else { format!("({},)", model.nodes[0]) };
    let loss = match model.loss {
        Loss::CrossEntropy => "F.cross_entropy(output, target.reshape(-1).long())",
        Loss::Mse => "F.mse_loss(output, target.reshape(output.shape))",
    };
    let mut py = String::new();
    writeln!(py, "\"\"\"A PyTorch module with exactly this model's architecture and state_dict names.")?;
    writeln!(py)?;
    writeln!(py, "Written by adahessian-wgpu. The model, in its text form:")?;
    writeln!(py)?;
    for line in spec.to_text().lines() {
        writeln!(py, "    {line}")?;
    }
    writeln!(py)?;
    writeln!(py, "Use:")?;
    writeln!(py)?;
    writeln!(py, "    model = Model()")?;
    writeln!(py, "    model.load_state_dict(load_safetensors(\"final.safetensors\"), strict=True)")?;
    writeln!(py, "    model.eval()   # BatchNorm on its running statistics, as `predict` and `evaluate`")?;
    writeln!(py, "    logits = model(x)   # x: [N, {}] or [N, *INPUT_SHAPE]", model.nodes[0])?;
    writeln!(py, "\"\"\"")?;
    py.push_str(PRELUDE);
    writeln!(py)?;
    writeln!(py, "INPUT_SHAPE = {input_shape}")?;
    writeln!(py, "PARAMETERS = {}", model.n_params)?;
    writeln!(py)?;
    writeln!(py)?;
    writeln!(py, "class Model(nn.Module):")?;
    writeln!(py, "    def __init__(self):")?;
    writeln!(py, "        super().__init__()")?;
    py.push_str(&init);
    writeln!(py)?;
    writeln!(py, "    def forward(self, x):")?;
    writeln!(py, "        h0 = x.reshape(x.shape[0], *INPUT_SHAPE)")?;
    if model.layers.is_empty() {
        writeln!(py, "        return torch.flatten(h0, 1)")?;
    } else {
        py.push_str(&forward);
        writeln!(py, "        return torch.flatten(h{last}, 1)")?;
    }
    writeln!(py)?;
    writeln!(py)?;
    writeln!(py, "def loss(output, target):")?;
    writeln!(py, "    \"\"\"The training loss ({}), mean over the batch.\"\"\"", model.loss.name())?;
    writeln!(py, "    return {loss}")?;
    Ok(py)
}

/// What every model.py holds besides its class: the module-tree helper, the option-A shortcut
/// and a safetensors reader that needs nothing but torch (the `safetensors` package's
/// `load_file` gives the same dictionary).
const PRELUDE: &str = r#"
import json
import struct

import torch
import torch.nn.functional as F
from torch import nn


def _put(root, path, module):
    """Registers `module` under a dotted name, creating the plain containers on the way."""
    *parents, name = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    root.add_module(name, module)


def _shortcut_a(x, stride, pad, c_out, size):
    """He et al.'s option A: subsample by `stride`, then zero channels: `pad` before the copied
    ones and the rest after, up to `c_out`."""
    if x.dim() == 2:
        x = x.reshape(x.shape[0], x.shape[1], 1, 1)
    x = x[:, :, ::stride, ::stride][:, :, : size[0], : size[1]]
    return F.pad(x, (0, 0, 0, 0, pad, c_out - x.shape[1] - pad))


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def load_safetensors(path):
    """The tensors of a .safetensors file as a state_dict (no `safetensors` package needed)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=_DTYPES[info["dtype"]])
        out[name] = flat.reshape(info["shape"]).clone()
    return out
"#;
