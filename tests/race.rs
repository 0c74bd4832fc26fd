//! The 2-D surfaces and the optimizer race: every surface's f64 gradient and Hessian against
//! finite differences, the GPU kernels against the f64 reference, every optimizer descending the
//! quadratic, and the teaching point of the demo: a diagonal preconditioner (AdaHessian) is at
//! its best on an axis-aligned ill-conditioned quadratic and loses that edge when it is rotated.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::optim::{AdaHessianConfig, AdamConfig, OptimizerConfig, SgdConfig};
use adahessian_wgpu::race::{Race, RacerKind};
use adahessian_wgpu::surface::{Surface, SurfaceKind};
use common::Tolerance;

fn points() -> Vec<(f64, f64)> {
    vec![(-1.5, 2.0), (0.3, -0.7), (1.2, 0.4), (-0.4, -1.1), (2.1, 1.3)]
}

fn all_kinds() -> Vec<SurfaceKind> {
    let mut k = SurfaceKind::ALL.to_vec();
    k.push(SurfaceKind::Quadratic { condition: 50.0, angle: 0.6 });
    k
}

#[test]
fn surface_derivatives_match_finite_differences() {
    let e = 1e-6;
    for kind in all_kinds() {
        for (x, y) in points() {
            let (_, g, h) = kind.taylor(x, y);
            let f = |x: f64, y: f64| kind.taylor(x, y).0;
            let fd_g = [(f(x + e, y) - f(x - e, y)) / (2.0 * e), (f(x, y + e) - f(x, y - e)) / (2.0 * e)];
            let gx = |x: f64, y: f64| kind.taylor(x, y).1;
            let fd_h = [
                (gx(x + e, y)[0] - gx(x - e, y)[0]) / (2.0 * e),
                (gx(x, y + e)[0] - gx(x, y - e)[0]) / (2.0 * e),
                (gx(x, y + e)[1] - gx(x, y - e)[1]) / (2.0 * e),
            ];
            Tolerance { atol: 1e-5, rtol: 1e-6 }.check(&format!("{kind:?} ∇f at ({x}, {y})"), &g, &fd_g);
            Tolerance { atol: 1e-5, rtol: 1e-6 }.check(&format!("{kind:?} H at ({x}, {y})"), &h, &fd_h);
        }
    }
}

#[test]
fn surface_kernels_match_the_f64_reference() {
    let gpu = gpu_or_skip!();
    for kind in all_kinds() {
        for (x, y) in points() {
            let s = Surface::new(gpu, kind, (x, y)).unwrap();
            let v = (0.7f32, -1.3f32);
            let e = block_on(s.evaluate(gpu, v)).unwrap();
            let (f, g, hv) = (e.value, e.gradient, e.hv);
            let (x, y) = (x as f32 as f64, y as f32 as f64);
            let (wf, wg, h) = kind.taylor(x, y);
            let whv = [h[0] * v.0 as f64 + h[1] * v.1 as f64, h[1] * v.0 as f64 + h[2] * v.1 as f64];
            // Rastrigin's 10·(2π)² cos term and Rosenbrock's 800 x² need a looser absolute tolerance in f32
            let tol = Tolerance { atol: 2e-3, rtol: 1e-4 };
            tol.check(&format!("{kind:?} f"), &[f], &[wf]);
            tol.check(&format!("{kind:?} ∇f"), &g, &wg);
            tol.check(&format!("{kind:?} H v"), &hv, &whv);
        }
    }
}

fn racers() -> Vec<(String, RacerKind)> {
    vec![
        ("sgd".into(), RacerKind::Optimizer(OptimizerConfig::Sgd(SgdConfig { lr: 0.05, ..Default::default() }))),
        (
            "momentum".into(),
            RacerKind::Optimizer(OptimizerConfig::Sgd(SgdConfig { lr: 0.02, momentum: 0.9, ..Default::default() })),
        ),
        ("adam".into(), RacerKind::Optimizer(OptimizerConfig::Adam(AdamConfig { lr: 0.05, ..Default::default() }))),
        (
            "adahessian".into(),
            RacerKind::Optimizer(OptimizerConfig::AdaHessian(AdaHessianConfig { lr: 0.15, ..Default::default() })),
        ),
        ("newton".into(), RacerKind::Newton { lr: 1.0, damping: 0.0 }),
    ]
}

#[test]
fn every_racer_descends_the_quadratic() {
    let gpu = gpu_or_skip!();
    let kind = SurfaceKind::Quadratic { condition: 10.0, angle: 0.3 };
    let mut race = block_on(Race::new(gpu, kind, kind.default_start(), &racers())).unwrap();
    for _ in 0..40 {
        block_on(race.step(gpu)).unwrap();
    }
    for r in &race.racers {
        let (first, last) = (r.losses[0], *r.losses.last().unwrap());
        eprintln!("{}: {first:.4} -> {last:.6}", r.name);
        assert!(last < 0.5 * first, "{} did not descend: {first} -> {last}", r.name);
        assert_eq!(r.path.len(), 41);
    }
    let newton = race.racers.iter().find(|r| r.name == "newton").unwrap();
    assert!(newton.losses[1] < 1e-6, "one Newton step solves a quadratic: {}", newton.losses[1]);
    // AdaHessian's √v̂ next to the exact row norms
    let i = race.racers.iter().position(|r| r.name == "adahessian").unwrap();
    let readout = block_on(race.readout(gpu, i)).unwrap();
    let est = readout.adahessian_estimate.unwrap();
    eprintln!("H {:?}, row norms {:?}, AdaHessian √v̂ {est:?}", readout.hessian, readout.row_norms);
    for ((est, norm), diag) in est.iter().zip(readout.row_norms).zip(readout.diagonal) {
        assert!(norm >= diag.abs());
        assert!(*est > 0.0 && *est <= 1.5 * norm);
    }
}

/// Steps until the loss falls under `target` (or `limit`).
fn steps_to(kind: SurfaceKind, target: f32, limit: usize) -> Option<usize> {
    let gpu = common::gpu()?;
    let config = OptimizerConfig::AdaHessian(AdaHessianConfig { lr: 0.15, seed: 1, ..Default::default() });
    let mut race =
        block_on(Race::new(gpu, kind, (-1.5, 1.0), &[("adahessian".into(), RacerKind::Optimizer(config))])).unwrap();
    for s in 1..=limit {
        block_on(race.step(gpu)).unwrap();
        if *race.racers[0].losses.last().unwrap() < target {
            return Some(s);
        }
    }
    Some(limit)
}

#[test]
fn rotation_takes_away_the_diagonal_preconditioners_edge() {
    gpu_or_skip!();
    let aligned = steps_to(SurfaceKind::Quadratic { condition: 100.0, angle: 0.0 }, 1e-3, 400).unwrap();
    let rotated =
        steps_to(SurfaceKind::Quadratic { condition: 100.0, angle: std::f64::consts::FRAC_PI_4 }, 1e-3, 400).unwrap();
    eprintln!("AdaHessian steps to f < 1e-3 on κ = 100: aligned {aligned}, rotated 45° {rotated}");
    assert!(rotated > 2 * aligned, "aligned {aligned} vs rotated {rotated}");
}

/// Newton's gradient fallback on the saddle multiplies the falling coordinate by 3 per step
/// (lr 1): after ~80 steps the next point leaves f32's range. The racer is then diverged (a NaN
/// loss, which the page shows as "diverged"), and the race goes on: no error, the other racers
/// keep stepping.
#[test]
fn a_racer_that_leaves_the_finite_plane_diverges_without_stopping_the_race() {
    let gpu = gpu_or_skip!();
    let racers = [
        ("newton".to_string(), RacerKind::Newton { lr: 1.0, damping: 0.0 }),
        ("sgd".to_string(), RacerKind::Optimizer(OptimizerConfig::parse("sgd(lr=0.01)").unwrap())),
    ];
    let mut race = block_on(Race::new(gpu, SurfaceKind::Saddle, (0.5, 1.0), &racers)).unwrap();
    for step in 0..120 {
        block_on(race.step(gpu)).unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
    let newton = &race.racers[0];
    assert!(newton.losses.last().unwrap().is_nan(), "Newton diverged: {:?}", newton.path.last());
    assert_eq!(newton.path.len(), 121);
    let sgd = &race.racers[1];
    assert!(sgd.losses.last().unwrap().is_finite() && sgd.path.len() == 121);
}

#[test]
fn bad_surface_settings_are_refused() {
    let gpu = gpu_or_skip!();
    assert!(Surface::new(gpu, SurfaceKind::Quadratic { condition: 0.5, angle: 0.0 }, (0.0, 0.0)).is_err());
    assert!(Surface::new(gpu, SurfaceKind::Saddle, (f64::NAN, 0.0)).is_err());
    let bad = [("n".to_string(), RacerKind::Newton { lr: 0.0, damping: 0.0 })];
    assert!(block_on(Race::new(gpu, SurfaceKind::Saddle, (1.0, 1.0), &bad)).is_err());
}
