//! A data set copied to the GPU once, so a training step only uploads the batch's row indices;
//! or, when it is larger than one storage buffer may be (128 MiB under WebGPU's default limits:
//! the 60,000 MNIST images are 188 MB as f32), kept on the host and streamed a batch at a time.

use super::Dataset;
use crate::error::Result;
use crate::gpu::{storage_buffer, Gpu};
use std::sync::Arc;

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
        if self.host.is_some() {
            0
        } else {
            self.data.size() + self.targets.size()
        }
    }

    /// Whether the data set is streamed from the host a batch at a time.
    pub fn is_streamed(&self) -> bool {
        self.host.is_some()
    }

    /// Uploads a data set, or keeps it on the host for streaming when its inputs or targets are
    /// larger than one storage binding may be.
    pub fn upload(gpu: &Gpu, ds: &Dataset) -> Result<DeviceDataset> {
        let limit = gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size);
        let targets_len = ds.rows() * ds.targets.width();
        // augmentation happens where a batch is copied from the host
        if (ds.x.len().max(targets_len) as u64) * 4 > limit || ds.augment.is_some() {
            return DeviceDataset::stream(gpu, ds);
        }
        let data = storage_buffer(gpu, "data set inputs", ds.x.len())?;
        let targets_f32 = ds.targets.as_f32();
        let targets = storage_buffer(gpu, "data set targets", targets_f32.len())?;
        gpu.queue.write_buffer(&data, 0, bytemuck::cast_slice(&ds.x));
        gpu.queue.write_buffer(&targets, 0, bytemuck::cast_slice(&targets_f32));
        Ok(DeviceDataset {
            data,
            targets,
            host: None,
            rows: ds.rows(),
            features: ds.features,
            target_width: ds.targets.width(),
            classes: ds.classes(),
        })
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
            rows: ds.rows(),
            features: ds.features,
            target_width: ds.targets.width(),
            classes: ds.classes(),
        })
    }
}
