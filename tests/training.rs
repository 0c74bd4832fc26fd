//! Training on real data: an MLP on the UCI digits (fixed split) reaches ≥ 95% test accuracy with
//! AdaHessian at its default lr 0.15 and with Adam at its default lr 1e-3; a NaN loss stops
//! training with an error naming the step.

mod common;

use adahessian_wgpu::data::{self, DeviceDataset};
use adahessian_wgpu::nn::{Activation, Batch, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{AdaHessianConfig, AdamConfig, Optimizer, OptimizerConfig, SgdConfig};
use adahessian_wgpu::{block_on, train, Error};

fn train_digits(config: OptimizerConfig, epochs: usize) -> Option<f32> {
    let gpu = common::gpu()?;
    let (train_set, test_set) = data::digits().unwrap().split(0.2, 0).unwrap();
    assert_eq!((train_set.rows(), test_set.rows()), (1438, 359));
    let spec = ModelSpec::mlp(&[64, 64, 10], Activation::Tanh, Loss::CrossEntropy);
    let net = Network::new(gpu, &spec, NetworkOptions::new(32, 0)).unwrap();
    let train_data = net.bind(gpu, &DeviceDataset::upload(gpu, &train_set).unwrap()).unwrap();
    let test_data = net.bind(gpu, &DeviceDataset::upload(gpu, &test_set).unwrap()).unwrap();
    let mut opt = Optimizer::new(gpu, &net, config).unwrap();
    let mut order = train::BatchOrder::new(train_data.rows, 32, 0);
    for _ in 0..epochs {
        train::run_epoch(gpu, &net, &mut opt, &train_data, &mut order).unwrap();
    }
    let test = block_on(net.evaluate(gpu, &test_data)).unwrap();
    eprintln!(
        "{}: test accuracy {:.4}, test loss {:.4} after {epochs} epochs",
        config.name(),
        test.accuracy,
        test.loss
    );
    Some(test.accuracy)
}

#[test]
fn adahessian_at_default_lr_reaches_95_percent_on_digits() {
    let Some(acc) = train_digits(OptimizerConfig::AdaHessian(AdaHessianConfig::default()), 20) else {
        return;
    };
    assert!(acc >= 0.95, "AdaHessian test accuracy {acc}");
}

#[test]
fn adam_at_default_lr_reaches_95_percent_on_digits() {
    let Some(acc) = train_digits(OptimizerConfig::Adam(AdamConfig::default()), 20) else {
        return;
    };
    assert!(acc >= 0.95, "Adam test accuracy {acc}");
}

#[test]
fn a_nan_loss_is_reported_with_its_step() {
    let gpu = gpu_or_skip!();
    let (train_set, _) = data::digits().unwrap().split(0.2, 0).unwrap();
    let spec = ModelSpec::mlp(&[64, 8, 10], Activation::Relu, Loss::CrossEntropy);
    let net = Network::new(gpu, &spec, NetworkOptions::new(16, 0)).unwrap();
    let data = net.bind(gpu, &DeviceDataset::upload(gpu, &train_set).unwrap()).unwrap();
    let mut opt = Optimizer::new(gpu, &net, OptimizerConfig::Sgd(SgdConfig::default())).unwrap();
    let indices: Vec<u32> = (0..16).collect();
    let batch = Batch { data: &data, indices: &indices };
    block_on(opt.step_with_loss(gpu, &net, &batch)).unwrap();
    // weights near f32::MAX overflow the logits to ±inf, and log-sum-exp to NaN
    net.set_params(gpu, &vec![3e38; net.n_params()]).unwrap();
    match block_on(opt.step_with_loss(gpu, &net, &batch)) {
        Err(Error::NonFinite { step, .. }) => assert_eq!(step, 2),
        other => panic!("expected a NonFinite error, got {other:?}"),
    }
}
