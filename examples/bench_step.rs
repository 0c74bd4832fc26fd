//! Time per training step of each optimizer on one MLP and batch, in one process on one adapter,
//! with ratios against Adam. A benchmark, never a test.
//!
//! cargo run --release --example bench_step -- [WIDTHS] [BATCH] [STEPS] [ACTIVATION]
//! e.g. `-- 64-64-10 32 200 tanh` (digits-sized) or `-- 784-1024-1024-10 256 200 relu`.
//! Each optimizer: 10 warm-up steps, then 7 repetitions of STEPS steps submitted back to back
//! and waited for; the step time is the median repetition divided by STEPS.

use adahessian_wgpu::data::{Dataset, DeviceDataset, Targets};
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::{Activation, LayerOp, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{AdaHessianConfig, AdamConfig, Optimizer, OptimizerConfig, SgdConfig, SophiaHConfig};
use adahessian_wgpu::probe::SplitMix64;
use adahessian_wgpu::train::{time_steps, BatchOrder, Timing};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // a width list such as 784-256-10 (an MLP with ACTIVATION), or any model text (see nn::text)
    let model_arg = args.get(1).cloned().unwrap_or_else(|| "64-64-10".into());
    let batch: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let steps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let act = Activation::parse(args.get(4).map(String::as_str).unwrap_or("tanh"))
        .ok_or_else(|| anyhow::anyhow!("unknown activation"))?;
    let gpu = Gpu::new_blocking(GpuOptions::from_env()?)?;
    let spec = if model_arg.contains(';') || model_arg.contains(':') {
        ModelSpec::parse(&model_arg)?
    } else {
        let widths: Vec<usize> = model_arg.split('-').map(|w| w.parse()).collect::<Result<_, _>>()?;
        ModelSpec::mlp(&widths, act, Loss::CrossEntropy)
    };
    let model = spec.resolve()?;
    let (features, classes) = (model.nodes[0], model.output_width());
    let mut rng = SplitMix64::new(1);
    let rows = batch * 4;
    let x: Vec<f32> = (0..rows * features).map(|_| rng.normal() as f32).collect();
    let labels = (0..rows).map(|_| rng.below(classes) as u32).collect();
    let ds = Dataset::new(x, features, Targets::Classes { labels, classes })?;
    let net = Network::new(&gpu, &spec, NetworkOptions::new(batch, 0))?;
    let data = net.bind(&gpu, &DeviceDataset::upload(&gpu, &ds)?)?;
    // multiply-adds of the layers with parameters: every weight meets every output position once
    let flops_fwd = 2.0
        * batch as f64
        * model
            .layers
            .iter()
            .map(|l| match l.op {
                LayerOp::Dense(d) => (d.n_in * d.n_out) as f64,
                LayerOp::Conv2d(c) => (c.geom.weight_len() * c.geom.h_out * c.geom.w_out) as f64,
                _ => 0.0,
            })
            .sum::<f64>();
    println!("adapter: {}", gpu.describe());
    println!(
        "model: {} ({act:?} for MLPs), {} parameters, batch {batch}, {steps} steps per repetition",
        model_arg,
        net.n_params()
    );
    println!("forward pass: {:.1} MFLOP", flops_fwd / 1e6);
    let configs = [
        OptimizerConfig::Adam(AdamConfig::default()),
        OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, ..Default::default() }),
        OptimizerConfig::AdaHessian(AdaHessianConfig::default()),
        OptimizerConfig::AdaHessian(AdaHessianConfig { update_each: 10, ..Default::default() }),
        OptimizerConfig::SophiaH(SophiaHConfig::default()),
    ];
    let labels = ["adam", "sgd (momentum 0.9)", "adahessian", "adahessian (update_each 10)", "sophia-h (k 10)"];
    let mut adam_ms = f64::NAN;
    println!("{:<30} {:>12} {:>10} {:>14}", "optimizer", "ms/step", "vs adam", "model GFLOP/s");
    for (config, label) in configs.iter().zip(labels) {
        let mut opt = Optimizer::new(&gpu, &net, *config)?;
        let mut order = BatchOrder::new(data.rows, batch, 0);
        let ms = time_steps(&gpu, &net, &mut opt, &data, &mut order, Timing { warmup: 10, reps: 7, steps })?;
        if label == "adam" {
            adam_ms = ms;
        }
        // forward + backward ≈ 3 forward passes; a curvature step adds tangent + R-backward ≈ 5 more
        let passes = match config {
            OptimizerConfig::AdaHessian(c) => 3.0 + 5.0 / c.update_each as f64,
            OptimizerConfig::SophiaH(c) => 3.0 + 5.0 / c.update_each as f64,
            _ => 3.0,
        };
        let gflops = passes * flops_fwd / (ms * 1e-3) / 1e9;
        println!("{label:<30} {ms:>12.3} {:>9.2}x {gflops:>14.2}", ms / adam_ms);
    }
    Ok(())
}
