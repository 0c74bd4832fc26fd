//! `adahessian bench`: time per training step of each optimizer on one model and batch, ratios
//! against the first optimizer listed (Adam by default), naming the adapter.

use crate::setup::{self, DataArgs, OptimArgs};
use crate::LazyGpu;
use adahessian_wgpu::data::DeviceDataset;
use adahessian_wgpu::nn::{BoundData, Network, NetworkOptions, Phase};
use adahessian_wgpu::nn::{KernelSet, KernelTuning};
use adahessian_wgpu::optim::OptimizerConfig;
use adahessian_wgpu::train::Timing;
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
    /// Comma-separated layer kernel sets to time back to back (`naive`, `tiled`); default: the
    /// device's (ADAHESSIAN_KERNELS, else tiled).
    #[arg(long)]
    kernels: Option<String>,
    /// Also time each pass of the network (forward, tangent, backward, ..., fused) per kernel set.
    #[arg(long)]
    passes: bool,
    /// Also time each dispatch of the fused forward + tangent and backward + R-backward passes
    /// alone, per kernel set: which kernel of which layer a step's time goes to.
    #[arg(long)]
    dispatches: bool,
    /// Instead: time the N × N × N matrix product (a dense layer's forward pass) in GFLOP/s.
    #[arg(long, value_name = "N")]
    matmul: Option<usize>,
}

fn kernel_sets(list: &Option<String>) -> Result<Vec<KernelSet>> {
    Ok(match list {
        Some(list) => {
            list.split(',').map(|k| KernelSet::parse(k.trim())).collect::<adahessian_wgpu::Result<Vec<_>>>()?
        }
        None => vec![KernelSet::from_env()?],
    })
}

fn run_matmul(gpu: &LazyGpu, cmd: &BenchCmd, n: usize) -> Result<()> {
    if n == 0 || n > 8192 {
        bail!("--matmul {n}: give a size from 1 to 8192");
    }
    let gpu = gpu.get()?;
    println!("adapter: {}", gpu.describe());
    println!(
        "tuning ({} adapter): {}",
        gpu.adapter_class().name(),
        KernelTuning::for_class(gpu.adapter_class()).describe()
    );
    println!("{n} x {n} x {n} matrix product (a dense layer's forward pass), median of 5 x {} products", cmd.reps);
    println!("{:<8} {:>10} {:>10} {:>12}", "kernels", "ms", "GFLOP/s", "of fp32 peak");
    for r in adahessian_wgpu::bench::matmul(gpu, n, &kernel_sets(&cmd.kernels)?, cmd.reps)? {
        let share = match r.peak_gflops {
            Some(peak) => format!("{:.1}%", 100.0 * r.gflops / peak),
            None => "n/a".into(),
        };
        println!("{:<8} {:>10.3} {:>10.1} {share:>12}", r.kernels.name(), r.ms, r.gflops);
    }
    Ok(())
}

pub fn run(gpu: &LazyGpu, cmd: &BenchCmd) -> Result<()> {
    if let Some(n) = cmd.matmul {
        return run_matmul(gpu, cmd, n);
    }
    if cmd.batch_size == 0 || cmd.steps == 0 {
        bail!("--batch-size and --steps must be at least 1");
    }
    let data = cmd.data.load(0)?;
    let spec = match &cmd.model {
        Some(m) => setup::model_for(m, &data)?,
        None => setup::default_model(&data),
    };
    let names: Vec<&str> = OptimizerConfig::split_list(&cmd.optimizers);
    if names.is_empty() {
        bail!("--optimizers names no optimizer; give a comma-separated list such as adam,adahessian");
    }
    if cmd.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let configs = names.iter().map(|n| OptimArgs::default().config_for(n, 0)).collect::<Result<Vec<_>>>()?;
    let gpu = gpu.get()?;
    let sets = match &cmd.kernels {
        Some(list) => {
            list.split(',').map(|k| KernelSet::parse(k.trim())).collect::<adahessian_wgpu::Result<Vec<_>>>()?
        }
        None => vec![KernelSet::from_env()?],
    };
    // A timed step must be the batch asked for: a smaller one (the training split of too few
    // rows) would time less work under the asked-for name, as bench/resnet_cpu.sh did until
    // 2026-12-04 (`--samples 32` kept 26 training rows after the 20% test split).
    let batch = cmd.batch_size;
    let rows = data.train.rows();
    if batch > rows {
        let more = match cmd.data.rows_keeping(batch) {
            Some(n) => format!("random:... and the 2-D sets: --samples {n}"),
            None => "a larger data set".into(),
        };
        bail!(
            "--batch-size {batch} is more than the {rows} training rows of {} (the rest is the test \
             split); give more rows ({more}) or a smaller --batch-size",
            data.name
        );
    }
    let device_data = DeviceDataset::upload(gpu, &data.train)?;
    println!("adapter: {}", gpu.describe());
    println!(
        "tuning ({} adapter): {}",
        gpu.adapter_class().name(),
        KernelTuning::for_class(gpu.adapter_class()).describe()
    );
    println!("data: {}", device_data.describe());
    println!(
        "{}: {}, batch {batch}; median of {} × {} steps after {} warm-up",
        data.name,
        spec.to_line(),
        cmd.reps,
        cmd.steps,
        cmd.warmup
    );
    println!(
        "{:<8} {:<12} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "kernels",
        "optimizer",
        "ms/step",
        format!("vs {}", names[0]),
        "dispatches",
        "GPU MiB",
        format!("vs {}", names[0])
    );
    let mut base = None;
    for &set in &sets {
        for (name, config) in names.iter().zip(&configs) {
            let timing = Timing { warmup: cmd.warmup, reps: cmd.reps, steps: cmd.steps };
            let t = adahessian_wgpu::bench::time_method(gpu, &spec, *config, set, &device_data, batch, timing)?;
            let b = *base.get_or_insert((t.ms, t.bytes));
            println!(
                "{:<8} {name:<12} {:>10.3} {:>9.2}x {:>12.1} {:>10.3} {:>9.2}x",
                set.name(),
                t.ms,
                t.ms / b.0,
                t.dispatches,
                t.bytes as f64 / (1 << 20) as f64,
                t.bytes as f64 / b.1 as f64
            );
        }
    }
    println!(
        "GPU MiB: the network and optimizer buffers each method allocates; the training data adds {:.3} MiB",
        device_data.bytes() as f64 / (1 << 20) as f64
    );
    if cmd.passes || cmd.dispatches {
        let profile = Profile { gpu, batch, reps: cmd.steps };
        for &set in &sets {
            let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(batch, 0), set)?;
            let bound = net.bind(gpu, &device_data)?;
            if cmd.passes {
                profile.passes(set, &net, &bound)?;
            }
            if cmd.dispatches {
                profile.dispatches(set, &net, &bound)?;
            }
        }
    }
    Ok(())
}

/// `--passes` and `--dispatches`: a network's time per pass, or per dispatch of a pass, at the
/// benchmark's batch size, each measurement `reps` recordings back to back.
struct Profile<'a> {
    gpu: &'a adahessian_wgpu::gpu::Gpu,
    batch: usize,
    reps: usize,
}

impl Profile<'_> {
    /// The time and dispatches of each pass of the network.
    fn passes(&self, set: KernelSet, net: &Network, bound: &BoundData) -> Result<()> {
        println!("\n{:<8} {:<22} {:>10} {:>12}", "kernels", "pass", "ms", "dispatches");
        for phase in [
            Phase::Forward,
            Phase::Tangent,
            Phase::ForwardTangent,
            Phase::Backward,
            Phase::RBackward,
            Phase::BackwardRBackward,
            Phase::Forward,
        ] {
            let ms = adahessian_wgpu::bench::time_pass(self.gpu, net, bound, self.batch, phase, self.reps)?;
            println!("{:<8} {:<22} {ms:>10.3} {:>12}", set.name(), format!("{phase:?}"), net.dispatch_count(phase));
        }
        Ok(())
    }

    /// Each dispatch of Adam's and AdaHessian's passes timed alone: which kernel of which layer
    /// a step's time goes to.
    fn dispatches(&self, set: KernelSet, net: &Network, bound: &BoundData) -> Result<()> {
        println!("\n{:<8} {:<18} {:<26} {:<32} {:>10}", "kernels", "pass", "layer", "kernel", "ms");
        let layers = &net.model().layers;
        for phase in [Phase::Forward, Phase::ForwardTangent, Phase::Backward, Phase::BackwardRBackward] {
            let times = adahessian_wgpu::bench::time_dispatches(self.gpu, net, bound, self.batch, phase, self.reps)?;
            for t in &times {
                let layer = match layers.get(t.layer) {
                    Some(l) => format!("{} {}", t.layer, l.op.describe()),
                    None if t.kernel.entry_point().starts_with("fanout") => "residual fan-in sum".to_string(),
                    None => "loss".to_string(),
                };
                let kernel = t.kernel.entry_point();
                println!("{:<8} {:<18} {layer:<26} {kernel:<32} {:>10.3}", set.name(), format!("{phase:?}"), t.ms);
            }
            let total: f64 = times.iter().map(|t| t.ms).sum();
            println!(
                "{:<8} {:<18} {:<26} {:<32} {total:>10.3}",
                set.name(),
                format!("{phase:?}"),
                "",
                "(sum of the above)"
            );
        }
        Ok(())
    }
}
