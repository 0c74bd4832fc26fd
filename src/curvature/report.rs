//! What the `hessian` and `landscape` jobs measured, each as ONE serialisable struct that is
//! printed as text ([`HessianReport::to_text`]) or as JSON (serde) from the same value.

use serde::Serialize;
use std::fmt::Write as _;

/// HVPs and seconds one analysis took.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Cost {
    /// Hessian-vector products.
    pub hvps: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The top eigenvalues by power iteration with deflation.
#[derive(Clone, Debug, Serialize)]
pub struct TopEigenResult {
    /// Largest first.
    pub top_eigenvalues: Vec<f64>,
    /// Iterations each took.
    pub power_iterations: Vec<usize>,
    /// Where the eigenvectors were written, if asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigenvectors_dir: Option<String>,
    /// What it cost.
    pub top_eigen_cost: Cost,
}

/// Hutchinson's trace estimate.
#[derive(Clone, Debug, Serialize)]
pub struct TraceResult {
    /// The estimate.
    pub trace: f64,
    /// Its standard error.
    pub trace_stderr: f64,
    /// Rademacher probes used.
    pub trace_probes: usize,
    /// What it cost.
    pub trace_cost: Cost,
}

/// Both ends of the spectrum, λmin and λmax (algebraic), as Lanczos' extreme Ritz values.
#[derive(Clone, Debug, Serialize)]
pub struct ExtremesResult {
    /// The most negative eigenvalue (negative: the loss is not convex here).
    pub lambda_min: f64,
    /// The largest.
    pub lambda_max: f64,
    /// |λmin| / λmax: Li et al.'s non-convexity ratio.
    pub nonconvexity: f64,
    /// Lanczos steps.
    pub lanczos_steps: usize,
    /// What it cost.
    pub extremes_cost: Cost,
}

/// The spectral density by stochastic Lanczos quadrature.
#[derive(Clone, Debug, Serialize)]
pub struct DensityResult {
    /// Ritz values of every run.
    pub nodes: Vec<f64>,
    /// Their weights (sum 1 over all runs).
    pub weights: Vec<f64>,
    /// Σ w λ ≈ trace / n.
    pub first_moment: f64,
    /// Σ w.
    pub mass: f64,
    /// Runs × Lanczos steps.
    pub runs: usize,
    /// Lanczos steps per run.
    pub lanczos_steps: usize,
    /// The files written.
    pub files: String,
    /// What it cost.
    pub cost: Cost,
}

/// The dense Hessian (written as .npy) and / or its diagonal against AdaHessian's estimate.
#[derive(Clone, Debug, Serialize)]
pub struct DenseResult {
    /// The .npy path, when the Hessian was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// max |H − Hᵀ| (forward-over-reverse columns are not exactly symmetric in f32).
    pub exact_asymmetry: f64,
    /// The diagonal report's CSV, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagonal_csv: Option<String>,
    /// Mean over parameters of ‖H_i,:‖ / |H_ii| (what AdaHessian's √v̂ tracks vs the diagonal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_norm_over_diagonal: Option<f64>,
    /// What building it cost (n HVPs).
    pub dense_cost: Cost,
}

/// The `hessian` job's result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HessianReport {
    /// The adapter.
    pub adapter: String,
    /// Parameters n.
    pub parameters: usize,
    /// Rows of the mean loss.
    pub rows: usize,
    /// Which split.
    pub split: String,
    /// Where BatchNorm took its statistics from: "train" (the batch's, differentiated through,
    /// as AdaHessian trains) or "eval" (the running ones, as PyHessian analyses); None for a
    /// model without BatchNorm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_mode: Option<String>,
    /// `--top-k`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub top: Option<TopEigenResult>,
    /// `--trace`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceResult>,
    /// `--extremes`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extremes: Option<ExtremesResult>,
    /// `--density`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub density: Option<DensityResult>,
    /// `--exact` / `--diagonal`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub dense: Option<DenseResult>,
    /// `--per-layer`: each parameter tensor's diagonal block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_layer: Option<Vec<super::BlockCurvature>>,
    /// `--preconditioned`: the sharpness the run's optimizer sees against its edge of stability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_of_stability: Option<super::EdgeOfStability>,
    /// All HVPs.
    pub hvps: u64,
    /// All seconds.
    pub seconds: f64,
}

impl HessianReport {
    /// The report as the terminal shows it.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "adapter: {}", self.adapter);
        let _ = writeln!(
            t,
            "Hessian of the mean loss over {} {} rows, {} parameters{}",
            self.rows,
            self.split,
            self.parameters,
            bn_mode_text(self.bn_mode.as_deref())
        );
        if let Some(r) = &self.top {
            let values: Vec<String> = r.top_eigenvalues.iter().map(|v| format!("{v:.6e}")).collect();
            let c = r.top_eigen_cost;
            let _ = writeln!(
                t,
                "top {} eigenvalues: {}  ({} HVPs, {:.1}s)",
                values.len(),
                values.join(", "),
                c.hvps,
                c.seconds
            );
            if let Some(dir) = &r.eigenvectors_dir {
                let _ = writeln!(t, "eigenvectors written to {dir}");
            }
        }
        if let Some(r) = &self.trace {
            let c = r.trace_cost;
            let _ = writeln!(
                t,
                "trace: {:.6e} ± {:.2e} (standard error, {} Rademacher probes; {} HVPs, {:.1}s)",
                r.trace, r.trace_stderr, r.trace_probes, c.hvps, c.seconds
            );
        }
        if let Some(r) = &self.extremes {
            let c = r.extremes_cost;
            let _ = writeln!(
                t,
                "λmin {:.6e}, λmax {:.6e}, |λmin|/λmax {:.3e} ({} Lanczos steps; {} HVPs, {:.1}s){}",
                r.lambda_min,
                r.lambda_max,
                r.nonconvexity,
                r.lanczos_steps,
                c.hvps,
                c.seconds,
                if r.lambda_min < 0.0 { ": negative curvature, the loss is not convex here" } else { "" }
            );
        }
        if let Some(d) = &self.density {
            let lo = d.nodes.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = d.nodes.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                t,
                "density: {} runs × {} Lanczos steps, mass {:.6}, first moment {:.6e} (≈ trace / n), nodes in [{lo:.4e}, {hi:.4e}]; {} ({} HVPs, {:.1}s)",
                d.runs, d.lanczos_steps, d.mass, d.first_moment, d.files, d.cost.hvps, d.cost.seconds
            );
        }
        if let Some(d) = &self.dense {
            let n = self.parameters;
            if let Some(path) = &d.exact {
                let _ = writeln!(
                    t,
                    "exact Hessian [{n}, {n}] written to {path} (max |H − Hᵀ| {:.2e}; {} HVPs, {:.1}s)",
                    d.exact_asymmetry, d.dense_cost.hvps, d.dense_cost.seconds
                );
            }
            if let (Some(csv), Some(ratio)) = (&d.diagonal_csv, d.row_norm_over_diagonal) {
                let files = csv.trim_end_matches(".csv");
                let _ = writeln!(
                    t,
                    "diagonal: mean row norm / |diagonal| = {ratio:.2} (AdaHessian's √v̂ tracks row norms, not |H_ii|); {files}.{{csv,png,svg}}"
                );
            }
        }
        if let Some(blocks) = &self.per_layer {
            let _ =
                writeln!(t, "per tensor (diagonal blocks): tensor, parameters, top eigenvalue, trace ± stderr, HVPs");
            for b in blocks {
                let _ = writeln!(
                    t,
                    "  {:<14} {:>7} {:>13.6e} {:>13.6e} ± {:.2e} {:>6}",
                    b.tensor, b.params, b.top_eigenvalue, b.trace, b.trace_stderr, b.hvps
                );
            }
        }
        if let Some(e) = &self.edge_of_stability {
            let _ = writeln!(
                t,
                "edge of stability: sharpness {:.6e} vs threshold {:.6e} ({:.0}% of it; {}; {} HVPs)",
                e.sharpness,
                e.threshold,
                100.0 * e.sharpness / e.threshold,
                e.rule,
                e.hvps
            );
        }
        let _ = writeln!(t, "cost: {} HVPs over {} rows, {:.1}s", self.hvps, self.rows, self.seconds);
        t
    }
}

/// One split's slice of the loss landscape.
#[derive(Clone, Debug, Serialize)]
pub struct LandscapeSplit {
    /// train or test.
    pub split: String,
    /// Rows evaluated at each point.
    pub rows: usize,
    /// Grid points.
    pub points: usize,
    /// The loss at the weights (the grid's centre).
    pub loss_at_weights: f64,
    /// The smallest loss on the grid.
    pub min_loss: f64,
    /// The largest.
    pub max_loss: f64,
    /// Points whose loss is not finite (left out of min and max).
    pub non_finite_points: usize,
    /// `--nonconvexity`: |λmin/λmax| at the weights and its largest value on the grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonconvexity: Option<NonconvexitySummary>,
}

/// Li et al.'s non-convexity map in brief.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NonconvexitySummary {
    /// |λmin/λmax| at the grid's centre (the weights).
    pub at_weights: f64,
    /// Its largest value on the grid.
    pub max: f64,
    /// Lanczos steps per point.
    pub lanczos_steps: usize,
    /// HVPs the map cost.
    pub hvps: u64,
}

/// The `landscape` job's result.
#[derive(Clone, Debug, Serialize)]
pub struct LandscapeReport {
    /// random, hessian or pca.
    pub directions: String,
    /// 1 or 2.
    pub dim: usize,
    /// Grid points per axis (a, b).
    pub grid: (usize, usize),
    /// BatchNorm's statistics source, as in [`HessianReport::bn_mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn_mode: Option<String>,
    /// Per split.
    pub splits: Vec<LandscapeSplit>,
    /// For PCA directions: the share of the trajectory's variance each explains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<[f64; 2]>,
    /// Checkpoints of the trajectory projected onto the plane.
    pub trajectory_points: usize,
    /// HVPs spent on the directions (Hessian eigenvectors).
    pub hvps: u64,
    /// Seconds.
    pub seconds: f64,
    /// Where the grid, plots and trajectory went.
    pub out: String,
}

/// ", BatchNorm in train mode (batch statistics)" and the like, or nothing without BatchNorm.
fn bn_mode_text(mode: Option<&str>) -> &'static str {
    match mode {
        Some("train") => ", BatchNorm in train mode (the batch's statistics, differentiated through)",
        Some("eval") => ", BatchNorm in eval mode (the running statistics)",
        _ => "",
    }
}

impl LandscapeReport {
    /// The report as the terminal shows it.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        if let Some(mode) = self.bn_mode.as_deref() {
            let _ = writeln!(t, "loss{}", bn_mode_text(Some(mode)));
        }
        if let Some([a, b]) = self.explained_variance {
            let _ = writeln!(
                t,
                "PCA directions explain {:.1}% and {:.1}% of the trajectory's variance",
                a * 100.0,
                b * 100.0
            );
        }
        for s in &self.splits {
            let _ = writeln!(
                t,
                "{}: loss at the weights {:.5}, min {:.5}, max {:.5} over {} points of {} rows{}",
                s.split,
                s.loss_at_weights,
                s.min_loss,
                s.max_loss,
                s.points,
                s.rows,
                if s.non_finite_points > 0 {
                    format!(" ({} points gave a non-finite loss and are left out)", s.non_finite_points)
                } else {
                    String::new()
                }
            );
            if let Some(n) = &s.nonconvexity {
                let _ = writeln!(
                    t,
                    "{}: |λmin/λmax| {:.3e} at the weights, at most {:.3e} on the grid ({} Lanczos steps a point, {} HVPs)",
                    s.split, n.at_weights, n.max, n.lanczos_steps, n.hvps
                );
            }
        }
        let per_split = if self.dim == 2 {
            format!("{}×{} per split", self.grid.0, self.grid.1)
        } else {
            format!("{} per split", self.grid.0)
        };
        let points: usize = self.splits.iter().map(|s| s.points).sum();
        let _ =
            writeln!(t, "{points} grid points ({per_split}), {} HVPs, {:.1}s -> {}", self.hvps, self.seconds, self.out);
        t
    }
}
