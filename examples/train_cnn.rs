//! Trains a small CNN with AdaHessian (or another optimizer) on the embedded 8×8 digits or on the
//! bundled 10k MNIST IDX files, printing test accuracy and time per epoch.
//!
//! cargo run --release --example train_cnn -- [digits|mnist] [EPOCHS] [OPTIMIZER] [BATCH]

use adahessian_wgpu::data::{self, DeviceDataset};
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::{Activation as Act, Layer, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
use adahessian_wgpu::{block_on, train};
use std::path::Path;
use std::time::Instant;

/// conv(c1, 3×3, pad 1) → ReLU → maxpool 2 → conv(c2, 3×3, pad 1) → ReLU → maxpool 2 → flatten → linear
fn cnn(input: [usize; 3], c1: usize, c2: usize) -> ModelSpec {
    use Layer::*;
    ModelSpec {
        input: input.to_vec(),
        layers: vec![
            Conv2d { out: c1, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(Act::Relu),
            MaxPool2d { kernel: (2, 2), stride: (2, 2) },
            Conv2d { out: c2, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(Act::Relu),
            MaxPool2d { kernel: (2, 2), stride: (2, 2) },
            Flatten,
            Dense { out: 10, bias: true },
        ],
        loss: Loss::CrossEntropy,
        naming: Default::default(),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("digits");
    let epochs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let config = OptimizerConfig::default_for(args.get(3).map(String::as_str).unwrap_or("adahessian"))?;
    let batch: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let (dataset, spec) = match which {
        "digits" => (data::digits()?, cnn([1, 8, 8], 16, 32)),
        "mnist" => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
            let ds = data::idx::load(
                &dir.join("mnist10k-images-idx3-ubyte.gz"),
                &dir.join("mnist10k-labels-idx1-ubyte.gz"),
            )?;
            (ds, cnn([1, 28, 28], 8, 16))
        }
        other => anyhow::bail!("unknown data set '{other}': use digits or mnist"),
    };
    let (train_set, test_set) = dataset.split(0.2, 0)?;
    let gpu = Gpu::new_blocking(GpuOptions::from_env()?)?;
    let net = Network::new(&gpu, &spec, NetworkOptions::new(batch, 0))?;
    println!("adapter: {}", gpu.describe());
    println!(
        "{which}: {} train / {} test rows, CNN with {} parameters, {} batch {batch}",
        train_set.rows(),
        test_set.rows(),
        net.n_params(),
        config.name()
    );
    let train_data = net.bind(&gpu, &DeviceDataset::upload(&gpu, &train_set)?)?;
    let test_data = net.bind(&gpu, &DeviceDataset::upload(&gpu, &test_set)?)?;
    let mut opt = Optimizer::new(&gpu, &net, config)?;
    let mut order = train::BatchOrder::new(train_data.rows, batch, 0);
    let start = Instant::now();
    for epoch in 1..=epochs {
        let report = train::run_epoch(&gpu, &net, &mut opt, &train_data, &mut order)?;
        let test = block_on(net.evaluate(&gpu, &test_data))?;
        println!(
            "epoch {epoch:>3}  last batch loss {:.4}  test loss {:.4}  test acc {:.4}  {:.1}s",
            report.last_batch_loss,
            test.loss,
            test.accuracy,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
