//! Epoch loops built from [`Optimizer::step`] and [`Network::evaluate`]: reshuffled mini-batches,
//! one submit per step, the loss read back once per epoch.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Batch, BoundData, Network};
use crate::optim::Optimizer;
use crate::probe::SplitMix64;

/// A seeded order of mini-batches over `rows` rows, reshuffled every epoch.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    rows: usize,
    batch_size: usize,
    rng: SplitMix64,
    order: Vec<u32>,
    epoch: u64,
}

impl BatchOrder {
    /// Batches of `batch_size` (the last one of an epoch may be smaller).
    pub fn new(rows: usize, batch_size: usize, seed: u64) -> BatchOrder {
        BatchOrder {
            rows,
            batch_size: batch_size.clamp(1, rows.max(1)),
            rng: SplitMix64::new(seed ^ 0x5EED_BA7C),
            order: (0..rows as u32).collect(),
            epoch: 0,
        }
    }

    /// The row indices of every batch of the next epoch.
    pub fn next_epoch(&mut self) -> Vec<Vec<u32>> {
        self.rng.shuffle(&mut self.order);
        self.epoch += 1;
        self.order.chunks(self.batch_size).map(|c| c.to_vec()).collect()
    }

    /// Epochs drawn so far.
    pub fn epochs(&self) -> u64 {
        self.epoch
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Rows in the data.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// What an epoch reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Steps taken in the epoch.
    pub steps: usize,
    /// Loss of the epoch's last batch (before its update).
    pub last_batch_loss: f32,
}

/// One epoch of training: every batch of `order` once. Reads back only the last batch's loss,
/// and fails with the step number if it is NaN/Inf.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_epoch(
    gpu: &Gpu,
    net: &Network,
    opt: &mut Optimizer,
    data: &BoundData,
    order: &mut BatchOrder,
) -> Result<EpochReport> {
    pollster::block_on(run_epoch_async(gpu, net, opt, data, order))
}

/// [`run_epoch`] as a future (for the web).
pub async fn run_epoch_async(
    gpu: &Gpu,
    net: &Network,
    opt: &mut Optimizer,
    data: &BoundData,
    order: &mut BatchOrder,
) -> Result<EpochReport> {
    if order.rows() != data.rows {
        return Err(Error::Config(format!("batch order is for {} rows, the data has {}", order.rows(), data.rows)));
    }
    let batches = order.next_epoch();
    let last = batches.len() - 1;
    let mut report = EpochReport { steps: 0, last_batch_loss: f32::NAN };
    for (i, indices) in batches.iter().enumerate() {
        let batch = Batch { data, indices };
        if i == last {
            report.last_batch_loss = opt.step_with_loss(gpu, net, &batch).await?.batch.loss;
        } else {
            opt.step(gpu, net, &batch)?;
        }
        report.steps += 1;
    }
    Ok(report)
}
