//! Two-dimensional test surfaces for the optimizer race: their f64 reference (value, gradient,
//! Hessian) and a GPU point θ ∈ R² on which the library's own optimizers step, with gradients
//! and Hessian-vector products from shaders/surface.wgsl.

use crate::error::{Error, Result};
use crate::gpu::buffers::{map_read, staging_buffer, storage_buffer, uniform_buffer};
use crate::gpu::meta::{stat, BatchMeta};
use crate::gpu::{bind_group, dispatch, BindLayout, Gpu, Kernel};
use crate::objective::{Arenas, Objective, Phase};
use std::f64::consts::TAU;

/// The surfaces of the race.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SurfaceKind {
    /// (1 − x)² + 100 (y − x²)²: a curved valley, minimum (1, 1).
    Rosenbrock,
    /// Σ_i (c_i − x + x yⁱ)², c = (1.5, 2.25, 2.625): flat plateaus, minimum (3, 0.5).
    Beale,
    /// (x² + y − 11)² + (x + y² − 7)²: four minima.
    Himmelblau,
    /// ½ pᵀ R diag(1, κ) Rᵀ p: condition number κ, axes rotated by `angle` radians. Rotation is
    /// where a diagonal preconditioner stops helping.
    Quadratic {
        /// κ ≥ 1.
        condition: f64,
        /// Rotation of the principal axes, radians.
        angle: f64,
    },
    /// x² − y²: a saddle at the origin.
    Saddle,
    /// 20 + Σ (u² − 10 cos 2πu): many local minima, global at the origin.
    Rastrigin,
}

impl SurfaceKind {
    /// The surfaces with their default parameters.
    pub const ALL: [SurfaceKind; 6] = [
        SurfaceKind::Rosenbrock,
        SurfaceKind::Beale,
        SurfaceKind::Himmelblau,
        SurfaceKind::Quadratic { condition: 10.0, angle: 0.0 },
        SurfaceKind::Saddle,
        SurfaceKind::Rastrigin,
    ];

    /// The lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            SurfaceKind::Rosenbrock => "rosenbrock",
            SurfaceKind::Beale => "beale",
            SurfaceKind::Himmelblau => "himmelblau",
            SurfaceKind::Quadratic { .. } => "quadratic",
            SurfaceKind::Saddle => "saddle",
            SurfaceKind::Rastrigin => "rastrigin",
        }
    }

    /// The lowest value f takes, where it has one: 0 for every surface but the saddle, which
    /// falls without bound (a racer there escapes rather than converges).
    pub fn minimum(&self) -> Option<f64> {
        match self {
            SurfaceKind::Saddle => None,
            _ => Some(0.0),
        }
    }

    fn id(&self) -> u32 {
        match self {
            SurfaceKind::Rosenbrock => 0,
            SurfaceKind::Beale => 1,
            SurfaceKind::Himmelblau => 2,
            SurfaceKind::Quadratic { .. } => 3,
            SurfaceKind::Saddle => 4,
            SurfaceKind::Rastrigin => 5,
        }
    }

    /// The plotted window [x0, x1, y0, y1]: the start, the minima and the interesting part.
    pub fn view(&self) -> [f64; 4] {
        match self {
            SurfaceKind::Rosenbrock => [-2.0, 2.0, -1.0, 3.0],
            SurfaceKind::Beale => [-4.5, 4.5, -4.5, 4.5],
            SurfaceKind::Himmelblau => [-5.0, 5.0, -5.0, 5.0],
            SurfaceKind::Quadratic { .. } => [-2.0, 2.0, -2.0, 2.0],
            SurfaceKind::Saddle => [-2.0, 2.0, -2.0, 2.0],
            SurfaceKind::Rastrigin => [-3.0, 3.0, -3.0, 3.0],
        }
    }

    /// A customary starting point for the race.
    pub fn default_start(&self) -> (f64, f64) {
        match self {
            SurfaceKind::Rosenbrock => (-1.5, 2.0),
            SurfaceKind::Beale => (1.0, 1.4),
            SurfaceKind::Himmelblau => (-0.5, -0.5),
            SurfaceKind::Quadratic { .. } => (-1.5, 1.0),
            SurfaceKind::Saddle => (-1.0, 0.01),
            SurfaceKind::Rastrigin => (2.3, -1.7),
        }
    }

    /// Value, gradient and Hessian (xx, xy, yy) in f64 — the reference of `surface.wgsl`.
    pub fn taylor(&self, x: f64, y: f64) -> (f64, [f64; 2], [f64; 3]) {
        match *self {
            SurfaceKind::Rosenbrock => {
                let r = y - x * x;
                (
                    (1.0 - x).powi(2) + 100.0 * r * r,
                    [-2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r],
                    [2.0 - 400.0 * r + 800.0 * x * x, -400.0 * x, 200.0],
                )
            }
            SurfaceKind::Beale => {
                let c = [1.5, 2.25, 2.625];
                let (mut f, mut g, mut h) = (0.0, [0.0; 2], [0.0; 3]);
                for i in 1..=3 {
                    let n = i as f64;
                    let t = c[i - 1] - x + x * y.powi(i as i32);
                    let tx = y.powi(i as i32) - 1.0;
                    let ty = x * n * y.powi(i as i32 - 1);
                    let txy = n * y.powi(i as i32 - 1);
                    let tyy = if i == 1 { 0.0 } else { x * n * (n - 1.0) * y.powi(i as i32 - 2) };
                    f += t * t;
                    g[0] += 2.0 * t * tx;
                    g[1] += 2.0 * t * ty;
                    h[0] += 2.0 * tx * tx;
                    h[1] += 2.0 * (tx * ty + t * txy);
                    h[2] += 2.0 * (ty * ty + t * tyy);
                }
                (f, g, h)
            }
            SurfaceKind::Himmelblau => {
                let a = x * x + y - 11.0;
                let b = x + y * y - 7.0;
                (
                    a * a + b * b,
                    [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b],
                    [12.0 * x * x + 4.0 * y - 42.0, 4.0 * x + 4.0 * y, 12.0 * y * y + 4.0 * x - 26.0],
                )
            }
            SurfaceKind::Quadratic { condition, angle } => {
                let (c, s, k) = (angle.cos(), angle.sin(), condition);
                let h = [c * c + k * s * s, (1.0 - k) * c * s, s * s + k * c * c];
                let g = [h[0] * x + h[1] * y, h[1] * x + h[2] * y];
                (0.5 * (x * g[0] + y * g[1]), g, h)
            }
            SurfaceKind::Saddle => (x * x - y * y, [2.0 * x, -2.0 * y], [2.0, 0.0, -2.0]),
            SurfaceKind::Rastrigin => (
                20.0 + x * x - 10.0 * (TAU * x).cos() + y * y - 10.0 * (TAU * y).cos(),
                [2.0 * x + 10.0 * TAU * (TAU * x).sin(), 2.0 * y + 10.0 * TAU * (TAU * y).sin()],
                [2.0 + 10.0 * TAU * TAU * (TAU * x).cos(), 0.0, 2.0 + 10.0 * TAU * TAU * (TAU * y).cos()],
            ),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SurfaceMeta {
    kind: u32,
    pad: [u32; 3],
    condition: f32,
    angle: f32,
    pad2: [f32; 2],
}

/// One point θ ∈ R² on a surface, living on the GPU in the same arenas a network has, so any
/// [`crate::optim::Optimizer`] can step it.
pub struct Surface {
    kind: SurfaceKind,
    pub(crate) arenas: Arenas,
    group: wgpu::BindGroup,
    /// θ, f, ∇f and H v in one 7-float readback, reused every step
    staging: wgpu::Buffer,
}

/// Everything one evaluation of a point reads back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointEval {
    /// θ = (x, y).
    pub position: (f32, f32),
    /// f(θ).
    pub value: f32,
    /// ∇f(θ).
    pub gradient: [f32; 2],
    /// H(θ) v for the direction given.
    pub hv: [f32; 2],
}

impl Surface {
    /// A point at `start`.
    pub fn new(gpu: &Gpu, kind: SurfaceKind, start: (f64, f64)) -> Result<Surface> {
        if let SurfaceKind::Quadratic { condition, angle } = kind {
            if !(condition.is_finite() && condition >= 1.0 && angle.is_finite()) {
                return Err(Error::Config(format!(
                    "quadratic surface: condition {condition} must be ≥ 1 and the angle finite"
                )));
            }
        }
        let arenas = Arenas {
            theta: storage_buffer(gpu, "surface θ", 2)?,
            g_theta: storage_buffer(gpu, "surface ∇", 2)?,
            z: storage_buffer(gpu, "surface z", 2)?,
            r_theta: storage_buffer(gpu, "surface Hz", 2)?,
            work: storage_buffer(gpu, "surface work", 4)?,
            stats: storage_buffer(gpu, "surface stats", stat::LEN)?,
            index: storage_buffer(gpu, "surface index", 1)?,
            unused: storage_buffer(gpu, "surface side (unused)", 4)?,
        };
        let (condition, angle) = match kind {
            SurfaceKind::Quadratic { condition, angle } => (condition as f32, angle as f32),
            _ => (1.0, 0.0),
        };
        let meta = uniform_buffer(
            gpu,
            "surface meta",
            &SurfaceMeta { kind: kind.id(), pad: [0; 3], condition, angle, pad2: [0.0; 2] },
        );
        let batch = uniform_buffer(gpu, "surface batch", &BatchMeta { rows: 1, ..Default::default() });
        let group = bind_group(
            gpu,
            "surface",
            BindLayout::Layer,
            [
                meta.as_entire_binding(),
                batch.as_entire_binding(),
                arenas.theta.as_entire_binding(),
                arenas.z.as_entire_binding(),
                arenas.g_theta.as_entire_binding(),
                arenas.r_theta.as_entire_binding(),
                arenas.work.as_entire_binding(),
                arenas.stats.as_entire_binding(),
                arenas.unused.as_entire_binding(),
            ],
        );
        let staging = staging_buffer(gpu, "surface readback", 7 * 4);
        let s = Surface { kind, arenas, group, staging };
        s.set_position(gpu, start)?;
        Ok(s)
    }

    /// The surface.
    pub fn kind(&self) -> SurfaceKind {
        self.kind
    }

    /// Moves the point.
    pub fn set_position(&self, gpu: &Gpu, (x, y): (f64, f64)) -> Result<()> {
        if !(x.is_finite() && y.is_finite()) {
            return Err(Error::Data(format!("start ({x}, {y}) is not finite")));
        }
        gpu.queue.write_buffer(&self.arenas.theta, 0, bytemuck::cast_slice(&[x as f32, y as f32]));
        Ok(())
    }

    /// θ, f, ∇f and H v at the current point from the GPU kernels: one submit, one readback.
    pub async fn evaluate(&self, gpu: &Gpu, v: (f32, f32)) -> Result<PointEval> {
        gpu.queue.write_buffer(&self.arenas.z, 0, bytemuck::cast_slice(&[v.0, v.1]));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for phase in [Phase::Forward, Phase::Backward, Phase::RBackward] {
                self.encode(gpu, &mut pass, phase);
            }
        }
        // staging layout: [x, y, f, ∂x, ∂y, (Hv)x, (Hv)y]
        encoder.copy_buffer_to_buffer(&self.arenas.theta, 0, &self.staging, 0, 8);
        encoder.copy_buffer_to_buffer(&self.arenas.work, 0, &self.staging, 8, 4);
        encoder.copy_buffer_to_buffer(&self.arenas.g_theta, 0, &self.staging, 12, 8);
        encoder.copy_buffer_to_buffer(&self.arenas.r_theta, 0, &self.staging, 20, 8);
        gpu.queue.submit(Some(encoder.finish()));
        let bytes = map_read(gpu, &self.staging, 28).await?;
        let r: &[f32] = bytemuck::cast_slice(&bytes);
        Ok(PointEval { position: (r[0], r[1]), value: r[2], gradient: [r[3], r[4]], hv: [r[5], r[6]] })
    }
}

impl Objective for Surface {
    fn arenas(&self) -> &Arenas {
        &self.arenas
    }

    fn n_params(&self) -> usize {
        2
    }

    /// Records one phase (forward writes the value into the stats, like a network's loss).
    fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase) {
        let kernels: &[Kernel] = match phase {
            Phase::Forward => &[kernels::SurfaceFwd],
            Phase::Tangent => &[kernels::SurfaceTangent],
            Phase::Backward => &[kernels::SurfaceBwd],
            Phase::RBackward => &[kernels::SurfaceRbwd],
            Phase::ForwardTangent => &[kernels::SurfaceFwd, kernels::SurfaceTangent],
            Phase::BackwardRBackward => &[kernels::SurfaceBwd, kernels::SurfaceRbwd],
        };
        for &kernel in kernels {
            dispatch(gpu, pass, kernel, &self.group, 1);
        }
    }
}

/// The 2-D surfaces' WGSL module and its kernels.
pub mod kernels {
    crate::wgsl_kernels! {
        SURFACE = ("surface", Layer, ["common.wgsl", "surface.wgsl"]) {
            SurfaceFwd "surface_fwd" Single,
            SurfaceTangent "surface_tangent" Single,
            SurfaceBwd "surface_bwd" Single,
            SurfaceRbwd "surface_rbwd" Single,
        }
    }
}
