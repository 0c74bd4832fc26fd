//! GFLOP/s of the Conv2d kernels, pass by pass, on one layer: `ReLU → Conv2d → Flatten → Linear`,
//! so the conv's input depends on θ and every conv kernel runs (fwd, tangent, bwd_w + bwd_x,
//! rbwd_w + rbwd_x). Each pass is recorded REPS times into one compute pass, submitted and waited
//! for; the best of 5 such runs is reported. A benchmark, never a test.
//!
//! cargo run --release --example bench_conv -- [BATCH] [C_IN] [C_OUT] [H] [K] [REPS]

use adahessian_wgpu::data::{Dataset, DeviceDataset, Targets};
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::{Activation, Batch, Layer, Loss, ModelSpec, Network, NetworkOptions, Phase};
use adahessian_wgpu::probe::SplitMix64;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, default: usize| -> anyhow::Result<usize> {
        Ok(std::env::args().nth(i).map(|s| s.parse()).transpose()?.unwrap_or(default))
    };
    let (batch, c_in, c_out, h, k, reps) =
        (arg(1, 32)?, arg(2, 16)?, arg(3, 32)?, arg(4, 14)?, arg(5, 3)?, arg(6, 10)?);
    let spec = ModelSpec {
        input: vec![c_in, h, h],
        layers: vec![
            Layer::Activation(Activation::Relu),
            Layer::Conv2d { out: c_out, kernel: (k, k), stride: (1, 1), padding: (k / 2, k / 2), bias: true },
            Layer::Flatten,
            Layer::Dense { out: 10, bias: true },
        ],
        loss: Loss::CrossEntropy,
        naming: Default::default(),
    };
    let gpu = Gpu::new_blocking(GpuOptions::from_env()?)?;
    let net = Network::new(&gpu, &spec, NetworkOptions::new(batch, 0))?;
    let mut rng = SplitMix64::new(3);
    let x: Vec<f32> = (0..batch * c_in * h * h).map(|_| rng.normal() as f32).collect();
    let labels = (0..batch).map(|_| rng.below(10) as u32).collect();
    let data = net.bind(
        &gpu,
        &DeviceDataset::upload(&gpu, &Dataset::new(x, c_in * h * h, Targets::Classes { labels, classes: 10 })?)?,
    )?;
    let indices: Vec<u32> = (0..batch as u32).collect();
    let rows = net.prepare(&gpu, &Batch { data: &data, indices: &indices })?;
    let z: Vec<f32> = (0..net.n_params()).map(|_| rng.normal() as f32).collect();
    adahessian_wgpu::block_on(net.hvp(&gpu, &Batch { data: &data, indices: &indices }, &z))?; // fills every node
    let h_out = h + 2 * (k / 2) - k + 1;
    let conv_flops = 2.0 * (batch * c_out * h_out * h_out * c_in * k * k) as f64;
    println!("adapter: {}", gpu.describe());
    println!(
        "conv2d {c_in}->{c_out}, {h}x{h}, k {k}, batch {batch}: {:.1} MFLOP per convolution, {reps} repetitions",
        conv_flops / 1e6
    );
    println!("{:<34} {:>10} {:>10}", "pass (conv kernels in it)", "ms", "GFLOP/s");
    // (phase, convolutions' worth of FLOPs in it)
    for (phase, label, convs) in [
        (Phase::Forward, "forward (conv_fwd)", 1.0),
        (Phase::Tangent, "tangent (conv_tangent)", 2.0),
        (Phase::Backward, "backward (conv_bwd_w + conv_bwd_x)", 2.0),
        (Phase::RBackward, "R-backward (rbwd_w + rbwd_x)", 4.0),
    ] {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let start = Instant::now();
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for _ in 0..reps {
                    net.encode(&gpu, &mut pass, phase, rows);
                }
            }
            gpu.queue.submit(Some(encoder.finish()));
            gpu.device.poll(wgpu::PollType::wait_indefinitely())?;
            best = best.min(start.elapsed().as_secs_f64() / reps as f64);
        }
        println!("{label:<34} {:>10.3} {:>10.1}", best * 1e3, convs * conv_flops / best / 1e9);
    }
    Ok(())
}
