//! `adahessian hessian` and `adahessian landscape`: PyHessian's and Li et al.'s jobs on a trained
//! run (or any checkpoint), on the GPU HVP. Both print what they cost (HVPs, seconds).

use crate::plot::{bar_chart, heatmap, line_chart, Series};
use crate::setup::{self, Data, DataArgs};
use crate::LazyGpu;
use adahessian_wgpu::checkpoint::{self, NamedTensor};
use adahessian_wgpu::curvature::landscape::{self, Axis};
use adahessian_wgpu::curvature::report::{
    Cost, DenseResult, DensityResult, ExtremesResult, HessianReport, LandscapeReport, LandscapeSplit, TopEigenResult,
    TraceResult,
};
use adahessian_wgpu::curvature::{self, HessianOperator, PowerOptions};
use adahessian_wgpu::data::DeviceDataset;
use adahessian_wgpu::nn::{BnMode, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::{block_on, gpu::Gpu};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which weights, model and data: a run directory, or a checkpoint with a model and data flags.
#[derive(Args, Debug, Clone)]
pub struct Source {
    /// A run directory written by `train` (its model, data split and final weights).
    #[arg(long)]
    run: Option<PathBuf>,
    /// A safetensors checkpoint (with --model and the data flags, or overriding the run's weights).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The model, when not taken from --run.
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Seed of the data split when not taken from --run.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Use the first N rows of the chosen split (default: 256 for hessian, 128 for landscape,
    /// which evaluates them as one batch).
    #[arg(long)]
    rows: Option<usize>,
    /// Where BatchNorm layers take their statistics from: train (the batch's, differentiated
    /// through: the loss AdaHessian trains on) or eval (the running statistics: BatchNorm is
    /// affine, as PyHessian analyses). The report says which was used.
    #[arg(long, default_value = "train")]
    bn_mode: String,
}

struct Loaded {
    bn_mode: BnMode,
    spec: ModelSpec,
    weights: Vec<NamedTensor>,
    data: Data,
    dir: Option<PathBuf>,
}

impl Source {
    /// `--rows 0` is refused by its own name (it reached the network as "max_batch").
    fn check_rows(&self) -> Result<()> {
        if self.rows == Some(0) {
            bail!("--rows 0: give at least 1 row");
        }
        Ok(())
    }

    fn load(&self) -> Result<Loaded> {
        let bn_mode = BnMode::parse(&self.bn_mode).context("--bn-mode")?;
        let (spec, data, dir, default_ckpt) = match &self.run {
            Some(dir) => {
                let (data_args, seed) = crate::run_data_args(dir)?;
                let spec = setup::parse_model(
                    &dir.join("model.json").display().to_string(),
                    adahessian_wgpu::nn::Loss::CrossEntropy,
                )?;
                let ckpt =
                    ["final.safetensors", "checkpoint.safetensors"].iter().map(|f| dir.join(f)).find(|p| p.is_file());
                (spec, data_args.load(seed)?, Some(dir.clone()), ckpt)
            }
            None => {
                let model = self
                    .model
                    .as_deref()
                    .context("give --run DIR, or --checkpoint F with --model M and the data flags")?;
                let data = self.data.load(self.split_seed)?;
                (setup::model_for(model, &data)?, data, None, None)
            }
        };
        let path = self
            .checkpoint
            .clone()
            .or(default_ckpt)
            .context("no weights: give --checkpoint F (the run has no final.safetensors)")?;
        let (weights, _) = checkpoint::load(&path)?;
        let weights = weights
            .into_iter()
            .filter(|t| !t.name.contains("optimizer") && !t.name.starts_with("batch_order"))
            .collect();
        Ok(Loaded { bn_mode, spec, weights, data, dir })
    }
}

fn network(gpu: &Gpu, l: &Loaded, max_batch: usize) -> Result<Network> {
    let net = Network::new(gpu, &l.spec, NetworkOptions::new(max_batch, 0))?;
    for t in &l.weights {
        net.set_tensor(gpu, &t.name, &t.shape, &t.values).context("the checkpoint does not match the model")?;
    }
    net.set_bn_mode(l.bn_mode);
    Ok(net)
}

impl Loaded {
    /// The BatchNorm mode for the report, None for a model without BatchNorm.
    fn bn_mode_name(&self) -> Result<Option<String>> {
        Ok(self.spec.resolve()?.has_batch_norm().then(|| self.bn_mode.name().to_string()))
    }
}

#[derive(Args, Debug)]
pub struct HessianCmd {
    #[command(flatten)]
    source: Source,
    /// Which rows: train or test.
    #[arg(long, default_value = "train")]
    split: String,
    /// The top K eigenvalues (power iteration with deflation).
    #[arg(long)]
    top_k: Option<usize>,
    /// Hutchinson trace with its standard error.
    #[arg(long)]
    trace: bool,
    /// Probes for --trace (at most) and --diagonal.
    #[arg(long, default_value_t = 100)]
    probes: usize,
    /// --trace stops once a probe moves the running mean by less than this, relative (PyHessian's rule; 0: use every probe).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    trace_tol: f64,
    /// Eigenvalue density by stochastic Lanczos quadrature.
    #[arg(long)]
    density: bool,
    /// Lanczos steps per SLQ run.
    #[arg(long, default_value_t = 40)]
    lanczos_steps: usize,
    /// SLQ runs (random starts).
    #[arg(long, default_value_t = 3)]
    slq_runs: usize,
    /// Gaussian smoothing of the density plot, as a fraction of the spectrum's width.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.01)]
    sigma: f64,
    /// The dense Hessian from unit-vector HVPs (small models only), written to --out.
    #[arg(long)]
    exact: bool,
    /// File for --exact (.npy, float64, [P, P]).
    #[arg(long, default_value = "H.npy")]
    out: PathBuf,
    /// Overwrite existing output files (--out, and files in --out-dir or --save-eigenvectors).
    #[arg(long)]
    force: bool,
    /// Refuse --exact / --diagonal above this many parameters.
    #[arg(long, default_value_t = 3000)]
    max_exact_params: usize,
    /// Exact diagonal, row norms and AdaHessian's estimate per parameter (CSV and plot).
    #[arg(long)]
    diagonal: bool,
    /// λmin and λmax (algebraic) from --lanczos-steps Lanczos steps, and |λmin|/λmax: how much
    /// negative curvature there is.
    #[arg(long)]
    extremes: bool,
    /// Top eigenvalue and trace of each parameter tensor's diagonal block (table, JSON and a bar
    /// plot), as PyHessian reports per layer.
    #[arg(long)]
    per_layer: bool,
    /// The sharpness the run's optimizer sees, λmax(P⁻¹H) with P its denominator from the run's
    /// checkpoint, against its edge of stability (Cohen et al. 2022). Needs --run.
    #[arg(long)]
    preconditioned: bool,
    /// Write the eigenvectors of --top-k as safetensors (named like the parameters) into this directory.
    #[arg(long)]
    save_eigenvectors: Option<PathBuf>,
    /// Directory for density and diagonal files (default: RUN/hessian or ./hessian).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Relative tolerance of the power iteration.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    tol: f64,
    /// Iterations per eigenvalue at most.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// Seed of probes and starting vectors.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn pick_split(data: &Data, split: &str) -> Result<adahessian_wgpu::data::Dataset> {
    match split {
        "train" => Ok(data.train.clone()),
        "test" => data.test.clone().context("this data has no test rows (--test-fraction 0)"),
        other => bail!("--split {other}: use train or test"),
    }
}

/// The dense Hessian as NumPy's `.npy` format 1.0: magic, header dict padded with spaces to a
/// multiple of 64 bytes, then float64 little-endian in C order, shape [n, n]. (Written here: the
/// npy crates' header parsers pull in a C build step that breaks the Windows build; the test
/// suite reads the file back with `npyz`.)
/// Refuses settings that would print nonsense, naming the flag and the range.
fn check_hessian_flags(cmd: &HessianCmd) -> Result<()> {
    let at_least_one = [
        ("--max-iter", cmd.max_iter),
        ("--probes", cmd.probes),
        ("--lanczos-steps", cmd.lanczos_steps),
        ("--slq-runs", cmd.slq_runs),
        ("--top-k", cmd.top_k.unwrap_or(1)),
    ];
    for (flag, v) in at_least_one {
        if v == 0 {
            bail!("{flag} 0: give at least 1");
        }
    }
    // each count is one or more Hessian-vector products: beyond these no run finishes in a day
    // on a small GPU, and none is needed for the estimates these flags control
    let at_most = [
        ("--max-iter", cmd.max_iter, 100_000),
        ("--probes", cmd.probes, 100_000),
        ("--lanczos-steps", cmd.lanczos_steps, 10_000),
        ("--slq-runs", cmd.slq_runs, 1_000),
        ("--top-k", cmd.top_k.unwrap_or(1), 1_000),
    ];
    for (flag, v, limit) in at_most {
        if v > limit {
            bail!("{flag} {v}: at most {limit} (each is one or more Hessian-vector products)");
        }
    }
    for (flag, v) in [("--tol", cmd.tol), ("--trace-tol", cmd.trace_tol)] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{flag} {v}: give a finite tolerance ≥ 0");
        }
    }
    if cmd.exact {
        // before any work: the file must be new (or --force) and its directory must exist
        if cmd.out.is_dir() {
            bail!("--out {}: this is a directory; --exact writes one .npy file, e.g. --out H.npy", cmd.out.display());
        }
        if cmd.out.exists() && !cmd.force {
            bail!("{} already exists; pass --force to overwrite it, or choose another --out", cmd.out.display());
        }
        let parent = cmd.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("--out {}: the directory {} does not exist", cmd.out.display(), parent.display());
        }
    }
    if let Some(dir) = &cmd.out_dir {
        setup::check_output_dir("--out-dir", dir, &hessian_files(), true, cmd.force)?;
    }
    if let Some(dir) = &cmd.save_eigenvectors {
        let names: Vec<String> = (0..cmd.top_k.unwrap_or(1)).map(|i| format!("eigenvector-{i}.safetensors")).collect();
        setup::check_output_dir("--save-eigenvectors", dir, &names, true, cmd.force)?;
    }
    if !(cmd.sigma.is_finite() && cmd.sigma > 0.0) {
        bail!(
            "--sigma {}: give a finite smoothing width > 0 (a fraction of the spectrum's width, e.g. 0.01)",
            cmd.sigma
        );
    }
    Ok(())
}

pub fn hessian(lazy: &LazyGpu, cmd: &HessianCmd) -> Result<()> {
    check_hessian_flags(cmd)?;
    cmd.source.check_rows()?;
    let l = cmd.source.load()?;
    let ds = pick_split(&l.data, &cmd.split)?;
    let rows = cmd.source.rows.unwrap_or(256).min(ds.rows());
    let model = l.spec.resolve()?;
    let (mut top_k, mut trace) = (cmd.top_k, cmd.trace);
    if top_k.is_none()
        && !trace
        && !cmd.density
        && !cmd.exact
        && !cmd.diagonal
        && !cmd.per_layer
        && !cmd.preconditioned
        && !cmd.extremes
    {
        (top_k, trace) = (Some(1), true);
    }
    if (cmd.exact || cmd.diagonal) && model.n_params > cmd.max_exact_params {
        bail!(
            "--exact/--diagonal need the dense Hessian: {} parameters is over the limit of {} ({} HVPs, {} MiB); raise --max-exact-params or use --top-k/--trace/--density",
            model.n_params,
            cmd.max_exact_params,
            model.n_params,
            (model.n_params * model.n_params * 8) >> 20
        );
    }
    let gpu = lazy.get()?;
    let net = network(gpu, &l, rows.min(256))?;
    let bound = net.bind(gpu, &DeviceDataset::upload(gpu, &ds)?)?;
    let op = HessianOperator::new(gpu, &net, &bound, Some(rows))?;
    let out_dir =
        cmd.out_dir.clone().unwrap_or_else(|| l.dir.as_ref().map_or(PathBuf::from("hessian"), |d| d.join("hessian")));
    let start = Instant::now();
    let mut report = HessianReport {
        adapter: gpu.describe(),
        parameters: model.n_params,
        rows,
        split: cmd.split.clone(),
        bn_mode: l.bn_mode_name()?,
        ..Default::default()
    };
    if let Some(k) = top_k {
        report.top = Some(top_eigen(&op, cmd, k, &model)?);
    }
    if trace {
        let (t0, h0) = (Instant::now(), op.hvps());
        let busy = setup::spinner("trace (Hutchinson)…");
        let t = block_on(curvature::hutchinson_trace(&op, cmd.probes, cmd.trace_tol, cmd.seed))?;
        busy.finish_and_clear();
        let trace_cost = cost(&op, h0, t0);
        report.trace = Some(TraceResult { trace: t.trace, trace_stderr: t.stderr, trace_probes: t.probes, trace_cost });
    }
    if cmd.extremes {
        let (t0, h0) = (Instant::now(), op.hvps());
        let busy = setup::spinner("λmin and λmax (Lanczos)…");
        let (lo, hi) = block_on(curvature::extreme_eigenvalues(&op, cmd.lanczos_steps, cmd.seed))?;
        busy.finish_and_clear();
        report.extremes = Some(ExtremesResult {
            lambda_min: lo,
            lambda_max: hi,
            nonconvexity: lo.abs() / hi.abs().max(f64::MIN_POSITIVE),
            lanczos_steps: cmd.lanczos_steps.min(model.n_params),
            extremes_cost: cost(&op, h0, t0),
        });
    }
    if cmd.density {
        report.density = Some(density(&op, cmd, &out_dir)?);
    }
    if cmd.exact || cmd.diagonal {
        report.dense = Some(dense(&op, cmd, &model, &out_dir)?);
    }
    if cmd.per_layer {
        report.per_layer = Some(per_layer(&op, cmd, &model, &out_dir)?);
    }
    if cmd.preconditioned {
        report.edge_of_stability = Some(edge_of_stability(&op, cmd, l.dir.as_deref())?);
    }
    // the per-layer blocks are operators of their own, with their own counts
    report.hvps = op.hvps()
        + report.per_layer.iter().flatten().map(|b| b.hvps).sum::<u64>()
        + report.edge_of_stability.as_ref().map_or(0, |e| e.hvps);
    report.seconds = start.elapsed().as_secs_f64();
    // one value, printed one of two ways
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// HVPs since `h0` and seconds since `t0`.
fn cost(op: &HessianOperator, h0: u64, t0: Instant) -> Cost {
    Cost { hvps: op.hvps() - h0, seconds: t0.elapsed().as_secs_f64() }
}

/// `--top-k`: power iteration, and the eigenvectors as safetensors when asked.
fn top_eigen(
    op: &HessianOperator,
    cmd: &HessianCmd,
    k: usize,
    model: &adahessian_wgpu::nn::Resolved,
) -> Result<TopEigenResult> {
    let (t0, h0) = (Instant::now(), op.hvps());
    let busy = setup::spinner("top eigenvalues (power iteration)…");
    let options = PowerOptions { tol: cmd.tol, max_iter: cmd.max_iter, seed: cmd.seed };
    let found = block_on(curvature::top_eigen(op, k, options))?;
    busy.finish_and_clear();
    let top_eigen_cost = cost(op, h0, t0);
    if let Some(dir) = &cmd.save_eigenvectors {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the directory {}", dir.display()))?;
        for (i, e) in found.iter().enumerate() {
            let meta = std::collections::HashMap::from([("eigenvalue".to_string(), e.value.to_string())]);
            let path = dir.join(format!("eigenvector-{i}.safetensors"));
            checkpoint::save(&path, &checkpoint::named_tensors(model, &e.vector), meta)?;
        }
    }
    Ok(TopEigenResult {
        top_eigenvalues: found.iter().map(|e| e.value).collect(),
        power_iterations: found.iter().map(|e| e.iterations).collect(),
        eigenvectors_dir: cmd.save_eigenvectors.as_ref().map(|d| d.display().to_string()),
        top_eigen_cost,
    })
}

/// `--preconditioned`: the run's optimizer (run.json) and its state (checkpoint.safetensors) give
/// P and the threshold; the sharpness is λmax of P^(−1/2) H P^(−1/2).
fn edge_of_stability(
    op: &HessianOperator,
    cmd: &HessianCmd,
    dir: Option<&Path>,
) -> Result<adahessian_wgpu::curvature::EdgeOfStability> {
    let dir = dir.context("--preconditioned reads the optimizer's state from a run directory: give --run")?;
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run.json"))?)
        .with_context(|| format!("{}: run.json is corrupted", dir.display()))?;
    let text = run["optimizer"]["text"].as_str().with_context(|| {
        format!("{}: run.json does not record the optimizer (a run from an older version); retrain it", dir.display())
    })?;
    let config = adahessian_wgpu::optim::OptimizerConfig::parse(text)?;
    let state = adahessian_wgpu::session::RunState::load(&dir.join("checkpoint.safetensors"))?;
    let Some(stability) = config.method().stability(config.lr(), &state.optimizer) else {
        bail!(
            "--preconditioned: {} has no edge of stability of the form λmax(P⁻¹H) < c (its update is a sign or a clip)",
            config.name()
        );
    };
    let busy = setup::spinner("preconditioned sharpness (power iteration)…");
    let power = PowerOptions { tol: cmd.tol, max_iter: cmd.max_iter, seed: cmd.seed };
    let e = block_on(curvature::edge_of_stability(op, &stability, power))?;
    busy.finish_and_clear();
    Ok(e)
}

/// `--per-layer`: each tensor's block (power iteration and Hutchinson on the masked operator),
/// with a bar plot of |λmax| and |trace| per tensor.
fn per_layer(
    op: &HessianOperator,
    cmd: &HessianCmd,
    model: &adahessian_wgpu::nn::Resolved,
    out_dir: &Path,
) -> Result<Vec<adahessian_wgpu::curvature::BlockCurvature>> {
    let busy = setup::spinner(format!("per-layer curvature ({} tensors)…", model.params.len()));
    let options = PowerOptions { tol: cmd.tol, max_iter: cmd.max_iter, seed: cmd.seed };
    let blocks = block_on(curvature::per_tensor(op, model, options, cmd.probes, cmd.trace_tol))?;
    busy.finish_and_clear();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating the directory {}", out_dir.display()))?;
    let labels: Vec<String> = blocks.iter().map(|b| b.tensor.clone()).collect();
    let series = [
        ("|top eigenvalue|", blocks.iter().map(|b| b.top_eigenvalue).collect()),
        ("|trace|", blocks.iter().map(|b| b.trace).collect()),
    ];
    bar_chart(&out_dir.join("per_layer"), "Curvature of each tensor's diagonal block", &labels, &series)?;
    Ok(blocks)
}

/// `--density`: SLQ, written as density.csv, density_smoothed.csv and a plot.
fn density(op: &HessianOperator, cmd: &HessianCmd, out_dir: &Path) -> Result<DensityResult> {
    let (t0, h0) = (Instant::now(), op.hvps());
    let busy = setup::spinner("spectral density (stochastic Lanczos quadrature)…");
    let d = block_on(curvature::slq_density(op, cmd.slq_runs, cmd.lanczos_steps, cmd.seed))?;
    busy.finish_and_clear();
    let cost = cost(op, h0, t0);
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating the directory {}", out_dir.display()))?;
    let nw = d.nodes_and_weights();
    let lo = nw.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = nw.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let smooth = d.smoothed((cmd.sigma * (hi - lo)).max(1e-12), 400);
    let mut csv = String::from("run,node,weight\n");
    for (r, (x, w)) in d.runs.iter().enumerate() {
        for (a, b) in x.iter().zip(w) {
            writeln!(csv, "{r},{a},{b}")?;
        }
    }
    setup::write_file(&out_dir.join("density.csv"), csv)?;
    let mut sm = String::from("eigenvalue,density\n");
    for (x, y) in &smooth {
        writeln!(sm, "{x},{y}")?;
    }
    setup::write_file(&out_dir.join("density_smoothed.csv"), sm)?;
    let series = [Series { label: "smoothed".into(), points: smooth }];
    line_chart(&out_dir.join("density"), "Hessian eigenvalue density (SLQ)", "eigenvalue", "density", &series, false)?;
    Ok(DensityResult {
        nodes: nw.iter().map(|p| p.0).collect(),
        weights: nw.iter().map(|p| p.1).collect(),
        first_moment: d.first_moment(),
        mass: d.mass(),
        runs: cmd.slq_runs,
        lanczos_steps: cmd.lanczos_steps,
        files: out_dir.join("density.{csv,png,svg}").display().to_string(),
        cost,
    })
}

/// `--exact` / `--diagonal`: the dense Hessian, as .npy, and its diagonal against the row norms
/// and AdaHessian's estimate (diagonal.csv and a plot).
fn dense(
    op: &HessianOperator,
    cmd: &HessianCmd,
    model: &adahessian_wgpu::nn::Resolved,
    out_dir: &Path,
) -> Result<DenseResult> {
    let (t0, h0) = (Instant::now(), op.hvps());
    let busy = setup::spinner(format!("dense Hessian ({} HVPs)…", model.n_params));
    let h = block_on(curvature::dense_hessian(op, cmd.max_exact_params))?;
    busy.finish_and_clear();
    let dense_cost = cost(op, h0, t0);
    let n = model.n_params;
    let exact_asymmetry = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| (h[i * n + j] - h[j * n + i]).abs())
        .fold(0.0, f64::max);
    if cmd.exact {
        setup::write_file(&cmd.out, checkpoint::npy_matrix(&h, n))?;
    }
    let mut result = DenseResult {
        exact: cmd.exact.then(|| cmd.out.display().to_string()),
        exact_asymmetry,
        diagonal_csv: None,
        row_norm_over_diagonal: None,
        dense_cost,
    };
    if !cmd.diagonal {
        return Ok(result);
    }
    let r = block_on(curvature::diagonal_report(op, &h, cmd.probes, cmd.seed))?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating the directory {}", out_dir.display()))?;
    let mut csv = String::from("tensor,index,exact_diagonal,row_norm,adahessian_mean_abs,adahessian_rms\n");
    for p in &model.params {
        for k in 0..p.len() {
            let i = p.offset + k;
            let (d, rn, m, rms) = (r.diagonal[i], r.row_norm[i], r.estimate_mean_abs[i], r.estimate_rms[i]);
            writeln!(csv, "{},{k},{d},{rn},{m},{rms}", p.name)?;
        }
    }
    setup::write_file(&out_dir.join("diagonal.csv"), csv)?;
    let idx = |v: &[f64]| v.iter().enumerate().map(|(i, x)| (i as f64, x.abs().max(1e-12))).collect::<Vec<_>>();
    line_chart(
        &out_dir.join("diagonal"),
        "|H_ii|, row norms ‖H_i,:‖ and AdaHessian's estimate",
        "parameter index",
        "value",
        &[
            Series { label: "|exact diagonal|".into(), points: idx(&r.diagonal) },
            Series { label: "row norm".into(), points: idx(&r.row_norm) },
            Series { label: "AdaHessian rms |z⊙Hz|".into(), points: idx(&r.estimate_rms) },
        ],
        true,
    )?;
    result.row_norm_over_diagonal =
        Some(r.row_norm.iter().zip(&r.diagonal).map(|(n, d)| n / d.abs().max(1e-12)).sum::<f64>() / n as f64);
    result.diagonal_csv = Some(out_dir.join("diagonal.csv").display().to_string());
    Ok(result)
}

#[derive(Args, Debug)]
pub struct LandscapeCmd {
    #[command(flatten)]
    source: Source,
    /// random (filter-normalised, biases zero), hessian (top-2 eigenvectors) or pca (of the run's saved trajectory).
    #[arg(long, default_value = "random")]
    directions: String,
    /// MIN:MAX:POINTS along direction 1.
    #[arg(long, default_value = "-1:1:51", allow_hyphen_values = true)]
    range: String,
    /// MIN:MAX:POINTS along direction 2 (default: as --range).
    #[arg(long, allow_hyphen_values = true)]
    range_b: Option<String>,
    /// 1 for a line, 2 for a plane.
    #[arg(long, default_value_t = 2)]
    dim: usize,
    /// train, test or both.
    #[arg(long, default_value = "train")]
    split: String,
    /// Seed of the random directions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (default: RUN/landscape or ./landscape).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Overwrite files already in --out.
    #[arg(long)]
    force: bool,
    /// Also map Li et al.'s non-convexity |λmin/λmax| at every grid point (Lanczos at each:
    /// grid points × --nonconvexity-steps HVPs; use a coarse grid, e.g. --range -1:1:11).
    /// `--convexity` is the same flag (the name Li et al.'s comparison is often asked by).
    #[arg(long, alias = "convexity")]
    nonconvexity: bool,
    /// Lanczos steps per grid point for --nonconvexity.
    #[arg(long, default_value_t = 20)]
    nonconvexity_steps: usize,
}

/// The most HVPs `landscape --nonconvexity` may plan.
const MAX_NONCONVEXITY_HVPS: usize = 200_000;

/// Every file `landscape` may write into its directory.
fn landscape_files() -> Vec<String> {
    let mut names = vec!["grid.csv".to_string(), "trajectory.csv".to_string()];
    for stem in ["landscape", "landscape_train", "landscape_test", "nonconvexity_train", "nonconvexity_test"] {
        names.extend(["png", "svg"].map(|e| format!("{stem}.{e}")));
    }
    names
}

/// Every file `hessian` may write into --out-dir.
fn hessian_files() -> Vec<String> {
    let mut names = vec!["density.csv".to_string(), "density_smoothed.csv".into(), "diagonal.csv".into()];
    for stem in ["density", "diagonal", "per_layer"] {
        names.extend(["png", "svg"].map(|e| format!("{stem}.{e}")));
    }
    names
}

/// The largest landscape grid `landscape` evaluates (1001 × 1001).
const MAX_GRID_POINTS: usize = 1_002_001;

pub fn landscape_cmd(lazy: &LazyGpu, cmd: &LandscapeCmd) -> Result<()> {
    if cmd.dim != 1 && cmd.dim != 2 {
        bail!("--dim {}: use 1 or 2", cmd.dim);
    }
    let axis_a = Axis::parse(&cmd.range)?;
    let axis_b = Axis::parse(cmd.range_b.as_deref().unwrap_or(&cmd.range))?;
    // the grid's losses and accuracies live in host memory and every point is a forward pass:
    // refuse a grid that would not fit or not finish before allocating anything
    let points = axis_a.points.saturating_mul(if cmd.dim == 2 { axis_b.points } else { 1 });
    if points > MAX_GRID_POINTS {
        bail!(
            "--range {}{}: {points} grid points; at most {MAX_GRID_POINTS} (e.g. -1:1:1001 per axis in 2-D)",
            cmd.range,
            cmd.range_b.as_deref().map(|b| format!(" --range-b {b}")).unwrap_or_default()
        );
    }
    if cmd.nonconvexity {
        if cmd.nonconvexity_steps == 0 {
            bail!("--nonconvexity-steps 0: give at least 1");
        }
        let hvps = points.saturating_mul(cmd.nonconvexity_steps);
        if hvps > MAX_NONCONVEXITY_HVPS {
            bail!(
                "--nonconvexity on {points} grid points × {} Lanczos steps is {hvps} HVPs; at most {MAX_NONCONVEXITY_HVPS}: use a coarser grid (e.g. --range -1:1:11) or fewer --nonconvexity-steps",
                cmd.nonconvexity_steps
            );
        }
    }
    let splits: Vec<&str> = match cmd.split.as_str() {
        "train" => vec!["train"],
        "test" => vec!["test"],
        "both" => vec!["train", "test"],
        other => bail!("--split {other}: use train, test or both"),
    };
    if let Some(out) = &cmd.out {
        setup::check_output_dir("--out", out, &landscape_files(), true, cmd.force)?;
    }
    cmd.source.check_rows()?;
    let l = cmd.source.load()?;
    let rows_wanted = cmd.source.rows.unwrap_or(128);
    let gpu = lazy.get()?;
    let net = network(gpu, &l, rows_wanted).context("lower --rows: the landscape evaluates its rows as one batch")?;
    let theta = block_on(net.params(gpu))?;
    let start = Instant::now();
    let traj = match &l.dir {
        Some(d) => checkpoint::load_trajectory(d, net.model())?,
        None => Vec::new(),
    };
    let (d1, d2, explained, hvps) = directions(gpu, cmd, &l, &theta, &traj, rows_wanted)?;
    let out =
        cmd.out.clone().unwrap_or_else(|| l.dir.as_ref().map_or(PathBuf::from("landscape"), |d| d.join("landscape")));
    std::fs::create_dir_all(&out).with_context(|| format!("creating the directory {}", out.display()))?;
    let d2 = (cmd.dim == 2).then_some(d2.as_slice());
    let path = if traj.is_empty() { Vec::new() } else { landscape::project(&theta, &d1, d2, &traj) };
    if !path.is_empty() {
        let mut csv = String::from("checkpoint,a,b\n");
        for (i, (a, b)) in path.iter().enumerate() {
            writeln!(csv, "{i},{a},{b}")?;
        }
        setup::write_file(&out.join("trajectory.csv"), csv)?;
    }
    let plane = landscape::Plane { d1: &d1, d2, a: axis_a, b: d2.map(|_| axis_b) };
    let mut csv = format!("split,a,b,loss,accuracy{}\n", if cmd.nonconvexity { ",nonconvexity" } else { "" });
    let (mut summaries, mut line_series) = (Vec::new(), Vec::new());
    for split in &splits {
        let (mut summary, grid) = slice_split(gpu, &net, &l, split, rows_wanted, &plane, &mut csv, cmd)?;
        if let Some(map) = &grid.nonconvexity {
            if cmd.dim == 2 {
                let title = format!("|λmin/λmax| ({split}, {} directions)", cmd.directions);
                heatmap(&out.join(format!("nonconvexity_{split}")), &title, &grid.a, &grid.b, map, &path)?;
            }
            summary.nonconvexity = Some(adahessian_wgpu::curvature::report::NonconvexitySummary {
                at_weights: map[(grid.a.len() / 2) * grid.b.len() + grid.b.len() / 2],
                max: map.iter().cloned().fold(0.0, f64::max),
                lanczos_steps: cmd.nonconvexity_steps,
                hvps: grid.nonconvexity_hvps,
            });
        }
        if cmd.dim == 2 {
            let title = format!("log loss ({split}, {} directions)", cmd.directions);
            heatmap(&out.join(format!("landscape_{split}")), &title, &grid.a, &grid.b, &grid.loss, &path)?;
        } else {
            let points = grid.a.iter().copied().zip(grid.loss.iter().copied()).collect();
            line_series.push(Series { label: split.to_string(), points });
        }
        summaries.push(summary);
    }
    if cmd.dim == 1 {
        let title = format!("loss along one {} direction", cmd.directions);
        line_chart(&out.join("landscape"), &title, "a", "loss", &line_series, true)?;
    }
    setup::write_file(&out.join("grid.csv"), csv)?;
    let map_hvps: u64 = summaries.iter().filter_map(|s| s.nonconvexity.map(|n| n.hvps)).sum();
    let report = LandscapeReport {
        directions: cmd.directions.clone(),
        dim: cmd.dim,
        grid: (axis_a.points, if cmd.dim == 2 { axis_b.points } else { 1 }),
        bn_mode: l.bn_mode_name()?,
        splits: summaries,
        explained_variance: explained,
        trajectory_points: path.len(),
        hvps: hvps + map_hvps,
        seconds: start.elapsed().as_secs_f64(),
        out: out.display().to_string(),
    };
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// The loss on the plane over one split's first rows, its lines appended to grid.csv's text.
/// A split's grid, and with --nonconvexity its |λmin/λmax| map (row-major like the losses).
struct SplitGrid {
    a: Vec<f64>,
    b: Vec<f64>,
    loss: Vec<f64>,
    nonconvexity: Option<Vec<f64>>,
    nonconvexity_hvps: u64,
}

#[allow(clippy::too_many_arguments)]
fn slice_split(
    gpu: &Gpu,
    net: &Network,
    l: &Loaded,
    split: &str,
    rows_wanted: usize,
    plane: &landscape::Plane<'_>,
    csv: &mut String,
    cmd: &LandscapeCmd,
) -> Result<(LandscapeSplit, SplitGrid)> {
    let ds = pick_split(&l.data, split)?;
    let rows = rows_wanted.min(ds.rows());
    let bound = net.bind(gpu, &DeviceDataset::upload(gpu, &ds)?)?;
    let busy = setup::spinner(format!("{split}: grid points…"));
    let grid = block_on(landscape::evaluate_grid(gpu, net, &bound, rows, plane))?;
    busy.finish_and_clear();
    let (nonconvexity, nonconvexity_hvps) = if cmd.nonconvexity {
        let busy = setup::spinner(format!("{split}: |λmin/λmax| at every grid point…"));
        let (map, hvps) =
            block_on(landscape::nonconvexity_grid(gpu, net, &bound, rows, plane, cmd.nonconvexity_steps))?;
        busy.finish_and_clear();
        (Some(map), hvps)
    } else {
        (None, 0)
    };
    for (i, a) in grid.a.iter().enumerate() {
        for (j, b) in grid.b.iter().enumerate() {
            let k = i * grid.b.len() + j;
            let extra = nonconvexity.as_ref().map_or(String::new(), |m| format!(",{}", m[k]));
            writeln!(csv, "{split},{a},{b},{},{}{extra}", grid.loss[k], grid.accuracy[k])?;
        }
    }
    let summary = LandscapeSplit {
        split: split.to_string(),
        rows,
        points: grid.loss.len(),
        loss_at_weights: grid.loss[(grid.a.len() / 2) * grid.b.len() + grid.b.len() / 2],
        min_loss: grid.loss.iter().cloned().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min),
        max_loss: grid.loss.iter().cloned().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max),
        non_finite_points: grid.loss.iter().filter(|v| !v.is_finite()).count(),
        nonconvexity: None,
    };
    Ok((summary, SplitGrid { a: grid.a, b: grid.b, loss: grid.loss, nonconvexity, nonconvexity_hvps }))
}

/// The two directions of the slice (scaled for PCA so that -1:1 frames the trajectory), the PCA
/// variance shares, and the HVPs spent (Hessian eigenvectors).
#[allow(clippy::type_complexity)]
fn directions(
    gpu: &Gpu,
    cmd: &LandscapeCmd,
    l: &Loaded,
    theta: &[f32],
    traj: &[Vec<f32>],
    rows_wanted: usize,
) -> Result<(Vec<f32>, Vec<f32>, Option<[f64; 2]>, u64)> {
    let model = l.spec.resolve()?;
    // the Hessian of the test split only when that is the only split plotted
    let hessian_split = if cmd.split == "test" { "test" } else { "train" };
    let mut hvps = 0;
    let mut explained = None;
    let (d1, d2) = match cmd.directions.as_str() {
        "random" => (
            landscape::filter_normalized_direction(&model, theta, cmd.seed),
            landscape::filter_normalized_direction(&model, theta, cmd.seed + 1),
        ),
        "hessian" => {
            let ds = pick_split(&l.data, hessian_split)?;
            let hnet = network(gpu, l, rows_wanted.min(128))?;
            let bound = hnet.bind(gpu, &DeviceDataset::upload(gpu, &ds)?)?;
            let op = HessianOperator::new(gpu, &hnet, &bound, Some(rows_wanted))?;
            let e = block_on(curvature::top_eigen(&op, 2, PowerOptions { seed: cmd.seed, ..Default::default() }))?;
            hvps += op.hvps();
            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
            (f(&e[0].vector), f(&e[1].vector))
        }
        "pca" => {
            // scaled to the trajectory's extent along each, so -1:1 frames the path
            let (a, b, shares) = landscape::pca_plane(&model, traj, theta)?;
            explained = Some(shares);
            (a, b)
        }
        other => bail!("--directions {other}: use random, hessian or pca"),
    };
    Ok((d1, d2, explained, hvps))
}
