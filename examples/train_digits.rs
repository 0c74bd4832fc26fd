//! Trains an MLP on the embedded UCI digits with AdaHessian and with Adam and prints test
//! accuracy and time per epoch.
//!
//! cargo run --release --example train_digits [-- EPOCHS BATCH]

use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::{Activation, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{AdaHessianConfig, AdamConfig, Optimizer, OptimizerConfig};
use adahessian_wgpu::{block_on, data, train};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(15);
    let batch: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let gpu = Gpu::new_blocking(GpuOptions::from_env()?)?;
    println!("adapter: {}", gpu.describe());
    let (train_set, test_set) = data::digits()?.split(0.2, 0)?;
    let spec = ModelSpec::mlp(&[64, 64, 10], Activation::Tanh, Loss::CrossEntropy);
    for config in
        [OptimizerConfig::AdaHessian(AdaHessianConfig::default()), OptimizerConfig::Adam(AdamConfig::default())]
    {
        let net = Network::new(&gpu, &spec, NetworkOptions::new(batch, 0))?;
        let train_data = net.bind(&gpu, &data::DeviceDataset::upload(&gpu, &train_set)?)?;
        let test_data = net.bind(&gpu, &data::DeviceDataset::upload(&gpu, &test_set)?)?;
        let mut opt = Optimizer::new(&gpu, &net, config)?;
        let mut order = train::BatchOrder::new(train_data.rows, batch, 0);
        let start = Instant::now();
        for epoch in 1..=epochs {
            let report = train::run_epoch(&gpu, &net, &mut opt, &train_data, &mut order)?;
            let test = block_on(net.evaluate(&gpu, &test_data))?;
            println!(
                "{:<10} epoch {epoch:>3}  last batch loss {:.4}  test loss {:.4}  test acc {:.4}  {:.2}s",
                config.name(),
                report.last_batch_loss,
                test.loss,
                test.accuracy,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
