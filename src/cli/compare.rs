//! `adahessian compare`: the popular Adam-vs-AdaHessian table of claims, measured. The same
//! model, data and seeds for every optimizer; each row of the report says which way the
//! measurement points, and says "no clear difference" when the gap is within seed-to-seed noise.

use crate::plot::{line_chart, Series};
use crate::run::{self, Outcome, Plan, Schedule};
use crate::setup::{self, Data, DataArgs, OptimArgs};
use crate::{LazyGpu, LoopArgs};
use adahessian_wgpu::data::DeviceDataset;
use adahessian_wgpu::gpu::Gpu;
use adahessian_wgpu::nn::{ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
use adahessian_wgpu::train::{time_steps, BatchOrder, Timing};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct CompareCmd {
    #[command(flatten)]
    data: DataArgs,
    /// Model (default: the data set's default model).
    #[arg(long)]
    model: Option<String>,
    /// Comma-separated optimizers, each at its published defaults.
    #[arg(long, default_value = "adam,adahessian,sgd")]
    optimizers: String,
    #[command(flatten)]
    looping: LoopArgs,
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

impl CompareCmd {
    /// The main job: digits, MLP 64-64-10 tanh, Adam / AdaHessian / SGD, 8 epochs of 64, into
    /// runs/compare-default (overwritten each time).
    pub fn default_job() -> CompareCmd {
        DefaultJob::parse_from(["compare", "--epochs", "8", "--out", "runs/compare-default", "--force"]).cmd
    }
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>> {
    s.split(',').map(|v| v.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{flag}: '{v}' is not a number"))).collect()
}

struct Stats {
    mean: f64,
    std: f64,
}

fn stats(v: &[f64]) -> Stats {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Stats { mean: f64::NAN, std: f64::NAN };
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64 } else { 0.0 };
    Stats { mean, std: var.sqrt() }
}

fn fmt_stats(s: &Stats, digits: usize) -> String {
    if s.mean.is_nan() {
        "not reached".into()
    } else {
        format!("{:.*} ± {:.*}", digits, s.mean, digits, s.std)
    }
}

/// GPU bytes a training run of the method allocates (the data set excluded), from the network
/// and optimizer actually built for it: θ and ∇θ; the optimizer's state (m, v, a kept curvature
/// estimate) with z and H z; every node's values and cotangents, with tangents and R-cotangents
/// for the curvature methods, and the batch's scratch.
fn allocated_bytes(net: &Network, opt: &Optimizer) -> (u64, u64, u64) {
    let m = net.memory();
    (m.params + m.grads, opt.memory_bytes() + m.probe_and_hz, m.values + m.tangents + m.cotangents + m.scratch)
}

struct PerOptimizer {
    name: String,
    config: OptimizerConfig,
    seeds: Vec<Outcome>,
    ms_per_step: f64,
    bytes: (u64, u64, u64),
    lr_sweep: Vec<(f64, f64)>,
    batch_sweep: Vec<(usize, f64)>,
}

/// Which way a row points: compares `a` (higher is better when `higher_better`) for the two
/// optimizers with a noise scale; never claims a difference inside 2 × noise.
fn verdict(a: (&str, f64), b: (&str, f64), noise: f64, higher_better: bool, unit: &str) -> String {
    if !a.1.is_finite() || !b.1.is_finite() {
        return format!("{} vs {}: not comparable (one did not reach it)", a.0, b.0);
    }
    let diff = a.1 - b.1;
    if diff.abs() <= 2.0 * noise {
        return format!(
            "no clear difference between {} and {} (|Δ| {:.3}{unit} ≤ 2 × seed noise {:.3})",
            a.0,
            b.0,
            diff.abs(),
            noise
        );
    }
    let a_better = (diff > 0.0) == higher_better;
    let (w, l) = if a_better { (a.0, b.0) } else { (b.0, a.0) };
    format!("{w} better than {l} by {:.3}{unit} (beyond 2 × seed noise {:.3})", diff.abs(), noise)
}

fn train_quiet(gpu: &Gpu, data: &Data, plan: &Plan) -> Result<Outcome> {
    run::train(gpu, data, plan, None, None, true)
}

pub fn run(lazy: &LazyGpu, cmd: &CompareCmd, main_job: bool) -> Result<()> {
    let names: Vec<String> = OptimizerConfig::split_list(&cmd.optimizers).into_iter().map(String::from).collect();
    if names.is_empty() {
        bail!("--optimizers is empty; e.g. --optimizers adam,adahessian,sgd");
    }
    if cmd.seeds == 0 {
        bail!("--seeds 0: need at least one seed (3 or more to show the spread)");
    }
    let lr_factors: Vec<f64> = parse_list("--lr-factors", &cmd.lr_factors)?;
    let batch_sizes: Vec<usize> = parse_list("--batch-sizes", &cmd.batch_sizes)?;
    if batch_sizes.contains(&0) || lr_factors.iter().any(|f| *f <= 0.0) {
        bail!("batch sizes and lr factors must be > 0");
    }
    let configs = names.iter().map(|n| OptimArgs::default().config_for(n, 0)).collect::<Result<Vec<_>>>()?;
    let schedule = Schedule::parse(&cmd.looping.lr_schedule)?;
    let dir = run::RunDir::create(&cmd.out, cmd.force)?;
    // all or nothing: the report replaces an old one only once it is complete
    let result = measure_and_report(lazy, cmd, main_job, &names, &configs, lr_factors, batch_sizes, schedule, &dir);
    match result {
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
    names: &[String],
    configs: &[OptimizerConfig],
    lr_factors: Vec<f64>,
    batch_sizes: Vec<usize>,
    schedule: Schedule,
    dir: &run::RunDir,
) -> Result<()> {
    let base_data = cmd.data.load(0)?;
    if base_data.train.classes() == 0 {
        anyhow::bail!(
            "{} has real-valued targets: compare measures classification claims (accuracy, steps to a target \
             accuracy); train a regression model with `adahessian train`, which reports test MSE and R²",
            base_data.name
        );
    }
    let spec: ModelSpec = match &cmd.model {
        Some(m) => setup::parse_model(m, setup::task_loss(&base_data))?,
        None => setup::default_model(&base_data),
    };
    if base_data.test.is_none() {
        bail!("compare needs test rows: use --test-fraction > 0");
    }
    let gpu = lazy.get()?;
    let batch = cmd.looping.batch_size(base_data.train.rows())?;
    let steps = cmd.looping.steps(base_data.train.rows(), batch)?;
    let per_epoch = base_data.train.rows().div_ceil(batch) as u64;
    // evaluate four times an epoch, so "steps to target" has a quarter-epoch resolution
    let eval_every = cmd.looping.eval_every.unwrap_or(per_epoch / 4).max(1);
    // every batch size trains for the same number of epochs as the headline batch
    let rows = base_data.train.rows();
    let scaled = |n: u64, b: usize| ((n as f64 * rows.div_ceil(b) as f64 / per_epoch as f64).round() as u64).max(1);
    let plan_for = |config: OptimizerConfig, seed: u64, b: usize| Plan {
        spec: spec.clone(),
        config,
        batch_size: b,
        steps: scaled(steps, b),
        schedule,
        seed,
        eval_every: scaled(eval_every, b),
        save_every: None,
        target_accuracy: Some(cmd.target_accuracy),
        score: run::Score::Accuracy,
    };
    println!("adapter: {}", gpu.describe());
    println!(
        "compare {} on {} ({} train / {} test rows), {} parameters, {steps} steps of batch {batch}, {} seeds",
        names.join(", "),
        base_data.name,
        base_data.train.rows(),
        base_data.test.as_ref().map_or(0, |t| t.rows()),
        spec.resolve()?.n_params,
        cmd.seeds
    );
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    for (name, config) in names.iter().zip(configs) {
        // a progress bar over this optimizer's trainings on a terminal, plain progress otherwise
        let runs = cmd.seeds + lr_factors.len() as u64 + batch_sizes.len() as u64;
        let bar = if std::io::stderr().is_terminal() {
            let style =
                indicatif::ProgressStyle::with_template("{msg:>12} {bar:30} {pos}/{len} trainings [{elapsed} < {eta}]")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            indicatif::ProgressBar::new(runs).with_style(style).with_message(name.clone())
        } else {
            indicatif::ProgressBar::hidden()
        };
        let log = |text: &str| {
            if bar.is_hidden() {
                eprint!("{text}");
            }
        };
        log(&format!("{name}: seeds"));
        let mut seeds = Vec::new();
        for seed in 0..cmd.seeds {
            let data = cmd.data.load(seed)?;
            let config = OptimArgs::default().config_for(name, seed)?;
            seeds.push(train_quiet(gpu, &data, &plan_for(config, seed, batch))?);
            bar.inc(1);
            log(&format!(" {seed}"));
        }
        log(", lr sweep");
        let mut lr_sweep = Vec::new();
        for &f in &lr_factors {
            let c = config.with_lr((config.lr() as f64 * f) as f32);
            let acc = if f == 1.0 {
                seeds[0].test.map_or(f64::NAN, |t| t.accuracy as f64)
            } else {
                train_quiet(gpu, &base_data, &plan_for(c, 0, batch))
                    .map_or(f64::NAN, |o| o.test.map_or(f64::NAN, |t| t.accuracy as f64))
            };
            bar.inc(1);
            lr_sweep.push((f, acc));
        }
        log(", batch sweep");
        let mut batch_sweep = Vec::new();
        for &b in &batch_sizes {
            let b = b.min(base_data.train.rows());
            let acc = if b == batch {
                seeds[0].test.map_or(f64::NAN, |t| t.accuracy as f64)
            } else {
                train_quiet(gpu, &base_data, &plan_for(*config, 0, b))
                    .map_or(f64::NAN, |o| o.test.map_or(f64::NAN, |t| t.accuracy as f64))
            };
            bar.inc(1);
            batch_sweep.push((b, acc));
        }
        // time per step, measured apart from training (no loss readback, no evaluation)
        let options = NetworkOptions { curvature: config.uses_curvature(), ..NetworkOptions::new(batch, 0) };
        let net = Network::new(gpu, &spec, options)?;
        let bound = net.bind(gpu, &DeviceDataset::upload(gpu, &base_data.train)?)?;
        let mut opt = Optimizer::new(gpu, &net, *config)?;
        let mut order = BatchOrder::new(bound.rows, batch, 0);
        let ms = time_steps(gpu, &net, &mut opt, &bound, &mut order, Timing { warmup: 5, reps: 5, steps: 20 })?;
        if bar.is_hidden() {
            eprintln!(", {ms:.2} ms/step");
        } else {
            bar.finish_and_clear();
            eprintln!("{name}: {} trainings, {ms:.2} ms/step", runs);
        }
        results.push(PerOptimizer {
            name: name.clone(),
            config: *config,
            seeds,
            ms_per_step: ms,
            bytes: allocated_bytes(&net, &opt),
            lr_sweep,
            batch_sweep,
        });
    }
    let report = write_report(dir, gpu, cmd, &base_data, &spec, &results, batch, steps, eval_every)?;
    println!("{report}");
    println!(
        "report: {}/report.md (+ report.csv, accuracy.png/svg, lr_sweep.png/svg, batch_sweep.png/svg); {:.0}s in all{}",
        dir.path().display(),
        started.elapsed().as_secs_f64(),
        if main_job {
            "\nthis was `adahessian compare` on its defaults; see `adahessian --help` for train, bench, devices"
        } else {
            ""
        }
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_report(
    dir: &run::RunDir,
    gpu: &Gpu,
    cmd: &CompareCmd,
    data: &Data,
    spec: &ModelSpec,
    results: &[PerOptimizer],
    batch: usize,
    steps: u64,
    eval_every: u64,
) -> Result<String> {
    let acc = |r: &PerOptimizer| {
        stats(&r.seeds.iter().map(|o| o.test.map_or(f64::NAN, |t| t.accuracy as f64)).collect::<Vec<_>>())
    };
    let gap = |r: &PerOptimizer| {
        stats(
            &r.seeds
                .iter()
                .map(|o| o.train.accuracy as f64 - o.test.map_or(f64::NAN, |t| t.accuracy as f64))
                .collect::<Vec<_>>(),
        )
    };
    let to_target_steps = |r: &PerOptimizer| {
        stats(&r.seeds.iter().map(|o| o.reached_target.map_or(f64::NAN, |(s, _)| s as f64)).collect::<Vec<_>>())
    };
    let to_target_secs = |r: &PerOptimizer| {
        stats(&r.seeds.iter().map(|o| o.reached_target.map_or(f64::NAN, |(_, t)| t)).collect::<Vec<_>>())
    };
    let range = |v: &[(f64, f64)]| {
        let a: Vec<f64> = v.iter().map(|x| x.1).filter(|x| x.is_finite()).collect();
        if a.is_empty() {
            f64::NAN
        } else {
            a.iter().cloned().fold(f64::MIN, f64::max) - a.iter().cloned().fold(f64::MAX, f64::min)
        }
    };
    let cells = |f: &dyn Fn(&PerOptimizer) -> Stats, digits: usize| -> Vec<(String, f64, f64)> {
        results
            .iter()
            .map(|r| {
                let s = f(r);
                (fmt_stats(&s, digits), s.mean, s.std)
            })
            .collect()
    };
    let reached = |r: &PerOptimizer| r.seeds.iter().filter(|o| o.reached_target.is_some()).count();
    let ah = results.iter().position(|r| r.name == "adahessian").unwrap_or(0);
    let base =
        results.iter().position(|r| r.name == "adam").unwrap_or(if ah == 0 { 1.min(results.len() - 1) } else { 0 });
    let (a, b) = (&results[ah], &results[base]);
    let noise_acc = acc(a).std.max(acc(b).std).max(0.002);
    let mut md = String::new();
    let mut csv = String::from("claim,optimizer,value,spread,unit\n");
    writeln!(md, "# Optimizer comparison: measured claims\n")?;
    writeln!(md, "- adapter: {}", gpu.describe())?;
    writeln!(
        md,
        "- data: {} ({} train / {} test rows)",
        data.name,
        data.train.rows(),
        data.test.as_ref().map_or(0, |t| t.rows())
    )?;
    writeln!(
        md,
        "- model: `{}` ({} parameters)",
        spec.to_text().trim().replace('\n', "; "),
        results[0].seeds[0].params
    )?;
    writeln!(
        md,
        "- {steps} steps of batch {batch} ({:?} lr schedule), seeds 0..{}, each optimizer at its published defaults",
        cmd.looping.lr_schedule, cmd.seeds
    )?;
    writeln!(md, "- ± is the standard deviation over seeds; a row claims a difference only beyond twice that noise\n")?;
    writeln!(
        md,
        "| claim | {} | which way it points |",
        results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(" | ")
    )?;
    writeln!(md, "| --- | {}--- |", "--- | ".repeat(results.len()))?;
    let mut row = |claim: &str, unit: &str, cells: Vec<(String, f64, f64)>, direction: String| -> Result<()> {
        writeln!(
            md,
            "| {claim} | {} | {direction} |",
            cells.iter().map(|c| c.0.clone()).collect::<Vec<_>>().join(" | ")
        )?;
        for (r, c) in results.iter().zip(&cells) {
            writeln!(csv, "{claim},{},{},{},{unit}", r.name, c.1, c.2)?;
        }
        Ok(())
    };
    let mib = |v: u64| v as f64 / (1 << 20) as f64;
    row(
        "GPU memory: parameters + gradients / optimizer state / activations (MiB)",
        "bytes",
        results
            .iter()
            .map(|r| {
                (
                    format!("{:.2} / {:.2} / {:.2}", mib(r.bytes.0), mib(r.bytes.1), mib(r.bytes.2)),
                    (r.bytes.0 + r.bytes.1 + r.bytes.2) as f64,
                    0.0,
                )
            })
            .collect(),
        format!(
            "{} allocates {:.2}× the GPU bytes of {}, data set excluded (state: m, v, probe z, H z; activations: + tangents and R-cotangents)",
            a.name,
            (a.bytes.0 + a.bytes.1 + a.bytes.2) as f64 / (b.bytes.0 + b.bytes.1 + b.bytes.2).max(1) as f64,
            b.name
        ),
    )?;
    row(
        &format!("time per step (median ms, ratio to {})", b.name),
        "ms",
        results
            .iter()
            .map(|r| (format!("{:.3} ({:.2}×)", r.ms_per_step, r.ms_per_step / b.ms_per_step), r.ms_per_step, 0.0))
            .collect(),
        format!("{} costs {:.2}× a {} step on this adapter", a.name, a.ms_per_step / b.ms_per_step, b.name),
    )?;
    let steps_noise = to_target_steps(a).std.max(to_target_steps(b).std).max(1.0);
    row(
        &format!("steps to {:.0}% test accuracy", cmd.target_accuracy * 100.0),
        "steps",
        results
            .iter()
            .map(|r| {
                let s = to_target_steps(r);
                (format!("{} ({}/{} seeds)", fmt_stats(&s, 0), reached(r), r.seeds.len()), s.mean, s.std)
            })
            .collect(),
        verdict((&a.name, to_target_steps(a).mean), (&b.name, to_target_steps(b).mean), steps_noise, false, " steps"),
    )?;
    let secs_noise = to_target_secs(a).std.max(to_target_secs(b).std).max(0.01);
    row(
        &format!("seconds to {:.0}% test accuracy (training loop, with evaluations)", cmd.target_accuracy * 100.0),
        "s",
        cells(&to_target_secs, 2),
        verdict((&a.name, to_target_secs(a).mean), (&b.name, to_target_secs(b).mean), secs_noise, false, " s"),
    )?;
    row(
        "final test accuracy",
        "fraction",
        cells(&acc, 4),
        verdict((&a.name, acc(a).mean), (&b.name, acc(b).mean), noise_acc, true, ""),
    )?;
    row(
        "generalisation: train − test accuracy gap",
        "fraction",
        cells(&gap, 4),
        verdict((&a.name, gap(a).mean), (&b.name, gap(b).mean), gap(a).std.max(gap(b).std).max(0.002), false, ""),
    )?;
    row(
        &format!("learning-rate sensitivity: test accuracy range over lr × {{{}}}", cmd.lr_factors),
        "fraction",
        results
            .iter()
            .map(|r| {
                (
                    format!(
                        "{:.4} ({})",
                        range(&r.lr_sweep),
                        r.lr_sweep.iter().map(|(f, a)| format!("{f}: {a:.3}")).collect::<Vec<_>>().join(", ")
                    ),
                    range(&r.lr_sweep),
                    0.0,
                )
            })
            .collect(),
        verdict((&a.name, range(&a.lr_sweep)), (&b.name, range(&b.lr_sweep)), noise_acc, false, ""),
    )?;
    row(
        &format!("batch-size stability: test accuracy range over batch {{{}}}", cmd.batch_sizes),
        "fraction",
        results
            .iter()
            .map(|r| {
                (
                    format!(
                        "{:.4} ({})",
                        range(&r.batch_sweep.iter().map(|(b, a)| (*b as f64, *a)).collect::<Vec<_>>()),
                        r.batch_sweep.iter().map(|(b, a)| format!("{b}: {a:.3}")).collect::<Vec<_>>().join(", ")
                    ),
                    0.0,
                    0.0,
                )
            })
            .collect(),
        {
            let ra = range(&a.batch_sweep.iter().map(|(b, x)| (*b as f64, *x)).collect::<Vec<_>>());
            let rb = range(&b.batch_sweep.iter().map(|(b, x)| (*b as f64, *x)).collect::<Vec<_>>());
            verdict((&a.name, ra), (&b.name, rb), noise_acc, false, "")
        },
    )?;
    writeln!(md, "\nSweeps (lr, batch) use seed 0 only; their noise scale is the headline accuracy spread. Time per step is measured apart from training (20 steps × 5 repetitions after 5 warm-up steps, median), without loss readbacks or evaluations. Steps to target are resolved to the evaluation interval ({} steps).\n", eval_every)?;
    for r in results {
        writeln!(md, "- `{}`: {:?}", r.name, r.config)?;
    }
    std::fs::write(dir.file("report.md"), &md).context("writing report.md")?;
    std::fs::write(dir.file("report.csv"), csv).context("writing report.csv")?;
    let curves: Vec<Series> = results
        .iter()
        .map(|r| Series {
            label: r.name.clone(),
            points: r.seeds[0].metrics.iter().map(|m| (m.step as f64, m.test_score as f64)).collect(),
        })
        .collect();
    line_chart(&dir.file("accuracy"), "Test accuracy (seed 0)", "step", "test accuracy", &curves, false)?;
    let lr: Vec<Series> = results
        .iter()
        .map(|r| Series { label: r.name.clone(), points: r.lr_sweep.iter().map(|(f, a)| (f.log10(), *a)).collect() })
        .collect();
    line_chart(
        &dir.file("lr_sweep"),
        "Learning-rate sensitivity",
        "log10(lr / default lr)",
        "final test accuracy",
        &lr,
        false,
    )?;
    let bs: Vec<Series> = results
        .iter()
        .map(|r| Series {
            label: r.name.clone(),
            points: r.batch_sweep.iter().map(|(b, a)| ((*b as f64).log2(), *a)).collect(),
        })
        .collect();
    line_chart(
        &dir.file("batch_sweep"),
        "Batch-size stability",
        "log2(batch size)",
        "final test accuracy",
        &bs,
        false,
    )?;
    Ok(md)
}
