//! `adahessian bench`: time per training step of each optimizer on one model and batch, ratios
//! against the first optimizer listed (Adam by default), naming the adapter.

use crate::setup::{self, DataArgs, OptimArgs};
use crate::LazyGpu;
use adahessian_wgpu::data::DeviceDataset;
use adahessian_wgpu::nn::{Network, NetworkOptions};
use adahessian_wgpu::optim::Optimizer;
use adahessian_wgpu::train::{time_steps, BatchOrder, Timing};
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct BenchCmd {
    #[command(flatten)]
    data: DataArgs,
    /// Model (default: the data set's default model).
    #[arg(long)]
    model: Option<String>,
    /// Comma-separated optimizers; ratios are against the first.
    #[arg(long, default_value = "adam,sgd,adahessian,sophia-h")]
    optimizers: String,
    /// Rows per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Steps per timed repetition.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
}

pub fn run(gpu: &LazyGpu, cmd: &BenchCmd) -> Result<()> {
    if cmd.batch_size == 0 || cmd.steps == 0 {
        bail!("--batch-size and --steps must be at least 1");
    }
    let data = cmd.data.load(0)?;
    let spec = match &cmd.model {
        Some(m) => setup::parse_model(m)?,
        None => setup::default_model(&data),
    };
    let names: Vec<&str> = cmd.optimizers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let configs = names.iter().map(|n| OptimArgs::default().config_for(n, 0)).collect::<Result<Vec<_>>>()?;
    let gpu = gpu.get()?;
    let batch = cmd.batch_size.min(data.train.rows());
    let net = Network::new(gpu, &spec, NetworkOptions { max_batch: batch, seed: 0 })?;
    let bound = net.bind(gpu, &DeviceDataset::upload(gpu, &data.train)?)?;
    println!("adapter: {}", gpu.describe());
    println!(
        "{}: {} parameters, batch {batch}; median of {} × {} steps after {} warm-up",
        data.name,
        net.n_params(),
        cmd.reps,
        cmd.steps,
        cmd.warmup
    );
    println!("{:<12} {:>10} {:>10}", "optimizer", "ms/step", format!("vs {}", names[0]));
    let mut base = None;
    for (name, config) in names.iter().zip(configs) {
        let mut opt = Optimizer::new(gpu, &net, config)?;
        let mut order = BatchOrder::new(bound.rows, batch, 0);
        let ms = time_steps(
            gpu,
            &net,
            &mut opt,
            &bound,
            &mut order,
            Timing { warmup: cmd.warmup, reps: cmd.reps, steps: cmd.steps },
        )?;
        let b = *base.get_or_insert(ms);
        println!("{name:<12} {ms:>10.3} {:>9.2}x", ms / b);
    }
    Ok(())
}
