//! `adahessian compare`: the popular Adam-vs-AdaHessian table of claims, measured. The flags,
//! the progress display and the files; the measurements and the claims are the library's
//! (`adahessian_wgpu::compare`), rendered here as report.md, report.csv, report.json and plots.

use crate::plot::{line_chart, Series};
use crate::run;
use crate::setup::{self, DataArgs, OptimArgs};
use crate::{LazyGpu, LoopArgs};
use adahessian_wgpu::compare::{self, Comparison, Progress, Setup};
use adahessian_wgpu::nn::ModelSpec;
use adahessian_wgpu::optim::OptimizerConfig;
use adahessian_wgpu::session::Schedule;
use anyhow::{bail, Result};
use clap::{Args, Parser};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct CompareCmd {
    #[command(flatten)]
    data: DataArgs,
    /// Model (default: the data set's default model).
    #[arg(long)]
    model: Option<String>,
    /// Comma-separated optimizers, each at its published defaults unless settings follow its
    /// name: adam,adahessian(update_each=2),lion.
    #[arg(long, default_value = "adam,adahessian,sgd")]
    optimizers: String,
    #[command(flatten)]
    looping: LoopArgs,
    /// Where BatchNorm takes its statistics from in the Hessian that AdaHessian's estimate is
    /// compared with: train (the batch's, the loss AdaHessian differentiates) or eval (the
    /// running statistics, as PyHessian). Training always uses the batch's. The report says
    /// which was used.
    #[arg(long, default_value = "train")]
    bn_mode: String,
    /// Seeds for the headline rows (at least 3 to show the spread).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Test accuracy whose first crossing is timed (steps and seconds).
    #[arg(long, default_value_t = 0.9)]
    target_accuracy: f32,
    /// Learning-rate multipliers of the sensitivity sweep.
    #[arg(long, default_value = "0.1,0.3,1,3,10")]
    lr_factors: String,
    /// Batch sizes of the stability sweep.
    #[arg(long, default_value = "16,64,256")]
    batch_sizes: String,
    /// Hidden layers of the depth sweep (MLP models only; empty to skip).
    #[arg(long, default_value = "1,2,4,8")]
    depths: String,
    /// Activations of the depth sweep.
    #[arg(long, default_value = "tanh,relu")]
    depth_activations: String,
    /// Fractions of training labels replaced at random (0 is the headline run; empty to skip).
    #[arg(long, default_value = "0,0.2,0.4")]
    label_noise: String,
    /// Parameters sampled to see what AdaHessian's estimate tracks (one HVP pass each; 0 to skip).
    #[arg(long, default_value_t = 128)]
    diagonal_samples: usize,
    /// A published experiment's settings: `paper` is the AdaHessian paper's ResNet-20 on CIFAR-10
    /// (batch 256, 160 epochs, lr ×0.1 at epochs 80 and 120, crop+flip augmentation, weight
    /// decay 5e-4; SGD 0.1 with momentum 0.9, Adam 1e-3, AdamW 0.01, AdaHessian 0.15; one seed,
    /// no sweeps), with the paper's table beside the measured one. Flags given as well win.
    #[arg(long)]
    recipe: Option<String>,
    /// Report directory.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Overwrite a non-empty report directory.
    #[arg(long)]
    force: bool,
}

#[derive(Parser)]
struct DefaultJob {
    #[command(flatten)]
    cmd: CompareCmd,
}

/// The flags of a recipe (`--recipe NAME`).
pub fn recipe_flags(name: &str) -> Result<&'static [&'static str]> {
    match name {
        "paper" => Ok(&[
            "--model",
            "resnet20",
            "--optimizers",
            "sgd(lr=0.1, momentum=0.9, weight_decay=5e-4),adam(lr=0.001, weight_decay=5e-4),adamw(lr=0.01, weight_decay=5e-4),adahessian(lr=0.15, weight_decay=5e-4)",
            "--epochs",
            "160",
            "--batch-size",
            "256",
            "--lr-schedule",
            "step",
            "--augment",
            "crop4,flip",
            "--seeds",
            "1",
            "--lr-factors=",
            "--batch-sizes=",
            "--depths=",
            "--label-noise=0",
        ]),
        other => bail!("--recipe {other}: the recipe is paper (the AdaHessian paper's ResNet-20 on CIFAR-10)"),
    }
}

impl CompareCmd {
    /// The recipe named, if any.
    pub fn recipe(&self) -> Option<&str> {
        self.recipe.as_deref()
    }

    fn bn_mode(&self) -> Result<adahessian_wgpu::nn::BnMode> {
        adahessian_wgpu::nn::BnMode::parse(&self.bn_mode)
            .map_err(|e| anyhow::anyhow!("--bn-mode {}: {e}", self.bn_mode))
    }

    /// The main job: digits, MLP 64-64-10 tanh, Adam / AdaHessian / SGD, 8 epochs of 64, into
    /// runs/compare-default (overwritten each time).
    pub fn default_job() -> CompareCmd {
        DefaultJob::parse_from(["compare", "--epochs", "8", "--out", "runs/compare-default", "--force"]).cmd
    }
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<T>().map_err(|_| anyhow::anyhow!("{flag}: '{v}' is not a number")))
        .collect()
}

/// The sweeps' settings from the flags, checked.
struct Sweeps {
    lr_factors: Vec<f64>,
    batch_sizes: Vec<usize>,
    depths: Vec<usize>,
    depth_activations: Vec<String>,
    label_noise: Vec<f64>,
}

impl Sweeps {
    fn parse(cmd: &CompareCmd) -> Result<Sweeps> {
        let s = Sweeps {
            lr_factors: parse_list("--lr-factors", &cmd.lr_factors)?,
            batch_sizes: parse_list("--batch-sizes", &cmd.batch_sizes)?,
            depths: parse_list("--depths", &cmd.depths)?,
            depth_activations: cmd
                .depth_activations
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            label_noise: parse_list("--label-noise", &cmd.label_noise)?,
        };
        if let Some(f) = s.lr_factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            bail!("--lr-factors: {f} is not a finite factor > 0");
        }
        if s.batch_sizes.contains(&0) || s.depths.contains(&0) {
            bail!("--batch-sizes and --depths must be > 0");
        }
        if s.label_noise.iter().any(|n| !(0.0..1.0).contains(n)) {
            bail!("--label-noise: each fraction must be in [0, 1)");
        }
        if let Some(bad) = s.depth_activations.iter().find(|a| adahessian_wgpu::nn::Activation::parse(a).is_none()) {
            bail!("--depth-activations: unknown activation '{bad}'; use relu, tanh, sigmoid, softplus or gelu");
        }
        if !s.depths.is_empty() && s.depth_activations.is_empty() {
            bail!("--depths needs at least one --depth-activations");
        }
        Ok(s)
    }
}

/// More seeds than this add nothing to a spread and cannot finish.
const MAX_SEEDS: u64 = 1_000;

pub fn run(lazy: &LazyGpu, cmd: &CompareCmd, main_job: bool) -> Result<()> {
    let names: Vec<String> = OptimizerConfig::split_list(&cmd.optimizers).into_iter().map(String::from).collect();
    if names.is_empty() {
        bail!("--optimizers is empty; e.g. --optimizers adam,adahessian,sgd");
    }
    if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
        bail!("--optimizers names {twice} twice; each optimizer runs once per seed (compare settings of one with --lr-factors)");
    }
    if !(cmd.target_accuracy > 0.0 && cmd.target_accuracy <= 1.0) {
        bail!("--target-accuracy {}: an accuracy is a fraction in (0, 1], e.g. 0.9", cmd.target_accuracy);
    }
    if cmd.seeds == 0 {
        bail!("--seeds 0: need at least one seed (3 or more to show the spread)");
    }
    if cmd.seeds > MAX_SEEDS {
        bail!("--seeds {}: at most {MAX_SEEDS} (each seed trains every optimizer once)", cmd.seeds);
    }
    let sweeps = Sweeps::parse(cmd)?;
    // checked before the output directory is taken
    cmd.bn_mode()?;
    let methods =
        names.iter().map(|n| Ok((n.clone(), OptimArgs::default().config_for(n, 0)?))).collect::<Result<Vec<_>>>()?;
    let schedule = Schedule::parse(&cmd.looping.lr_schedule)?;
    let dir = run::RunDir::create(&cmd.out, cmd.force)?;
    // all or nothing: the report replaces an old one only once it is complete
    match measure_and_report(lazy, cmd, main_job, &methods, sweeps, schedule, &dir) {
        Ok(()) => dir.commit(),
        Err(e) => {
            let kept = dir.abandon();
            Err(e.context(format!("compare stopped; {kept}")))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn measure_and_report(
    lazy: &LazyGpu,
    cmd: &CompareCmd,
    main_job: bool,
    methods: &[(String, OptimizerConfig)],
    sweeps: Sweeps,
    schedule: Schedule,
    dir: &run::RunDir,
) -> Result<()> {
    let base = cmd.data.load(0)?;
    if base.train.classes() == 0 {
        bail!(
            "{} has real-valued targets: compare measures classification claims (accuracy, steps to a target \
             accuracy); train a regression model with `adahessian train`, which reports test MSE and R²",
            base.name
        );
    }
    let spec: ModelSpec = match &cmd.model {
        Some(m) => setup::model_for(m, &base)?,
        None => setup::default_model(&base),
    };
    let test_rows = base.test.as_ref().map_or(0, |t| t.rows());
    if test_rows == 0 {
        bail!("compare needs test rows: use --test-fraction > 0");
    }
    let gpu = lazy.get()?;
    let batch = cmd.looping.batch_size(base.train.rows())?;
    let steps = cmd.looping.steps(base.train.rows(), batch)?;
    // evaluate four times an epoch, so "steps to target" has a quarter-epoch resolution
    let per_epoch = base.train.rows().div_ceil(batch) as u64;
    let eval_every = cmd.looping.eval_every.unwrap_or(per_epoch / 4).max(1);
    let setup = Setup {
        spec,
        steps,
        batch,
        eval_every,
        schedule,
        seeds: cmd.seeds,
        target_accuracy: cmd.target_accuracy,
        lr_factors: sweeps.lr_factors,
        batch_sizes: sweeps.batch_sizes,
        depths: sweeps.depths,
        depth_activations: sweeps.depth_activations,
        label_noise: sweeps.label_noise,
        early_fractions: vec![0.05, 0.1],
        diagonal_samples: cmd.diagonal_samples,
        bn_mode: cmd.bn_mode()?,
        recipe: cmd.recipe.clone(),
    };
    println!("adapter: {}", gpu.describe());
    println!(
        "compare {} on {} ({} train / {test_rows} test rows), {} parameters, {steps} steps of batch {batch}, {} seeds",
        methods.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join(", "),
        base.name,
        base.train.rows(),
        setup.spec.resolve()?.n_params,
        cmd.seeds
    );
    let started = std::time::Instant::now();
    let data = |seed: u64| -> adahessian_wgpu::Result<_> {
        let d = cmd.data.load(seed).map_err(|e| adahessian_wgpu::Error::Data(format!("{e:#}")))?;
        let test = d.test.ok_or_else(|| adahessian_wgpu::Error::Data("no test rows".into()))?;
        Ok((d.train, test))
    };
    let measured = compare::measure(gpu, &setup, methods, &data, &mut progress_display())?;
    let comparison =
        Comparison::new(gpu.describe(), (base.name.clone(), base.train.rows(), test_rows), setup, measured)?;
    write_report(dir, &comparison)?;
    let report = comparison.to_markdown();
    println!("{report}");
    println!(
        "report: {}/report.md (+ report.csv, report.json; accuracy, lr_sweep, batch_sweep, label_noise, depth plots as PNG and SVG); {:.0}s in all{}",
        dir.target().display(),
        started.elapsed().as_secs_f64(),
        if main_job {
            "\nthis was `adahessian compare` on its defaults; see `adahessian --help` for train, bench, devices"
        } else {
            ""
        }
    );
    Ok(())
}

/// A progress bar per method on a terminal; plain progress lines otherwise.
fn progress_display() -> impl FnMut(Progress<'_>) {
    // a bar in training steps: its estimate is the measured rate times the steps left, honest
    // even where one training takes hours (a CPU adapter on ResNet-20); without a terminal, a
    // line at every 5% with the same estimate
    let mut bar = indicatif::ProgressBar::hidden();
    let (mut done, mut total, mut next_line) = (0u64, 0u64, 0u64);
    let mut started = std::time::Instant::now();
    let mut label = String::new();
    move |p| match p {
        Progress::Method { name, trainings, steps } => {
            (done, total, next_line, started, label) = (0, steps, 0, std::time::Instant::now(), name.to_string());
            bar = if std::io::stderr().is_terminal() {
                let style =
                    indicatif::ProgressStyle::with_template("{msg:>12} {bar:30} {pos}/{len} steps [{elapsed} < {eta}]")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                indicatif::ProgressBar::new(steps).with_style(style).with_message(name.to_string())
            } else {
                eprintln!("{name}: {trainings} trainings, {steps} steps");
                indicatif::ProgressBar::hidden()
            };
        }
        Progress::Step => {
            done += 1;
            bar.inc(1);
            if bar.is_hidden() && done >= next_line && total > 0 {
                let elapsed = started.elapsed().as_secs_f64();
                let left = if done > 0 { elapsed / done as f64 * (total - done.min(total)) as f64 } else { f64::NAN };
                eprintln!("{label}: {done}/{total} steps, {:.0} s so far, about {} left", elapsed, human_seconds(left));
                next_line = done + (total / 20).max(1);
            }
        }
        Progress::Training => {}
        Progress::Done { name, ms_per_step } => {
            if bar.is_hidden() {
                eprintln!("{name}: {ms_per_step:.2} ms/step");
            } else {
                bar.finish_and_clear();
                eprintln!("{name}: {ms_per_step:.2} ms/step");
            }
        }
    }
}

/// 42 s, 17 min, 3.2 h or 2.5 days.
fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        "an unknown time".into()
    } else if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

/// report.md, report.csv, report.json and the three plots, all from the comparison's data.
fn write_report(dir: &run::RunDir, c: &Comparison) -> Result<()> {
    setup::write_file(&dir.file("report.md"), c.to_markdown())?;
    setup::write_file(&dir.file("report.csv"), c.to_csv())?;
    setup::write_file(&dir.file("report.json"), serde_json::to_string_pretty(c)?)?;
    let curves = |f: &dyn Fn(&compare::Measured) -> Vec<(f64, f64)>| -> Vec<Series> {
        c.methods.iter().map(|m| Series { label: m.name.clone(), points: f(m) }).collect()
    };
    let accuracy = curves(&|m| m.seeds[0].metrics.iter().map(|x| (x.step as f64, x.test_score as f64)).collect());
    line_chart(&dir.file("accuracy"), "Test accuracy (seed 0)", "step", "test accuracy", &accuracy, false)?;
    let lr = curves(&|m| m.lr_sweep.iter().map(|(f, a)| (f.log10(), *a)).collect());
    line_chart(
        &dir.file("lr_sweep"),
        "Learning-rate sensitivity",
        "log10(lr / default lr)",
        "final test accuracy",
        &lr,
        false,
    )?;
    let bs = curves(&|m| m.batch_sweep.iter().map(|(b, a)| ((*b as f64).log2(), *a)).collect());
    line_chart(
        &dir.file("batch_sweep"),
        "Batch-size stability",
        "log2(batch size)",
        "final test accuracy",
        &bs,
        false,
    )?;
    if c.methods.iter().any(|m| !m.noise_sweep.is_empty()) {
        let noise = curves(&|m| m.noise_sweep.iter().map(|p| (p.noise * 100.0, p.test_accuracy)).collect());
        let title = "Label noise (clean test labels)";
        line_chart(&dir.file("label_noise"), title, "% training labels wrong", "final test accuracy", &noise, false)?;
    }
    for act in c.setup.depth_activations.iter().filter(|_| c.methods.iter().any(|m| !m.depth_sweep.is_empty())) {
        let depth = |m: &compare::Measured| -> Vec<(f64, f64)> {
            m.depth_sweep.iter().filter(|p| &p.activation == act).map(|p| (p.depth as f64, p.test_accuracy)).collect()
        };
        let title = format!("Depth ({act} hidden layers)");
        line_chart(
            &dir.file(&format!("depth_{act}")),
            &title,
            "hidden layers",
            "final test accuracy",
            &curves(&depth),
            false,
        )?;
    }
    Ok(())
}
