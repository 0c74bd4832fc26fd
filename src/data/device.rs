//! A data set copied to the GPU once, so a training step only uploads the batch's row indices.

use super::Dataset;
use crate::error::Result;
use crate::gpu::{storage_buffer, Gpu};

/// Inputs and targets of a [`Dataset`] in GPU storage buffers.
pub struct DeviceDataset {
    pub(crate) data: wgpu::Buffer,
    pub(crate) targets: wgpu::Buffer,
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
    /// GPU bytes of the inputs and targets.
    pub fn bytes(&self) -> u64 {
        self.data.size() + self.targets.size()
    }

    /// Uploads a data set; fails with a clear error when it exceeds the device's buffer limits.
    pub fn upload(gpu: &Gpu, ds: &Dataset) -> Result<DeviceDataset> {
        let data = storage_buffer(gpu, "data set inputs", ds.x.len())?;
        let targets_f32 = ds.targets.as_f32();
        let targets = storage_buffer(gpu, "data set targets", targets_f32.len())?;
        gpu.queue.write_buffer(&data, 0, bytemuck::cast_slice(&ds.x));
        gpu.queue.write_buffer(&targets, 0, bytemuck::cast_slice(&targets_f32));
        Ok(DeviceDataset {
            data,
            targets,
            rows: ds.rows(),
            features: ds.features,
            target_width: ds.targets.width(),
            classes: ds.classes(),
        })
    }
}
