//! Whole-model gradient and Hessian-vector products: the GPU against the f64 reference, and the
//! f64 reference against finite differences, for random architectures covering every activation
//! and both losses; the symmetry identity; the full Hessian of a tiny model.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::nn::KernelSet;
use adahessian_wgpu::nn::{reference, Activation, Batch, Layer, Loss, ModelSpec, Network, NetworkOptions, Phase};
use adahessian_wgpu::probe::SplitMix64;
use common::{dot, random_data, to_f64, uniform, Tolerance};

/// A random MLP: 1–3 hidden layers of random widths with random activations.
fn random_spec(rng: &mut SplitMix64, loss: Loss) -> ModelSpec {
    let input = 1 + rng.below(7);
    let hidden = 1 + rng.below(3);
    let mut layers = Vec::new();
    for _ in 0..hidden {
        layers.push(Layer::Dense { out: 1 + rng.below(9), bias: true });
        layers.push(Layer::Activation(Activation::ALL[rng.below(Activation::ALL.len())]));
    }
    layers.push(Layer::Dense { out: 2 + rng.below(4), bias: true });
    ModelSpec { input: vec![input], layers, loss, naming: adahessian_wgpu::nn::Naming::Sequential }
}

#[test]
fn reference_gradient_and_hvp_match_finite_differences() {
    let mut rng = SplitMix64::new(11);
    for case in 0..24 {
        let loss = if case % 2 == 0 { Loss::CrossEntropy } else { Loss::Mse };
        let spec = random_spec(&mut rng, loss);
        let model = spec.resolve().unwrap();
        let theta = to_f64(&spec.init_params(case).unwrap());
        let ds = random_data(&model, 1 + rng.below(5), 100 + case);
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let rows = ds.rows();
        let g = reference::gradient(&model, &theta, &x, &t, rows);
        let fd = reference::fd_gradient(&model, &theta, &x, &t, rows, 1e-6);
        Tolerance { atol: 1e-7, rtol: 1e-5 }.check(&format!("case {case} {spec:?} gradient vs FD"), &g, &fd);
        let z = to_f64(&uniform(&mut rng, model.n_params, -1.0, 1.0));
        let hz = reference::hvp(&model, &theta, &x, &t, rows, &z);
        let fd_hz = reference::fd_hvp(&model, &theta, &x, &t, rows, &z, 1e-5);
        Tolerance { atol: 1e-6, rtol: 1e-5 }.check(&format!("case {case} Hz vs FD"), &hz, &fd_hz);
    }
}

#[test]
fn gpu_gradient_and_hvp_match_reference_for_random_architectures() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(7);
    for case in 0..32 {
        // every architecture twice: the first kernels, then the tiled or the workgroup-staged ones
        let kernels = match case % 4 {
            0 | 2 => KernelSet::Naive,
            1 => KernelSet::Tiled,
            _ => KernelSet::Shared,
        };
        let loss = if case % 4 < 2 { Loss::CrossEntropy } else { Loss::Mse };
        let mut arch_rng = SplitMix64::new(7 + case / 2);
        let spec = random_spec(&mut arch_rng, loss);
        let model = spec.resolve().unwrap();
        let rows = if case % 8 < 2 { 1 } else { 1 + arch_rng.below(12) };
        let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(rows, case / 2), kernels).unwrap();
        let ds = random_data(&model, rows, 200 + case);
        let data = common::bind(gpu, &net, &ds);
        let indices: Vec<u32> = (0..rows as u32).collect();
        let batch = Batch { data: &data, indices: &indices };
        let theta = to_f64(&block_on(net.params(gpu)).unwrap());
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let z32 = uniform(&mut rng, model.n_params, -1.0, 1.0);
        let z = to_f64(&z32);
        let want = reference::pass(&model, &theta, &x, &t, rows, Some(&z));

        let (loss_gpu, g) = block_on(net.gradient(gpu, &batch)).unwrap();
        let label = format!("case {case} ({kernels:?} kernels) {:?} rows {rows}", spec.layers);
        Tolerance::F32_MODEL.check(&format!("{label} loss"), &[loss_gpu], &[want.loss]);
        Tolerance::F32_MODEL.check(&format!("{label} gradient"), &g, &want.grad);
        let hz = block_on(net.hvp(gpu, &batch, &z32)).unwrap();
        Tolerance::F32_MODEL.check(&format!("{label} Hz"), &hz, want.hz.as_ref().unwrap());
        let dd = block_on(net.directional_derivative(gpu, &batch, &z32)).unwrap();
        Tolerance::F32_MODEL.check(&format!("{label} <g, z>"), &[dd], &[dot(&want.grad, &z)]);
    }
}

#[test]
fn gpu_hvp_is_symmetric() {
    let gpu = gpu_or_skip!();
    for (i, act) in [Activation::Tanh, Activation::Gelu, Activation::Softplus].into_iter().enumerate() {
        let spec = ModelSpec::mlp(&[5, 8, 6, 3], act, Loss::CrossEntropy);
        let model = spec.resolve().unwrap();
        let net = Network::new(gpu, &spec, NetworkOptions::new(16, 3)).unwrap();
        let ds = random_data(&model, 16, 9 + i as u64);
        let data = common::bind(gpu, &net, &ds);
        let indices: Vec<u32> = (0..16).collect();
        let batch = Batch { data: &data, indices: &indices };
        let mut rng = SplitMix64::new(5);
        for _ in 0..3 {
            let u = uniform(&mut rng, model.n_params, -1.0, 1.0);
            let z = uniform(&mut rng, model.n_params, -1.0, 1.0);
            let hz = to_f64(&block_on(net.hvp(gpu, &batch, &z)).unwrap());
            let hu = to_f64(&block_on(net.hvp(gpu, &batch, &u)).unwrap());
            let (a, b) = (dot(&to_f64(&u), &hz), dot(&to_f64(&z), &hu));
            eprintln!("{act:?}: <u, Hz> = {a:.6e}, <z, Hu> = {b:.6e}");
            Tolerance::SYMMETRY.check_pair(&format!("{act:?}: ⟨u, Hz⟩ vs ⟨z, Hu⟩"), a, b);
        }
    }
}

#[test]
fn full_hessian_of_a_tiny_model_is_symmetric_and_matches_finite_differences() {
    // 2 → 4 → 3 with tanh: 12 + 15 = 27 parameters
    let spec = ModelSpec::mlp(&[2, 4, 3], Activation::Tanh, Loss::CrossEntropy);
    let model = spec.resolve().unwrap();
    assert!(model.n_params <= 50);
    let ds = random_data(&model, 5, 3);
    let theta = to_f64(&spec.init_params(1).unwrap());
    let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
    let n = model.n_params;
    let h = reference::hessian(&model, &theta, &x, &t, 5);
    // finite-difference Hessian: columns from central differences of the gradient
    let mut fd = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for i in 0..n {
        e[i] = 1.0;
        let col = reference::fd_hvp(&model, &theta, &x, &t, 5, &e, 1e-5);
        fd[i * n..(i + 1) * n].copy_from_slice(&col);
        e[i] = 0.0;
    }
    Tolerance { atol: 1e-7, rtol: 1e-5 }.check("Hessian vs FD Hessian", &h, &fd);
    for i in 0..n {
        for j in 0..n {
            assert!((h[i * n + j] - h[j * n + i]).abs() < 1e-12, "H[{i},{j}] != H[{j},{i}]");
        }
    }

    // and the GPU's unit-vector HVPs give the same matrix
    let gpu = gpu_or_skip!();
    let net = Network::new(gpu, &spec, NetworkOptions::new(5, 1)).unwrap();
    let data = common::bind(gpu, &net, &ds);
    let indices: Vec<u32> = (0..5).collect();
    let batch = Batch { data: &data, indices: &indices };
    let mut gpu_h = Vec::with_capacity(n * n);
    let mut e = vec![0f32; n];
    for i in 0..n {
        e[i] = 1.0;
        gpu_h.extend(block_on(net.hvp(gpu, &batch, &e)).unwrap());
        e[i] = 0.0;
    }
    Tolerance::F32_MODEL.check("GPU Hessian vs f64 Hessian", &gpu_h, &h);
    let max_asym = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| (gpu_h[i * n + j] - gpu_h[j * n + i]).abs())
        .fold(0f32, f32::max);
    eprintln!("GPU Hessian max |H - Hᵀ| = {max_asym:.3e}");
    assert!(max_asym < 1e-5);
}

#[test]
fn predict_returns_the_outputs_of_the_reference_forward_pass() {
    let gpu = gpu_or_skip!();
    let spec = ModelSpec::mlp(&[3, 5, 4], Activation::Gelu, Loss::CrossEntropy);
    let model = spec.resolve().unwrap();
    let net = Network::new(gpu, &spec, NetworkOptions::new(6, 2)).unwrap();
    let ds = random_data(&model, 6, 4);
    let data = common::bind(gpu, &net, &ds);
    let indices: Vec<u32> = (0..6).collect();
    let out = block_on(net.predict(gpu, &Batch { data: &data, indices: &indices })).unwrap();
    let theta = to_f64(&block_on(net.params(gpu)).unwrap());
    let want = reference::pass(&model, &theta, &to_f64(&ds.x), &to_f64(&ds.targets.as_f32()), 6, None);
    Tolerance::F32_MODEL.check("predict", &out, want.nodes.last().unwrap());
}

/// Every activation between two dense layers is folded into their tiled kernels (forward and
/// tangent into the layer before, backward and R-backward into the layer after): the passes lose
/// the activation's dispatches and the gradient, H·z and ⟨∇L, z⟩ still match the f64 reference.
#[test]
fn activations_folded_into_the_dense_epilogues_match_the_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(21);
    for act in Activation::ALL.into_iter().filter(|a| a.kernels().is_some()) {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            let spec = ModelSpec::mlp(&[5, 9, 6, 3], act, loss);
            let model = spec.resolve().unwrap();
            let rows = 7;
            let options = NetworkOptions::new(rows, 4);
            let tiled = Network::with_kernels(gpu, &spec, options, KernelSet::Tiled).unwrap();
            let naive = Network::with_kernels(gpu, &spec, options, KernelSet::Naive).unwrap();
            // two activations, each losing its forward and tangent (into the layer before) and its
            // backward and R-backward kernels (into the layer after)
            for phase in [Phase::Forward, Phase::Tangent, Phase::Backward, Phase::RBackward] {
                assert_eq!(tiled.dispatch_count(phase) + 2, naive.dispatch_count(phase), "{act:?} {phase:?}");
            }
            let ds = random_data(&model, rows, 40);
            let data = common::bind(gpu, &tiled, &ds);
            let indices: Vec<u32> = (0..rows as u32).collect();
            let batch = Batch { data: &data, indices: &indices };
            let theta = to_f64(&block_on(tiled.params(gpu)).unwrap());
            let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
            let z32 = uniform(&mut rng, model.n_params, -1.0, 1.0);
            let want = reference::pass(&model, &theta, &x, &t, rows, Some(&to_f64(&z32)));
            let label = format!("{act:?} {loss:?}");
            let (l, g) = block_on(tiled.gradient(gpu, &batch)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} loss"), &[l], &[want.loss]);
            Tolerance::F32_MODEL.check(&format!("{label} gradient"), &g, &want.grad);
            let hz = block_on(tiled.hvp(gpu, &batch, &z32)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} Hz"), &hz, want.hz.as_ref().unwrap());
            let dd = block_on(tiled.directional_derivative(gpu, &batch, &z32)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} <g, z>"), &[dd], &[dot(&want.grad, &to_f64(&z32))]);
            let out = block_on(tiled.predict(gpu, &batch)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} outputs"), &out, want.nodes.last().unwrap());
        }
    }
}
