//! A data set copied to the GPU once, so a training step only uploads the batch's row indices:
//! as f32 rows, or for images that keep their bytes ([`super::Pixels`]: CIFAR, IDX) as bytes,
//! decoded, normalised and augmented by the gather (shaders/gather_pixels.wgsl); or, when it is
//! larger than the storage buffers may be (128 MiB a binding under WebGPU's default limits), kept
//! on the host and streamed a batch at a time.

use super::{cifar::Augment, Dataset, Pixels};
use crate::error::Result;
use crate::gpu::{storage_buffer, uniform_buffer, Gpu};
use bytemuck::{Pod, Zeroable};
use std::sync::Arc;

/// Image-byte buffers one gather binds: 3 × 128 MiB under the default limits, 130,000 CIFAR
/// images (`shaders/gather_pixels.wgsl` binds chunk0..chunk2).
pub(crate) const PIXEL_CHUNKS: usize = 3;

/// `PixelMeta` of shaders/gather_pixels.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct PixelMeta {
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub row_words: u32,
    pub rows_per_chunk: u32,
    pub _pad: [u32; 3],
}

/// A data set's image bytes on the GPU.
pub(crate) struct DevicePixels {
    /// whole images, 4 bytes to a u32 word, [`PIXEL_CHUNKS`] buffers (unused ones 1 word)
    pub chunks: Vec<wgpu::Buffer>,
    /// how many of them hold images
    pub used: usize,
    /// lines (channels × height) of an image: the gather's invocations per row
    pub lines: u32,
    /// `[channels, 257]`: each byte's value (the host's table), then the padding's
    pub table: wgpu::Buffer,
    pub meta: wgpu::Buffer,
    /// applied by the gather to training batches
    pub augment: Option<Augment>,
}

/// Inputs and targets kept on the host for streaming, row-major.
pub(crate) struct HostRows {
    pub x: Vec<f32>,
    pub targets: Vec<f32>,
    /// Applied to each training batch as it is copied.
    pub augment: Option<super::cifar::Augment>,
}

/// Inputs and targets of a [`Dataset`] in GPU storage buffers (or on the host, streamed).
pub struct DeviceDataset {
    /// the whole data set, or a 1-float placeholder when streamed
    pub(crate) data: wgpu::Buffer,
    pub(crate) targets: wgpu::Buffer,
    /// Some when the data set is streamed: each batch's rows are uploaded before its step
    pub(crate) host: Option<Arc<HostRows>>,
    /// Some when the inputs are image bytes (`data` is then a placeholder)
    pub(crate) pixels: Option<DevicePixels>,
    /// Rows.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// Target values per row (1 for class labels).
    pub target_width: usize,
    /// Classes (0 for regression targets).
    pub classes: usize,
}

impl DeviceDataset {
    /// GPU bytes of the inputs and targets (a streamed data set holds only a batch at a time,
    /// in the network it is bound to).
    pub fn bytes(&self) -> u64 {
        match (&self.host, &self.pixels) {
            (Some(_), _) => 0,
            (None, Some(p)) => self.targets.size() + p.table.size() + p.chunks.iter().map(|c| c.size()).sum::<u64>(),
            (None, None) => self.data.size() + self.targets.size(),
        }
    }

    /// Whether the data set is streamed from the host a batch at a time.
    pub fn is_streamed(&self) -> bool {
        self.host.is_some()
    }

    /// Where the inputs live, in words: `image bytes on the GPU (150.0 MiB in 2 buffers),
    /// normalised and augmented in the gather`, `f32 rows on the GPU (…)` or `streamed …`.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        match (&self.host, &self.pixels) {
            (Some(h), _) => format!(
                "f32 rows on the host, streamed a batch at a time{}",
                if h.augment.is_some() { " and augmented there" } else { "" }
            ),
            (None, Some(p)) => {
                let used = p.used;
                format!(
                    "image bytes on the GPU ({:.1} MiB in {used} buffer{}), decoded{} in the gather",
                    mib(self.bytes()),
                    if used == 1 { "" } else { "s" },
                    if p.augment.is_some() { ", normalised and augmented" } else { " and normalised" }
                )
            }
            (None, None) => format!("f32 rows on the GPU ({:.1} MiB)", mib(self.bytes())),
        }
    }

    /// Whether the inputs are kept on the GPU as image bytes (decoded by the gather).
    pub fn is_bytes(&self) -> bool {
        self.pixels.is_some()
    }

    /// Uploads a data set (as image bytes where it keeps them), or keeps it on the host for
    /// streaming when its inputs or targets are larger than the storage bindings may be.
    pub fn upload(gpu: &Gpu, ds: &Dataset) -> Result<DeviceDataset> {
        let limit = gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size);
        DeviceDataset::upload_limited(gpu, ds, limit)
    }

    /// [`DeviceDataset::upload`] with no storage binding larger than `binding_bytes` (the
    /// device's limit, or less: a test of the several-buffer and streamed layouts).
    pub fn upload_limited(gpu: &Gpu, ds: &Dataset, binding_bytes: u64) -> Result<DeviceDataset> {
        let targets_len = ds.rows() * ds.targets.width();
        let targets_fit = (targets_len as u64) * 4 <= binding_bytes;
        if let (Some(p), true) = (&ds.pixels, targets_fit) {
            if let Some(dd) = DeviceDataset::upload_pixels(gpu, ds, p, binding_bytes)? {
                return Ok(dd);
            }
        }
        // f32 rows are augmented where a batch is copied from the host
        if (ds.x.len() as u64) * 4 > binding_bytes || !targets_fit || ds.augment.is_some() {
            return DeviceDataset::stream(gpu, ds);
        }
        let data = storage_buffer(gpu, "data set inputs", ds.x.len())?;
        gpu.queue.write_buffer(&data, 0, bytemuck::cast_slice(&ds.x));
        DeviceDataset::with_inputs(gpu, ds, data, None)
    }

    /// The targets beside `data` (the f32 rows, or a placeholder beside the image bytes).
    fn with_inputs(gpu: &Gpu, ds: &Dataset, data: wgpu::Buffer, pixels: Option<DevicePixels>) -> Result<DeviceDataset> {
        let targets_f32 = ds.targets.as_f32();
        let targets = storage_buffer(gpu, "data set targets", targets_f32.len())?;
        gpu.queue.write_buffer(&targets, 0, bytemuck::cast_slice(&targets_f32));
        Ok(DeviceDataset {
            data,
            targets,
            host: None,
            pixels,
            rows: ds.rows(),
            features: ds.features,
            target_width: ds.targets.width(),
            classes: ds.classes(),
        })
    }

    /// The image bytes in up to [`PIXEL_CHUNKS`] buffers of whole images; None where the data
    /// set's `x` no longer is what its bytes decode to, its rows are no `[C, H, W]` images of the
    /// table's channels, or the bytes need more buffers.
    fn upload_pixels(gpu: &Gpu, ds: &Dataset, p: &Pixels, binding_bytes: u64) -> Result<Option<DeviceDataset>> {
        let [c, h, w] = ds.shape[..] else { return Ok(None) };
        if c != p.channels() || !p.decodes_to(&ds.x, ds.features) {
            return Ok(None);
        }
        let row_words = ds.features.div_ceil(4);
        let rows_per_chunk = (binding_bytes / (4 * row_words as u64)) as usize;
        if rows_per_chunk == 0 || ds.rows().div_ceil(rows_per_chunk) > PIXEL_CHUNKS {
            return Ok(None);
        }
        let mut chunks = Vec::with_capacity(PIXEL_CHUNKS);
        for k in 0..PIXEL_CHUNKS {
            let rows = ds.rows().saturating_sub(k * rows_per_chunk).min(rows_per_chunk);
            let buffer = storage_buffer(gpu, "data set image bytes", rows * row_words)?;
            let first = (k * rows_per_chunk).min(ds.rows());
            let images = &p.bytes[first * ds.features..(first + rows) * ds.features];
            if rows > 0 && ds.features.is_multiple_of(4) {
                // whole words already (CIFAR's 3,072 bytes, MNIST's 784): no copy
                gpu.queue.write_buffer(&buffer, 0, images);
            } else if rows > 0 {
                // each image padded to whole words
                let mut words = vec![0u8; rows * row_words * 4];
                for (out, image) in words.chunks_exact_mut(row_words * 4).zip(images.chunks_exact(ds.features)) {
                    out[..ds.features].copy_from_slice(image);
                }
                gpu.queue.write_buffer(&buffer, 0, &words);
            }
            chunks.push(buffer);
        }
        // the padding of a crop takes the augmentation's fill (what a black pixel becomes)
        let fill = |ch: usize| ds.augment.as_ref().and_then(|a| a.fill.get(ch).copied()).unwrap_or(0.0);
        let table: Vec<f32> =
            (0..c).flat_map(|ch| p.table[ch * 256..(ch + 1) * 256].iter().copied().chain([fill(ch)])).collect();
        let table_buffer = storage_buffer(gpu, "image byte values", table.len())?;
        gpu.queue.write_buffer(&table_buffer, 0, bytemuck::cast_slice(&table));
        let meta = PixelMeta {
            channels: c as u32,
            height: h as u32,
            width: w as u32,
            row_words: row_words as u32,
            rows_per_chunk: rows_per_chunk as u32,
            _pad: [0; 3],
        };
        let pixels = DevicePixels {
            chunks,
            used: ds.rows().div_ceil(rows_per_chunk),
            lines: (c * h) as u32,
            table: table_buffer,
            meta: uniform_buffer(gpu, "image gather meta", &meta),
            augment: ds.augment.clone(),
        };
        let placeholder = storage_buffer(gpu, "image inputs (placeholder: the bytes are gathered)", 1)?;
        DeviceDataset::with_inputs(gpu, ds, placeholder, Some(pixels)).map(Some)
    }

    /// Keeps the data set on the host; a network bound to it uploads each batch's rows before
    /// the step (a copy of batch × features floats per step instead of the whole set once).
    pub fn stream(gpu: &Gpu, ds: &Dataset) -> Result<DeviceDataset> {
        Ok(DeviceDataset {
            data: storage_buffer(gpu, "streamed inputs (placeholder)", 1)?,
            targets: storage_buffer(gpu, "streamed targets (placeholder)", 1)?,
            host: Some(Arc::new(HostRows {
                x: ds.x.clone(),
                targets: ds.targets.as_f32(),
                augment: ds.augment.clone(),
            })),
            pixels: None,
            rows: ds.rows(),
            features: ds.features,
            target_width: ds.targets.width(),
            classes: ds.classes(),
        })
    }
}

/// The gathers' WGSL modules: batch rows from f32 rows, or from image bytes (decoded, normalised
/// and augmented on the GPU).
pub mod kernels {
    crate::wgsl_kernels! {
        GATHER = ("gather", Gather, ["common.wgsl", "gather.wgsl"]) {
            GatherRows "gather_rows",
            GatherTargets "gather_targets",
        }
        GATHER_PIXELS = ("gather_pixels", GatherPixels, ["common.wgsl", "gather_pixels.wgsl"]) {
            GatherPixels "gather_pixels",
        }
    }
}
