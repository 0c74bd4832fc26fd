//! Optimizers on the GPU against their f64 references step by step (same probes), and the
//! identities of ALGORITHM.md §4: Hutchinson is exact on a separable quadratic and one
//! AdaHessian step is then a Newton step; k = 0 is EMA-momentum SGD; the EMA of D² converges to
//! the squared row norms of H, not to H_ii².

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::gpu::harness::{run_optim_kernel, OptimArenas};
use adahessian_wgpu::nn::{reference, Activation, Batch, Layer, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::meta::{SliceMeta, StepMeta};
use adahessian_wgpu::optim::{self, kernels::update_kernel};
use adahessian_wgpu::optim::{
    AdaHessianConfig, AdamConfig, Method, Optimizer, OptimizerConfig, SgdConfig, SophiaHConfig, UpdateEach,
};
use adahessian_wgpu::probe::{ProbeKind, SplitMix64};
use common::{compare, problem, to_f64, uniform, Tolerance};

fn small_mlp(act: Activation, loss: Loss) -> ModelSpec {
    ModelSpec::mlp(&[4, 6, 3], act, loss)
}

#[test]
fn sgd_variants_match_reference() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, small_mlp(Activation::Tanh, Loss::CrossEntropy), 8, 1);
    for c in [
        SgdConfig { lr: 0.1, ..Default::default() },
        SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 1e-3, ..Default::default() },
        SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.1, ..Default::default() },
        SgdConfig { lr: 0.05, momentum: 0.8, nesterov: true, grad_clip: Some(0.1), ..Default::default() },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(1).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::Sgd(c), 5);
    }
}

#[test]
fn adam_and_adamw_match_reference() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, small_mlp(Activation::Gelu, Loss::Mse), 6, 2);
    for c in [
        AdamConfig { lr: 0.01, ..Default::default() },
        AdamConfig { lr: 0.01, weight_decay: 0.1, ..Default::default() },
        AdamConfig { lr: 0.01, ..AdamConfig::adamw() },
        AdamConfig { lr: 0.01, grad_clip: Some(0.05), ..AdamConfig::adamw() },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(2).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::Adam(c), 5);
    }
}

#[test]
fn adahessian_matches_the_official_rule_step_by_step_with_every_option() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, small_mlp(Activation::Softplus, Loss::CrossEntropy), 8, 3);
    let base = AdaHessianConfig { lr: 0.05, seed: 77, ..Default::default() };
    for c in [
        AdaHessianConfig { lr: 0.15, ..base }, // official defaults
        AdaHessianConfig { hessian_power: 0.5, ..base },
        AdaHessianConfig { update_each: 3, ..base }, // the Fold rule (davda54/timm), the default
        AdaHessianConfig { update_each: 3, update_each_variant: UpdateEach::Fresh, ..base },
        AdaHessianConfig { update_each: 2, n_samples: 2, average_dense: true, ..base },
        AdaHessianConfig { n_samples: 3, ..base },
        AdaHessianConfig { average_dense: true, ..base },
        AdaHessianConfig { probe: ProbeKind::Gaussian, ..base },
        AdaHessianConfig { grad_clip: Some(0.05), weight_decay: 0.01, ..base },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(3).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::AdaHessian(c), 6);
    }
}

#[test]
fn sophia_h_matches_reference() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, small_mlp(Activation::Tanh, Loss::Mse), 8, 4);
    for c in [
        SophiaHConfig { lr: 0.01, update_each: 2, seed: 5, ..Default::default() },
        SophiaHConfig {
            lr: 0.01,
            update_each: 1,
            probe: ProbeKind::Rademacher,
            weight_decay: 0.1,
            n_samples: 2,
            ..Default::default()
        },
        // γ large enough that most coordinates stay inside the clip (with γ = 0.01 nearly every
        // one is clipped to ±1 and the test checks only lr·sign(m)), with gradient clipping
        SophiaHConfig { lr: 0.01, gamma: 100.0, update_each: 1, grad_clip: Some(0.05), seed: 9, ..Default::default() },
    ] {
        p.net.set_params(gpu, &p.spec.init_params(4).unwrap()).unwrap();
        compare(gpu, &p, OptimizerConfig::SophiaH(c), 6);
        if c.gamma == 100.0 {
            // the case is what it claims: after those steps most updates are inside the clip
            let mut opt = Optimizer::new(gpu, &p.net, OptimizerConfig::SophiaH(c)).unwrap();
            let indices: Vec<u32> = (0..8).collect();
            for _ in 0..4 {
                opt.step(gpu, &p.net, &Batch { data: &p.data, indices: &indices }).unwrap();
            }
            let s = block_on(opt.read_state(gpu)).unwrap();
            let bias1 = 1.0 - c.betas.0.powi(4);
            let inside = s.m.iter().zip(&s.v).filter(|(m, h)| (*m / bias1).abs() < c.gamma * h.max(c.eps)).count();
            assert!(inside * 2 > s.m.len(), "only {inside} of {} coordinates inside the clip", s.m.len());
        }
    }
}

/// ALGORITHM.md §4.4 at the kernel level, for arbitrary curvatures a_i: with H = diag(a), the
/// Rademacher estimate z ⊙ Hz = a exactly, and one step with β1 = β2 = 0, k = 1, lr = 1,
/// eps → 0 lands on the minimum θ = 0 of L = ½ Σ a_i θ_i².
#[test]
fn hutchinson_is_exact_on_a_separable_quadratic_and_the_step_is_newton() {
    let gpu = gpu_or_skip!();
    let n = 1000;
    let mut rng = SplitMix64::new(6);
    let a = uniform(&mut rng, n, 0.1, 10.0);
    let theta = uniform(&mut rng, n, -3.0, 3.0);
    let slice =
        SliceMeta { n_params: n as u32, len: n as u32, group_len: 1, n_samples: 1, seed_lo: 9, ..Default::default() };
    let step = StepMeta {
        t: 1,
        t_curv: 1,
        update_curv: 1,
        lr: 1.0,
        beta1: 0.0,
        beta2: 0.0,
        eps: 1e-12,
        hessian_power: 1.0,
        bias1: 1.0,
        bias2: 1.0,
        ..Default::default()
    };
    let mut s = OptimArenas {
        theta: theta.clone(),
        g_theta: theta.iter().zip(&a).map(|(t, a)| t * a).collect(),
        z: vec![0.0; n],
        r_theta: vec![0.0; n],
        curv: vec![0.0; n],
        state: vec![0.0; 2 * n],
        stats: vec![0.0; 8],
    };
    block_on(run_optim_kernel(gpu, optim::kernels::ProbeRademacher, &slice, &step, n as u32, &mut s)).unwrap();
    s.r_theta = s.z.iter().zip(&a).map(|(z, a)| z * a).collect(); // H z for H = diag(a)
    for k in [optim::kernels::CurvAccumulate, optim::kernels::CurvAbs] {
        block_on(run_optim_kernel(gpu, k, &slice, &step, n as u32, &mut s)).unwrap();
    }
    Tolerance { atol: 0.0, rtol: 1e-7 }.check("Hutchinson diagonal", &s.curv, &to_f64(&a));
    block_on(run_optim_kernel(gpu, update_kernel("adahessian_step"), &slice, &step, n as u32, &mut s)).unwrap();
    Tolerance { atol: 1e-6, rtol: 0.0 }.check("θ after one Newton step", &s.theta, &vec![0.0; n]);
}

/// A fractional hessian power where v = 0 (a parameter whose curvature estimate is exactly zero:
/// v̂^(k/2) = 0, the step is lr m̂ / eps), and where v > 0, for k in (0, 1), through the whole
/// step kernel against the f64 rule; the WGSL takes pow(0, k) only for k ∉ {0, 1}.
#[test]
fn fractional_hessian_power_with_zero_curvature_matches_the_rule() {
    let gpu = gpu_or_skip!();
    let n = 6;
    let d = [0.0f32, 0.0, 2.0, 0.5, 1e-3, 0.0];
    let g = [0.3f32, -0.2, 1.0, -4.0, 0.01, 0.0];
    let theta = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
    for k in [0.25f32, 0.5, 0.9] {
        let c = AdaHessianConfig { lr: 0.01, hessian_power: k, eps: 1e-4, ..Default::default() };
        let slice = SliceMeta { n_params: n as u32, len: n as u32, group_len: 1, n_samples: 1, ..Default::default() };
        let mut step = StepMeta { t: 1, t_curv: 1, update_curv: 1, lr: c.lr, ..Default::default() };
        c.write_step_meta(&mut step, 1, 1);
        let mut s = OptimArenas {
            theta: theta.to_vec(),
            g_theta: g.to_vec(),
            z: vec![0.0; n],
            r_theta: vec![0.0; n],
            curv: d.to_vec(),
            state: vec![0.0; 2 * n],
            stats: vec![0.0; 8],
        };
        block_on(run_optim_kernel(gpu, update_kernel("adahessian_step"), &slice, &step, n as u32, &mut s)).unwrap();
        let mut want = to_f64(&theta);
        let mut st = adahessian_wgpu::optim::reference::State::new(n);
        c.reference_step(&mut want, &to_f64(&g), Some(&to_f64(&d)), &mut st);
        assert!(s.theta.iter().all(|t| t.is_finite()), "k = {k}: {:?}", s.theta);
        Tolerance { atol: 1e-7, rtol: 1e-6 }.check(&format!("θ, hessian power {k}"), &s.theta, &want);
    }
}

/// The fused update (D = |z ⊙ Hz| formed inside the update, one probe, no averaging) leaves the
/// same θ and moments, bit for bit, as curv_accumulate + curv_abs + adahessian_step (and never
/// touches the curvature buffer, a placeholder in that configuration), on
/// a curvature step and on the step after it (update_each 2, D reused), with weight decay, a
/// fractional hessian power and signed, mixed-magnitude Hz.
#[test]
fn fused_curvature_update_equals_the_separate_kernels() {
    let gpu = gpu_or_skip!();
    let n = 777;
    let mut rng = SplitMix64::new(61);
    let slice =
        SliceMeta { n_params: n as u32, len: n as u32, group_len: 1, n_samples: 1, seed_lo: 3, ..Default::default() };
    let mut step = StepMeta {
        t: 3,
        t_curv: 2,
        update_curv: 1,
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-4,
        hessian_power: 0.7,
        weight_decay: 0.01,
        bias1: 1.0 - 0.9f32.powi(3),
        bias2: 1.0 - 0.999f32.powi(2),
        ..Default::default()
    };
    let mut state = uniform(&mut rng, 2 * n, 0.0, 1.0);
    state[..n].copy_from_slice(&uniform(&mut rng, n, -1.0, 1.0));
    let start = OptimArenas {
        theta: uniform(&mut rng, n, -2.0, 2.0),
        g_theta: uniform(&mut rng, n, -1.0, 1.0),
        z: vec![0.0; n],
        r_theta: uniform(&mut rng, n, -50.0, 50.0)
            .iter()
            .enumerate()
            .map(|(i, v)| v * 10f32.powi(i as i32 % 7 - 3))
            .collect(),
        curv: vec![f32::NAN; n],
        state,
        stats: vec![0.0; 8],
    };
    let mut theta0 = start.theta.clone();
    let mut separate = start.clone();
    block_on(run_optim_kernel(gpu, optim::kernels::ProbeRademacher, &slice, &step, n as u32, &mut separate)).unwrap();
    let mut fused = OptimArenas { z: separate.z.clone(), ..start };
    for update_curv in [1, 0] {
        step.update_curv = update_curv;
        for k in [optim::kernels::CurvAccumulate, optim::kernels::CurvAbs, update_kernel("adahessian_step")] {
            if update_curv == 1 || k == update_kernel("adahessian_step") {
                block_on(run_optim_kernel(gpu, k, &slice, &step, n as u32, &mut separate)).unwrap();
            }
        }
        block_on(run_optim_kernel(gpu, update_kernel("adahessian_curv_step"), &slice, &step, n as u32, &mut fused))
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused.theta), bits(&separate.theta), "θ (update_curv {update_curv})");
        assert_eq!(bits(&fused.state), bits(&separate.state), "m, v (update_curv {update_curv})");
        assert!(fused.curv.iter().all(|d| d.is_nan()), "the fused update wrote the curvature buffer");
        assert!(fused.theta.iter().zip(&theta0).all(|(a, b)| a != b), "every θ moved (update_curv {update_curv})");
        theta0.clone_from(&fused.theta);
    }
}

/// The same identity through the whole network: MSE on a bias-only path (inputs zero) is
/// L(b) = Σ_k (b_k − τ_k)² / K, a separable quadratic; one AdaHessian step with β = 0, k = 1,
/// lr = 1 puts b on τ.
#[test]
fn one_adahessian_step_solves_a_separable_quadratic_through_the_network() {
    let gpu = gpu_or_skip!();
    let k = 5;
    let spec = ModelSpec {
        input: vec![3],
        layers: vec![Layer::Dense { out: k, bias: true }],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    };
    let net = Network::new(gpu, &spec, NetworkOptions::new(4, 1)).unwrap();
    let targets: Vec<f32> = (0..4).flat_map(|_| (0..k).map(|j| j as f32 - 2.0)).collect();
    let ds = adahessian_wgpu::data::Dataset::new(
        vec![0.0; 12],
        3,
        adahessian_wgpu::data::Targets::Values { values: targets, width: k },
    )
    .unwrap();
    let data = common::bind(gpu, &net, &ds);
    let config = AdaHessianConfig { lr: 1.0, betas: (0.0, 0.0), eps: 1e-12, ..Default::default() };
    let mut opt = Optimizer::new(gpu, &net, OptimizerConfig::AdaHessian(config)).unwrap();
    let indices = [0u32, 1, 2, 3];
    opt.step(gpu, &net, &Batch { data: &data, indices: &indices }).unwrap();
    let named = block_on(net.named_params(gpu)).unwrap();
    let bias = &named.iter().find(|(n, _, _)| n == "0.bias").unwrap().2;
    Tolerance { atol: 1e-5, rtol: 0.0 }.check("bias after one step", bias, &[-2.0, -1.0, 0.0, 1.0, 2.0]);
    let loss = block_on(net.loss(gpu, &Batch { data: &data, indices: &indices })).unwrap().loss;
    assert!(loss < 1e-9, "loss after the Newton step: {loss}");
}

/// ALGORITHM.md §4.5: hessian_power = 0 gives θ −= lr · m̂ / (1 + eps), whatever the curvature.
#[test]
fn hessian_power_zero_is_ema_momentum_sgd() {
    let gpu = gpu_or_skip!();
    let p = problem(gpu, small_mlp(Activation::Sigmoid, Loss::CrossEntropy), 8, 5);
    let c = AdaHessianConfig { hessian_power: 0.0, lr: 0.3, seed: 3, ..Default::default() };
    let mut opt = Optimizer::new(gpu, &p.net, OptimizerConfig::AdaHessian(c)).unwrap();
    let indices: Vec<u32> = (0..8).collect();
    let mut theta = to_f64(&block_on(p.net.params(gpu)).unwrap());
    let mut m = vec![0.0; theta.len()];
    for t in 1..=5 {
        let g = reference::gradient(&p.model, &theta, &p.x, &p.t, p.rows);
        let bias1 = 1.0 - 0.9f64.powi(t);
        for i in 0..theta.len() {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            theta[i] -= 0.3 * (m[i] / bias1) / (1.0 + 1e-4);
        }
        opt.step(gpu, &p.net, &Batch { data: &p.data, indices: &indices }).unwrap();
        let got = block_on(p.net.params(gpu)).unwrap();
        Tolerance { atol: 1e-5, rtol: 1e-4 }.check(&format!("k = 0 step {t}"), &got, &theta);
    }
}

/// ALGORITHM.md §4.6: with θ held still, v̂ (the EMA of D²) converges to Σ_j H_ij², the squared
/// row norm, which exceeds H_ii² wherever H has off-diagonal mass.
#[test]
fn second_moment_converges_to_squared_row_norms_not_the_diagonal() {
    let gpu = gpu_or_skip!();
    let spec = ModelSpec::mlp(&[2, 4, 3], Activation::Tanh, Loss::CrossEntropy);
    let p = problem(gpu, spec, 6, 8);
    let n = p.model.n_params;
    let theta = to_f64(&block_on(p.net.params(gpu)).unwrap());
    let h = reference::hessian(&p.model, &theta, &p.x, &p.t, p.rows);
    let row_norm2: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i * n + j].powi(2)).sum()).collect();
    let diag2: Vec<f64> = (0..n).map(|i| h[i * n + i].powi(2)).collect();
    // lr so small that θ does not move; β2 = 0.998 averages ~500 probes
    let c = AdaHessianConfig { lr: 1e-20, betas: (0.9, 0.998), seed: 11, ..Default::default() };
    let mut opt = Optimizer::new(gpu, &p.net, OptimizerConfig::AdaHessian(c)).unwrap();
    let indices: Vec<u32> = (0..6).collect();
    for _ in 0..1500 {
        opt.step(gpu, &p.net, &Batch { data: &p.data, indices: &indices }).unwrap();
    }
    let state = block_on(opt.read_state(gpu)).unwrap();
    let bias2 = 1.0 - 0.998f64.powi(1500);
    let v_hat: Vec<f64> = state.v.iter().map(|&v| v as f64 / bias2).collect();
    Tolerance { atol: 1e-6, rtol: 0.25 }.check("v̂ vs squared row norms", &v_hat, &row_norm2);
    // and where the row has off-diagonal mass, v̂ is clearly not H_ii²
    let mut distinguished = 0;
    for i in 0..n {
        if row_norm2[i] > 3.0 * diag2[i] && row_norm2[i] > 1e-4 {
            assert!(
                v_hat[i] > 1.8 * diag2[i],
                "param {i}: v̂ {} vs H_ii² {} (row norm² {})",
                v_hat[i],
                diag2[i],
                row_norm2[i]
            );
            distinguished += 1;
        }
    }
    eprintln!("{distinguished} of {n} parameters have row norm² > 3 H_ii²");
    assert!(distinguished > 0);
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let gpu = gpu_or_skip!();
    let run = || {
        let p = problem(gpu, small_mlp(Activation::Gelu, Loss::CrossEntropy), 8, 9);
        let c = AdaHessianConfig { seed: 4, n_samples: 2, ..Default::default() };
        let mut opt = Optimizer::new(gpu, &p.net, OptimizerConfig::AdaHessian(c)).unwrap();
        let mut order = adahessian_wgpu::train::BatchOrder::new(8, 3, 1);
        for _ in 0..6 {
            adahessian_wgpu::train::run_epoch(gpu, &p.net, &mut opt, &p.data, &mut order).unwrap();
        }
        block_on(p.net.params(gpu)).unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "two runs with one seed differ");
}

#[test]
fn invalid_hyper_parameters_are_refused_with_the_name_and_range() {
    let bad = [
        (OptimizerConfig::Adam(AdamConfig { lr: 0.0, ..Default::default() }), "lr"),
        (OptimizerConfig::Adam(AdamConfig { betas: (1.0, 0.999), ..Default::default() }), "beta1"),
        (OptimizerConfig::AdaHessian(AdaHessianConfig { hessian_power: 1.5, ..Default::default() }), "hessian_power"),
        (OptimizerConfig::AdaHessian(AdaHessianConfig { update_each: 0, ..Default::default() }), "update_each"),
        (OptimizerConfig::Sgd(SgdConfig { nesterov: true, ..Default::default() }), "nesterov"),
        (OptimizerConfig::SophiaH(SophiaHConfig { gamma: -1.0, ..Default::default() }), "gamma"),
    ];
    for (config, name) in bad {
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
    assert!(OptimizerConfig::default_for("nosuch").unwrap_err().to_string().contains("adahessian"));
}

/// The registry: every name parses to its configuration and back from `to_text`, with a changed
/// setting too; every method's update kernel is built; bad texts are refused with the reason.
#[test]
fn every_registered_method_round_trips_through_its_text_and_has_its_kernels() {
    let kernels = adahessian_wgpu::kernels();
    for (name, c) in OptimizerConfig::presets() {
        assert_eq!(OptimizerConfig::parse(name).unwrap(), c, "{name}");
        assert_eq!(OptimizerConfig::parse(&c.to_text()).unwrap(), c, "{name} → {}", c.to_text());
        let mut changed = c;
        changed.set("lr", "0.0123").unwrap();
        changed.set("grad_clip", "2.5").unwrap();
        assert_eq!(OptimizerConfig::parse(&changed.to_text()).unwrap(), changed, "{}", changed.to_text());
        for kept in [false, true] {
            assert!(kernels.contains(&update_kernel(c.method().kernel(kept))), "{name}: no pipeline");
        }
        assert_eq!(c.settings_json()["lr"].as_f64().map(|v| v as f32), Some(c.lr()), "{name}");
    }
    let list = OptimizerConfig::parse_list("adam, adamw(lr=3e-4, beta2=0.95), adahessian(update_each=2)").unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1], OptimizerConfig::Adam(AdamConfig { lr: 3e-4, betas: (0.9, 0.95), ..AdamConfig::adamw() }));
    for (text, needle) in [
        ("nosuch", "unknown optimizer 'nosuch'"),
        ("adam(lr=abc)", "lr = 'abc' is not a number"),
        ("adam(lr=0.1", "settings go in parentheses"),
        ("adam(lr)", "settings are key=value"),
        ("adam(hessian_power=0.5)", "adam has no setting 'hessian_power'"),
        ("adahessian(update_each_variant=sometimes)", "use fold"),
        ("adam(beta1=1.5)", "beta1 = 1.5 must be in [0, 1)"),
    ] {
        let err = OptimizerConfig::parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}
