//! Epoch loops built from [`Optimizer::step`] and [`Network::evaluate`]: reshuffled mini-batches,
//! one submit per step, the loss read back once per epoch.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Batch, BoundData, Network};
use crate::optim::Optimizer;
use crate::probe::SplitMix64;

/// A seeded order of mini-batches over `rows` rows, reshuffled at the start of every epoch. Its
/// whole state can be saved and restored, so a resumed run sees exactly the batches the
/// uninterrupted run would have.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOrder {
    rows: usize,
    batch_size: usize,
    rng: SplitMix64,
    order: Vec<u32>,
    /// next batch within the epoch; 0 means the next call starts a new epoch
    position: usize,
    epoch: u64,
}

/// The saved state of a [`BatchOrder`].
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOrderState {
    /// Generator state.
    pub rng: u64,
    /// The current epoch's permutation.
    pub order: Vec<u32>,
    /// Next batch within the epoch.
    pub position: usize,
    /// Epochs started.
    pub epoch: u64,
}

impl BatchOrder {
    /// Batches of `batch_size` (the last one of an epoch may be smaller).
    pub fn new(rows: usize, batch_size: usize, seed: u64) -> BatchOrder {
        BatchOrder {
            rows,
            batch_size: batch_size.clamp(1, rows.max(1)),
            rng: SplitMix64::new(seed ^ 0x5EED_BA7C),
            order: (0..rows as u32).collect(),
            position: 0,
            epoch: 0,
        }
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.rows.div_ceil(self.batch_size)
    }

    /// The next batch's row indices (starting a new, reshuffled epoch when the last one is done).
    pub fn next_batch(&mut self) -> Vec<u32> {
        if self.position == 0 {
            self.rng.shuffle(&mut self.order);
            self.epoch += 1;
        }
        let start = self.position * self.batch_size;
        let batch = self.order[start..(start + self.batch_size).min(self.rows)].to_vec();
        self.position = (self.position + 1) % self.batches_per_epoch();
        batch
    }

    /// Every remaining batch of the current epoch (a whole epoch when at an epoch boundary).
    pub fn next_epoch(&mut self) -> Vec<Vec<u32>> {
        let mut out = vec![self.next_batch()];
        while self.position != 0 {
            out.push(self.next_batch());
        }
        out
    }

    /// Epochs started so far.
    pub fn epochs(&self) -> u64 {
        self.epoch
    }

    /// True between epochs.
    pub fn at_epoch_boundary(&self) -> bool {
        self.position == 0
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Rows in the data.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The state to save.
    pub fn state(&self) -> BatchOrderState {
        BatchOrderState { rng: self.rng.state(), order: self.order.clone(), position: self.position, epoch: self.epoch }
    }

    /// Restores a saved state; it must be for the same number of rows.
    pub fn restore(&mut self, s: BatchOrderState) -> Result<()> {
        if s.order.len() != self.rows || s.position >= self.batches_per_epoch().max(1) {
            return Err(Error::Config(format!(
                "the saved batch order is for {} rows, this data has {}",
                s.order.len(),
                self.rows
            )));
        }
        self.rng = SplitMix64::from_state(s.rng);
        self.order = s.order;
        self.position = s.position;
        self.epoch = s.epoch;
        Ok(())
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

/// How `time_steps` measures: untimed warm-up steps, then repetitions of back-to-back steps.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
    /// Steps per repetition, submitted back to back and waited for once.
    pub steps: usize,
}

/// Median milliseconds per optimizer step under `timing` (native only; a benchmark, never a test).
#[cfg(not(target_arch = "wasm32"))]
pub fn time_steps(
    gpu: &Gpu,
    net: &Network,
    opt: &mut Optimizer,
    data: &BoundData,
    order: &mut BatchOrder,
    timing: Timing,
) -> Result<f64> {
    let mut run = |n: usize| -> Result<()> {
        for _ in 0..n {
            let indices = order.next_batch();
            opt.step(gpu, net, &Batch { data, indices: &indices })?;
        }
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        Ok(())
    };
    run(timing.warmup)?;
    let mut times = Vec::with_capacity(timing.reps);
    for _ in 0..timing.reps.max(1) {
        let start = std::time::Instant::now();
        run(timing.steps.max(1))?;
        times.push(start.elapsed().as_secs_f64() * 1e3 / timing.steps.max(1) as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
