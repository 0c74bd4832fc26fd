//! AdaBelief on the GPU against its f64 reference step by step, the belief term, and the name
//! parser.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::nn::Batch;
use adahessian_wgpu::nn::{Activation, Loss, ModelSpec};
use adahessian_wgpu::optim::{AdaBeliefConfig, AdamConfig, Optimizer, OptimizerConfig};
use common::{compare, problem};

#[test]
fn adabelief_matches_reference() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, ModelSpec::mlp(&[4, 6, 3], Activation::Gelu, Loss::Mse), 8, 12);
    for c in [
        AdaBeliefConfig { lr: 0.01, ..Default::default() },
        AdaBeliefConfig { lr: 0.01, betas: (0.8, 0.99), eps: 1e-8, weight_decay: 0.1, ..Default::default() },
        AdaBeliefConfig { lr: 0.005, grad_clip: Some(0.05), ..Default::default() },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(12).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::AdaBelief(c), 6);
    }
}

/// The one thing that sets it apart from Adam: s tracks (g − m)², so after the first step
/// (m = (1 − β1) g) s = (1 − β2) β1² g² + ε where Adam's v = (1 − β2) g².
#[test]
fn adabelief_second_moment_is_the_belief_not_the_squared_gradient() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, ModelSpec::mlp(&[3, 4, 2], Activation::Tanh, Loss::CrossEntropy), 6, 13);
    let indices: Vec<u32> = (0..6).collect();
    let batch = Batch { data: &p.data, indices: &indices };
    let mut states = Vec::new();
    for c in [OptimizerConfig::AdaBelief(AdaBeliefConfig::default()), OptimizerConfig::Adam(AdamConfig::default())] {
        p.net.set_params(gpu, &p.spec.init_params(13).unwrap()).unwrap();
        let mut opt = Optimizer::new(gpu, &p.net, c).unwrap();
        opt.step(gpu, &p.net, &batch).unwrap();
        states.push(block_on(opt.read_state(gpu)).unwrap());
    }
    let (belief, adam) = (&states[0], &states[1]);
    for (s, v) in belief.v.iter().zip(&adam.v) {
        let want = 0.9f64 * 0.9 * *v as f64 + 1e-16;
        assert!((*s as f64 - want).abs() <= 1e-6 * want + 1e-30, "s {s} vs β1² v {want}");
    }
}

#[test]
fn adabelief_is_named_and_configured_like_every_method() {
    let c = OptimizerConfig::parse("adabelief(lr=2e-3, eps=1e-12)").unwrap();
    assert_eq!(c, OptimizerConfig::AdaBelief(AdaBeliefConfig { lr: 2e-3, eps: 1e-12, ..Default::default() }));
    assert_eq!(OptimizerConfig::parse(&c.to_text()).unwrap(), c);
    let err = OptimizerConfig::parse("adabelief(momentum=0.9)").unwrap_err().to_string();
    assert!(err.contains("adabelief has no setting 'momentum'"), "{err}");
}
