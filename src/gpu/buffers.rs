//! Buffer creation and readback. Readback is async underneath (the only way on the web); native
//! callers block on it with `pollster`.

use super::Gpu;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// A storage buffer of `len` f32 (or u32) elements, zero-initialised, readable back and writable
/// from the host. Zero-length arenas get one element, since WebGPU forbids empty bindings.
pub fn storage_buffer(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    gpu.check_storage_size(label, (len.max(1) * 4) as u64)?;
    Ok(windowed_storage_buffer(gpu, label, len))
}

/// [`storage_buffer`] for a buffer that is only ever bound in windows no larger than the binding
/// limit (the activation arena): the caller has checked its size against the buffer limit.
pub fn windowed_storage_buffer(gpu: &Gpu, label: &str, len: usize) -> wgpu::Buffer {
    let bytes = (len.max(1) * 4) as u64;
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A uniform buffer holding `value`, writable later with `queue.write_buffer`.
pub fn uniform_buffer<T: bytemuck::Pod>(gpu: &Gpu, label: &str, value: &T) -> wgpu::Buffer {
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    })
}

/// Many small uniform structs in one buffer, each in its own 256-byte-aligned slot, so that every
/// dispatch of a plan has a fixed bind group built once.
pub struct UniformArena {
    buffer: wgpu::Buffer,
    slot: u64,
    count: usize,
}

impl UniformArena {
    /// Uploads `values` (all of the same type), one per slot.
    pub fn new<T: bytemuck::Pod>(gpu: &Gpu, label: &str, values: &[T]) -> Self {
        let align = gpu.limits().min_uniform_buffer_offset_alignment as u64;
        let size = std::mem::size_of::<T>() as u64;
        let slot = size.div_ceil(align) * align;
        let mut bytes = vec![0u8; (slot as usize) * values.len().max(1)];
        for (i, v) in values.iter().enumerate() {
            let start = i * slot as usize;
            bytes[start..start + size as usize].copy_from_slice(bytemuck::bytes_of(v));
        }
        let buffer = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        });
        UniformArena { buffer, slot, count: values.len() }
    }

    /// The binding of slot `i`, of `size` bytes.
    pub fn binding(&self, i: usize) -> wgpu::BindingResource<'_> {
        assert!(i < self.count, "uniform slot {i} out of {}", self.count);
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: i as u64 * self.slot,
            size: None.or(std::num::NonZeroU64::new(self.slot)),
        })
    }
}

/// Copies `len` f32 from `src` (starting at element `offset`) into `staging` and reads them back.
/// `staging` must be a MAP_READ | COPY_DST buffer of at least `len * 4` bytes.
async fn read_via(gpu: &Gpu, src: &wgpu::Buffer, offset: usize, len: usize, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let bytes = (len * 4) as u64;
    let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    encoder.copy_buffer_to_buffer(src, (offset * 4) as u64, staging, 0, bytes);
    gpu.queue.submit(Some(encoder.finish()));
    map_read(gpu, staging, bytes).await
}

/// Maps the first `bytes` of a MAP_READ buffer and copies them out.
pub(crate) async fn map_read(gpu: &Gpu, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let (sender, receiver) = futures::channel::oneshot::channel();
    staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
        let _ = sender.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Readback(e.to_string()))?;
    receiver
        .await
        .map_err(|_| Error::Readback("the device was lost before the buffer was mapped".into()))?
        .map_err(|e| Error::Readback(e.to_string()))?;
    let data = staging.get_mapped_range(0..bytes).map_err(|e| Error::Readback(format!("{e:?}")))?.to_vec();
    staging.unmap();
    gpu.check()?;
    Ok(data)
}

/// A MAP_READ staging buffer of `bytes`.
pub(crate) fn staging_buffer(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Reads `len` f32 starting at element `offset` of a storage buffer (creates a staging buffer:
/// for occasional reads, not for the training loop).
pub async fn read_f32(gpu: &Gpu, src: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let staging = staging_buffer(gpu, "read_f32", (len * 4) as u64);
    let bytes = read_via(gpu, src, offset, len, &staging).await?;
    Ok(bytemuck::cast_slice(&bytes).to_vec())
}

/// Reads `len` u32 starting at element `offset`.
pub async fn read_u32(gpu: &Gpu, src: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<u32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let staging = staging_buffer(gpu, "read_u32", (len * 4) as u64);
    let bytes = read_via(gpu, src, offset, len, &staging).await?;
    Ok(bytemuck::cast_slice(&bytes).to_vec())
}

/// Reads `len` f32 through a caller-owned staging buffer (at least `len * 4` bytes), so loops of
/// readbacks (HVPs in the curvature tools, the race's positions) allocate nothing.
pub(crate) async fn read_f32_with(
    gpu: &Gpu,
    src: &wgpu::Buffer,
    offset: usize,
    len: usize,
    staging: &wgpu::Buffer,
) -> Result<Vec<f32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let bytes = read_via(gpu, src, offset, len, staging).await?;
    Ok(bytemuck::cast_slice(&bytes).to_vec())
}
