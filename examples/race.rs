//! The optimizer race of the browser demo, in the terminal: SGD, momentum, Adam, AdaHessian and
//! Newton from one start on one surface, all stepped on the GPU.
//!
//! cargo run --release --example race -- [rosenbrock|beale|himmelblau|quadratic|saddle|rastrigin] [STEPS] [CONDITION] [ANGLE_DEGREES]

use adahessian_wgpu::block_on;
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::optim::{AdaHessianConfig, AdamConfig, OptimizerConfig, SgdConfig};
use adahessian_wgpu::race::{Race, RacerKind};
use adahessian_wgpu::surface::SurfaceKind;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("quadratic");
    let steps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let condition: f64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20.0);
    let angle: f64 = args.get(4).map(|s| s.parse::<f64>()).transpose()?.unwrap_or(0.0).to_radians();
    let kind = match name {
        "quadratic" => SurfaceKind::Quadratic { condition, angle },
        other => *SurfaceKind::ALL
            .iter()
            .find(|k| k.name() == other)
            .ok_or_else(|| anyhow::anyhow!("unknown surface '{other}'"))?,
    };
    let gpu = Gpu::new_blocking(GpuOptions::from_env()?)?;
    println!("adapter: {}", gpu.describe());
    // gradient clipping keeps AdaHessian on the Rosenbrock from (−1.5, 2) (ALGORITHM.md §2)
    let clip = matches!(kind, SurfaceKind::Rosenbrock | SurfaceKind::Beale).then_some(1.0);
    let racers = vec![
        ("sgd".to_string(), RacerKind::Optimizer(OptimizerConfig::Sgd(SgdConfig { lr: 1e-3, ..Default::default() }))),
        (
            "momentum".into(),
            RacerKind::Optimizer(OptimizerConfig::Sgd(SgdConfig { lr: 1e-3, momentum: 0.9, ..Default::default() })),
        ),
        ("adam".into(), RacerKind::Optimizer(OptimizerConfig::Adam(AdamConfig { lr: 0.05, ..Default::default() }))),
        (
            "adahessian".into(),
            RacerKind::Optimizer(OptimizerConfig::AdaHessian(AdaHessianConfig {
                lr: 0.15,
                grad_clip: clip,
                ..Default::default()
            })),
        ),
        ("newton".into(), RacerKind::Newton { lr: 1.0, damping: 1e-3 }),
    ];
    let mut race = block_on(Race::new(&gpu, kind, kind.default_start(), &racers))?;
    for step in 1..=steps {
        block_on(race.step(&gpu))?;
        if step % (steps / 5).max(1) == 0 {
            let row: Vec<String> = race
                .racers
                .iter()
                .map(|r| format!("{} {:.4e}", r.name, r.losses.last().unwrap_or(&f32::NAN)))
                .collect();
            println!("step {step:>4}: {}", row.join("  "));
        }
    }
    for (i, r) in race.racers.iter().enumerate() {
        let p = r.path.last().copied().unwrap_or_default();
        let c = block_on(race.readout(&gpu, i))?;
        println!(
            "{:<11} at ({:+.4}, {:+.4})  |diag H| ({:.3}, {:.3})  row norms ({:.3}, {:.3}){}",
            r.name,
            p.0,
            p.1,
            c.diagonal[0].abs(),
            c.diagonal[1].abs(),
            c.row_norms[0],
            c.row_norms[1],
            c.adahessian_estimate.map_or(String::new(), |e| format!("  AdaHessian √v̂ ({:.3}, {:.3})", e[0], e[1]))
        );
    }
    Ok(())
}
