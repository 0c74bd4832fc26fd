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

/// The metadata key of the checksum every file written here carries.
pub const CHECKSUM_KEY: &str = "checksum";

/// FNV-1a (64-bit) over every tensor (in name order: name, shape, values) and every metadata
/// entry but the checksum (in key order), as 16 hex digits. Not cryptographic: it catches a
/// flipped byte or a truncated copy that still parses, which the format alone does not.
fn checksum(tensors: &[&NamedTensor], metadata: &HashMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let mut sorted: Vec<&&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for t in sorted {
        eat(t.name.as_bytes());
        eat(&[0]);
        for d in &t.shape {
            eat(&(*d as u64).to_le_bytes());
        }
        eat(bytemuck::cast_slice::<f32, u8>(&t.values));
    }
    let mut keys: Vec<&String> = metadata.keys().filter(|k| k.as_str() != CHECKSUM_KEY).collect();
    keys.sort();
    for k in keys {
        eat(k.as_bytes());
        eat(&[0]);
        eat(metadata[k].as_bytes());
        eat(&[0]);
    }
    format!("{h:016x}")
}

/// Serialises tensors (f32, little-endian) with string metadata and a checksum of both.
pub fn to_bytes(tensors: &[NamedTensor], mut metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let sum = checksum(&tensors.iter().collect::<Vec<_>>(), &metadata);
    metadata.insert(CHECKSUM_KEY.into(), sum);
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

/// Parses safetensors bytes (`what` names the file in errors); only f32 tensors are accepted. A
/// file with a checksum (every file written here) must match it; files without one (written by
/// other tools, or before checksums) are read as they are.
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
    let metadata = meta.metadata().clone().unwrap_or_default();
    if let Some(expected) = metadata.get(CHECKSUM_KEY) {
        let actual = checksum(&out.iter().collect::<Vec<_>>(), &metadata);
        if &actual != expected {
            return Err(Error::Data(format!(
                "{what}: checksum mismatch (stored {expected}, computed {actual}): the file is corrupted"
            )));
        }
    }
    Ok((out, metadata))
}

/// [`from_bytes`] for a file whose writer is known: every metadata key must be in `keys` (or be
/// the checksum). A damaged byte in a key name would otherwise hide the checksum itself.
pub fn from_bytes_strict(
    bytes: &[u8],
    what: &str,
    keys: &[&str],
) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let (tensors, metadata) = from_bytes(bytes, what)?;
    if let Some(k) = metadata.keys().find(|k| k.as_str() != CHECKSUM_KEY && !keys.contains(&k.as_str())) {
        return Err(Error::Data(format!("{what}: unknown metadata '{k}'; the file is corrupted")));
    }
    Ok((tensors, metadata))
}

/// [`load`] with [`from_bytes_strict`]'s check.
pub fn load_strict(path: &std::path::Path, keys: &[&str]) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    from_bytes_strict(&bytes, &path.display().to_string(), keys)
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
