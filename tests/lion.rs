//! Lion on the GPU against its f64 reference step by step, its one-moment state, sign(0) = 0,
//! and the name parser / command-line settings.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::gpu::harness::{run_optim_kernel, OptimArenas};
use adahessian_wgpu::nn::{Activation, Loss, ModelSpec};
use adahessian_wgpu::optim::kernels::update_kernel;
use adahessian_wgpu::optim::meta::{SliceMeta, StepMeta};
use adahessian_wgpu::optim::{LionConfig, Optimizer, OptimizerConfig};
use common::{compare, problem};

#[test]
fn lion_matches_reference() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, ModelSpec::mlp(&[4, 6, 3], Activation::Tanh, Loss::CrossEntropy), 8, 11);
    for c in [
        LionConfig { lr: 0.01, ..Default::default() },
        LionConfig { lr: 0.01, betas: (0.5, 0.9), weight_decay: 0.5, ..Default::default() },
        LionConfig { lr: 0.003, grad_clip: Some(0.05), ..Default::default() },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(11).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::Lion(c), 6);
    }
    // one moment per parameter: half of Adam's state
    let opt = Optimizer::new(gpu, &p.net, OptimizerConfig::Lion(LionConfig::default())).unwrap();
    assert_eq!(opt.memory_bytes(), 4 * p.model.n_params as u64);
}

#[test]
fn lion_takes_no_step_where_the_interpolated_momentum_is_zero() {
    let gpu = gpu_or_skip!();
    // c = β1 m + (1 − β1) g: exactly zero at i = 0 (m = g = 0) and i = 1 (0.5·1 + 0.5·(−1))
    let slice = SliceMeta { n_params: 3, len: 3, group_len: 1, n_samples: 1, ..Default::default() };
    let step = StepMeta { t: 1, lr: 0.5, beta1: 0.5, beta2: 0.99, ..Default::default() };
    let mut a = OptimArenas {
        theta: vec![1.0, 2.0, 3.0],
        g_theta: vec![0.0, -1.0, 2.0],
        z: vec![0.0; 3],
        r_theta: vec![0.0; 3],
        curv: vec![0.0],
        state: vec![0.0, 1.0, 0.0],
        stats: vec![0.0; 8],
    };
    block_on(run_optim_kernel(gpu, update_kernel("lion_step"), &slice, &step, 3, &mut a)).unwrap();
    assert_eq!(a.theta, vec![1.0, 2.0, 2.5], "sign(0) = 0 leaves θ; c > 0 steps by −lr");
    let want_m = [0.0, 0.99 - 0.01, 0.01 * 2.0];
    for (got, want) in a.state.iter().zip(want_m) {
        assert!((got - want as f32).abs() < 1e-7, "m: {:?}", a.state);
    }
}

#[test]
fn lion_is_named_and_configured_like_every_method() {
    let c = OptimizerConfig::parse("lion(lr=3e-4, beta2=0.98, weight_decay=1)").unwrap();
    assert_eq!(
        c,
        OptimizerConfig::Lion(LionConfig { lr: 3e-4, betas: (0.9, 0.98), weight_decay: 1.0, grad_clip: None })
    );
    assert_eq!(OptimizerConfig::parse(&c.to_text()).unwrap(), c);
    assert_eq!(OptimizerConfig::default_for("lion").unwrap(), OptimizerConfig::Lion(LionConfig::default()));
    let err = OptimizerConfig::parse("lion(eps=1e-8)").unwrap_err().to_string();
    assert!(err.contains("lion has no setting 'eps'"), "{err}");
    assert!(OptimizerConfig::parse("lion(beta1=1)").is_err());
}
