//! Named f32 tensors in the safetensors format: weights with the names and shapes of PyTorch's
//! `nn.Sequential` (`safetensors.torch.load_file` + `load_state_dict` read them), and optimizer
//! state for resuming.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// One named tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// e.g. `"0.weight"`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Serialises tensors (f32, little-endian) with string metadata.
pub fn to_bytes(tensors: &[NamedTensor], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<&[u8]> = tensors.iter().map(|t| bytemuck::cast_slice::<f32, u8>(&t.values)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::Shape(format!("tensor '{}': {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Data(format!("safetensors: {e}")))
}

/// Parses safetensors bytes (`what` names the file in errors); only f32 tensors are accepted.
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Data(format!("{what}: not a valid safetensors file ({e}); it may be truncated or corrupted"))
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::Data(format!("{what}: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::Data(format!("{what}: tensor '{name}' is {:?}; only f32 is supported", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.push(NamedTensor { name, shape: view.shape().to_vec(), values });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Writes a safetensors file atomically (to a temporary name, then renamed): an interrupted
/// write never leaves a half-written checkpoint behind.
pub fn save(path: &std::path::Path, tensors: &[NamedTensor], metadata: HashMap<String, String>) -> Result<()> {
    let bytes = to_bytes(tensors, metadata)?;
    let tmp = path.with_extension("safetensors.tmp");
    let io = |source| Error::Io { path: path.display().to_string(), source };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a safetensors file.
pub fn load(path: &std::path::Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    from_bytes(&bytes, &path.display().to_string())
}
