//! Normalisation layers (BatchNorm1d/2d, LayerNorm), climbing the ladder: (1) the f64 reference
//! of every pass against central finite differences of the pass it differentiates, in train
//! mode (batch statistics) and BatchNorm's eval mode (running statistics); (2) the GPU kernels
//! against the reference at edge sizes (batch 1 and 2, odd channel counts, 1×1 planes, groups
//! longer than a workgroup); (3) whole models with normalisation: gradient, H·z and the dense
//! Hessian against the f64 model, symmetry; running statistics as PyTorch updates them.

mod common;

use adahessian_wgpu::nn::norm::{self, NormKind, Statistics};
use adahessian_wgpu::probe::SplitMix64;
use common::Tolerance;

fn normal(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| scale * rng.normal()).collect()
}

fn axpy(a: &[f64], eps: f64, d: &[f64]) -> Vec<f64> {
    a.iter().zip(d).map(|(x, y)| x + eps * y).collect()
}

fn central(f: impl Fn(f64) -> Vec<f64>, eps: f64) -> Vec<f64> {
    let (p, m) = (f(eps), f(-eps));
    p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * eps)).collect()
}

/// The shapes the reference is checked on: BatchNorm2d with a plane, BatchNorm1d (plane 1) at
/// batch 2 (m = 2, the smallest a train-mode BatchNorm takes), LayerNorm rows.
fn kinds() -> Vec<(NormKind, usize)> {
    vec![
        (NormKind::Batch { channels: 3, plane: 4 }, 2),
        (NormKind::Batch { channels: 5, plane: 1 }, 2),
        (NormKind::Batch { channels: 2, plane: 1 }, 7),
        (NormKind::Layer { features: 6 }, 3),
        (NormKind::Layer { features: 2 }, 1),
    ]
}

/// Every pass of the reference is the derivative of the one before it: backward against central
/// differences of Σ w·y (w a random cotangent), tangent against differences of the forward,
/// R-backward against differences of the backward along (t_x, z_γ) with g_y moving along r_y.
#[test]
fn the_norm_reference_matches_central_differences() {
    let mut rng = SplitMix64::new(11);
    let eps_fd = 1e-6;
    let tol = Tolerance { atol: 1e-7, rtol: 1e-6 };
    for (kind, rows) in kinds() {
        let n = rows * kind.row_len();
        let p = kind.params();
        let x = normal(&mut rng, n, 1.5);
        let gamma: Vec<f64> = (0..p).map(|_| 0.5 + rng.next_f64()).collect();
        let beta = normal(&mut rng, p, 0.3);
        let (t, zg, zb) = (normal(&mut rng, n, 1.0), normal(&mut rng, p, 1.0), normal(&mut rng, p, 1.0));
        let (gy, ry) = (normal(&mut rng, n, 1.0), normal(&mut rng, n, 1.0));
        let run_mean = normal(&mut rng, p, 0.5);
        let run_var: Vec<f64> = (0..p).map(|_| 0.2 + rng.next_f64()).collect();
        let modes: Vec<(&str, Statistics)> = match kind {
            NormKind::Batch { .. } => {
                vec![("train", Statistics::Batch), ("eval", Statistics::Fixed { mean: &run_mean, var: &run_var })]
            }
            NormKind::Layer { .. } => vec![("train", Statistics::Batch)],
        };
        for (mode, src) in modes {
            let what = format!("{kind:?} rows {rows} {mode}");
            let eps = norm::DEFAULT_EPS;
            let f = |x: &[f64], g: &[f64], b: &[f64]| norm::fwd(kind, rows, g, b, x, eps, src).0;
            let dot = |a: &[f64], b: &[f64]| common::dot(a, b);
            // backward = gradient of Σ g_y·y
            let (g_gamma, g_beta, g_x) = norm::bwd(kind, rows, &gamma, &x, &gy, eps, src);
            let fd_x: Vec<f64> = (0..n)
                .map(|i| {
                    let mut e = vec![0.0; n];
                    e[i] = 1.0;
                    central(|h| vec![dot(&gy, &f(&axpy(&x, h, &e), &gamma, &beta))], eps_fd)[0]
                })
                .collect();
            tol.check(&format!("{what} g_x"), &g_x, &fd_x);
            let unit = |i: usize| (0..p).map(|j| f64::from(u8::from(i == j))).collect::<Vec<f64>>();
            let fd_gamma: Vec<f64> = (0..p)
                .map(|i| central(|h| vec![dot(&gy, &f(&x, &axpy(&gamma, h, &unit(i)), &beta))], eps_fd)[0])
                .collect();
            let fd_beta: Vec<f64> = (0..p)
                .map(|i| central(|h| vec![dot(&gy, &f(&x, &gamma, &axpy(&beta, h, &unit(i))))], eps_fd)[0])
                .collect();
            tol.check(&format!("{what} g_γ"), &g_gamma, &fd_gamma);
            tol.check(&format!("{what} g_β"), &g_beta, &fd_beta);
            // tangent = directional derivative of the forward along (t, z_γ, z_β)
            let t_y = norm::tangent(kind, rows, &gamma, &zg, &zb, &x, Some(&t), eps, src);
            let fd_t = central(|h| f(&axpy(&x, h, &t), &axpy(&gamma, h, &zg), &axpy(&beta, h, &zb)), eps_fd);
            tol.check(&format!("{what} t_y"), &t_y, &fd_t);
            // R-backward = directional derivative of the backward along (t, z_γ) and g_y + h r_y
            let (r_gamma, r_beta, r_x) = norm::rbwd(kind, rows, &gamma, &zg, &x, Some(&t), &gy, &ry, eps, src);
            let b = |h: f64| {
                let (a, bb, c) =
                    norm::bwd(kind, rows, &axpy(&gamma, h, &zg), &axpy(&x, h, &t), &axpy(&gy, h, &ry), eps, src);
                [a, bb, c].concat()
            };
            let fd_r = central(b, eps_fd);
            tol.check(&format!("{what} R{{g_γ}}"), &r_gamma, &fd_r[..p]);
            tol.check(&format!("{what} R{{g_β}}"), &r_beta, &fd_r[p..2 * p]);
            tol.check(&format!("{what} R{{g_x}}"), &r_x, &fd_r[2 * p..]);
            // an input that does not depend on θ: no tangent at all
            let t0 = norm::tangent(kind, rows, &gamma, &zg, &zb, &x, None, eps, src);
            let fd_t0 = central(|h| f(&x, &axpy(&gamma, h, &zg), &axpy(&beta, h, &zb)), eps_fd);
            tol.check(&format!("{what} t_y without input tangent"), &t0, &fd_t0);
        }
    }
}

/// The running statistics follow PyTorch's rule (momentum 0.1, unbiased variance), checked on
/// numbers worked by hand.
#[test]
fn running_statistics_follow_pytorchs_update() {
    // one channel, m = 4 values 1, 2, 3, 6: μ = 3, biased σ² = 3.5, unbiased 14/3
    let kind = NormKind::Batch { channels: 1, plane: 2 };
    let s = norm::stats(kind, 2, &[1.0, 2.0, 3.0, 6.0], norm::DEFAULT_EPS, Statistics::Batch);
    assert_eq!((s.mean[0], s.var[0]), (3.0, 3.5));
    let (mut mean, mut var) = (vec![0.0], vec![1.0]);
    norm::update_running(&mut mean, &mut var, &s, 4, norm::DEFAULT_MOMENTUM);
    assert!((mean[0] - 0.3).abs() < 1e-15 && (var[0] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-15, "{mean:?} {var:?}");
}

use adahessian_wgpu::block_on;
use adahessian_wgpu::nn::KernelSet;
use adahessian_wgpu::nn::{reference, Batch, BnMode, ModelSpec, Network, NetworkOptions, ParamRole};
use common::{random_data, to_f64, uniform};

/// Models with normalisation at the edges the kernels must handle: BatchNorm2d at batch 1 (the
/// plane alone gives m = 9) and on 1×1 planes at batch 2 (m = 2), odd channel counts, a
/// channel longer than a workgroup (batch 8 × 7×7 = 392 values), BatchNorm1d and LayerNorm on
/// flat features, LayerNorm on an image row, normalisation as the first layer (its input has no
/// tangent) and before the loss, with smooth and ReLU activations around it.
fn norm_models() -> Vec<(&'static str, usize)> {
    vec![
        ("input 2x3x3; conv2d(3, k=2, p=1); batchnorm2d; tanh; flatten; linear(3)", 1),
        ("input 3x1x1; conv2d(5, k=1); batchnorm2d; relu; flatten; linear(2)", 2),
        ("input 1x7x7; conv2d(3, k=3, p=1); batchnorm2d; relu; avgpool2d(7); flatten; linear(4)", 8),
        ("input 1x4x4; batchnorm2d; conv2d(2, k=3); softplus; flatten; batchnorm1d; linear(3)", 3),
        ("input 5; linear(7); batchnorm1d; gelu; linear(6); layernorm; tanh; linear(3)", 5),
        ("input 2x3x3; conv2d(4, k=3, p=1); layernorm; sigmoid; flatten; linear(2)", 2),
        ("input 6; layernorm; linear(5); relu; linear(4); batchnorm1d; loss mse", 4),
    ]
}

/// Random γ, β (so the affine part is exercised, not just γ = 1, β = 0) and, for eval mode,
/// random running statistics: the GPU's loss, gradient, H·z and directional derivative against
/// the f64 model in train mode and in eval mode, with every kernel set.
#[test]
fn gpu_models_with_normalisation_match_the_f64_reference_in_both_modes() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(5);
    for (case, (text, rows)) in norm_models().into_iter().enumerate() {
        check_against_the_reference(gpu, &mut rng, case, text, rows, rows);
    }
}

/// Groups longer than one workgroup's run of the reductions (`KernelTuning::norm_split_len`:
/// 2,048 values on a discrete GPU, whose tuning runs here on any adapter), so that the partial
/// sums of several chunks, the last one shorter, are folded into the statistics: a BatchNorm
/// channel of 12 × 40 × 40 = 19,200 values (10 chunks), the same network on a batch of 7 (11,200
/// values: fewer chunks than it was planned for), a LayerNorm row of 2 × 70 × 70 = 9,800 values
/// (5 chunks); then the same with the adapter's own tuning (one chunk each on a CPU adapter,
/// whose chunks are 65,536 values: f32 sums that long through BatchNorm's centring are not
/// comparable with f64 at these tolerances, the chunking is the same code).
#[test]
fn normalisation_groups_of_several_reduction_chunks_match_the_f64_reference() {
    use adahessian_wgpu::gpu::{AdapterClass, Gpu, GpuOptions};
    let own = gpu_or_skip!();
    let options = GpuOptions { tune_as: Some(AdapterClass::Discrete), ..GpuOptions::from_env().unwrap() };
    let discrete = &Gpu::new_blocking(options).unwrap();
    assert_eq!(adahessian_wgpu::nn::KernelTuning::for_class(discrete.adapter_class()).norm_split_len, 2048);
    let mut rng = SplitMix64::new(6);
    let bn = "input 1x40x40; conv2d(2, k=3, p=1); batchnorm2d; relu; avgpool2d(40); flatten; linear(3)";
    let ln = "input 2x70x70; layernorm; avgpool2d(70); flatten; linear(2)";
    for (i, gpu) in [discrete, own].into_iter().enumerate() {
        let case = 20 + 3 * i;
        check_against_the_reference(gpu, &mut rng, case, bn, 12, 12);
        check_against_the_reference(gpu, &mut rng, case + 1, bn, 12, 7);
        check_against_the_reference(gpu, &mut rng, case + 2, ln, 3, 3);
    }
}

/// One model planned for batches of `planned` rows, run on `rows`, with every kernel set.
fn check_against_the_reference(
    gpu: &adahessian_wgpu::gpu::Gpu,
    rng: &mut SplitMix64,
    case: usize,
    text: &str,
    planned: usize,
    rows: usize,
) {
    for kernels in [KernelSet::Naive, KernelSet::Tiled, KernelSet::Shared] {
        let spec = ModelSpec::parse(text).unwrap();
        let model = spec.resolve().unwrap();
        let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(planned, case as u64), kernels).unwrap();
        let mut theta32 = block_on(net.params(gpu)).unwrap();
        for p in model.params.iter().filter(|p| !p.role.is_weight()) {
            for v in &mut theta32[p.offset..p.offset + p.len()] {
                *v += (0.4 * rng.normal()) as f32;
            }
        }
        net.set_params(gpu, &theta32).unwrap();
        let running32 = common::randomize_running(gpu, &net, rng);
        let ds = random_data(&model, rows, 300 + case as u64);
        let data = common::bind(gpu, &net, &ds);
        let indices: Vec<u32> = (0..rows as u32).collect();
        let batch = Batch { data: &data, indices: &indices };
        let theta = to_f64(&theta32);
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let z32 = uniform(rng, model.n_params, -1.0, 1.0);
        let z = to_f64(&z32);
        let running = to_f64(&running32);
        for mode in [BnMode::Train, BnMode::Eval] {
            net.set_bn_mode(mode);
            let ref_mode = common::norm_mode(mode, &running);
            let want = reference::pass_in(ref_mode, &model, &theta, &x, &t, rows, Some(&z));
            let label = format!("case {case} '{text}' rows {rows} of {planned} {kernels:?} {}", mode.name());
            let (loss, g) = block_on(net.gradient(gpu, &batch)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} loss"), &[loss], &[want.loss]);
            // 1e-4 of the vector's scale: see Tolerance::scaled_by (a wrong rule is off by O(1))
            let tol = |want: &[f64]| Tolerance::F32_MODEL.scaled_by(want, 1e-4);
            tol(&want.grad).check(&format!("{label} gradient"), &g, &want.grad);
            let hz = block_on(net.hvp(gpu, &batch, &z32)).unwrap();
            let want_hz = want.hz.as_ref().unwrap();
            tol(want_hz).check(&format!("{label} Hz"), &hz, want_hz);
            let dd = block_on(net.directional_derivative(gpu, &batch, &z32)).unwrap();
            let want_dd = common::dot(&want.grad, &z);
            Tolerance::F32_MODEL.check(&format!("{label} ⟨∇L, z⟩"), &[dd], &[want_dd]);
        }
        net.set_bn_mode(BnMode::Train);
        gpu.check().unwrap();
    }
}

/// The whole-model reference with normalisation against finite differences (gradient and H·z),
/// in both modes, so the GPU is compared with a checked oracle.
#[test]
fn the_reference_model_with_normalisation_matches_finite_differences() {
    let mut rng = SplitMix64::new(9);
    for (case, (text, rows)) in norm_models().into_iter().enumerate() {
        let spec = ModelSpec::parse(text).unwrap();
        let model = spec.resolve().unwrap();
        let mut theta = to_f64(&spec.init_params(case as u64).unwrap());
        for p in model.params.iter().filter(|p| !p.role.is_weight()) {
            theta[p.offset..p.offset + p.len()].iter_mut().for_each(|v| *v += 0.4 * rng.normal());
        }
        let running: Vec<f64> = model.initial_running().iter().map(|v| *v as f64 + 0.2 * rng.next_f64()).collect();
        let ds = random_data(&model, rows, 400 + case as u64);
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        for mode in [reference::NormMode::Train, reference::NormMode::Eval(&running)] {
            let loss = |th: &[f64]| reference::pass_in(mode, &model, th, &x, &t, rows, None).loss;
            let grad = |th: &[f64]| reference::pass_in(mode, &model, th, &x, &t, rows, None).grad;
            let g = grad(&theta);
            let fd: Vec<f64> = (0..theta.len())
                .map(|i| {
                    let mut e = vec![0.0; theta.len()];
                    e[i] = 1.0;
                    central(|h| vec![loss(&axpy(&theta, h, &e))], 1e-6)[0]
                })
                .collect();
            let label = format!("case {case} '{text}' {mode:?}");
            Tolerance { atol: 1e-7, rtol: 1e-5 }.check(&format!("{label} gradient vs FD"), &g, &fd);
            let z = normal(&mut rng, theta.len(), 1.0);
            let hz = reference::pass_in(mode, &model, &theta, &x, &t, rows, Some(&z)).hz.unwrap();
            let fd_hz = central(|h| grad(&axpy(&theta, h, &z)), 1e-5);
            Tolerance { atol: 1e-6, rtol: 1e-5 }.check(&format!("{label} Hz vs FD"), &hz, &fd_hz);
        }
    }
}

/// AdaHessian and Adam on a BatchNorm CNN, step by step against the f64 optimizer with the same
/// probes (train-mode H·z through the batch statistics, γ and β not spatially averaged); the
/// running statistics after each training step as PyTorch's update of them; evaluation uses
/// them (eval mode), and a second run from the same seed is bit-identical.
#[test]
fn training_steps_with_batchnorm_follow_the_f64_optimizer_and_update_the_running_statistics() {
    use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
    let gpu = gpu_or_skip!();
    // every normalisation follows a smooth activation: a bias that reaches a train-mode
    // BatchNorm linearly (directly, or through a ReLU active on the whole batch) has an exactly
    // zero gradient and curvature, so its AdaHessian step is f32 noise over eps (the reason
    // ResNets write bias=False there), which no f64 comparison can match
    let text = "input 2x4x4; conv2d(3, k=3, p=1); tanh; batchnorm2d; avgpool2d(2); flatten; linear(4); tanh; \
                batchnorm1d; linear(3)";
    for method in ["adahessian", "adam"] {
        let spec = ModelSpec::parse(text).unwrap();
        let p = common::problem(gpu, spec.clone(), 6, 3);
        common::compare(gpu, &p, OptimizerConfig::parse(method).unwrap(), 4);
        // the running statistics of those 4 steps, replayed in f64 from the same θ trajectory
        let net = Network::new(gpu, &spec, NetworkOptions::new(6, 3)).unwrap();
        let data = common::bind(gpu, &net, &common::random_data(&p.model, 6, 4));
        let ds = common::random_data(&p.model, 6, 4);
        let x = to_f64(&ds.x);
        let indices: Vec<u32> = (0..6).collect();
        let batch = Batch { data: &data, indices: &indices };
        let mut opt = Optimizer::new(gpu, &net, OptimizerConfig::parse(method).unwrap()).unwrap();
        let mut running = to_f64(&p.model.initial_running());
        for _ in 0..4 {
            let theta = to_f64(&block_on(net.params(gpu)).unwrap());
            running = reference::running_after(&p.model, &theta, &x, 6, &running);
            opt.step(gpu, &net, &batch).unwrap();
        }
        let got = block_on(net.running_stats(gpu)).unwrap();
        Tolerance::F32_MODEL.check(&format!("{method}: running statistics after 4 steps"), &got, &running);
        assert_eq!(net.batches_tracked(), 4);
        // evaluation is eval mode: the f64 model on the running statistics
        let theta = to_f64(&block_on(net.params(gpu)).unwrap());
        let t = to_f64(&ds.targets.as_f32());
        let want = reference::pass_in(reference::NormMode::Eval(&running), &p.model, &theta, &x, &t, 6, None).loss;
        let got = block_on(net.evaluate(gpu, &data)).unwrap().loss;
        Tolerance::F32_MODEL.check(&format!("{method}: evaluation on the running statistics"), &[got], &[want]);
        // the same seed and batches again: bit-identical weights and statistics
        let again = Network::new(gpu, &spec, NetworkOptions::new(6, 3)).unwrap();
        let data2 = common::bind(gpu, &again, &ds);
        let batch2 = Batch { data: &data2, indices: &indices };
        let mut opt2 = Optimizer::new(gpu, &again, OptimizerConfig::parse(method).unwrap()).unwrap();
        for _ in 0..4 {
            opt2.step(gpu, &again, &batch2).unwrap();
        }
        assert_eq!(block_on(again.params(gpu)).unwrap(), block_on(net.params(gpu)).unwrap(), "{method}: θ rerun");
        assert_eq!(block_on(again.running_stats(gpu)).unwrap(), block_on(net.running_stats(gpu)).unwrap());
    }
}

/// What a user meets: γ = 1 and β = 0 at init with PyTorch's names and shapes, the buffers under
/// PyTorch's names, the text round trip, clear refusals (wrong input shape, arguments, a batch
/// with one value per channel in train mode, which eval mode accepts).
#[test]
fn normalisation_layers_are_named_initialised_and_refused_as_pytorch_does() {
    let spec =
        ModelSpec::parse("input 3x4x4; conv2d(8, k=3); batchnorm2d; relu; flatten; layernorm; linear(2)").unwrap();
    let model = spec.resolve().unwrap();
    let names: Vec<(&str, &[usize])> = model.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect();
    assert_eq!(
        names,
        [
            ("0.weight", &[8, 3, 3, 3][..]),
            ("0.bias", &[8][..]),
            ("1.weight", &[8][..]),
            ("1.bias", &[8][..]),
            ("4.weight", &[32][..]),
            ("4.bias", &[32][..]),
            ("5.weight", &[2, 32][..]),
            ("5.bias", &[2][..])
        ]
    );
    let theta = spec.init_params(0).unwrap();
    for p in model.params.iter().filter(|p| matches!(p.role, ParamRole::NormScale | ParamRole::NormShift)) {
        let want = if p.role == ParamRole::NormScale { 1.0 } else { 0.0 };
        assert!(theta[p.offset..p.offset + p.len()].iter().all(|&v| v == want), "{} at init", p.name);
    }
    assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
    assert_eq!(ModelSpec::parse(&spec.to_json()).unwrap(), spec);
    for (bad, says) in [
        ("input 4; batchnorm2d; linear(2)", "batchnorm1d on flat"),
        ("input 1x4x4; batchnorm1d; flatten; linear(2)", "batchnorm2d on images"),
        ("input 4; batchnorm1d(4); linear(2)", "takes no arguments"),
        ("input 4; layernorm(eps=1e-3); linear(2)", "takes no arguments"),
    ] {
        let err = ModelSpec::parse(bad).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    let gpu = gpu_or_skip!();
    let spec = ModelSpec::parse("input 3; linear(4); batchnorm1d; relu; linear(2)").unwrap();
    let net = Network::new(gpu, &spec, NetworkOptions::new(4, 0)).unwrap();
    let buffers = block_on(net.named_buffers(gpu)).unwrap();
    let names: Vec<&str> = buffers.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(names, ["1.running_mean", "1.running_var", "1.num_batches_tracked"]);
    assert_eq!((buffers[0].2.clone(), buffers[1].2.clone()), (vec![0.0; 4], vec![1.0; 4]));
    let data = common::bind(gpu, &net, &random_data(&spec.resolve().unwrap(), 4, 1));
    let one = [0u32];
    let batch = Batch { data: &data, indices: &one };
    let err = block_on(net.gradient(gpu, &batch)).unwrap_err().to_string();
    assert!(err.contains("more than one value per channel") && err.contains("--bn-mode eval"), "{err}");
    net.set_bn_mode(BnMode::Eval);
    assert!(block_on(net.gradient(gpu, &batch)).is_ok(), "eval mode takes a batch of one");
    // inside a residual block the refusal names the block's nn.Sequential index (2)
    let spec = ModelSpec::parse("input 3; linear(4); relu; residual { linear(4); batchnorm1d }; linear(2)").unwrap();
    let net = Network::new(gpu, &spec, NetworkOptions::new(4, 0)).unwrap();
    let data = common::bind(gpu, &net, &random_data(&spec.resolve().unwrap(), 4, 1));
    let err = block_on(net.gradient(gpu, &Batch { data: &data, indices: &one })).unwrap_err().to_string();
    assert!(err.contains("BatchNorm (layer 2)"), "{err}");
    let err = net.set_tensor(gpu, "1.running_var", &[4], &[1.0, -1.0, 1.0, 1.0]).unwrap_err().to_string();
    assert!(err.contains("1.running_var"), "{err}");
}
