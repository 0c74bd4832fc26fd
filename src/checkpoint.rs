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
    crate::files::write_atomic(path, &to_bytes(tensors, metadata)?)
}

/// Reads a safetensors file.
pub fn load(path: &std::path::Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    from_bytes(&bytes, &path.display().to_string())
}

/// A model's flat parameter vector (f64, e.g. an eigenvector) as its named tensors.
pub fn named_tensors(model: &crate::nn::Resolved, v: &[f64]) -> Vec<NamedTensor> {
    model
        .params
        .iter()
        .map(|p| NamedTensor {
            name: p.name.clone(),
            shape: p.shape.clone(),
            values: v[p.offset..p.offset + p.len()].iter().map(|&x| x as f32).collect(),
        })
        .collect()
}

/// An n × n f64 matrix as a NumPy .npy file (format 1.0, little-endian, C order), readable by
/// `numpy.load`.
pub fn npy_matrix(h: &[f64], n: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {n}), }}");
    // the header is padded so that the data starts at a multiple of 64 bytes
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in h {
        bytes.extend(v.to_le_bytes());
    }
    bytes
}

/// A run directory's trajectory: init.safetensors, every step-*.safetensors in order, then
/// final.safetensors, each as a flat θ in `model`'s parameter-arena order (checkpoints store
/// tensors by name). Files whose tensors do not fit the model are skipped.
pub fn load_trajectory(dir: &std::path::Path, model: &crate::nn::Resolved) -> Result<Vec<Vec<f32>>> {
    let io = |source| Error::Io { path: dir.display().to_string(), source };
    let mut steps: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n.ends_with(".safetensors"))
        })
        .collect();
    steps.sort();
    let files = std::iter::once(dir.join("init.safetensors")).chain(steps).chain([dir.join("final.safetensors")]);
    let mut out = Vec::new();
    for f in files.filter(|f| f.is_file()) {
        let (tensors, _) = load(&f)?;
        let mut theta = vec![0f32; model.n_params];
        let mut fits = true;
        for p in &model.params {
            match tensors.iter().find(|t| t.name == p.name && t.values.len() == p.len()) {
                Some(t) => theta[p.offset..p.offset + p.len()].copy_from_slice(&t.values),
                None => fits = false,
            }
        }
        if fits {
            out.push(theta);
        }
    }
    Ok(out)
}
