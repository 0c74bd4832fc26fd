//! Curvature tools against exact answers on a tiny model: top eigenvalues against a dense f64
//! symmetric eigen-solver, Hutchinson's trace within 3 standard errors of the exact trace, SLQ's
//! unit mass and first moment, the dense Hessian and the diagonal report, and the landscape's
//! geometry (centre = loss at the weights, filter-normalised rows, zero bias directions).

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::curvature::landscape::{self, Axis};
use adahessian_wgpu::curvature::{self, eigen, HessianOperator, PowerOptions};
use adahessian_wgpu::nn::{reference, Activation, Batch, Loss, ModelSpec, ParamRole};
use adahessian_wgpu::probe::{ProbeKey, ProbeKind};
use common::{problem, to_f64, Problem};

/// 2 → 4 → 3, tanh, 27 parameters, 12 rows.
fn tiny(gpu: &adahessian_wgpu::gpu::Gpu) -> (Problem, Vec<f64>) {
    let p = problem(gpu, ModelSpec::mlp(&[2, 4, 3], Activation::Tanh, Loss::CrossEntropy), 12, 5);
    let theta = to_f64(&block_on(p.net.params(gpu)).unwrap());
    let h = reference::hessian(&p.model, &theta, &p.x, &p.t, p.rows);
    (p, h)
}

#[test]
fn top_eigenvalues_match_a_dense_eigen_solver() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let (values, _) = eigen::symmetric_eigen(&h, n);
    let mut by_magnitude = values.clone();
    by_magnitude.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let found = block_on(curvature::top_eigen(&op, 3, PowerOptions { tol: 1e-9, max_iter: 2000, seed: 1 })).unwrap();
    for (k, e) in found.iter().enumerate() {
        let want = by_magnitude[k];
        eprintln!("λ{k}: power iteration {:.6e} ({} iterations), dense {:.6e}", e.value, e.iterations, want);
        assert!((e.value - want).abs() <= 1e-3 * want.abs(), "λ{k}: {} vs {want}", e.value);
        // and it is an eigenvector: ‖Hv − λv‖ small
        let hv: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i * n + j] * e.vector[j]).sum()).collect();
        let res: f64 = hv.iter().zip(&e.vector).map(|(a, b)| (a - e.value * b).powi(2)).sum::<f64>().sqrt();
        assert!(res <= 1e-2 * want.abs(), "λ{k}: residual {res}");
    }
    // the dense Hessian from GPU unit-vector products, and the refusal above the limit
    let dense = block_on(curvature::dense_hessian(&op, 100)).unwrap();
    common::Tolerance::F32_MODEL.check("dense Hessian", &dense, &h);
    let e = block_on(curvature::dense_hessian(&op, 10)).unwrap_err().to_string();
    assert!(e.contains("27 parameters") && e.contains("--max-exact-params"), "{e}");
    assert!(op.hvps() > 0);
}

/// λmin by power iteration on σI − H against the dense eigen-solver, on a model and point where
/// H has negative eigenvalues (cross-entropy through tanh at random weights is not convex).
#[test]
fn the_smallest_eigenvalue_matches_a_dense_eigen_solver() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let (values, _) = eigen::symmetric_eigen(&h, n);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let dominant = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(lo < 0.0, "the test point should have negative curvature (λmin {lo})");
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let top = block_on(curvature::top_eigen(&op, 1, PowerOptions { tol: 1e-9, max_iter: 2000, seed: 1 })).unwrap();
    let e = block_on(curvature::smallest_eigen(
        &op,
        top[0].value.abs(),
        PowerOptions { tol: 1e-12, max_iter: 20000, seed: 2 },
    ))
    .unwrap();
    eprintln!(
        "λmin: shifted power iteration {:.6e} ({} iterations), dense {lo:.6e}; |λ|max {dominant:.4e}",
        e.value, e.iterations
    );
    assert!((e.value - lo).abs() <= 1e-3 * dominant, "λmin {} vs {lo}", e.value);
    let hv: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i * n + j] * e.vector[j]).sum()).collect();
    let res: f64 = hv.iter().zip(&e.vector).map(|(a, b)| (a - e.value * b).powi(2)).sum::<f64>().sqrt();
    assert!(res <= 2e-2 * dominant, "residual {res}");
    assert!(block_on(curvature::smallest_eigen(&op, f64::NAN, PowerOptions::default())).is_err());
    // Lanczos' extreme Ritz values: both ends of the spectrum, exact once the steps span it
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (l, u) = block_on(curvature::extreme_eigenvalues(&op, n, 3)).unwrap();
    assert!(
        (l - lo).abs() <= 1e-6 * dominant && (u - hi).abs() <= 1e-6 * dominant,
        "Lanczos ({l}, {u}) vs ({lo}, {hi})"
    );
    // with fewer steps they are bounds: λmin from above, λmax from below
    let (l, u) = block_on(curvature::extreme_eigenvalues(&op, 8, 3)).unwrap();
    assert!(l >= lo - 1e-9 * dominant && u <= hi + 1e-9 * dominant, "({l}, {u}) outside ({lo}, {hi})");
}

#[test]
fn hutchinson_trace_is_within_three_standard_errors() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let exact: f64 = (0..n).map(|i| h[i * n + i]).sum();
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let t = block_on(curvature::hutchinson_trace(&op, 200, 0.0, 3)).unwrap();
    eprintln!("trace: exact {exact:.5}, Hutchinson {:.5} ± {:.5} ({} probes)", t.trace, t.stderr, t.probes);
    assert!((t.trace - exact).abs() <= 3.0 * t.stderr, "{} ± {} vs {exact}", t.trace, t.stderr);
    assert!(t.stderr > 0.0);
}

#[test]
fn slq_density_has_unit_mass_and_the_right_first_moment() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let runs = 4;
    let d = block_on(curvature::slq_density(&op, runs, n, 9)).unwrap();
    assert!((d.mass() - 1.0).abs() < 1e-9, "mass {}", d.mass());
    // each run's first moment is v ᵀ H v for its start v = z / √n, so the mean is the Hutchinson
    // estimate of tr(H) / n with those probes
    let want: f64 = (0..runs)
        .map(|r| {
            let z: Vec<f64> = ProbeKey { seed: 9 ^ 0x51_0000, step: r as u32, sample: 0 }
                .vector(ProbeKind::Rademacher, n)
                .iter()
                .map(|&x| x as f64)
                .collect();
            let hz: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i * n + j] * z[j]).sum()).collect();
            curvature::dot(&z, &hz) / n as f64
        })
        .sum::<f64>()
        / runs as f64;
    assert!(
        (d.first_moment() - want).abs() <= 1e-4 * want.abs().max(1e-3),
        "first moment {} vs {want}",
        d.first_moment()
    );
    // with n Lanczos steps the nodes are eigenvalues of H
    let (values, _) = eigen::symmetric_eigen(&h, n);
    for (x, w) in d.nodes_and_weights() {
        if w > 1e-6 {
            let nearest = values.iter().map(|v| (v - x).abs()).fold(f64::INFINITY, f64::min);
            assert!(nearest < 1e-3 * values.iter().map(|v| v.abs()).fold(0.0, f64::max), "node {x} is no eigenvalue");
        }
    }
    let smooth = d.smoothed(0.01, 200);
    let area: f64 = smooth.windows(2).map(|w| (w[1].0 - w[0].0) * 0.5 * (w[0].1 + w[1].1)).sum();
    assert!((area - 1.0).abs() < 0.02, "smoothed density integrates to {area}");
}

#[test]
fn diagonal_report_shows_row_norms_above_the_diagonal() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let r = block_on(curvature::diagonal_report(&op, &h, 400, 2)).unwrap();
    for i in 0..n {
        assert_eq!(r.diagonal[i], h[i * n + i]);
        assert!(r.row_norm[i] + 1e-12 >= r.diagonal[i].abs());
    }
    common::Tolerance { atol: 1e-4, rtol: 0.15 }.check("AdaHessian rms vs row norms", &r.estimate_rms, &r.row_norm);
}

#[test]
fn landscape_geometry_holds() {
    let gpu = gpu_or_skip!();
    let spec = ModelSpec::parse("input 1x6x6; conv2d(3, k=3); tanh; flatten; linear(3)").unwrap();
    let p = problem(gpu, spec, 10, 7);
    let theta = block_on(p.net.params(gpu)).unwrap();
    let d1 = landscape::filter_normalized_direction(&p.model, &theta, 1);
    let d2 = landscape::filter_normalized_direction(&p.model, &theta, 2);
    for t in &p.model.params {
        let rows = t.shape[0];
        let row_len = t.len() / rows;
        for r in 0..rows {
            let s = t.offset + r * row_len..t.offset + (r + 1) * row_len;
            let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            if t.role == ParamRole::Bias {
                assert!(d1[s].iter().all(|&x| x == 0.0), "{}: bias direction must be zero", t.name);
            } else {
                assert!(
                    (norm(&d1[s.clone()]) - norm(&theta[s.clone()])).abs() < 1e-5 * norm(&theta[s]).max(1e-6),
                    "{} row {r}",
                    t.name
                );
            }
        }
    }
    let axis = Axis::parse("-1:1:5").unwrap();
    let plane = landscape::Plane { d1: &d1, d2: Some(&d2), a: axis, b: Some(axis) };
    let grid = block_on(landscape::evaluate_grid(gpu, &p.net, &p.data, 10, &plane)).unwrap();
    let indices: Vec<u32> = (0..10).collect();
    let batch = Batch { data: &p.data, indices: &indices };
    let at_weights = block_on(p.net.loss(gpu, &batch)).unwrap().loss as f64;
    let centre = grid.loss[2 * 5 + 2];
    assert!((centre - at_weights).abs() <= 1e-6 * at_weights.abs().max(1.0), "centre {centre} vs loss {at_weights}");
    // the weights are restored, and a corner equals the loss evaluated directly at that point
    assert_eq!(block_on(p.net.params(gpu)).unwrap(), theta);
    let corner: Vec<f32> = theta.iter().zip(&d1).zip(&d2).map(|((t, a), b)| t - a + 0.5 * b).collect();
    p.net.set_params(gpu, &corner).unwrap();
    let direct = block_on(p.net.loss(gpu, &batch)).unwrap().loss as f64;
    let (i, j) = (0, 3); // a = -1, b = 0.5
    assert!(
        (grid.loss[i * 5 + j] - direct).abs() <= 1e-5 * direct.abs().max(1.0),
        "{} vs {direct}",
        grid.loss[i * 5 + j]
    );
    p.net.set_params(gpu, &theta).unwrap();
    // projection recovers the coordinates of a point in the plane
    let point: Vec<f32> = theta.iter().zip(&d1).zip(&d2).map(|((t, a), b)| t + 0.3 * a - 0.2 * b).collect();
    let (x, y) = landscape::project(&theta, &d1, Some(&d2), &[point])[0];
    assert!((x - 0.3).abs() < 1e-4 && (y + 0.2).abs() < 1e-4, "projection ({x}, {y})");
    assert!(Axis::parse("1:-1:5").is_err() && Axis::parse("-1:1").is_err());
    // a range whose width overflows (the plot panicked on it) or that f32 weights cannot resolve
    for range in ["-1e308:1e308:3", "-2e6:1:3", "inf:1:3", "-1:nan:3"] {
        assert!(Axis::parse(range).is_err(), "{range}");
    }
    assert!(Axis::parse("-1e6:1e6:3").is_ok());
}

#[test]
fn pca_directions_are_orthonormal_and_follow_the_trajectory() {
    // mlp 2-2-1: 0.weight [2,2] at 0..4, 0.bias at 4..6, 1.weight [1,2] at 6..8, 1.bias at 8
    let model = ModelSpec::mlp(&[2, 2, 1], Activation::Tanh, Loss::Mse).resolve().unwrap();
    let fin = vec![0f32; 9];
    // a bent path in (θ0, θ1) with a large common offset and biases that move a lot: centring
    // removes the offset (uncentred, the mean displacement would be the first direction) and the
    // biases get no component
    let traj: Vec<Vec<f32>> = (0..5)
        .map(|t| {
            let t = t as f32;
            vec![5.0 + t, 5.0 + 0.1 * t * t, 0.0, 0.0, 9.0 * t, -7.0, 0.0, 0.0, 3.0 * t]
        })
        .collect();
    let (d1, d2, explained) = landscape::pca_directions(&model, &traj, &fin).unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
    assert!((dot(&d1, &d1) - 1.0).abs() < 1e-5 && (dot(&d2, &d2) - 1.0).abs() < 1e-5 && dot(&d1, &d2).abs() < 1e-5);
    for d in [&d1, &d2] {
        assert_eq!([d[4], d[5], d[8]], [0.0; 3], "biases stay at zero: {d:?}");
    }
    // by hand: the centred displacements are x = t − 2 and y = 0.1 (t² − 6) for t = 0..4, so
    // Σx² = 10, Σxy = 4, Σy² = 1.74, whose eigenvalues are 11.6195 and 0.1205 (variance shares
    // 0.98974 and 0.01026) with the top eigenvector (0.92691, 0.37529)
    assert!((explained[0] - 0.98974).abs() < 1e-4 && (explained[1] - 0.01026).abs() < 1e-4, "{explained:?}");
    assert!((d1[0].abs() - 0.92691).abs() < 1e-4 && (d1[1].abs() - 0.37529).abs() < 1e-4, "{d1:?}");
    for i in [2, 3, 6, 7] {
        assert!(d1[i] == 0.0 && d2[i] == 0.0, "weights that never moved get no component");
    }
    assert!(landscape::pca_directions(&model, &traj[..2], &fin).unwrap_err().to_string().contains("--save-every"));
}

/// Per tensor: the top eigenvalue of each diagonal block H_bb from masked power iteration agrees
/// with a dense eigen solver on the block cut out of the f64 Hessian, and the masked Hutchinson
/// trace with tr H_bb within 4 standard errors.
#[test]
fn per_tensor_blocks_match_the_dense_hessian_blocks() {
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let power = PowerOptions { tol: 1e-9, max_iter: 3000, seed: 2 };
    let blocks = block_on(curvature::per_tensor(&op, &p.model, power, 300, 0.0)).unwrap();
    assert_eq!(blocks.len(), p.model.params.len());
    for (b, t) in blocks.iter().zip(&p.model.params) {
        let (o, m) = (t.offset, t.len());
        let block: Vec<f64> =
            (0..m).flat_map(|i| (0..m).map(move |j| (i, j))).map(|(i, j)| h[(o + i) * n + o + j]).collect();
        let (values, _) = eigen::symmetric_eigen(&block, m);
        let top = values.iter().cloned().fold(0.0f64, |a, v| if v.abs() > a.abs() { v } else { a });
        let trace: f64 = (0..m).map(|i| block[i * m + i]).sum();
        eprintln!(
            "{}: λ {:.6e} vs {top:.6e}, trace {:.5} ± {:.5} vs {trace:.5}",
            b.tensor, b.top_eigenvalue, b.trace, b.trace_stderr
        );
        assert_eq!((b.tensor.as_str(), b.params), (t.name.as_str(), m));
        assert!(
            (b.top_eigenvalue - top).abs() <= 1e-3 * top.abs().max(1e-6),
            "{}: {} vs {top}",
            b.tensor,
            b.top_eigenvalue
        );
        assert!(
            (b.trace - trace).abs() <= 4.0 * b.trace_stderr + 1e-6,
            "{}: {} ± {} vs {trace}",
            b.tensor,
            b.trace,
            b.trace_stderr
        );
        assert!(b.hvps > 0);
    }
}

/// The sharpness an optimizer sees against its edge of stability: for SGD λmax(H) against 2/η;
/// for Adam after some steps, λmax(P⁻¹H) with P = √v̂ + ε from its state, against the dense
/// eigenvalues of P^(−1/2) H P^(−1/2) from the f64 Hessian, and (2 + 2β1)/((1 − β1) η).
#[test]
fn edge_of_stability_matches_the_dense_preconditioned_hessian() {
    use adahessian_wgpu::optim::{AdamConfig, Method, Optimizer, OptimizerConfig, SgdConfig};
    let gpu = gpu_or_skip!();
    let (p, h) = tiny(gpu);
    let n = p.model.n_params;
    let power = PowerOptions { tol: 1e-9, max_iter: 3000, seed: 4 };
    let largest = |m: &[f64]| {
        let (values, _) = eigen::symmetric_eigen(m, n);
        values.iter().cloned().fold(0.0f64, |a, v| if v.abs() > a.abs() { v } else { a })
    };
    let op = HessianOperator::new(gpu, &p.net, &p.data, None).unwrap();
    let sgd = SgdConfig { lr: 0.1, ..Default::default() };
    let st = sgd
        .stability(0.1, &block_on(Optimizer::new(gpu, &p.net, sgd.into()).unwrap().read_state(gpu)).unwrap())
        .unwrap();
    let e = block_on(curvature::edge_of_stability(&op, &st, power)).unwrap();
    assert!((e.threshold - 20.0).abs() < 1e-5, "2 / η: {}", e.threshold);
    assert!((e.sharpness - largest(&h)).abs() <= 1e-3 * largest(&h).abs(), "{} vs {}", e.sharpness, largest(&h));
    // Adam's state after 5 steps; the weights are put back, so H stays the f64 Hessian above
    let theta = block_on(p.net.params(gpu)).unwrap();
    let adam = AdamConfig { lr: 0.01, ..Default::default() };
    let mut opt = Optimizer::new(gpu, &p.net, OptimizerConfig::Adam(adam)).unwrap();
    let indices: Vec<u32> = (0..p.rows as u32).collect();
    for _ in 0..5 {
        opt.step(gpu, &p.net, &adahessian_wgpu::nn::Batch { data: &p.data, indices: &indices }).unwrap();
    }
    p.net.set_params(gpu, &theta).unwrap();
    let state = block_on(opt.read_state(gpu)).unwrap();
    let st = adam.stability(0.01, &state).unwrap();
    let pre = st.preconditioner.clone().unwrap();
    let scaled: Vec<f64> = (0..n * n).map(|k| h[k] / (pre[k / n] * pre[k % n]).sqrt()).collect();
    let e = block_on(curvature::edge_of_stability(&op, &st, power)).unwrap();
    let want = largest(&scaled);
    eprintln!("λmax(P⁻¹H): power iteration {:.6e}, dense {want:.6e}; threshold {}", e.sharpness, e.threshold);
    assert!((e.sharpness - want).abs() <= 2e-3 * want.abs(), "{} vs {want}", e.sharpness);
    assert!((e.threshold - 3.8 / (0.1 * 0.01)).abs() < 1e-6 * e.threshold);
}
