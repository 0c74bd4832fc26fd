//! Start-up costs what is used: opening the device builds no pipeline, and a training step
//! builds exactly the pipelines of the kernels it records, once. Before this, every one of the
//! ~150 pipelines was compiled when the device opened (1.5 s of a one-step `train` on lavapipe,
//! 32 s before the demo page was ready on SwiftShader).

mod common;

use adahessian_wgpu::data;
use adahessian_wgpu::gpu::{Gpu, GpuOptions, Kernel};
use adahessian_wgpu::nn::{loss, Activation, Batch, Loss, ModelSpec, Network, NetworkOptions, Phase};
use adahessian_wgpu::optim::kernels::update_kernel;
use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
use std::collections::HashSet;

#[test]
fn pipelines_are_built_on_first_use_and_only_for_the_kernels_a_step_records() {
    gpu_or_skip!();
    // a device of its own: the shared one has other tests' pipelines in it
    let gpu = Gpu::new_blocking(GpuOptions::from_env().unwrap_or_default()).unwrap();
    assert_eq!(gpu.pipelines().built(), 0, "opening the device builds nothing");
    let spec = ModelSpec::mlp(&[4, 8, 3], Activation::Tanh, Loss::CrossEntropy);
    let net = Network::new(&gpu, &spec, NetworkOptions::new(6, 0)).unwrap();
    assert_eq!(gpu.pipelines().built(), 0, "building a network records nothing, so builds nothing");
    let ds = common::random_data(&spec.resolve().unwrap(), 6, 1);
    let data = common::bind(&gpu, &net, &ds);
    let rows: Vec<u32> = (0..6).collect();
    let batch = Batch { data: &data, indices: &rows };
    let config = OptimizerConfig::parse("adam").unwrap();
    let update = update_kernel(config.method().kernel(false));
    let mut opt = Optimizer::new(&gpu, &net, config).unwrap();
    adahessian_wgpu::block_on(opt.step_with_loss(&gpu, &net, &batch)).unwrap();
    // what an Adam step records: the gather, the forward and backward lists, the loss reduction
    // and the update kernel
    let mut want: HashSet<Kernel> =
        [data::kernels::GatherRows, data::kernels::GatherTargets, loss::kernels::LossReduce].into_iter().collect();
    for phase in [Phase::Forward, Phase::Backward] {
        want.extend(net.dispatch_list(phase).into_iter().map(|(k, _)| k));
    }
    want.insert(update);
    let after_one = gpu.pipelines().built();
    assert_eq!(after_one, want.len(), "one Adam step builds the pipelines of what it records: {want:?}");
    assert!(
        after_one * 5 < adahessian_wgpu::kernels().len(),
        "{after_one} of {} pipelines",
        adahessian_wgpu::kernels().len()
    );
    for _ in 0..3 {
        opt.step(&gpu, &net, &batch).unwrap();
    }
    gpu.check().unwrap();
    assert_eq!(gpu.pipelines().built(), after_one, "later steps build nothing");
}
