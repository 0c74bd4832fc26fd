//! Comparing optimizers the way a careful reader of the AdaHessian articles would: the same model,
//! data, seeds and batches for every method; what was measured for each ([`Measured`]: seeds,
//! learning-rate and batch-size sweeps, time per step, GPU memory) and the claims computed from
//! those measurements ([`Claim`]), as serialisable data. A claim names which way it points only
//! beyond twice the seed-to-seed noise. The command line renders the Markdown, CSV and plots.

use crate::error::{Error, Result};
use crate::nn::ModelSpec;
use crate::session::{Metric, Schedule};
use serde::Serialize;
use std::fmt::Write as _;

/// Mean and sample standard deviation of the finite values (NaN: none).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
}

impl Stats {
    /// Of the finite values of `v`.
    pub fn of(v: &[f64]) -> Stats {
        let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stats { mean: f64::NAN, std: f64::NAN };
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var =
            if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64 } else { 0.0 };
        Stats { mean, std: var.sqrt() }
    }

    fn text(&self, digits: usize) -> String {
        if self.mean.is_nan() {
            "not reached".into()
        } else {
            format!("{:.*} ± {:.*}", digits, self.mean, digits, self.std)
        }
    }
}

/// One seed's training run.
#[derive(Clone, Debug, Serialize)]
pub struct SeedRun {
    /// Seed of the data split, initialisation, batch order and probes.
    pub seed: u64,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final accuracy on the whole training split.
    pub train_accuracy: f64,
    /// (step, seconds) when test accuracy first reached the target.
    pub reached_target: Option<(u64, f64)>,
    /// Every evaluation.
    pub metrics: Vec<Metric>,
}

/// GPU bytes a training run allocates, the data set excluded.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Memory {
    /// θ and ∇θ.
    pub params_and_grads: u64,
    /// The optimizer's state (moments, kept estimate) with the probe z and H z.
    pub state: u64,
    /// Every node's values and cotangents (with tangents and R-cotangents for curvature methods)
    /// and the batch's scratch.
    pub activations: u64,
}

impl Memory {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.params_and_grads + self.state + self.activations
    }
}

/// Everything measured for one optimizer.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// The name it was asked for by.
    pub name: String,
    /// Its configuration as parser text (`adamw(lr=0.0003)`).
    pub config: String,
    /// Its settings.
    pub settings: serde_json::Value,
    /// The headline runs, one per seed.
    pub seeds: Vec<SeedRun>,
    /// Median milliseconds per step, measured apart from training.
    pub ms_per_step: f64,
    /// GPU bytes.
    pub memory: Memory,
    /// (lr factor, final test accuracy), seed 0.
    pub lr_sweep: Vec<(f64, f64)>,
    /// (batch size, final test accuracy), seed 0.
    pub batch_sweep: Vec<(usize, f64)>,
}

/// What a comparison runs.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// The model.
    #[serde(serialize_with = "model_text")]
    pub spec: ModelSpec,
    /// Steps of the headline batch size.
    pub steps: u64,
    /// Headline batch size.
    pub batch: usize,
    /// Evaluation interval (steps to target are resolved to it).
    pub eval_every: u64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Seeds 0..seeds for the headline rows.
    pub seeds: u64,
    /// The accuracy whose first crossing is timed.
    pub target_accuracy: f32,
    /// Multipliers of each method's lr in the sensitivity sweep.
    pub lr_factors: Vec<f64>,
    /// Batch sizes of the stability sweep (each trained for the same epochs).
    pub batch_sizes: Vec<usize>,
}

fn model_text<S: serde::Serializer>(spec: &ModelSpec, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&spec.to_text().trim().replace('\n', "; "))
}

/// What a progress display is told.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// A method's trainings begin (seeds + sweeps).
    Method {
        /// Its name.
        name: &'a str,
        /// Trainings it will run.
        trainings: u64,
    },
    /// One training finished.
    Training,
    /// A method is done; its time per step.
    Done {
        /// Its name.
        name: &'a str,
        /// Median ms per step.
        ms_per_step: f64,
    },
}

/// Runs every measurement: for each method, `setup.seeds` seeded runs on `data(seed)` (train and
/// test splits), the lr and batch sweeps on seed 0, and the time per step and memory of a
/// network and optimizer built for it. Methods share the model, seeds, splits and batch orders.
#[cfg(not(target_arch = "wasm32"))]
pub fn measure(
    gpu: &crate::gpu::Gpu,
    setup: &Setup,
    methods: &[(String, crate::optim::OptimizerConfig)],
    data: &dyn Fn(u64) -> Result<(crate::data::Dataset, crate::data::Dataset)>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<Measured>> {
    use crate::nn::{Network, NetworkOptions};
    use crate::optim::{Optimizer, OptimizerConfig};
    use crate::session::{self, Observer, Plan, Score};
    use crate::train::{time_steps, BatchOrder, Timing};
    let (base_train, base_test) = data(0)?;
    let per_epoch = base_train.rows().div_ceil(setup.batch) as f64;
    // every batch size trains for the same number of epochs as the headline batch
    let scaled =
        |n: u64, b: usize| ((n as f64 * base_train.rows().div_ceil(b) as f64 / per_epoch).round() as u64).max(1);
    let plan_for = |config: OptimizerConfig, seed: u64, b: usize| Plan {
        spec: setup.spec.clone(),
        config,
        batch_size: b,
        steps: scaled(setup.steps, b),
        schedule: setup.schedule,
        seed,
        eval_every: scaled(setup.eval_every, b),
        save_every: None,
        target_accuracy: Some(setup.target_accuracy),
        score: Score::Accuracy,
    };
    let quiet: &mut dyn Observer = &mut session::Quiet;
    let accuracy = |o: &session::Outcome| o.test.map_or(f64::NAN, |t| t.accuracy as f64);
    let mut out = Vec::new();
    for (name, config) in methods {
        let trainings = setup.seeds + (setup.lr_factors.len() + setup.batch_sizes.len()) as u64;
        progress(Progress::Method { name, trainings });
        let mut seeds = Vec::new();
        for seed in 0..setup.seeds {
            let (train, test) = data(seed)?;
            // the seed also draws the probes
            let mut c = *config;
            if c.has_setting("seed") {
                c.set("seed", &seed.to_string())?;
            }
            let o = session::train(gpu, &train, Some(&test), &plan_for(c, seed, setup.batch), None, quiet)?;
            seeds.push(SeedRun {
                seed,
                test_accuracy: accuracy(&o),
                train_accuracy: o.train.accuracy as f64,
                reached_target: o.reached_target,
                metrics: o.metrics,
            });
            progress(Progress::Training);
        }
        // a sweep point that diverges is a NaN accuracy, not a failed comparison
        let mut sweep = |c: OptimizerConfig, b: usize| -> f64 {
            let o = session::train(gpu, &base_train, Some(&base_test), &plan_for(c, 0, b), None, &mut session::Quiet);
            progress(Progress::Training);
            o.map_or(f64::NAN, |o| accuracy(&o))
        };
        let mut lr_sweep = Vec::new();
        for &f in &setup.lr_factors {
            let acc = if f == 1.0 {
                seeds[0].test_accuracy
            } else {
                sweep(config.with_lr((config.lr() as f64 * f) as f32), setup.batch)
            };
            lr_sweep.push((f, acc));
        }
        let mut batch_sweep = Vec::new();
        for &b in &setup.batch_sizes {
            let b = b.min(base_train.rows());
            let acc = if b == setup.batch { seeds[0].test_accuracy } else { sweep(*config, b) };
            batch_sweep.push((b, acc));
        }
        // time per step, measured apart from training (no loss readback, no evaluation)
        let options = NetworkOptions { curvature: config.uses_curvature(), ..NetworkOptions::new(setup.batch, 0) };
        let net = Network::new(gpu, &setup.spec, options)?;
        let bound = net.bind(gpu, &crate::data::DeviceDataset::upload(gpu, &base_train)?)?;
        let mut opt = Optimizer::new(gpu, &net, *config)?;
        let mut order = BatchOrder::new(bound.rows, setup.batch, 0);
        let ms_per_step =
            time_steps(gpu, &net, &mut opt, &bound, &mut order, Timing { warmup: 5, reps: 5, steps: 20 })?;
        let m = net.memory();
        let memory = Memory {
            params_and_grads: m.params + m.grads,
            state: opt.memory_bytes() + m.probe_and_hz,
            activations: m.values + m.tangents + m.cotangents + m.scratch,
        };
        progress(Progress::Done { name, ms_per_step });
        out.push(Measured {
            name: name.clone(),
            config: config.to_text(),
            settings: config.settings_json(),
            seeds,
            ms_per_step,
            memory,
            lr_sweep,
            batch_sweep,
        });
    }
    Ok(out)
}

/// Which way a claim points between the subject and the baseline.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// One is better beyond twice the noise.
    Better {
        /// The better one.
        winner: String,
        /// The other.
        loser: String,
        /// |difference|.
        by: f64,
        /// The noise scale.
        noise: f64,
    },
    /// |difference| ≤ 2 × noise.
    NoClearDifference {
        /// |difference|.
        difference: f64,
        /// The noise scale.
        noise: f64,
    },
    /// One of the two has no value (did not reach the target, diverged).
    NotComparable,
    /// A measured ratio, stated as it is (memory, time).
    Ratio {
        /// subject / baseline.
        ratio: f64,
    },
}

/// One method's entry in a claim.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// The method.
    pub optimizer: String,
    /// As the report prints it.
    pub text: String,
    /// The value (a mean over seeds, a range, a total).
    pub value: f64,
    /// Its spread (standard deviation over seeds; 0 for single measurements).
    pub spread: f64,
}

/// One measured claim: a row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    /// A stable identifier (`memory`, `time_per_step`, `steps_to_target`, ...).
    pub id: &'static str,
    /// What is measured, as the report's row title.
    pub title: String,
    /// The unit of `Cell::value`.
    pub unit: &'static str,
    /// Whether it uses every seed or seed 0 only.
    pub seeds: &'static str,
    /// One cell per method.
    pub cells: Vec<Cell>,
    /// Subject against baseline.
    pub verdict: Verdict,
    /// The verdict in words.
    pub says: String,
}

/// A finished comparison: the setup, the measurements and the claims.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The adapter it ran on.
    pub adapter: String,
    /// The data set's name.
    pub data: String,
    /// Training rows.
    pub train_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Parameters of the model.
    pub params: usize,
    /// What was run.
    pub setup: Setup,
    /// Per method.
    pub methods: Vec<Measured>,
    /// The method the claims are about (AdaHessian when present).
    pub subject: String,
    /// The method it is measured against (Adam when present).
    pub baseline: String,
    /// The claims, in report order.
    pub claims: Vec<Claim>,
}

/// Which way a measurement points; never claims a difference inside 2 × noise.
fn verdict(a: (&str, f64), b: (&str, f64), noise: f64, higher_better: bool) -> Verdict {
    if !a.1.is_finite() || !b.1.is_finite() {
        return Verdict::NotComparable;
    }
    let diff = a.1 - b.1;
    if diff.abs() <= 2.0 * noise {
        return Verdict::NoClearDifference { difference: diff.abs(), noise };
    }
    let (winner, loser) = if (diff > 0.0) == higher_better { (a.0, b.0) } else { (b.0, a.0) };
    Verdict::Better { winner: winner.into(), loser: loser.into(), by: diff.abs(), noise }
}

fn says(v: &Verdict, a: &str, b: &str, unit: &str) -> String {
    match v {
        Verdict::Better { winner, loser, by, noise } => {
            format!("{winner} better than {loser} by {by:.3}{unit} (beyond 2 × seed noise {noise:.3})")
        }
        Verdict::NoClearDifference { difference, noise } => {
            format!("no clear difference between {a} and {b} (|Δ| {difference:.3}{unit} ≤ 2 × seed noise {noise:.3})")
        }
        Verdict::NotComparable => format!("{a} vs {b}: not comparable (one did not reach it)"),
        Verdict::Ratio { ratio } => format!("{a} / {b} = {ratio:.2}×"),
    }
}

fn range(v: impl Iterator<Item = f64>) -> f64 {
    let a: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if a.is_empty() {
        f64::NAN
    } else {
        a.iter().cloned().fold(f64::MIN, f64::max) - a.iter().cloned().fold(f64::MAX, f64::min)
    }
}

impl Comparison {
    /// The claims from the measurements; `subject` and `baseline` index `methods`.
    pub fn new(
        adapter: String,
        (data, train_rows, test_rows): (String, usize, usize),
        setup: Setup,
        methods: Vec<Measured>,
    ) -> Result<Comparison> {
        if methods.is_empty() || methods.iter().any(|m| m.seeds.is_empty()) {
            return Err(Error::Config("a comparison needs at least one optimizer and one seed".into()));
        }
        let params = setup.spec.resolve()?.n_params;
        let ah = methods.iter().position(|r| r.name == "adahessian").unwrap_or(0);
        let base =
            methods.iter().position(|r| r.name == "adam").unwrap_or(if ah == 0 { 1.min(methods.len() - 1) } else { 0 });
        let (a, b) = (&methods[ah], &methods[base]);
        let per_seed =
            |m: &Measured, f: &dyn Fn(&SeedRun) -> f64| Stats::of(&m.seeds.iter().map(f).collect::<Vec<_>>());
        let acc = |m: &Measured| per_seed(m, &|s| s.test_accuracy);
        let gap = |m: &Measured| per_seed(m, &|s| s.train_accuracy - s.test_accuracy);
        let steps = |m: &Measured| per_seed(m, &|s| s.reached_target.map_or(f64::NAN, |(t, _)| t as f64));
        let secs = |m: &Measured| per_seed(m, &|s| s.reached_target.map_or(f64::NAN, |(_, t)| t));
        let reached = |m: &Measured| m.seeds.iter().filter(|s| s.reached_target.is_some()).count();
        let lr_range = |m: &Measured| range(m.lr_sweep.iter().map(|x| x.1));
        let batch_range = |m: &Measured| range(m.batch_sweep.iter().map(|x| x.1));
        let noise_acc = acc(a).std.max(acc(b).std).max(0.002);
        let stat_cells = |f: &dyn Fn(&Measured) -> Stats, digits: usize| -> Vec<Cell> {
            methods
                .iter()
                .map(|m| {
                    let s = f(m);
                    Cell { optimizer: m.name.clone(), text: s.text(digits), value: s.mean, spread: s.std }
                })
                .collect()
        };
        let mut claims = Vec::new();
        let mut claim = |id, title: String, unit, seeds, cells, verdict: Verdict, unit_text: &str| {
            let says = says(&verdict, &a.name, &b.name, unit_text);
            claims.push(Claim { id, title, unit, seeds, cells, verdict, says });
        };
        let mib = |v: u64| v as f64 / (1 << 20) as f64;
        let ratio = a.memory.total() as f64 / b.memory.total().max(1) as f64;
        claim(
            "memory",
            "GPU memory: parameters + gradients / optimizer state / activations (MiB)".into(),
            "bytes",
            "one build",
            methods
                .iter()
                .map(|m| Cell {
                    optimizer: m.name.clone(),
                    text: format!(
                        "{:.2} / {:.2} / {:.2}",
                        mib(m.memory.params_and_grads),
                        mib(m.memory.state),
                        mib(m.memory.activations)
                    ),
                    value: m.memory.total() as f64,
                    spread: 0.0,
                })
                .collect(),
            Verdict::Ratio { ratio },
            "",
        );
        let time_ratio = a.ms_per_step / b.ms_per_step;
        claim(
            "time_per_step",
            format!("time per step (median ms, ratio to {})", b.name),
            "ms",
            "one build",
            methods
                .iter()
                .map(|m| Cell {
                    optimizer: m.name.clone(),
                    text: format!("{:.3} ({:.2}×)", m.ms_per_step, m.ms_per_step / b.ms_per_step),
                    value: m.ms_per_step,
                    spread: 0.0,
                })
                .collect(),
            Verdict::Ratio { ratio: time_ratio },
            "",
        );
        let target = setup.target_accuracy * 100.0;
        claim(
            "steps_to_target",
            format!("steps to {target:.0}% test accuracy"),
            "steps",
            "every seed",
            methods
                .iter()
                .map(|m| {
                    let s = steps(m);
                    Cell {
                        optimizer: m.name.clone(),
                        text: format!("{} ({}/{} seeds)", s.text(0), reached(m), m.seeds.len()),
                        value: s.mean,
                        spread: s.std,
                    }
                })
                .collect(),
            verdict((&a.name, steps(a).mean), (&b.name, steps(b).mean), steps(a).std.max(steps(b).std).max(1.0), false),
            " steps",
        );
        claim(
            "seconds_to_target",
            format!("seconds to {target:.0}% test accuracy (training loop, with evaluations)"),
            "s",
            "every seed",
            stat_cells(&secs, 2),
            verdict((&a.name, secs(a).mean), (&b.name, secs(b).mean), secs(a).std.max(secs(b).std).max(0.01), false),
            " s",
        );
        claim(
            "final_accuracy",
            "final test accuracy".into(),
            "fraction",
            "every seed",
            stat_cells(&acc, 4),
            verdict((&a.name, acc(a).mean), (&b.name, acc(b).mean), noise_acc, true),
            "",
        );
        claim(
            "generalisation_gap",
            "generalisation: train − test accuracy gap".into(),
            "fraction",
            "every seed",
            stat_cells(&gap, 4),
            verdict((&a.name, gap(a).mean), (&b.name, gap(b).mean), gap(a).std.max(gap(b).std).max(0.002), false),
            "",
        );
        let factors = setup.lr_factors.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(",");
        claim(
            "lr_sensitivity",
            format!("learning-rate sensitivity: test accuracy range over lr × {{{factors}}}"),
            "fraction",
            "seed 0",
            methods
                .iter()
                .map(|m| Cell {
                    optimizer: m.name.clone(),
                    text: format!(
                        "{:.4} ({})",
                        lr_range(m),
                        m.lr_sweep.iter().map(|(f, a)| format!("{f}: {a:.3}")).collect::<Vec<_>>().join(", ")
                    ),
                    value: lr_range(m),
                    spread: 0.0,
                })
                .collect(),
            verdict((&a.name, lr_range(a)), (&b.name, lr_range(b)), noise_acc, false),
            "",
        );
        let sizes = setup.batch_sizes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
        claim(
            "batch_stability",
            format!("batch-size stability: test accuracy range over batch {{{sizes}}}"),
            "fraction",
            "seed 0",
            methods
                .iter()
                .map(|m| Cell {
                    optimizer: m.name.clone(),
                    text: format!(
                        "{:.4} ({})",
                        batch_range(m),
                        m.batch_sweep.iter().map(|(b, a)| format!("{b}: {a:.3}")).collect::<Vec<_>>().join(", ")
                    ),
                    value: batch_range(m),
                    spread: 0.0,
                })
                .collect(),
            verdict((&a.name, batch_range(a)), (&b.name, batch_range(b)), noise_acc, false),
            "",
        );
        // the two ratios are stated as they are, with what they count
        for c in &mut claims {
            match c.id {
                "memory" => {
                    c.says = format!(
                        "{} allocates {ratio:.2}× the GPU bytes of {}, data set excluded (state: m, v, probe z, H z; activations: + tangents and R-cotangents)",
                        a.name, b.name
                    )
                }
                "time_per_step" => c.says = format!("{} costs {time_ratio:.2}× a {} step on this adapter", a.name, b.name),
                _ => {}
            }
        }
        Ok(Comparison {
            adapter,
            data,
            train_rows,
            test_rows,
            params,
            subject: a.name.clone(),
            baseline: b.name.clone(),
            setup,
            methods,
            claims,
        })
    }

    /// The report as Markdown: the setup, one table row per claim, the notes and the configs.
    pub fn to_markdown(&self) -> String {
        let s = &self.setup;
        let mut md = String::new();
        let names: Vec<&str> = self.methods.iter().map(|m| m.name.as_str()).collect();
        let _ = writeln!(md, "# Optimizer comparison: measured claims\n");
        let _ = writeln!(md, "- adapter: {}", self.adapter);
        let _ = writeln!(md, "- data: {} ({} train / {} test rows)", self.data, self.train_rows, self.test_rows);
        let _ = writeln!(md, "- model: `{}` ({} parameters)", s.spec.to_text().trim().replace('\n', "; "), self.params);
        let _ = writeln!(
            md,
            "- {} steps of batch {} ({:?} lr schedule), seeds 0..{}, each optimizer at its published defaults",
            s.steps, s.batch, s.schedule, s.seeds
        );
        let _ = writeln!(
            md,
            "- ± is the standard deviation over seeds; a row claims a difference only beyond twice that noise\n"
        );
        let _ = writeln!(md, "| claim | {} | which way it points |", names.join(" | "));
        let _ = writeln!(md, "| --- | {}--- |", "--- | ".repeat(names.len()));
        for c in &self.claims {
            let cells: Vec<&str> = c.cells.iter().map(|x| x.text.as_str()).collect();
            let _ = writeln!(md, "| {} | {} | {} |", c.title, cells.join(" | "), c.says);
        }
        let _ = writeln!(md, "\nSweeps (lr, batch) use seed 0 only; their noise scale is the headline accuracy spread. Time per step is measured apart from training (20 steps × 5 repetitions after 5 warm-up steps, median), without loss readbacks or evaluations. Steps to target are resolved to the evaluation interval ({} steps).\n", s.eval_every);
        for m in &self.methods {
            let _ = writeln!(md, "- `{}`: `{}` {}", m.name, m.config, m.settings);
        }
        md
    }

    /// The claims as CSV: `claim,optimizer,value,spread,unit`, one line per claim and method
    /// (titles with commas are quoted, RFC 4180).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(["claim", "optimizer", "value", "spread", "unit"]);
        for c in &self.claims {
            for cell in &c.cells {
                let _ = w.write_record([
                    c.title.as_str(),
                    &cell.optimizer,
                    &cell.value.to_string(),
                    &cell.spread.to_string(),
                    c.unit,
                ]);
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}
