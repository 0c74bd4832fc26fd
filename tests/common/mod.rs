//! Shared test helpers: one GPU per test binary, tolerances, random problems.
#![allow(dead_code)]

use adahessian_wgpu::block_on;
use adahessian_wgpu::data::{Dataset, DeviceDataset, Targets};
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::KernelSet;
use adahessian_wgpu::nn::{reference, Batch, BoundData, Loss, ModelSpec, Network, NetworkOptions, Resolved};
use adahessian_wgpu::optim::reference as oref;
use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
use adahessian_wgpu::probe::{ProbeKey, SplitMix64};
use std::sync::OnceLock;

/// The shared device, or None (with a message) when there is no adapter. With REQUIRE_GPU=1 a
/// missing adapter fails the test instead.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        let options = GpuOptions::from_env().unwrap_or_default();
        match Gpu::new_blocking(options) {
            Ok(g) => {
                eprintln!("GPU tests run on: {}", g.describe());
                Some(g)
            }
            Err(e) => {
                if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") {
                    panic!("REQUIRE_GPU=1 but no GPU could be opened: {e}");
                }
                eprintln!("SKIPPING GPU TESTS: no GPU adapter ({e}). Set REQUIRE_GPU=1 to make this a failure.");
                None
            }
        }
    })
    .as_ref()
}

/// `let gpu = gpu_or_skip!();` returns from the test (passing, with a message) without a GPU.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(g) => g,
            None => {
                eprintln!("skipped: no GPU adapter");
                return;
            }
        }
    };
}

/// |got − want| ≤ atol + rtol·|want|, element-wise.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    pub const F32_KERNEL: Tolerance = Tolerance { atol: 1e-5, rtol: 1e-4 };
    pub const F32_MODEL: Tolerance = Tolerance { atol: 5e-6, rtol: 2e-4 };
    pub const FINITE_DIFF: Tolerance = Tolerance { atol: 1e-6, rtol: 1e-5 };

    /// This tolerance with `k`·max|want| added to atol: for results that are sums with
    /// cancellation, whose f32 error follows the size of the terms, not of the result (a
    /// parameter feeding a train-mode BatchNorm has an exactly zero mean-direction gradient and
    /// H z, which f32 gets to within a few 1e-5 of the vector's scale when m = 2 makes r large).
    pub fn scaled_by(self, want: &[f64], k: f64) -> Tolerance {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        Tolerance { atol: self.atol + k * scale, rtol: self.rtol }
    }

    /// ⟨u, Hz⟩ against ⟨z, Hu⟩: two f32 results of the same size, neither the reference; the
    /// symmetric form atol + rtol·(|a| + |b|) keeps the check the same whichever is named first.
    pub const SYMMETRY: Tolerance = Tolerance { atol: 1e-6, rtol: 1e-4 };

    /// Panics unless `a` and `b` agree to atol + rtol·(|a| + |b|).
    pub fn check_pair(self, what: &str, a: f64, b: f64) {
        let bound = self.atol + self.rtol * (a.abs() + b.abs());
        assert!(
            a.is_finite() && b.is_finite() && (a - b).abs() <= bound,
            "{what}: {a} vs {b} (|diff| {:.3e} > {bound:.1e})",
            (a - b).abs()
        );
    }

    /// Panics with the worst element when any is out of tolerance; prints the max error.
    pub fn check<A: Copy + Into<f64>>(self, what: &str, got: &[A], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
        let mut worst = (0usize, 0.0f64, 0.0f64);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let g: f64 = g.into();
            let err = (g - w).abs();
            assert!(g.is_finite(), "{what}[{i}] is {g} (want {w})");
            let excess = err / (self.atol + self.rtol * w.abs());
            if excess > worst.2 {
                worst = (i, err, excess);
            }
        }
        eprintln!("{what}: max error {:.3e} at [{}] ({:.2} of tolerance)", worst.1, worst.0, worst.2);
        assert!(
            worst.2 <= 1.0,
            "{what}[{}]: got {} want {} (|err| {:.3e} > {:.1e} + {:.1e}·|want|)",
            worst.0,
            Into::<f64>::into(got[worst.0]),
            want[worst.0],
            worst.1,
            self.atol,
            self.rtol
        );
    }
}

/// Uniform values in [lo, hi).
pub fn uniform(rng: &mut SplitMix64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| (lo + (hi - lo) * rng.next_f64()) as f32).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A random batch for a model: inputs in [-2, 2), labels or targets to match its loss.
pub fn random_data(model: &Resolved, rows: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let x = uniform(&mut rng, rows * model.nodes[0], -2.0, 2.0);
    let k = model.output_width();
    let targets = match model.loss {
        Loss::CrossEntropy => Targets::Classes { labels: (0..rows).map(|_| rng.below(k) as u32).collect(), classes: k },
        Loss::Mse => Targets::Values { values: uniform(&mut rng, rows * k, -1.0, 1.0), width: k },
    };
    Dataset::new(x, model.nodes[0], targets).unwrap()
}

/// Uploads and binds a data set.
pub fn bind(gpu: &Gpu, net: &Network, ds: &Dataset) -> BoundData {
    let dev = DeviceDataset::upload(gpu, ds).unwrap();
    net.bind(gpu, &dev).unwrap()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub struct Problem {
    pub spec: ModelSpec,
    pub model: Resolved,
    pub net: Network,
    pub data: BoundData,
    pub x: Vec<f64>,
    pub t: Vec<f64>,
    pub rows: usize,
}

pub fn problem(gpu: &Gpu, spec: ModelSpec, rows: usize, seed: u64) -> Problem {
    problem_with(gpu, spec, rows, seed, KernelSet::from_env().unwrap())
}

/// [`problem`] with an explicit layer kernel set.
pub fn problem_with(gpu: &Gpu, spec: ModelSpec, rows: usize, seed: u64, kernels: KernelSet) -> Problem {
    let model = spec.resolve().unwrap();
    let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(rows, seed), kernels).unwrap();
    let ds = random_data(&model, rows, seed + 1);
    let data = bind(gpu, &net, &ds);
    let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
    Problem { spec, model, net, data, x, t, rows }
}

/// Runs `steps` GPU steps and the f64 reference side by side, comparing θ after every step.
pub fn compare(gpu: &Gpu, p: &Problem, config: OptimizerConfig, steps: usize) {
    let mut opt = Optimizer::new(gpu, &p.net, config).unwrap();
    let mut theta = to_f64(&block_on(p.net.params(gpu)).unwrap());
    let theta0 = theta.clone();
    let mut state = oref::State::new(p.model.n_params);
    let indices: Vec<u32> = (0..p.rows as u32).collect();
    let batch = Batch { data: &p.data, indices: &indices };
    let n = p.model.n_params;
    for step in 1..=steps as u32 {
        let g = reference::gradient(&p.model, &theta, &p.x, &p.t, p.rows);
        // this step's curvature estimate from the same probes the GPU draws
        let estimate = config.method().curvature().filter(|c| c.is_curvature_step(step as u64)).map(|c| {
            let zs: Vec<Vec<f64>> = (0..c.n_samples)
                .map(|s| to_f64(&ProbeKey { seed: c.seed, step, sample: s }.vector(c.probe, n)))
                .collect();
            let hzs: Vec<Vec<f64>> =
                zs.iter().map(|z| reference::hvp(&p.model, &theta, &p.x, &p.t, p.rows, z)).collect();
            oref::curvature_estimate(c.estimate, &zs, &hzs, &config.method().averaging_groups(&p.model))
        });
        config.method().reference_step(&mut theta, &g, estimate.as_deref(), &mut state);
        opt.step(gpu, &p.net, &batch).unwrap();
        let got = block_on(p.net.params(gpu)).unwrap();
        check_steps(&format!("{} step {step} θ", config.name()), &got, &theta, &theta0);
    }
    assert_eq!(opt.steps(), steps as u64);
}

/// θ after some optimizer steps against the f64 reference: |got − want| ≤ 1e-6 + 1e-5·|want| +
/// 2e-4·|want − θ₀|. f32 rounding of θ gives the first two terms; the last allows the relative
/// f32 error of the steps themselves (a curvature method divides by |Hz| + eps, which amplifies
/// Hz's f32 error where |Hz| is small). A wrong rule (eps inside the square root, a missing bias
/// correction, v updated on the wrong steps) changes the steps by O(1) and fails.
pub fn check_steps(what: &str, got: &[f32], want: &[f64], theta0: &[f64]) {
    let mut worst = (0usize, 0.0f64);
    for i in 0..want.len() {
        let err = (got[i] as f64 - want[i]).abs();
        assert!(got[i].is_finite(), "{what}[{i}] is {} (want {})", got[i], want[i]);
        let bound = 1e-6 + 1e-5 * want[i].abs() + 2e-4 * (want[i] - theta0[i]).abs();
        if err / bound > worst.1 {
            worst = (i, err / bound);
        }
    }
    let i = worst.0;
    eprintln!("{what}: worst [{i}] at {:.2} of tolerance (moved {:.3e})", worst.1, (want[i] - theta0[i]).abs());
    assert!(worst.1 <= 1.0, "{what}[{i}]: got {} want {} from {}", got[i], want[i], theta0[i]);
}

/// Random running statistics (means N(0, 0.5²), variances in [0.3, 1.3)) written into every
/// BatchNorm of `net`, so eval mode is not the identity-like start; returns them in the
/// `Resolved::running` layout.
pub fn randomize_running(gpu: &Gpu, net: &Network, rng: &mut SplitMix64) -> Vec<f32> {
    let model = net.model();
    let running: Vec<f32> = model
        .initial_running()
        .iter()
        .map(|v| if *v == 0.0 { (0.5 * rng.normal()) as f32 } else { (0.3 + rng.next_f64()) as f32 })
        .collect();
    for r in &model.running {
        let c = r.channels;
        net.set_tensor(gpu, &format!("{}.running_mean", r.prefix), &[c], &running[r.offset..r.offset + c]).unwrap();
        net.set_tensor(gpu, &format!("{}.running_var", r.prefix), &[c], &running[r.offset + c..r.offset + 2 * c])
            .unwrap();
    }
    running
}

/// The f64 reference's statistics source for a GPU BatchNorm mode.
pub fn norm_mode(mode: adahessian_wgpu::nn::BnMode, running: &[f64]) -> reference::NormMode<'_> {
    match mode {
        adahessian_wgpu::nn::BnMode::Train => reference::NormMode::Train,
        adahessian_wgpu::nn::BnMode::Eval => reference::NormMode::Eval(running),
    }
}

/// Every file below `dir` (recursively) whose name ends in `.ext`, sorted.
pub fn files_under(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let (mut stack, mut out) = (vec![dir.to_path_buf()], Vec::new());
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
