//! Comparing optimizers the way a careful reader of the AdaHessian articles would: the same model,
//! data, seeds and batches for every method; what was measured for each ([`Measured`]: seeds,
//! learning-rate and batch-size sweeps, time per step, GPU memory) and the claims computed from
//! those measurements ([`Claim`]), as serialisable data. A claim names which way it points only
//! beyond twice the seed-to-seed noise. The command line renders the Markdown, CSV and plots.

mod article;
mod claims;
#[cfg(not(target_arch = "wasm32"))]
mod measure;

pub use article::{ArticleClaim, ArticleVerdict};
#[cfg(not(target_arch = "wasm32"))]
pub use measure::{measure, mlp_shape, spearman};

use crate::error::{Error, Result};
use crate::nn::ModelSpec;
use crate::session::{Metric, Schedule};
use claims::ClaimContext;
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
    /// The test loss and accuracy early in the run (the first evaluation at or after each of
    /// `Setup::early_fractions` of the steps).
    pub early: Vec<EarlyPoint>,
    /// Every evaluation.
    pub metrics: Vec<Metric>,
}

/// The test loss and accuracy at an early point of a run.
#[derive(Clone, Debug, Serialize)]
pub struct EarlyPoint {
    /// The fraction of the step budget asked for.
    pub fraction: f64,
    /// The step of the evaluation used (the first at or after it).
    pub step: u64,
    /// Test accuracy there.
    pub test_accuracy: f64,
    /// Test loss there.
    pub test_loss: f64,
}

/// One point of the depth sweep (seed 0).
#[derive(Clone, Debug, Serialize)]
pub struct DepthPoint {
    /// The hidden layers' activation.
    pub activation: String,
    /// Hidden layers of the headline width.
    pub depth: usize,
    /// Final test accuracy (NaN: diverged).
    pub test_accuracy: f64,
    /// Steps to the target accuracy (None: not reached).
    pub steps_to_target: Option<u64>,
    /// `trained`, `stalled` (final accuracy within 0.05 of chance) or `diverged` (a NaN loss).
    pub outcome: &'static str,
}

/// One point of the label-noise sweep (seed 0; test labels clean).
#[derive(Clone, Debug, Serialize)]
pub struct NoisePoint {
    /// Fraction of training labels replaced by another class.
    pub noise: f64,
    /// Final test accuracy (clean labels).
    pub test_accuracy: f64,
    /// Final accuracy on the (noisy) training labels.
    pub train_accuracy: f64,
}

/// What AdaHessian's √v̂ tracks at the end of training, on parameters drawn at random.
#[derive(Clone, Debug, Serialize)]
pub struct DiagonalFit {
    /// Parameters sampled (one H e_i each).
    pub samples: usize,
    /// Spearman's ρ of √v̂ with |H_ii|.
    pub rho_diagonal: f64,
    /// Spearman's ρ of √v̂ with the row norm ‖H_i,:‖.
    pub rho_row_norm: f64,
    /// The median of ‖H_i,:‖ / |H_ii|: how far the row norm is from the diagonal.
    pub median_row_norm_over_diagonal: f64,
    /// The standard error of a Fisher-transformed Spearman ρ over `samples`, √(1.06 / (n − 3)):
    /// two ρ closer than twice it (in atanh space) are not told apart.
    pub z_stderr: f64,
    /// HVPs spent.
    pub hvps: u64,
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
    /// Hidden layers × activations, seed 0 (empty for a model that is not an MLP).
    pub depth_sweep: Vec<DepthPoint>,
    /// Label noise levels, seed 0.
    pub noise_sweep: Vec<NoisePoint>,
    /// For AdaHessian: what its √v̂ tracks.
    pub diagonal: Option<DiagonalFit>,
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
    /// Hidden layers of the depth sweep (an MLP of the model's first hidden width).
    pub depths: Vec<usize>,
    /// Activations of the depth sweep.
    pub depth_activations: Vec<String>,
    /// Fractions of training labels replaced (0 is the headline run).
    pub label_noise: Vec<f64>,
    /// Fractions of the step budget where the early phase is read.
    pub early_fractions: Vec<f64>,
    /// Parameters sampled for what AdaHessian's estimate tracks (0: not measured).
    pub diagonal_samples: usize,
    /// Where BatchNorm takes its statistics from in the Hessian that estimate is compared with
    /// (training always uses the batch's): train, the loss AdaHessian differentiates, or eval.
    pub bn_mode: crate::nn::BnMode,
    /// The published recipe these settings are (`paper`), whose table the report sets beside
    /// the measured one.
    pub recipe: Option<String>,
}

/// The AdaHessian paper's ResNet-20 CIFAR-10 top-1 test accuracies in % (Yao et al. 2021; the
/// official TF logs reach 92.31 for AdaHessian), by optimizer name.
pub const PAPER_RESNET20_CIFAR10: [(&str, f64); 4] =
    [("sgd", 92.08), ("adam", 90.33), ("adamw", 91.97), ("adahessian", 92.13)];

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
        /// Training steps those trainings take in all (a progress bar in steps gives an honest
        /// time estimate even when one training takes hours).
        steps: u64,
    },
    /// One training step taken.
    Step,
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
    /// Neither has a value (neither reached the target, both diverged). Where only one has none,
    /// the other is `Better` with `by` infinite.
    NotComparable,
    /// A measured ratio, stated as it is (memory, time).
    Ratio {
        /// subject / baseline.
        ratio: f64,
    },
    /// How the subject's advantage over the baseline moves along a sweep (depth).
    Trend {
        /// subject − baseline at the first point.
        from: f64,
        /// subject − baseline at the last point.
        to: f64,
        /// The noise scale of one difference.
        noise: f64,
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
    /// The article's claims, each with what was measured here and a verdict.
    pub article: Vec<ArticleClaim>,
    /// The claims, in report order.
    pub claims: Vec<Claim>,
}

/// Which way a measurement points; never claims a difference inside 2 × noise.
/// A missing value (a target not reached, a run that diverged) loses to a measured one.
fn verdict(a: (&str, f64), b: (&str, f64), noise: f64, higher_better: bool) -> Verdict {
    match (a.1.is_finite(), b.1.is_finite()) {
        (true, true) => {}
        (false, false) => return Verdict::NotComparable,
        (a_measured, _) => {
            let (winner, loser) = if a_measured { (a.0, b.0) } else { (b.0, a.0) };
            return Verdict::Better { winner: winner.into(), loser: loser.into(), by: f64::INFINITY, noise };
        }
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
        Verdict::Better { winner, loser, by, .. } if by.is_infinite() => {
            format!("{winner} better: {loser} has no value (did not reach it, or diverged)")
        }
        Verdict::Better { winner, loser, by, noise } => {
            format!("{winner} better than {loser} by {by:.3}{unit} (beyond 2 × seed noise {noise:.3})")
        }
        Verdict::NoClearDifference { difference, noise } => {
            format!("no clear difference between {a} and {b} (|Δ| {difference:.3}{unit} ≤ 2 × seed noise {noise:.3})")
        }
        Verdict::NotComparable => format!("{a} vs {b}: not comparable (one did not reach it)"),
        Verdict::Ratio { ratio } => format!("{a} / {b} = {ratio:.2}×"),
        Verdict::Trend { from, to, noise } => {
            let way = if !(from.is_finite() && to.is_finite()) {
                "cannot be followed (a run diverged)".to_string()
            } else if (to - from).abs() <= 2.0 * noise {
                format!("holds within noise (|Δ| ≤ 2 × {noise:.3})")
            } else if to > from {
                "grows".to_string()
            } else {
                "shrinks".to_string()
            };
            format!(
                "{a}'s accuracy advantage over {b} goes from {from:+.3} (shallowest) to {to:+.3} (deepest): it {way}"
            )
        }
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
    /// The claims from the measurements, about the subject (AdaHessian when present) against the
    /// baseline (Adam when present), then the article's claims judged from them.
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
        let cx = ClaimContext { methods: &methods, a: &methods[ah], b: &methods[base], setup: &setup };
        let claims = [
            cx.cost_claims(),
            cx.headline_claims(),
            cx.sweep_claims(),
            cx.depth_claims(),
            cx.noise_claims(),
            cx.early_claims(),
            cx.diagonal_claims(),
        ]
        .concat();
        let article = article::judge(&claims, &methods[ah].name);
        Ok(Comparison {
            adapter,
            data,
            train_rows,
            test_rows,
            params,
            subject: methods[ah].name.clone(),
            baseline: methods[base].name.clone(),
            setup,
            article,
            claims,
            methods,
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
        let _ = writeln!(md, "## The article's claims, measured ({} against {})\n", self.subject, self.baseline);
        let _ = writeln!(md, "| the article says | measured here | verdict |");
        let _ = writeln!(md, "| --- | --- | --- |");
        // a | inside a cell would end it
        let cell = |t: &str| t.replace('|', "\\|");
        for c in &self.article {
            let _ = writeln!(md, "| {} | {} | **{}** |", cell(c.article_says), cell(&c.measured), c.verdict_text());
        }
        let _ = writeln!(md, "\n## Every measurement\n");
        let _ = writeln!(md, "| claim | seeds | {} | which way it points |", names.join(" | "));
        let _ = writeln!(md, "| --- | --- | {}--- |", "--- | ".repeat(names.len()));
        for c in &self.claims {
            let cells: Vec<String> = c.cells.iter().map(|x| cell(&x.text)).collect();
            let _ = writeln!(md, "| {} | {} | {} | {} |", cell(&c.title), c.seeds, cells.join(" | "), cell(&c.says));
        }
        let _ = writeln!(
            md,
            "\nThe sweeps (lr, batch, depth, label noise) use seed 0 only; their noise scale is the headline accuracy spread. \
             Depth: MLPs of the model's first hidden width with 1 to {} hidden layers; a run that reaches within 0.05 of chance \
             accuracy has stalled, one whose loss became NaN diverged. Label noise: that fraction of the training labels replaced \
             by another class at random (test labels clean). The early phase reads the first evaluation at or after each fraction \
             of the steps. What the estimate tracks: H e_i for parameters drawn at random at the final weights of seed 0, over 256 \
             training rows{}. Time per step is measured apart from training (20 steps × 5 repetitions after 5 warm-up steps, median), \
             without loss readbacks or evaluations. Steps to target are resolved to the evaluation interval ({} steps).\n",
            s.depths.iter().max().copied().unwrap_or(0),
            match s.spec.resolve().is_ok_and(|m| m.has_batch_norm()) {
                true => format!(", BatchNorm in {} mode (--bn-mode)", s.bn_mode.name()),
                false => String::new(),
            },
            s.eval_every
        );
        for m in &self.methods {
            let _ = writeln!(md, "- `{}`: `{}` {}", m.name, m.config, m.settings);
        }
        if s.recipe.as_deref() == Some("paper") {
            md.push_str(&self.paper_table());
        }
        md
    }

    /// The paper's ResNet-20 CIFAR-10 table beside this run's final test accuracies.
    fn paper_table(&self) -> String {
        let mut md = String::from(
            "\n## The paper's table beside this run\n\nTop-1 test accuracy (%). The paper: ResNet-20 on CIFAR-10, batch 256, \
             160 epochs, lr ×0.1 at epochs 80 and 120 (Yao et al. 2021; the official TF logs reach 92.31 for AdaHessian). \
             This run: the settings above; a shorter run, another model or other data is not the paper's experiment.\n\n\
             | optimizer | paper | this run (mean of seeds) |\n|---|---|---|\n",
        );
        for m in &self.methods {
            let name = m.config.split('(').next().unwrap_or("");
            let paper = PAPER_RESNET20_CIFAR10
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("–".to_string(), |p| format!("{:.2}", p.1));
            let runs: Vec<f64> = m.seeds.iter().map(|r| r.test_accuracy).filter(|a| a.is_finite()).collect();
            let measured = if runs.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}", 100.0 * runs.iter().sum::<f64>() / runs.len() as f64)
            };
            let _ = writeln!(md, "| {} | {paper} | {measured} |", m.name);
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
