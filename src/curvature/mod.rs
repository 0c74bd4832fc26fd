//! Curvature tools on the GPU Hessian-vector product (PyHessian's jobs, ALGORITHM.md §6): top
//! eigenvalues by power iteration with deflation, Hutchinson's trace with its standard error,
//! the eigenvalue density by stochastic Lanczos quadrature, the exact dense Hessian of small
//! models, the exact diagonal beside AdaHessian's estimate, and loss landscapes.
//!
//! H is the Hessian of the mean loss over a fixed set of rows (all of a bound data set, or its
//! first `rows`), applied in chunks of the network's max_batch: H v = Σ_c (n_c / N) H_c v. The
//! GPU computes each H_c v in f32; everything else (vectors, Lanczos, eigen-solves) is f64.

pub mod eigen;
pub mod landscape;
pub mod report;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Batch, BoundData, Network};
use crate::probe::{ProbeKey, ProbeKind, SplitMix64};
use std::cell::Cell;

/// H v over a fixed set of rows, counting the HVPs it runs.
pub struct HessianOperator<'a> {
    gpu: &'a Gpu,
    net: &'a Network,
    data: &'a BoundData,
    chunks: Vec<Vec<u32>>,
    rows: usize,
    hvps: Cell<u64>,
    /// W of the operator W H W (a 0/1 mask selects a diagonal block); None: H itself
    weights: Option<Vec<f64>>,
}

impl<'a> HessianOperator<'a> {
    /// The Hessian over the first `rows` rows of `data` (all rows when None).
    pub fn new(gpu: &'a Gpu, net: &'a Network, data: &'a BoundData, rows: Option<usize>) -> Result<Self> {
        let rows = rows.unwrap_or(data.rows).min(data.rows);
        if rows == 0 {
            return Err(Error::Config("the Hessian needs at least one data row".into()));
        }
        let all: Vec<u32> = (0..rows as u32).collect();
        let chunks = all.chunks(net.max_batch()).map(|c| c.to_vec()).collect();
        Ok(HessianOperator { gpu, net, data, chunks, rows, hvps: Cell::new(0), weights: None })
    }

    /// The dimension P.
    pub fn dim(&self) -> usize {
        self.net.n_params()
    }

    /// Rows the Hessian averages over.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Hessian-vector products run so far (one per chunk per application).
    pub fn hvps(&self) -> u64 {
        self.hvps.get()
    }

    /// The operator W H W on the same rows, for a diagonal W given by `weights` (length P): with
    /// a 0/1 mask, the diagonal block of those parameters (its eigenvalues and trace, padded with
    /// zeros). It counts its own HVPs.
    pub fn with_weights(&self, weights: Vec<f64>) -> Result<HessianOperator<'a>> {
        if weights.len() != self.dim() {
            return Err(Error::Shape(format!("{} weights for {} parameters", weights.len(), self.dim())));
        }
        Ok(HessianOperator {
            gpu: self.gpu,
            net: self.net,
            data: self.data,
            chunks: self.chunks.clone(),
            rows: self.rows,
            hvps: Cell::new(0),
            weights: Some(weights),
        })
    }

    /// H v (or W H W v).
    pub async fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let weighted: Vec<f64>;
        let v = match &self.weights {
            Some(w) => {
                weighted = v.iter().zip(w).map(|(x, w)| x * w).collect();
                &weighted[..]
            }
            None => v,
        };
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let mut out = vec![0.0; v.len()];
        for chunk in &self.chunks {
            let hv = self.net.hvp(self.gpu, &Batch { data: self.data, indices: chunk }, &v32).await?;
            self.hvps.set(self.hvps.get() + 1);
            let w = chunk.len() as f64 / self.rows as f64;
            for (o, h) in out.iter_mut().zip(hv) {
                *o += w * h as f64;
            }
        }
        if let Some(w) = &self.weights {
            out.iter_mut().zip(w).for_each(|(o, w)| *o *= w);
        }
        Ok(out)
    }
}

/// An optimizer's sharpness against its edge of stability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EdgeOfStability {
    /// λmax(P⁻¹H) (λmax(H) for SGD), by power iteration on P^(−1/2) H P^(−1/2).
    pub sharpness: f64,
    /// The bound the update is subject to.
    pub threshold: f64,
    /// The bound, in words.
    pub rule: &'static str,
    /// HVPs spent.
    pub hvps: u64,
    /// Whether P is a preconditioner (false: P = I, `sharpness` is λmax(H) itself).
    pub preconditioned: bool,
}

/// The sharpness an optimizer sees (λmax of its preconditioned Hessian P⁻¹H, computed as the
/// symmetric P^(−1/2) H P^(−1/2) with the same eigenvalues) against the threshold of its update.
pub async fn edge_of_stability(
    op: &HessianOperator<'_>,
    stability: &crate::optim::Stability,
    power: PowerOptions,
) -> Result<EdgeOfStability> {
    let scaled = match &stability.preconditioner {
        Some(p) => op.with_weights(p.iter().map(|&p| 1.0 / p.max(1e-300).sqrt()).collect())?,
        None => op.with_weights(vec![1.0; op.dim()])?,
    };
    let top = top_eigen(&scaled, 1, power).await?;
    Ok(EdgeOfStability {
        sharpness: top[0].value,
        threshold: stability.threshold,
        rule: stability.rule,
        hvps: scaled.hvps(),
        preconditioned: stability.preconditioner.is_some(),
    })
}

/// The curvature of one parameter tensor's diagonal block H_bb of the Hessian.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockCurvature {
    /// The tensor (`0.weight`).
    pub tensor: String,
    /// Its parameters.
    pub params: usize,
    /// The block's eigenvalue of largest magnitude (power iteration).
    pub top_eigenvalue: f64,
    /// tr H_bb (Hutchinson).
    pub trace: f64,
    /// Its standard error.
    pub trace_stderr: f64,
    /// HVPs spent on the block.
    pub hvps: u64,
}

/// Top eigenvalue and trace of every parameter tensor's diagonal block, as PyHessian reports
/// per layer: the operator M H M with M the tensor's 0/1 mask.
pub async fn per_tensor(
    op: &HessianOperator<'_>,
    model: &crate::nn::Resolved,
    power: PowerOptions,
    probes: usize,
    tol: f64,
) -> Result<Vec<BlockCurvature>> {
    let mut out = Vec::new();
    for p in &model.params {
        let mut mask = vec![0.0; op.dim()];
        mask[p.offset..p.offset + p.len()].iter_mut().for_each(|m| *m = 1.0);
        let block = op.with_weights(mask)?;
        let top = top_eigen(&block, 1, power).await?;
        let t = hutchinson_trace(&block, probes, tol, power.seed).await?;
        out.push(BlockCurvature {
            tensor: p.name.clone(),
            params: p.len(),
            top_eigenvalue: top[0].value,
            trace: t.trace,
            trace_stderr: t.stderr,
            hvps: block.hvps(),
        });
    }
    Ok(out)
}

/// The Rademacher probe number `index` of a tool's stream (the probe hash, so the GPU and CPU agree).
fn rademacher(seed: u64, index: usize, n: usize) -> Vec<f64> {
    ProbeKey { seed, step: index as u32, sample: 0 }
        .vector(ProbeKind::Rademacher, n)
        .iter()
        .map(|&x| x as f64)
        .collect()
}

/// Dot product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalize(v: &mut [f64]) -> f64 {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    n
}

fn orthogonalize(v: &mut [f64], basis: &[Vec<f64>]) {
    for b in basis {
        let c = dot(v, b);
        v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
    }
}

/// Options of the power iteration.
#[derive(Clone, Copy, Debug)]
pub struct PowerOptions {
    /// Stop when |λ_new − λ| ≤ tol · |λ| (PyHessian: 1e-3).
    pub tol: f64,
    /// At most this many iterations per eigenvalue (PyHessian: 100).
    pub max_iter: usize,
    /// Seed of the starting vectors.
    pub seed: u64,
}

impl Default for PowerOptions {
    fn default() -> Self {
        PowerOptions { tol: 1e-3, max_iter: 100, seed: 0 }
    }
}

/// One eigenpair.
#[derive(Clone, Debug)]
pub struct Eigenpair {
    /// λ.
    pub value: f64,
    /// Unit eigenvector.
    pub vector: Vec<f64>,
    /// Iterations used.
    pub iterations: usize,
}

/// The `k` eigenvalues of largest magnitude by power iteration, each started from a random vector
/// kept orthogonal to the eigenvectors already found (deflation), as PyHessian does.
pub async fn top_eigen(op: &HessianOperator<'_>, k: usize, opts: PowerOptions) -> Result<Vec<Eigenpair>> {
    let n = op.dim();
    if k == 0 || k > n {
        return Err(Error::Config(format!("--top-k {k}: must be between 1 and the parameter count {n}")));
    }
    let mut rng = SplitMix64::new(opts.seed ^ 0xE16E);
    let mut found: Vec<Eigenpair> = Vec::new();
    for _ in 0..k {
        let basis: Vec<Vec<f64>> = found.iter().map(|e| e.vector.clone()).collect();
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        orthogonalize(&mut v, &basis);
        normalize(&mut v);
        let mut lambda: Option<f64> = None;
        let mut iterations = 0;
        for it in 0..opts.max_iter {
            iterations = it + 1;
            let mut hv = op.apply(&v).await?;
            let new = dot(&v, &hv);
            orthogonalize(&mut hv, &basis);
            if normalize(&mut hv) == 0.0 {
                lambda = Some(0.0);
                break;
            }
            v = hv;
            if let Some(old) = lambda {
                if (new - old).abs() <= opts.tol * old.abs().max(1e-12) {
                    lambda = Some(new);
                    break;
                }
            }
            lambda = Some(new);
        }
        found.push(Eigenpair { value: lambda.unwrap_or(0.0), vector: v, iterations });
    }
    Ok(found)
}

/// The smallest (most negative) eigenvalue of H and its eigenvector, by power iteration on the
/// shifted operator σI − H with σ = `bound`, an upper bound on |λ| (the dominant eigenvalue's
/// magnitude from [`top_eigen`], say): every eigenvalue of σI − H is then ≥ 0 and its largest is
/// σ − λmin. Converges as (1 − gap/σ)ᵏ, slower than [`top_eigen`] when λmin sits in a crowd;
/// `opts.tol` is relative to σ. A negative λmin is negative curvature: H is not convex there.
pub async fn smallest_eigen(op: &HessianOperator<'_>, bound: f64, opts: PowerOptions) -> Result<Eigenpair> {
    let n = op.dim();
    if !(bound.is_finite() && bound >= 0.0) {
        return Err(Error::Config(format!("smallest_eigen: the bound {bound} on |λ| must be finite and ≥ 0")));
    }
    // a little above the bound, so σ − λ > 0 even for λ = σ exactly
    let sigma = bound * 1.05 + 1e-12;
    let mut rng = SplitMix64::new(opts.seed ^ 0x5A11);
    let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    normalize(&mut v);
    let (mut mu, mut iterations) = (None::<f64>, 0);
    for it in 0..opts.max_iter {
        iterations = it + 1;
        let hv = op.apply(&v).await?;
        let mut bv: Vec<f64> = v.iter().zip(&hv).map(|(x, h)| sigma * x - h).collect();
        let new = dot(&v, &bv);
        if normalize(&mut bv) == 0.0 {
            mu = Some(0.0);
            break;
        }
        v = bv;
        if let Some(old) = mu {
            if (new - old).abs() <= opts.tol * sigma.max(1e-12) {
                mu = Some(new);
                break;
            }
        }
        mu = Some(new);
    }
    Ok(Eigenpair { value: sigma - mu.unwrap_or(0.0), vector: v, iterations })
}

/// Hutchinson's estimate of tr(H) with its standard error.
#[derive(Clone, Copy, Debug)]
pub struct TraceEstimate {
    /// Mean of zᵀHz.
    pub trace: f64,
    /// Standard error of the mean.
    pub stderr: f64,
    /// Probes used.
    pub probes: usize,
}

/// tr(H) ≈ mean over Rademacher probes of zᵀHz, with at most `probes` probes; with `tol` > 0 it
/// stops early, as PyHessian does, once (after 10 probes) a new probe moves the running mean by
/// less than `tol` relative. The standard error is reported either way.
pub async fn hutchinson_trace(op: &HessianOperator<'_>, probes: usize, tol: f64, seed: u64) -> Result<TraceEstimate> {
    if probes < 2 {
        return Err(Error::Config(format!("--probes {probes}: need at least 2 for a standard error")));
    }
    let n = op.dim();
    let mut samples = Vec::with_capacity(probes);
    for p in 0..probes {
        let z = rademacher(seed, p, n);
        let hz = op.apply(&z).await?;
        let before = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
        samples.push(dot(&z, &hz));
        let after = samples.iter().sum::<f64>() / samples.len() as f64;
        if tol > 0.0 && p >= 10 && (after - before).abs() <= tol * before.abs() {
            break;
        }
    }
    let k = samples.len();
    let mean = samples.iter().sum::<f64>() / k as f64;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
    Ok(TraceEstimate { trace: mean, stderr: (var / k as f64).sqrt(), probes: k })
}

/// The eigenvalue density from stochastic Lanczos quadrature: per run, Ritz values (nodes) and
/// the squared first components of their vectors (weights, summing to 1).
#[derive(Clone, Debug)]
pub struct Density {
    /// One (nodes, weights) per run.
    pub runs: Vec<(Vec<f64>, Vec<f64>)>,
    /// Parameter count n: the density of eigenvalues is Σ weights, and n times it counts them.
    pub dim: usize,
}

impl Density {
    /// All nodes and weights, each run weighted 1 / runs (total mass 1).
    pub fn nodes_and_weights(&self) -> Vec<(f64, f64)> {
        let r = self.runs.len() as f64;
        self.runs.iter().flat_map(|(x, w)| x.iter().zip(w).map(move |(a, b)| (*a, *b / r))).collect()
    }

    /// Total mass (1 up to rounding).
    pub fn mass(&self) -> f64 {
        self.nodes_and_weights().iter().map(|p| p.1).sum()
    }

    /// First moment Σ w λ, an estimate of tr(H) / n.
    pub fn first_moment(&self) -> f64 {
        self.nodes_and_weights().iter().map(|p| p.0 * p.1).sum()
    }

    /// The density smoothed by Gaussians of width `sigma`, at `points` points spanning the nodes
    /// (with 5 σ of margin).
    pub fn smoothed(&self, sigma: f64, points: usize) -> Vec<(f64, f64)> {
        let nw = self.nodes_and_weights();
        let lo = nw.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) - 5.0 * sigma;
        let hi = nw.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max) + 5.0 * sigma;
        let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        (0..points.max(2))
            .map(|i| {
                let x = lo + (hi - lo) * i as f64 / (points.max(2) - 1) as f64;
                (x, nw.iter().map(|(l, w)| w * norm * (-0.5 * ((x - l) / sigma).powi(2)).exp()).sum())
            })
            .collect()
    }
}

/// The most host memory SLQ's reorthogonalisation basis may take.
pub const MAX_LANCZOS_BASIS_BYTES: u64 = 4 << 30;

/// SLQ: `runs` Rademacher starts, `steps` Lanczos steps each with full reorthogonalisation.
pub async fn slq_density(op: &HessianOperator<'_>, runs: usize, steps: usize, seed: u64) -> Result<Density> {
    let n = op.dim();
    if runs == 0 || steps == 0 {
        return Err(Error::Config("SLQ needs at least one run and one Lanczos step".into()));
    }
    let m = steps.min(n);
    // full reorthogonalisation keeps every Lanczos vector: m·n f64 on the host
    let basis_bytes = (m as u128) * (n as u128) * 8;
    if basis_bytes > MAX_LANCZOS_BASIS_BYTES as u128 {
        return Err(Error::Config(format!(
            "--lanczos-steps {steps}: {m} Lanczos vectors of {n} parameters take {:.1} GB, above the {} GiB this tool keeps; lower --lanczos-steps to at most {}",
            basis_bytes as f64 / 1e9,
            MAX_LANCZOS_BASIS_BYTES >> 30,
            MAX_LANCZOS_BASIS_BYTES / (8 * n as u64).max(1)
        )));
    }
    let mut out = Vec::with_capacity(runs);
    for r in 0..runs {
        out.push(lanczos_ritz(op, rademacher(seed ^ 0x51_0000, r, n), m).await?);
    }
    Ok(Density { runs: out, dim: n })
}

/// `m` Lanczos steps from `start` with full reorthogonalisation: the Ritz values (eigenvalues of
/// the tridiagonal T, ascending) and their weights (the squared first components of T's
/// eigenvectors: the start vector's mass on each).
async fn lanczos_ritz(op: &HessianOperator<'_>, start: Vec<f64>, m: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut v = start;
    normalize(&mut v);
    let mut basis: Vec<Vec<f64>> = vec![v];
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    for j in 0..m {
        let mut w = op.apply(&basis[j]).await?;
        let a = dot(&w, &basis[j]);
        alpha.push(a);
        // full reorthogonalisation (twice is enough) keeps the Ritz values honest
        for _ in 0..2 {
            orthogonalize(&mut w, &basis);
        }
        let b = normalize(&mut w);
        if j + 1 == m || b < 1e-10 * a.abs().max(1.0) {
            break;
        }
        beta.push(b);
        basis.push(w);
    }
    let k = alpha.len();
    let mut t = vec![0.0; k * k];
    for i in 0..k {
        t[i * k + i] = alpha[i];
        if i + 1 < k {
            t[i * k + i + 1] = beta[i];
            t[(i + 1) * k + i] = beta[i];
        }
    }
    let (values, vectors) = eigen::symmetric_eigen(&t, k);
    let weights = vectors.iter().map(|u| u[0] * u[0]).collect();
    Ok((values, weights))
}

/// The extreme eigenvalues of H, λmin and λmax (algebraic: λmin < 0 is negative curvature), as
/// the extreme Ritz values of `steps` Lanczos steps from a Rademacher start: the extremes
/// converge first, far faster than power iteration on a shifted operator, and each is a bound
/// that tightens with the steps (λmin from above, λmax from below). `steps` HVPs.
pub async fn extreme_eigenvalues(op: &HessianOperator<'_>, steps: usize, seed: u64) -> Result<(f64, f64)> {
    let n = op.dim();
    if steps == 0 {
        return Err(Error::Config("extreme eigenvalues need at least one Lanczos step".into()));
    }
    let (values, _) = lanczos_ritz(op, rademacher(seed ^ 0xE7_0000, 0, n), steps.min(n)).await?;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok((lo, hi))
}

/// The dense Hessian `[P, P]` (row i = H e_i) from P unit-vector products; refused above
/// `max_params` (it costs P HVPs over the rows and P² numbers).
pub async fn dense_hessian(op: &HessianOperator<'_>, max_params: usize) -> Result<Vec<f64>> {
    let n = op.dim();
    if n > max_params {
        return Err(Error::Config(format!(
            "the exact Hessian of {n} parameters needs {n} HVPs and {} MiB; the limit is {max_params} parameters \
             (raise it with --max-exact-params, or use --top-k / --trace / --density, which scale)",
            (n * n * 8) >> 20
        )));
    }
    let mut h = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for i in 0..n {
        e[i] = 1.0;
        let col = op.apply(&e).await?;
        h[i * n..(i + 1) * n].copy_from_slice(&col);
        e[i] = 0.0;
    }
    Ok(h)
}

/// Per parameter: the exact diagonal H_ii, the row norm ‖H_i,:‖ (what AdaHessian's √v̂ converges
/// to, ALGORITHM.md §4.6), and AdaHessian's per-step estimate |z ⊙ Hz| averaged over probes with
/// its root mean square.
#[derive(Clone, Debug)]
pub struct DiagonalReport {
    /// H_ii.
    pub diagonal: Vec<f64>,
    /// ‖H_i,:‖.
    pub row_norm: Vec<f64>,
    /// mean_probes |z ⊙ Hz|_i.
    pub estimate_mean_abs: Vec<f64>,
    /// sqrt(mean_probes (z ⊙ Hz)_i²): the quantity the second-moment EMA tracks.
    pub estimate_rms: Vec<f64>,
}

/// The diagonal report from a dense Hessian and `probes` Rademacher probes.
pub async fn diagonal_report(op: &HessianOperator<'_>, h: &[f64], probes: usize, seed: u64) -> Result<DiagonalReport> {
    let n = op.dim();
    let diagonal = (0..n).map(|i| h[i * n + i]).collect();
    let row_norm = (0..n).map(|i| h[i * n..(i + 1) * n].iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
    let (mut abs, mut sq) = (vec![0.0; n], vec![0.0; n]);
    for p in 0..probes.max(1) {
        let z = rademacher(seed, p, n);
        let hz = op.apply(&z).await?;
        for i in 0..n {
            let d = z[i] * hz[i];
            abs[i] += d.abs() / probes.max(1) as f64;
            sq[i] += d * d / probes.max(1) as f64;
        }
    }
    Ok(DiagonalReport {
        diagonal,
        row_norm,
        estimate_mean_abs: abs,
        estimate_rms: sq.iter().map(|v| v.sqrt()).collect(),
    })
}
