//! Loss landscapes (Li et al. 2018, ALGORITHM.md §6): the loss on a 1-D or 2-D slice
//! θ₀ + a·d₁ + b·d₂ around the weights, along filter-normalised random directions, the top Hessian
//! eigenvectors, or the principal components of a training trajectory. θ for every grid point is
//! built on the GPU (`landscape_point`), and every point of a block is recorded into one command
//! buffer, so a grid costs a few submits and one readback.

use super::{dot, eigen};
use crate::error::{Error, Result};
use crate::gpu::buffers::{map_read, staging_buffer};
use crate::gpu::meta::stat;
use crate::gpu::{bind_group, dispatch, storage_buffer, BindLayout, Gpu, UniformArena};
use crate::nn::{Batch, BoundData, Network, Phase, Resolved};
use crate::probe::SplitMix64;

/// A random direction with every filter / neuron row rescaled to the norm of the matching row of
/// θ (d_i ← d_i ‖θ_i‖ / (‖d_i‖ + 1e-10)), biases and normalisation parameters zero. A row is index 0 of a weight tensor: a
/// Dense output neuron `[in]` or a conv filter `[in, kh, kw]`.
pub fn filter_normalized_direction(model: &Resolved, theta: &[f32], seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed ^ 0xD1EC);
    let mut d = vec![0f32; theta.len()];
    for p in &model.params {
        // biases and normalisation parameters get zero directions (Li et al.'s 'biasbn')
        if !p.role.is_weight() {
            continue;
        }
        let rows = p.shape[0];
        let row_len = p.len() / rows;
        for r in 0..rows {
            let range = p.offset + r * row_len..p.offset + (r + 1) * row_len;
            let raw: Vec<f64> = (0..row_len).map(|_| rng.normal()).collect();
            let dn = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
            let tn = theta[range.clone()].iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            for (slot, x) in d[range].iter_mut().zip(raw) {
                *slot = (x * tn / (dn + 1e-10)) as f32;
            }
        }
    }
    d
}

/// The largest |α| an axis may reach.
pub const MAX_STEP: f64 = 1e6;

/// One axis of a grid: `points` values from `min` to `max` inclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// First value.
    pub min: f64,
    /// Last value.
    pub max: f64,
    /// Number of values (≥ 1).
    pub points: usize,
}

impl Axis {
    /// Parses `MIN:MAX:POINTS`, e.g. `-1:1:51`.
    pub fn parse(s: &str) -> Result<Axis> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad =
            || Error::Config(format!("range '{s}': use MIN:MAX:POINTS with MIN < MAX and POINTS ≥ 2, e.g. -1:1:51"));
        if parts.len() != 3 {
            return Err(bad());
        }
        let min: f64 = parts[0].trim().parse().map_err(|_| bad())?;
        let max: f64 = parts[1].trim().parse().map_err(|_| bad())?;
        let points: usize = parts[2].trim().parse().map_err(|_| bad())?;
        if points < 2 || !(min.is_finite() && max.is_finite()) || max <= min {
            return Err(bad());
        }
        // θ + α d is formed in f32: past this, α·d overflows or swamps θ, and the plot's axis
        // has no finite width
        if min.abs().max(max.abs()) > MAX_STEP {
            return Err(Error::Config(format!(
                "range '{s}': steps of more than {MAX_STEP:e} along a direction are past what f32 weights \
                 resolve; use e.g. -1:1:51"
            )));
        }
        Ok(Axis { min, max, points })
    }

    /// The values.
    pub fn values(&self) -> Vec<f64> {
        if self.points == 1 {
            return vec![self.min];
        }
        (0..self.points).map(|i| self.min + (self.max - self.min) * i as f64 / (self.points - 1) as f64).collect()
    }
}

/// Loss and accuracy on a grid; `loss[i * b.len() + j]` is at (`a[i]`, `b[j]`).
#[derive(Clone, Debug)]
pub struct Grid {
    /// Coordinates along d₁.
    pub a: Vec<f64>,
    /// Coordinates along d₂ (`[0]` for a 1-D slice).
    pub b: Vec<f64>,
    /// Mean loss per point.
    pub loss: Vec<f64>,
    /// Accuracy per point.
    pub accuracy: Vec<f64>,
}

/// A 1-D or 2-D slice through θ₀: directions and their coordinate axes.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    /// Direction 1.
    pub d1: &'a [f32],
    /// Direction 2 (None for a line).
    pub d2: Option<&'a [f32]>,
    /// Coordinates along d₁.
    pub a: Axis,
    /// Coordinates along d₂ (None for a line).
    pub b: Option<Axis>,
}

/// Evaluates the mean loss over the first `rows` rows of `data` at θ₀ + a d₁ + b d₂ for every
/// grid point (θ₀ = the network's current weights, restored afterwards). `rows` must fit the
/// network's max_batch: the slice uses a single batch so a whole block of points is one submit.
pub async fn evaluate_grid(gpu: &Gpu, net: &Network, data: &BoundData, rows: usize, plane: &Plane<'_>) -> Result<Grid> {
    let Plane { d1, d2, a, b } = *plane;
    let n = net.n_params();
    if d1.len() != n || d2.is_some_and(|d| d.len() != n) {
        return Err(Error::Shape(format!("landscape directions must have {n} entries")));
    }
    let rows = rows.min(data.rows);
    if rows == 0 || rows > net.max_batch() {
        return Err(Error::Config(format!(
            "the landscape evaluates {rows} rows in one batch but the network's max_batch is {}",
            net.max_batch()
        )));
    }
    let theta0 = net.params(gpu).await?;
    let upload = |label: &str, v: &[f32]| -> Result<wgpu::Buffer> {
        let buf = storage_buffer(gpu, label, v.len())?;
        gpu.queue.write_buffer(&buf, 0, bytemuck::cast_slice(v));
        Ok(buf)
    };
    let base = upload("landscape θ₀", &theta0)?;
    let dir1 = upload("landscape d1", d1)?;
    let zeros = vec![0f32; n];
    let dir2 = upload("landscape d2", d2.unwrap_or(&zeros))?;
    let av = a.values();
    let bv = b.map_or(vec![0.0], |b| b.values());
    let points: Vec<(f64, f64)> = av.iter().flat_map(|&x| bv.iter().map(move |&y| (x, y))).collect();
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct PointMeta {
        a: f32,
        b: f32,
        n: u32,
        pad: u32,
    }
    let metas: Vec<PointMeta> =
        points.iter().map(|&(x, y)| PointMeta { a: x as f32, b: y as f32, n: n as u32, pad: 0 }).collect();
    let uniforms = UniformArena::new(gpu, "landscape points", &metas);
    let out = storage_buffer(gpu, "landscape losses", 2 * points.len())?;
    let indices: Vec<u32> = (0..rows as u32).collect();
    let batch = Batch { data, indices: &indices };
    let rows32 = net.prepare(gpu, &batch)?;
    let theta = &net.arenas.theta;
    for (block_start, block) in (0..points.len()).collect::<Vec<_>>().chunks(256).enumerate().map(|(i, c)| (i * 256, c))
    {
        let groups: Vec<wgpu::BindGroup> = block
            .iter()
            .map(|&p| {
                bind_group(
                    gpu,
                    "landscape point",
                    BindLayout::Axpy,
                    [
                        uniforms.binding(p),
                        theta.as_entire_binding(),
                        base.as_entire_binding(),
                        dir1.as_entire_binding(),
                        dir2.as_entire_binding(),
                    ],
                )
            })
            .collect();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for (k, group) in groups.iter().enumerate() {
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                dispatch(gpu, &mut pass, kernels::LandscapePoint, group, n as u32);
                net.encode_gather(gpu, &mut pass, data, rows32);
                net.encode(gpu, &mut pass, Phase::Forward, rows32);
                net.encode_reduce(gpu, &mut pass, false);
            }
            let p = (block_start + k) as u64;
            encoder.copy_buffer_to_buffer(&net.arenas.stats, (stat::LOSS * 4) as u64, &out, p * 8, 8);
        }
        gpu.queue.submit(Some(encoder.finish()));
    }
    let bytes = (points.len() * 8) as u64;
    let staging = staging_buffer(gpu, "landscape readback", bytes);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, bytes);
    gpu.queue.submit(Some(encoder.finish()));
    let raw = map_read(gpu, &staging, bytes).await?;
    net.set_params(gpu, &theta0)?;
    let values: &[f32] = bytemuck::cast_slice(&raw);
    let r = rows as f64;
    Ok(Grid {
        a: av,
        b: bv,
        loss: values.chunks(2).map(|c| c[0] as f64 / r).collect(),
        accuracy: values.chunks(2).map(|c| c[1] as f64 / r).collect(),
    })
}

/// Coordinates (a, b) of each θ_t − θ₀ in the plane of d₁, d₂ (least squares; d₂ may be zero).
pub fn project(theta0: &[f32], d1: &[f32], d2: Option<&[f32]>, trajectory: &[Vec<f32>]) -> Vec<(f64, f64)> {
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (u, w) = (f(d1), d2.map(f));
    trajectory
        .iter()
        .map(|t| {
            let delta: Vec<f64> = t.iter().zip(theta0).map(|(a, b)| (*a - *b) as f64).collect();
            match &w {
                None => (dot(&u, &delta) / dot(&u, &u).max(1e-300), 0.0),
                Some(w) => {
                    let (uu, uw, ww) = (dot(&u, &u), dot(&u, w), dot(w, w));
                    let (ud, wd) = (dot(&u, &delta), dot(w, &delta));
                    let det = uu * ww - uw * uw;
                    if det.abs() < 1e-300 {
                        (ud / uu.max(1e-300), 0.0)
                    } else {
                        ((ww * ud - uw * wd) / det, (uu * wd - uw * ud) / det)
                    }
                }
            }
        })
        .collect()
}

/// The top two principal directions of a training trajectory, as Li et al. (2018) compute them:
/// the displacements θ_t − θ_final with every bias entry set to zero (their `ignore='biasbn'`: the
/// directions leave biases alone, as the random ones do), centred over the trajectory (their
/// sklearn PCA subtracts the mean displacement), then the top two right singular vectors (unit
/// vectors, from the t × t Gram matrix) and the fraction of the trajectory's variance each explains.
/// Needs at least 3 checkpoints: centring removes one dimension.
pub fn pca_directions(
    model: &Resolved,
    trajectory: &[Vec<f32>],
    theta_final: &[f32],
) -> Result<(Vec<f32>, Vec<f32>, [f64; 2])> {
    let t = trajectory.len();
    if t < 3 {
        return Err(Error::Config(format!(
            "PCA directions need at least 3 saved checkpoints (2 directions of a centred trajectory), found {t}; \
             train with --save-every N"
        )));
    }
    let mut bias = vec![false; theta_final.len()];
    for p in model.params.iter().filter(|p| !p.role.is_weight()) {
        bias[p.offset..p.offset + p.len()].iter_mut().for_each(|b| *b = true);
    }
    let mut m: Vec<Vec<f64>> = trajectory
        .iter()
        .map(|th| {
            th.iter()
                .zip(theta_final)
                .zip(&bias)
                .map(|((a, b), &is_bias)| if is_bias { 0.0 } else { (*a - *b) as f64 })
                .collect()
        })
        .collect();
    let mean: Vec<f64> = (0..theta_final.len()).map(|i| m.iter().map(|row| row[i]).sum::<f64>() / t as f64).collect();
    for row in &mut m {
        row.iter_mut().zip(&mean).for_each(|(x, c)| *x -= c);
    }
    let mut gram = vec![0.0; t * t];
    for i in 0..t {
        for j in 0..t {
            gram[i * t + j] = dot(&m[i], &m[j]);
        }
    }
    let (values, vectors) = eigen::symmetric_eigen(&gram, t);
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum::<f64>().max(1e-300);
    let dir = |k: usize| -> Vec<f32> {
        let u = &vectors[t - 1 - k];
        let mut d = vec![0.0; theta_final.len()];
        for (i, row) in m.iter().enumerate() {
            for (x, r) in d.iter_mut().zip(row) {
                *x += u[i] * r;
            }
        }
        let norm = dot(&d, &d).sqrt().max(1e-300);
        d.iter().map(|x| (x / norm) as f32).collect()
    };
    Ok((dir(0), dir(1), [values[t - 1].max(0.0) / total, values[t - 2].max(0.0) / total]))
}

/// [`pca_directions`] scaled to the trajectory's extent along each (× 1.1), so that the plane's
/// a, b ∈ [−1, 1] frames the whole path: the directions and the variance shares.
pub fn pca_plane(model: &Resolved, trajectory: &[Vec<f32>], theta: &[f32]) -> Result<(Vec<f32>, Vec<f32>, [f64; 2])> {
    let (a, b, shares) = pca_directions(model, trajectory, theta)?;
    let coords = project(theta, &a, Some(&b), trajectory);
    let extent = |f: fn(&(f64, f64)) -> f64| coords.iter().map(|c| f(c).abs()).fold(1e-6, f64::max) * 1.1;
    let (ea, eb) = (extent(|c| c.0) as f32, extent(|c| c.1) as f32);
    Ok((a.iter().map(|x| x * ea).collect(), b.iter().map(|x| x * eb).collect(), shares))
}

/// Li et al.'s (2018, Fig. 7) non-convexity map: at every grid point θ₀ + a d₁ + b d₂ the ratio
/// |λmin / λmax| of the Hessian of the mean loss over the first `rows` rows of `data`, both ends
/// from `steps` Lanczos steps ([`super::extreme_eigenvalues`]); near 0 the loss is locally
/// convex (or nearly), large where negative curvature is as strong as positive. Row-major like
/// [`Grid::loss`]; θ₀ is restored afterwards. Costs points × `steps` HVPs, and the HVPs spent.
pub async fn nonconvexity_grid(
    gpu: &Gpu,
    net: &Network,
    data: &BoundData,
    rows: usize,
    plane: &Plane<'_>,
    steps: usize,
) -> Result<(Vec<f64>, u64)> {
    let Plane { d1, d2, a, b } = *plane;
    let n = net.n_params();
    if d1.len() != n || d2.is_some_and(|d| d.len() != n) {
        return Err(Error::Shape(format!("landscape directions must have {n} entries")));
    }
    let theta0 = net.params(gpu).await?;
    let bv = b.map_or(vec![0.0], |b| b.values());
    let (mut out, mut hvps) = (Vec::new(), 0u64);
    let mut result = Ok(());
    'grid: for x in a.values() {
        for &y in &bv {
            let theta: Vec<f32> =
                (0..n).map(|i| theta0[i] + x as f32 * d1[i] + d2.map_or(0.0, |d| y as f32 * d[i])).collect();
            let step = async {
                net.set_params(gpu, &theta)?;
                let op = super::HessianOperator::new(gpu, net, data, Some(rows))?;
                let (lo, hi) = super::extreme_eigenvalues(&op, steps, 0).await?;
                Ok::<_, Error>((lo.abs() / hi.abs().max(f64::MIN_POSITIVE), op.hvps()))
            };
            match step.await {
                Ok((ratio, h)) => {
                    out.push(ratio);
                    hvps += h;
                }
                Err(e) => {
                    result = Err(e);
                    break 'grid;
                }
            }
        }
    }
    // the weights are put back whatever happened
    net.set_params(gpu, &theta0)?;
    result.map(|()| (out, hvps))
}

/// The landscape's WGSL module: θ₀ + α d₁ + β d₂ for a grid point.
pub mod kernels {
    crate::wgsl_kernels! {
        LANDSCAPE = ("landscape", Axpy, ["common.wgsl", "landscape.wgsl"]) {
            LandscapePoint "landscape_point",
        }
    }
}
