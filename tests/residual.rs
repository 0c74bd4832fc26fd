//! Residual networks as graphs: the text form and its names, the option-A shortcut against its
//! adjoint, the whole-model f64 reference of branching models against finite differences, and
//! the GPU's loss, gradient, H·z, symmetry and dense Hessian against it, with BatchNorm in both
//! modes. The block input is read twice (the body and the shortcut), so every cotangent there is
//! a sum: a kernel that assigned instead of accumulating would fail all of these.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::nn::KernelSet;
use adahessian_wgpu::nn::{reference, Batch, BnMode, LayerOp, ModelSpec, Network, NetworkOptions, ParamRole};
use adahessian_wgpu::probe::SplitMix64;
use common::{dot, random_data, to_f64, uniform, Tolerance};

/// Branching models at their edges: an identity block on flat features and one starting at the
/// data (the block input is node 0, which needs no cotangent), option A with a stride and added
/// channels, BatchNorm inside the body, two blocks back to back (the second block's input is the
/// first block's output after an activation), a body that starts with an activation, odd sizes.
fn residual_models() -> Vec<(&'static str, usize)> {
    vec![
        ("input 5; linear(6); tanh; residual { linear(6); tanh; linear(6) }; linear(3)", 4),
        ("input 4; residual { linear(4); softplus; linear(4) }; tanh; linear(2); loss mse", 3),
        (
            "input 2x5x5; conv2d(2, k=3, p=1); relu; residual(shortcut=pad) { conv2d(4, k=3, s=2, p=1); tanh; \
             conv2d(4, k=3, p=1) }; relu; flatten; linear(3)",
            2,
        ),
        (
            "input 1x4x4; conv2d(3, k=3, p=1); batchnorm2d; relu; residual { conv2d(3, k=3, p=1); batchnorm2d; \
             tanh; conv2d(3, k=1); batchnorm2d }; relu; residual(shortcut=pad) { conv2d(5, k=3, s=2, p=1); \
             batchnorm2d; gelu; conv2d(5, k=3, p=1) }; globalavgpool; flatten; linear(3)",
            3,
        ),
        ("input 3; linear(4); residual { tanh; linear(4) }; residual { sigmoid; linear(4) }; linear(2)", 5),
        // option B (1×1 conv + BatchNorm on the shortcut, run before the body) with a stride and
        // odd sizes, then an identity block reading the first block's output after a ReLU
        (
            "input 2x5x5; conv2d(2, k=3, p=1); relu; residual(shortcut=conv) { conv2d(3, k=3, s=2, p=1, \
             bias=false); batchnorm2d; tanh; conv2d(3, k=3, p=1) }; relu; residual { conv2d(3, k=3, p=1); \
             batchnorm2d }; flatten; linear(3)",
            3,
        ),
        // option B at the data (the block input is node 0) and a channel change without a stride
        ("input 3x3x3; residual(shortcut=conv) { conv2d(5, k=3, p=1); softplus; conv2d(5, k=1) }; tanh; flatten; linear(2)", 2),
        // a ResNet's basic block: bias-free convolutions before BatchNorm, then a bias-free head
        (
            "input 2x4x4; conv2d(4, k=3, p=1, bias=false); batchnorm2d; relu; residual { conv2d(4, k=3, p=1, \
             bias=false); batchnorm2d; relu; conv2d(4, k=3, p=1, bias=false); batchnorm2d }; relu; globalavgpool; \
             flatten; linear(3, bias=false)",
            2,
        ),
    ]
}

#[test]
fn residual_text_round_trips_with_module_names_and_clear_refusals() {
    let spec = ModelSpec::parse(residual_models()[3].0).unwrap();
    assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
    assert_eq!(ModelSpec::parse(&spec.to_line()).unwrap(), spec);
    assert_eq!(ModelSpec::parse(&spec.to_json()).unwrap(), spec);
    let model = spec.resolve().unwrap();
    let names: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
    // nn.Sequential(Conv2d, BatchNorm2d, ReLU, Residual(body=Sequential(...)), ReLU, Residual, ...)
    assert_eq!(&names[..4], ["0.weight", "0.bias", "1.weight", "1.bias"]);
    assert!(
        names.contains(&"3.body.0.weight") && names.contains(&"3.body.4.bias") && names.contains(&"5.body.3.weight")
    );
    assert!(names.contains(&"8.weight"), "{names:?}");
    assert_eq!(
        model.running.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>(),
        ["1", "3.body.1", "3.body.4", "5.body.1"]
    );
    // option B: the projection's tensors are the block's `shortcut.0` (1×1 conv, no bias) and
    // `shortcut.1` (BatchNorm), after its body's, as PyTorch registers them; the text keeps it
    let b = ModelSpec::parse(residual_models()[5].0).unwrap();
    assert_eq!(ModelSpec::parse(&b.to_line()).unwrap(), b);
    assert_eq!(ModelSpec::parse(&b.to_json()).unwrap(), b);
    assert!(b.to_line().contains("residual(shortcut=conv)"), "{}", b.to_line());
    let bm = b.resolve().unwrap();
    let names: Vec<&str> = bm.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        &names[2..10],
        [
            "2.body.0.weight",
            "2.body.1.weight",
            "2.body.1.bias",
            "2.body.3.weight",
            "2.body.3.bias",
            "2.shortcut.0.weight",
            "2.shortcut.1.weight",
            "2.shortcut.1.bias"
        ]
    );
    assert_eq!(bm.param("2.shortcut.0.weight").unwrap().shape, [3, 2, 1, 1]);
    assert_eq!(
        bm.running.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>(),
        ["2.body.1", "2.shortcut.1", "4.body.1"]
    );
    // 1 → 3 channels (one zero channel each side) and 6x6 → 3x3: option A's shape
    assert!(ModelSpec::parse("input 1x6x6; residual(shortcut=pad) { conv2d(3, k=3, s=2, p=1) }; flatten; linear(2)")
        .is_ok());
    // bias=false: no bias tensor, and the text keeps it
    let basic = ModelSpec::parse(residual_models()[7].0).unwrap();
    let basic_model = basic.resolve().unwrap();
    assert!(
        basic_model.params.iter().all(|p| !p.name.ends_with("0.bias") && p.name != "7.bias"),
        "{:?}",
        basic_model.params
    );
    assert_eq!(basic_model.bias_sink, 4);
    assert_eq!(ModelSpec::parse(&basic.to_line()).unwrap(), basic);
    assert!(basic.to_line().contains("conv2d(4, k=3, s=1, p=1, bias=false)"), "{}", basic.to_line());
    for (bad, says) in [
        ("input 4; linear(2, bias=no)", "use bias=true or bias=false"),
        ("input 4; residual { linear(5) }; linear(2)", "identity shortcut needs the body to keep"),
        ("input 1x4x4; residual(shortcut=pad) { conv2d(2, k=3, p=1) }; flatten; linear(2)", "even number"),
        ("input 1x6x6; residual(shortcut=pad) { conv2d(4, k=3, s=2, p=1) }; flatten; linear(2)", "even number"),
        ("input 4; residual { linear(4); residual { linear(4) } }; linear(2)", "do not nest"),
        ("input 4; residual { linear(4); linear(2)", "never closed"),
        ("input 4; linear(4) }; linear(2)", "closes no residual block"),
        ("input 4; residual { }; linear(2)", "has no layers"),
        ("input 4; residual; linear(4) }; linear(2)", "needs '{'"),
        ("input 4; residual(shortcut=conv) { linear(4) }; linear(2)", "option B) needs images"),
        ("input 1x6x6; residual(shortcut=conv) { conv2d(2, k=2) }; flatten; linear(2)", "one stride s"),
        ("input 4; residual(shortcut=bogus) { linear(4) }; linear(2)", "unknown shortcut 'bogus'"),
    ] {
        let err = ModelSpec::parse(bad).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// ⟨s x, y⟩ = ⟨x, sᵀ y⟩ for option A, and s copies exactly the strided positions of the middle
/// channels (p = 1 zero channel on each side for 2 → 4 channels).
#[test]
fn the_option_a_shortcut_and_its_adjoint() {
    let spec = ModelSpec::parse("input 2x5x5; residual(shortcut=pad) { conv2d(4, k=3, s=2, p=1) }; flatten; linear(2)")
        .unwrap();
    let model = spec.resolve().unwrap();
    let geom =
        model.layers.iter().find_map(|l| if let LayerOp::Add(add) = l.op { Some(add.shortcut) } else { None }).unwrap();
    assert_eq!((geom.stride, geom.pad, geom.h_out, geom.w_out), (2, 1, 3, 3));
    let mut rng = SplitMix64::new(1);
    let rows = 2;
    let x: Vec<f64> = (0..rows * geom.in_len()).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..rows * geom.out_len()).map(|_| rng.normal()).collect();
    let sx = geom.apply(rows, &x);
    assert!((dot(&sx, &y) - dot(&x, &geom.adjoint(rows, &y))).abs() < 1e-12);
    // row 1, output channel 2 = input channel 1, position (1, 2) = input (2, 4)
    assert_eq!(sx[((4 + 2) * 3 + 1) * 3 + 2], x[((2 + 1) * 5 + 2) * 5 + 4]);
    assert!(sx[..9].iter().all(|&v| v == 0.0) && sx[27..36].iter().all(|&v| v == 0.0), "zero channels");
}

fn perturb_norm_params(model: &adahessian_wgpu::nn::Resolved, theta: &mut [f32], rng: &mut SplitMix64) {
    for p in model.params.iter().filter(|p| matches!(p.role, ParamRole::NormScale | ParamRole::NormShift)) {
        theta[p.offset..p.offset + p.len()].iter_mut().for_each(|v| *v += (0.3 * rng.normal()) as f32);
    }
}

#[test]
fn the_reference_of_residual_models_matches_finite_differences() {
    let mut rng = SplitMix64::new(3);
    for (case, (text, rows)) in residual_models().into_iter().enumerate() {
        let spec = ModelSpec::parse(text).unwrap();
        let model = spec.resolve().unwrap();
        let mut theta32 = spec.init_params(case as u64).unwrap();
        perturb_norm_params(&model, &mut theta32, &mut rng);
        let theta = to_f64(&theta32);
        let ds = random_data(&model, rows, 50 + case as u64);
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let g = reference::gradient(&model, &theta, &x, &t, rows);
        let fd = reference::fd_gradient(&model, &theta, &x, &t, rows, 1e-6);
        Tolerance { atol: 1e-7, rtol: 1e-5 }.check(&format!("case {case} gradient vs FD"), &g, &fd);
        let z: Vec<f64> = (0..model.n_params).map(|_| rng.normal()).collect();
        let hz = reference::hvp(&model, &theta, &x, &t, rows, &z);
        let fd_hz = reference::fd_hvp(&model, &theta, &x, &t, rows, &z, 1e-5);
        Tolerance { atol: 1e-6, rtol: 1e-5 }.check(&format!("case {case} Hz vs FD"), &hz, &fd_hz);
    }
}

#[test]
fn gpu_residual_models_match_the_reference_with_every_kernel_set_and_bn_mode() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(8);
    for (case, (text, rows)) in residual_models().into_iter().enumerate() {
        for kernels in [KernelSet::Naive, KernelSet::Tiled, KernelSet::Shared] {
            let spec = ModelSpec::parse(text).unwrap();
            let model = spec.resolve().unwrap();
            let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(rows, case as u64), kernels).unwrap();
            let mut theta32 = block_on(net.params(gpu)).unwrap();
            perturb_norm_params(&model, &mut theta32, &mut rng);
            net.set_params(gpu, &theta32).unwrap();
            let running32 = common::randomize_running(gpu, &net, &mut rng);
            let ds = random_data(&model, rows, 60 + case as u64);
            let data = common::bind(gpu, &net, &ds);
            let indices: Vec<u32> = (0..rows as u32).collect();
            let batch = Batch { data: &data, indices: &indices };
            let (theta, running) = (to_f64(&theta32), to_f64(&running32));
            let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
            let (z32, u32_) =
                (uniform(&mut rng, model.n_params, -1.0, 1.0), uniform(&mut rng, model.n_params, -1.0, 1.0));
            let z = to_f64(&z32);
            let modes: &[BnMode] =
                if model.has_batch_norm() { &[BnMode::Train, BnMode::Eval] } else { &[BnMode::Train] };
            for &mode in modes {
                net.set_bn_mode(mode);
                let ref_mode = common::norm_mode(mode, &running);
                let want = reference::pass_in(ref_mode, &model, &theta, &x, &t, rows, Some(&z));
                let label = format!("case {case} {kernels:?} {}", mode.name());
                let tol = |w: &[f64]| Tolerance::F32_MODEL.scaled_by(w, 1e-4);
                let (loss, g) = block_on(net.gradient(gpu, &batch)).unwrap();
                Tolerance::F32_MODEL.check(&format!("{label} loss"), &[loss], &[want.loss]);
                tol(&want.grad).check(&format!("{label} gradient"), &g, &want.grad);
                let hz = block_on(net.hvp(gpu, &batch, &z32)).unwrap();
                let want_hz = want.hz.as_ref().unwrap();
                tol(want_hz).check(&format!("{label} Hz"), &hz, want_hz);
                // symmetry on the GPU: ⟨u, H z⟩ = ⟨z, H u⟩
                let hu = block_on(net.hvp(gpu, &batch, &u32_)).unwrap();
                let (a, b) = (dot(&to_f64(&u32_), &to_f64(&hz)), dot(&z, &to_f64(&hu)));
                Tolerance { atol: 1e-4, ..Tolerance::SYMMETRY }.check_pair(
                    &format!("{label}: ⟨u, Hz⟩ vs ⟨z, Hu⟩"),
                    a,
                    b,
                );
            }
            gpu.check().unwrap();
        }
    }
}

/// The dense Hessian of a small residual network with BatchNorm, from unit-vector HVPs on the
/// GPU, against the f64 model's in train and eval mode; it is symmetric.
#[test]
fn the_dense_hessian_of_a_small_residual_batchnorm_network() {
    let gpu = gpu_or_skip!();
    let text = "input 3; linear(3); batchnorm1d; tanh; residual { linear(3); batchnorm1d; tanh }; linear(2)";
    let spec = ModelSpec::parse(text).unwrap();
    let model = spec.resolve().unwrap();
    let rows = 5;
    let net = Network::new(gpu, &spec, NetworkOptions::new(rows, 2)).unwrap();
    let mut rng = SplitMix64::new(4);
    let mut theta32 = block_on(net.params(gpu)).unwrap();
    perturb_norm_params(&model, &mut theta32, &mut rng);
    net.set_params(gpu, &theta32).unwrap();
    let ds = random_data(&model, rows, 7);
    let data = common::bind(gpu, &net, &ds);
    let indices: Vec<u32> = (0..rows as u32).collect();
    let batch = Batch { data: &data, indices: &indices };
    let (theta, x, t) = (to_f64(&theta32), to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
    let n = model.n_params;
    for mode in [BnMode::Train, BnMode::Eval] {
        net.set_bn_mode(mode);
        let running = to_f64(&block_on(net.running_stats(gpu)).unwrap());
        let ref_mode = common::norm_mode(mode, &running);
        let mut want = vec![0.0; n * n];
        let mut got = vec![0f32; n * n];
        for i in 0..n {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let col = reference::pass_in(ref_mode, &model, &theta, &x, &t, rows, Some(&e)).hz.unwrap();
            want[i * n..(i + 1) * n].copy_from_slice(&col);
            let e32: Vec<f32> = e.iter().map(|&v| v as f32).collect();
            got[i * n..(i + 1) * n].copy_from_slice(&block_on(net.hvp(gpu, &batch, &e32)).unwrap());
        }
        for i in 0..n {
            for j in 0..i {
                assert!((want[i * n + j] - want[j * n + i]).abs() < 1e-10, "f64 H not symmetric at ({i}, {j})");
            }
        }
        Tolerance::F32_MODEL.scaled_by(&want, 1e-4).check(&format!("dense H ({})", mode.name()), &got, &want);
    }
}

/// AdaHessian with one and with two probes per step on a residual network (option-A and
/// identity shortcuts) follows the f64 optimizer step for step, and Adam does too. Two probes run
/// the tangent and R-backward passes apart from the backward, where the tiled conv's lone
/// R-backward rewrites its input cotangent: a block input lost its shortcut's share of the
/// gradient there (the HVP was off by 1000× the tolerance) until the fan-in sum was redone after
/// it. The R-cotangents, which share their tangents' slots, are written twice a step.
#[test]
fn optimizer_steps_on_residual_networks_follow_the_f64_optimizer() {
    use adahessian_wgpu::optim::OptimizerConfig;
    let gpu = gpu_or_skip!();
    let text = "input 2x4x4; conv2d(2, k=3, p=1); tanh; residual(shortcut=pad) { conv2d(4, k=3, s=2, p=1); tanh; \
                conv2d(4, k=3, p=1) }; tanh; flatten; linear(5); residual { linear(5); tanh }; linear(3)";
    for method in [
        "adam",
        "adahessian(lr=0.02)",
        "adahessian(lr=0.02, n_samples=2)",
        "adahessian(lr=0.02, n_samples=2, average_conv=false)",
    ] {
        let p = common::problem(gpu, ModelSpec::parse(text).unwrap(), 5, 9);
        common::compare(gpu, &p, OptimizerConfig::parse(method).unwrap(), 3);
    }
    // option B: the block input's first reader is the projection's conv, whose lone R-backward
    // rewrites its input cotangent too; the body (the second reader) writes the second slot. The
    // projection's 1×1 weights sit right before a BatchNorm, which makes the loss invariant to
    // their scale: their Hessian diagonal is near zero, and AdaHessian's first step divides by
    // it. On 5 rows one such weight moved 14 lr in its first step and its f32 error came to
    // 1.09 of the tolerance (2.3e-4 of the step). 8 rows give curvature that the f32 HVP resolves.
    let option_b = "input 2x4x4; conv2d(2, k=3, p=1); tanh; residual(shortcut=conv) { conv2d(4, k=3, s=2, p=1); \
                    tanh; conv2d(4, k=3, p=1) }; tanh; flatten; linear(3)";
    for method in ["adam", "adahessian(lr=0.02, n_samples=2)"] {
        let p = common::problem(gpu, ModelSpec::parse(option_b).unwrap(), 8, 9);
        common::compare(gpu, &p, OptimizerConfig::parse(method).unwrap(), 3);
    }
}
