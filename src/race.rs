//! The optimizer race on a 2-D surface: every racer is a point on its own copy of the surface,
//! stepped by the library's GPU optimizer kernels (or by Newton's method with the exact 2×2
//! Hessian from the surface's HVP kernels, as the exact-curvature reference). The browser demo
//! and `examples/race.rs` drive it.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::surface::{Surface, SurfaceKind};

/// How a racer moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RacerKind {
    /// One of the library's optimizers.
    Optimizer(OptimizerConfig),
    /// θ ← θ − lr (H + λ I)⁻¹ ∇f with the exact Hessian (two HVPs, e₁ and e₂); where H + λI is
    /// not positive definite it takes a gradient step instead (plain Newton runs to saddles).
    Newton {
        /// Step size.
        lr: f64,
        /// Damping λ.
        damping: f64,
    },
}

impl RacerKind {
    /// What one step computes, in gradient-evaluation equivalents on a `dim`-dimensional
    /// objective, counting a Hessian-vector product as one more (forward-over-reverse runs a
    /// tangent and an R-backward pass beside the forward and backward): a first-order method 1;
    /// a curvature method 1 + its probes per step (n_samples / update_each); Newton with the exact
    /// Hessian 1 + dim (one HVP per unit vector).
    pub fn grad_evals_per_step(&self, dim: usize) -> f64 {
        match self {
            RacerKind::Optimizer(c) => {
                1.0 + c.method().curvature().map_or(0.0, |u| u.n_samples as f64 / u.update_each as f64)
            }
            RacerKind::Newton { .. } => 1.0 + dim as f64,
        }
    }
}

/// The racer the demo page builds for `name` (any optimizer text the library parses, or
/// `newton`) at learning rate `lr`, with the page's Hessian power and, when `grad_clip`, a
/// gradient-norm clip of 1 for the methods that have one. The page (through the wasm facade)
/// and the native lesson tests both build their racers here.
pub fn page_racer(name: &str, lr: f32, hessian_power: f32, grad_clip: bool) -> Result<RacerKind> {
    if name == "newton" {
        return Ok(RacerKind::Newton { lr: lr as f64, damping: 1e-3 });
    }
    let mut c = OptimizerConfig::parse(name)?.with_lr(lr);
    let mut set = |key: &str, value: String| if c.has_setting(key) { c.set(key, &value) } else { Ok(()) };
    set("hessian_power", hessian_power.to_string())?;
    set("seed", "0".to_string())?;
    if grad_clip {
        set("grad_clip", "1".into())?;
    }
    c.validate()?;
    Ok(RacerKind::Optimizer(c))
}

/// The learning rate the page starts a racer with: the method's `surface_lr`, 1 for Newton.
pub fn page_lr(name: &str) -> Result<f32> {
    if name == "newton" {
        return Ok(1.0);
    }
    Ok(OptimizerConfig::parse(name)?.method().surface_lr())
}

enum Mover {
    Optimizer(Box<Optimizer>),
    Newton { lr: f64, damping: f64 },
}

/// One racer.
pub struct Racer {
    /// Label.
    pub name: String,
    /// How it moves.
    pub kind: RacerKind,
    surface: Surface,
    mover: Mover,
    /// Positions so far, the start first.
    pub path: Vec<(f32, f32)>,
    /// f at each position.
    pub losses: Vec<f32>,
}

/// The exact curvature at a racer's point beside AdaHessian's running estimate (ALGORITHM.md §4.6).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct CurvatureReadout {
    /// H = [[xx, xy], [xy, yy]] at the point.
    pub hessian: [f64; 3],
    /// (H_xx, H_yy).
    pub diagonal: [f64; 2],
    /// (‖H_x,:‖, ‖H_y,:‖): what AdaHessian's √v̂ tracks.
    pub row_norms: [f64; 2],
    /// √v̂ of an AdaHessian racer, bias-corrected (None for other racers).
    #[serde(rename = "adahessian")]
    pub adahessian_estimate: Option<[f64; 2]>,
}

/// A race: racers on the same surface from the same start.
pub struct Race {
    /// The surface.
    pub surface: SurfaceKind,
    /// The racers.
    pub racers: Vec<Racer>,
}

impl Race {
    /// Racers at `start`.
    pub async fn new(
        gpu: &Gpu,
        surface: SurfaceKind,
        start: (f64, f64),
        racers: &[(String, RacerKind)],
    ) -> Result<Race> {
        let mut out = Vec::new();
        for (name, kind) in racers {
            let s = Surface::new(gpu, surface, start)?;
            let mover = match *kind {
                RacerKind::Optimizer(c) => Mover::Optimizer(Box::new(Optimizer::for_objective(gpu, &s, c)?)),
                RacerKind::Newton { lr, damping } => {
                    if !(lr > 0.0 && damping >= 0.0) {
                        return Err(Error::Config(format!(
                            "Newton racer: lr {lr} must be > 0 and damping {damping} ≥ 0"
                        )));
                    }
                    Mover::Newton { lr, damping }
                }
            };
            let f = s.evaluate(gpu, (0.0, 0.0)).await?.value;
            out.push(Racer {
                name: name.clone(),
                kind: *kind,
                surface: s,
                mover,
                path: vec![(start.0 as f32, start.1 as f32)],
                losses: vec![f],
            });
        }
        Ok(Race { surface, racers: out })
    }

    /// One step of every racer; appends positions and values (one readback per racer, two
    /// more for Newton's Hessian columns).
    pub async fn step(&mut self, gpu: &Gpu) -> Result<()> {
        for r in &mut self.racers {
            match &mut r.mover {
                Mover::Optimizer(opt) => opt.step_on(gpu, &r.surface)?,
                &mut Mover::Newton { lr, damping } => {
                    let e1 = r.surface.evaluate(gpu, (1.0, 0.0)).await?;
                    let h2 = r.surface.evaluate(gpu, (0.0, 1.0)).await?.hv;
                    let (g, h1, (x, y)) = (e1.gradient, e1.hv, e1.position);
                    let (a, b, d) = (h1[0] as f64 + damping, 0.5 * (h1[1] + h2[0]) as f64, h2[1] as f64 + damping);
                    let det = a * d - b * b;
                    let (gx, gy) = (g[0] as f64, g[1] as f64);
                    let (dx, dy) = if a > 0.0 && det > 0.0 {
                        ((d * gx - b * gy) / det, (a * gy - b * gx) / det)
                    } else {
                        (gx, gy)
                    };
                    let next = ((x as f64 - lr * dx) as f32, (y as f64 - lr * dy) as f32);
                    if !(next.0.is_finite() && next.1.is_finite()) {
                        // the step left f32's range (the gradient fallback on a saddle grows the
                        // falling coordinate geometrically): the racer has diverged, as a GPU
                        // optimizer's does when θ overflows; its path ends, its loss is NaN
                        r.path.push(next);
                        r.losses.push(f32::NAN);
                        continue;
                    }
                    r.surface.set_position(gpu, (next.0 as f64, next.1 as f64))?;
                }
            }
            let e = r.surface.evaluate(gpu, (0.0, 0.0)).await?;
            r.path.push(e.position);
            r.losses.push(e.value);
        }
        Ok(())
    }

    /// The exact curvature at racer `i`'s point and, for AdaHessian, its running estimate √v̂.
    pub async fn readout(&self, gpu: &Gpu, i: usize) -> Result<CurvatureReadout> {
        let r = self.racers.get(i).ok_or_else(|| Error::Config(format!("no racer {i}")))?;
        let (x, y) = r.path.last().copied().unwrap_or_default();
        let (_, _, h) = self.surface.taylor(x as f64, y as f64);
        let adahessian_estimate = match (&r.mover, r.kind) {
            (Mover::Optimizer(opt), RacerKind::Optimizer(OptimizerConfig::AdaHessian(c)))
                if opt.curvature_updates() > 0 =>
            {
                let s = opt.read_state(gpu).await?;
                let bias = 1.0 - (c.betas.1 as f64).powi(c.v_updates(s.t, s.t_curv) as i32);
                Some([(s.v[0] as f64 / bias).sqrt(), (s.v[1] as f64 / bias).sqrt()])
            }
            _ => None,
        };
        Ok(CurvatureReadout {
            hessian: h,
            diagonal: [h[0], h[2]],
            row_norms: [(h[0] * h[0] + h[1] * h[1]).sqrt(), (h[1] * h[1] + h[2] * h[2]).sqrt()],
            adahessian_estimate,
        })
    }
}
