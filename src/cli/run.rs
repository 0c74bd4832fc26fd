//! One training run: the loop, its metrics, its run directory (model, checkpoints, metrics,
//! summary, plots) and resuming. `train` runs one; `compare` runs many without a directory each.

use crate::plot::{line_chart, Series};
use crate::setup::Data;
use adahessian_wgpu::checkpoint::{self, NamedTensor};
use adahessian_wgpu::data::{DeviceDataset, Targets};
use adahessian_wgpu::gpu::Gpu;
use adahessian_wgpu::nn::{Batch, Evaluation, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{Optimizer, OptimizerConfig, OptimizerState};
use adahessian_wgpu::train::{BatchOrder, BatchOrderState};
use adahessian_wgpu::{block_on, Error};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// ×0.1 at 50% and again at 75% of the steps.
    Step,
    /// lr · ½ (1 + cos(π t / T)).
    Cosine,
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule> {
        Ok(match s {
            "constant" => Schedule::Constant,
            "step" => Schedule::Step,
            "cosine" => Schedule::Cosine,
            other => bail!("--lr-schedule {other}: use constant, step or cosine"),
        })
    }

    fn factor(self, step: u64, total: u64) -> f32 {
        let f = step as f64 / total.max(1) as f64;
        (match self {
            Schedule::Constant => 1.0,
            Schedule::Step => {
                if f >= 0.75 {
                    0.01
                } else if f >= 0.5 {
                    0.1
                } else {
                    1.0
                }
            }
            Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * f).cos()),
        }) as f32
    }
}

/// Everything a run needs besides the data.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spec: ModelSpec,
    pub config: OptimizerConfig,
    pub batch_size: usize,
    pub steps: u64,
    pub schedule: Schedule,
    pub seed: u64,
    /// Evaluate (and checkpoint) every this many steps, and at the end.
    pub eval_every: u64,
    /// Keep a numbered checkpoint every this many steps (for trajectories).
    pub save_every: Option<u64>,
    /// Record when test accuracy first reaches this.
    pub target_accuracy: Option<f32>,
    /// What the test column measures: accuracy, or R² for regression.
    pub score: Score,
}

/// The test score a run logs: accuracy for class labels; for real-valued targets the coefficient
/// of determination R² = 1 − MSE / Var(targets), with Var taken over the test set's targets the
/// way the MSE loss is averaged (over rows and outputs, each output about its own mean).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Score {
    Accuracy,
    R2 { variance: f32 },
}

impl Score {
    /// The score that fits the data set (its test split; the training split when there is none).
    pub fn for_data(data: &Data) -> Score {
        let ds = data.test.as_ref().unwrap_or(&data.train);
        match &ds.targets {
            Targets::Classes { .. } => Score::Accuracy,
            Targets::Values { values, width } => {
                let (w, n) = (*width, ds.rows());
                let mut var = 0.0f64;
                for j in 0..w {
                    let column = values.iter().skip(j).step_by(w).map(|&v| v as f64);
                    let mean = column.clone().sum::<f64>() / n.max(1) as f64;
                    var += column.map(|v| (v - mean) * (v - mean)).sum::<f64>();
                }
                Score::R2 { variance: (var / (n * w).max(1) as f64) as f32 }
            }
        }
    }

    /// The metrics.csv column and log label.
    pub fn column(self) -> &'static str {
        match self {
            Score::Accuracy => "test_accuracy",
            Score::R2 { .. } => "test_r2",
        }
    }

    /// The score of an evaluation.
    pub fn of(self, e: &Evaluation) -> f32 {
        match self {
            Score::Accuracy => e.accuracy,
            Score::R2 { variance } => 1.0 - e.loss / variance,
        }
    }
}

/// One line of metrics.csv.
#[derive(Clone, Debug)]
pub struct Metric {
    pub step: u64,
    pub epoch: f64,
    pub train_loss: f32,
    pub test_loss: f32,
    /// [`Score`]: accuracy, or R² for regression
    pub test_score: f32,
    pub seconds: f64,
}

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub metrics: Vec<Metric>,
    pub test: Option<Evaluation>,
    pub train: Evaluation,
    pub steps: u64,
    pub seconds: f64,
    /// (step, seconds) when test accuracy first reached the target.
    pub reached_target: Option<(u64, f64)>,
    pub params: usize,
}

/// A run directory being written, all-or-nothing and by one process at a time.
///
/// - One writer: an exclusive lock on `<parent>/.<name>.lock`, held while this value lives; a
///   second process with the same directory is refused with a message that says so.
/// - All-or-nothing: a new run over an existing one (`--force`) is built in a staging directory
///   beside it and swapped in by [`RunDir::commit`] once it has its first checkpoint, so until
///   then the directory still holds the old run, complete, and afterwards only the new one (no
///   stale files of the old run survive). A run that fails before that leaves the old one as it
///   was ([`RunDir::abandon`]).
pub struct RunDir {
    target: PathBuf,
    current: std::cell::RefCell<PathBuf>,
    _lock: std::fs::File,
}

impl RunDir {
    /// Takes the directory for a new run, refusing to overwrite a non-empty one unless `force`.
    pub fn create(path: &Path, force: bool) -> Result<RunDir> {
        let lock = lock_run(path)?;
        let occupied = path.exists() && path.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true);
        if occupied && !force {
            bail!(
                "{} already exists and is not empty; pass --force to overwrite it, or choose another --out",
                path.display()
            );
        }
        let current = if occupied { sibling(path, &format!("new-{}", std::process::id())) } else { path.to_path_buf() };
        if current != path && current.exists() {
            std::fs::remove_dir_all(&current).with_context(|| format!("removing {}", current.display()))?;
        }
        std::fs::create_dir_all(&current).with_context(|| format!("creating {}", current.display()))?;
        Ok(RunDir { target: path.to_path_buf(), current: current.into(), _lock: lock })
    }

    /// Takes an existing run directory to continue it (`--resume`).
    pub fn resume(path: &Path) -> Result<RunDir> {
        let lock = lock_run(path)?;
        Ok(RunDir { target: path.to_path_buf(), current: path.to_path_buf().into(), _lock: lock })
    }

    /// Where the run's files are written now (the staging directory until the first commit).
    pub fn path(&self) -> PathBuf {
        self.current.borrow().clone()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.current.borrow().join(name)
    }

    /// Swaps a staged run into place (no-op when it is already there): the old run moves aside,
    /// the new one takes its name, the old one is deleted.
    pub fn commit(&self) -> Result<()> {
        let current = self.path();
        if current == self.target {
            return Ok(());
        }
        let old = sibling(&self.target, &format!("old-{}", std::process::id()));
        std::fs::rename(&self.target, &old)
            .with_context(|| format!("moving the old run {} aside", self.target.display()))?;
        std::fs::rename(&current, &self.target)
            .with_context(|| format!("moving the new run {} into {}", current.display(), self.target.display()))?;
        *self.current.borrow_mut() = self.target.clone();
        std::fs::remove_dir_all(&old).with_context(|| format!("removing the old run {}", old.display()))
    }

    /// After a failure before the first commit: removes what this run wrote (a staging directory,
    /// or the new directory it created) and says what was kept.
    pub fn abandon(&self) -> String {
        let current = self.path();
        if current != self.target {
            let _ = std::fs::remove_dir_all(&current);
            format!("the previous run in {} is kept as it was", self.target.display())
        } else {
            let _ = std::fs::remove_dir_all(&current);
            format!("{} was removed", current.display())
        }
    }
}

/// `<parent>/.<name>.<suffix>`: hidden siblings of a run directory (its lock, staging, old run).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn lock_run(path: &Path) -> Result<std::fs::File> {
    let lock_path = sibling(path, "lock");
    if let Some(parent) = lock_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening the lock {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another adahessian process is writing {} (it holds {}); wait for it to finish or choose another --out",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", lock_path.display())),
    }
}

/// Rows, features and an FNV-1a hash of every input and target of both splits: a resumed run must
/// see the same data (a relative path read from another directory may name another file).
pub fn data_fingerprint(data: &Data) -> serde_json::Value {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for ds in std::iter::once(&data.train).chain(data.test.as_ref()) {
        eat(bytemuck::cast_slice(&ds.x));
        eat(bytemuck::cast_slice(&ds.targets.as_f32()));
    }
    serde_json::json!({
        "train_rows": data.train.rows(),
        "test_rows": data.test.as_ref().map_or(0, |t| t.rows()),
        "features": data.train.features,
        "hash": format!("{h:016x}"),
    })
}

/// State restored from a checkpoint.
pub struct Resume {
    pub step: u64,
    /// The optimizer that wrote it (None: a checkpoint written before this was recorded).
    pub optimizer_kind: Option<String>,
    pub theta: Vec<NamedTensor>,
    pub optimizer: OptimizerState,
    pub order: BatchOrderState,
    pub metrics: Vec<Metric>,
    pub seconds: f64,
}

fn weights(net: &Network, gpu: &Gpu) -> Result<Vec<NamedTensor>> {
    Ok(block_on(net.named_params(gpu))?
        .into_iter()
        .map(|(name, shape, values)| NamedTensor { name, shape, values })
        .collect())
}

fn save_checkpoint(
    path: &Path,
    net: &Network,
    gpu: &Gpu,
    opt: &Optimizer,
    order: &BatchOrder,
    step: u64,
    seconds: f64,
) -> Result<()> {
    let mut tensors = weights(net, gpu)?;
    let s = block_on(opt.read_state(gpu))?;
    let p = s.m.len();
    tensors.push(NamedTensor { name: "optimizer.m".into(), shape: vec![p], values: s.m });
    tensors.push(NamedTensor { name: "optimizer.v".into(), shape: vec![p], values: s.v });
    tensors.push(NamedTensor { name: "optimizer.curvature".into(), shape: vec![p], values: s.curvature });
    let o = order.state();
    // the permutation as f32 is exact for fewer than 2^24 rows
    tensors.push(NamedTensor {
        name: "batch_order.permutation".into(),
        shape: vec![o.order.len()],
        values: o.order.iter().map(|&v| v as f32).collect(),
    });
    let meta = HashMap::from([
        ("step".to_string(), step.to_string()),
        ("optimizer.kind".to_string(), opt.config().name().to_string()),
        ("optimizer.t".to_string(), s.t.to_string()),
        ("optimizer.t_curv".to_string(), s.t_curv.to_string()),
        ("batch_order.rng".to_string(), o.rng.to_string()),
        ("batch_order.position".to_string(), o.position.to_string()),
        ("batch_order.epoch".to_string(), o.epoch.to_string()),
        ("seconds".to_string(), seconds.to_string()),
    ]);
    checkpoint::save(path, &tensors, meta)?;
    Ok(())
}

/// Reads a run directory's checkpoint and metrics for `--resume`.
pub fn load_resume(dir: &Path) -> Result<Resume> {
    let path = dir.join("checkpoint.safetensors");
    // every key save_checkpoint writes: anything else means the header was damaged
    const KEYS: [&str; 8] = [
        "step",
        "optimizer.kind",
        "optimizer.t",
        "optimizer.t_curv",
        "batch_order.rng",
        "batch_order.position",
        "batch_order.epoch",
        "seconds",
    ];
    let (mut tensors, meta) = checkpoint::load_strict(&path, &KEYS)
        .with_context(|| format!("--resume {}: no usable checkpoint.safetensors", dir.display()))?;
    let num = |k: &str| -> Result<u64> {
        meta.get(k).and_then(|v| v.parse().ok()).with_context(|| {
            format!("{}: metadata '{k}' is missing or malformed; the checkpoint is corrupted", path.display())
        })
    };
    let mut take = |name: &str| -> Result<Vec<f32>> {
        let i = tensors
            .iter()
            .position(|t| t.name == name)
            .with_context(|| format!("{}: tensor '{name}' is missing; the checkpoint is corrupted", path.display()))?;
        Ok(tensors.remove(i).values)
    };
    let optimizer = OptimizerState {
        t: num("optimizer.t")?,
        t_curv: num("optimizer.t_curv")?,
        m: take("optimizer.m")?,
        v: take("optimizer.v")?,
        curvature: take("optimizer.curvature")?,
    };
    let order = BatchOrderState {
        rng: num("batch_order.rng")?,
        order: take("batch_order.permutation")?.iter().map(|&v| v as u32).collect(),
        position: num("batch_order.position")? as usize,
        epoch: num("batch_order.epoch")?,
    };
    let metrics = read_metrics(&dir.join("metrics.csv")).unwrap_or_default();
    let seconds = meta.get("seconds").and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let optimizer_kind = meta.get("optimizer.kind").cloned();
    Ok(Resume { step: num("step")?, optimizer_kind, theta: tensors, optimizer, order, metrics, seconds })
}

fn read_metrics(path: &Path) -> Result<Vec<Metric>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() < 6 {
            continue;
        }
        let f = |i: usize| c[i].parse::<f64>().unwrap_or(f64::NAN);
        out.push(Metric {
            step: f(0) as u64,
            epoch: f(1),
            train_loss: f(2) as f32,
            test_loss: f(3) as f32,
            test_score: f(4) as f32,
            seconds: f(5),
        });
    }
    Ok(out)
}

fn write_metrics(path: &Path, metrics: &[Metric], score: Score) -> Result<()> {
    let mut text = format!("step,epoch,train_loss,test_loss,{},seconds\n", score.column());
    // an absent value (no test split) is an empty cell, as CSV readers expect, not "NaN"
    let cell = |v: f32| if v.is_nan() { String::new() } else { v.to_string() };
    for m in metrics {
        text.push_str(&format!(
            "{},{:.4},{},{},{},{:.3}\n",
            m.step,
            m.epoch,
            cell(m.train_loss),
            cell(m.test_loss),
            cell(m.test_score),
            m.seconds
        ));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Trains according to `plan`, writing into `dir` when given. A NaN loss stops the run with an
/// error naming the step; the last checkpoint (from the last evaluation) is kept.
pub fn train(
    gpu: &Gpu,
    data: &Data,
    plan: &Plan,
    dir: Option<&RunDir>,
    resume: Option<Resume>,
    quiet: bool,
) -> Result<Outcome> {
    let batch_size = plan.batch_size.min(data.train.rows()).max(1);
    // first-order methods get a network without the curvature buffers (about half the activations)
    let options =
        NetworkOptions { curvature: plan.config.uses_curvature(), ..NetworkOptions::new(batch_size, plan.seed) };
    let net = Network::new(gpu, &plan.spec, options)?;
    let train_data = net.bind(gpu, &DeviceDataset::upload(gpu, &data.train)?)?;
    let test_data = match &data.test {
        Some(t) => Some(net.bind(gpu, &DeviceDataset::upload(gpu, t)?)?),
        None => None,
    };
    let mut opt = Optimizer::new(gpu, &net, plan.config)?;
    let mut order = BatchOrder::new(data.train.rows(), batch_size, plan.seed);
    let mut metrics = Vec::new();
    let mut step = 0u64;
    let mut base_seconds = 0.0;
    if let Some(dir) = dir {
        crate::setup::write_file(&dir.file("model.json"), plan.spec.to_json())?;
    }
    match resume {
        Some(r) => {
            if let Some(kind) = r.optimizer_kind.as_deref().filter(|k| *k != plan.config.name()) {
                bail!(
                    "the checkpoint was written by {kind}, but this run trains with {}; resume it with its own optimizer",
                    plan.config.name()
                );
            }
            for t in &r.theta {
                net.set_tensor(gpu, &t.name, &t.shape, &t.values).context("the checkpoint does not fit this model")?;
            }
            if r.theta.len() != net.model().params.len() {
                bail!("the checkpoint has {} weight tensors, the model {}", r.theta.len(), net.model().params.len());
            }
            opt.write_state(gpu, &r.optimizer)?;
            order.restore(r.order)?;
            step = r.step;
            metrics = r.metrics;
            base_seconds = r.seconds;
            if step >= plan.steps {
                bail!("the run already has {step} steps; ask for more with --steps or --epochs");
            }
        }
        None => {
            if let Some(dir) = dir {
                checkpoint::save(&dir.file("init.safetensors"), &weights(&net, gpu)?, HashMap::new())?;
            }
        }
    }
    let per_epoch = order.batches_per_epoch() as f64;
    let interactive = !quiet && std::io::stderr().is_terminal();
    // a progress bar on a terminal; plain log lines otherwise (files, pipes, CI)
    let bar = if interactive { indicatif::ProgressBar::new(plan.steps) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(step);
    let start = Instant::now();
    let lr0 = plan.config.lr();
    let mut loss_sum = 0.0f64;
    let mut loss_n = 0u32;
    let mut reached = None;
    let mut last_checkpoint = step;
    while step < plan.steps {
        opt.set_lr(lr0 * plan.schedule.factor(step, plan.steps).max(1e-12))?;
        let indices = order.next_batch();
        let report = match block_on(opt.step_with_loss(gpu, &net, &Batch { data: &train_data, indices: &indices })) {
            Ok(r) => r,
            Err(Error::NonFinite { value, step: s, .. }) => {
                let kept = match dir {
                    Some(dir) if dir.file("checkpoint.safetensors").exists() => {
                        format!("the last good checkpoint (step {last_checkpoint}) is kept")
                    }
                    _ => "no checkpoint had been written".into(),
                };
                bail!("the training loss became {value} at step {s}; {kept}. Lower --lr, or add --grad-clip 1.0");
            }
            Err(e) => return Err(e.into()),
        };
        step += 1;
        bar.set_position(step);
        loss_sum += report.batch.loss as f64;
        loss_n += 1;
        let seconds = base_seconds + start.elapsed().as_secs_f64();
        if step.is_multiple_of(plan.eval_every) || step == plan.steps {
            let test = match &test_data {
                Some(t) => Some(block_on(net.evaluate(gpu, t))?),
                None => None,
            };
            let m = Metric {
                step,
                epoch: step as f64 / per_epoch,
                train_loss: (loss_sum / loss_n.max(1) as f64) as f32,
                test_loss: test.map_or(f32::NAN, |t| t.loss),
                test_score: test.map_or(f32::NAN, |t| plan.score.of(&t)),
                seconds,
            };
            loss_sum = 0.0;
            loss_n = 0;
            if let (Some(target), Some(t), None) = (plan.target_accuracy, test, reached) {
                if t.accuracy >= target {
                    reached = Some((step, seconds));
                }
            }
            if interactive {
                bar.set_message(format!(
                    "epoch {:.1}  train loss {:.4}  test loss {:.4}  {} {:.4}",
                    m.epoch,
                    m.train_loss,
                    m.test_loss,
                    plan.score.column(),
                    m.test_score
                ));
            } else if !quiet {
                eprintln!(
                    "step {step}/{} epoch {:.2} train_loss {:.4} test_loss {:.4} {} {:.4} seconds {:.1}",
                    plan.steps,
                    m.epoch,
                    m.train_loss,
                    m.test_loss,
                    plan.score.column(),
                    m.test_score,
                    seconds
                );
            }
            metrics.push(m);
            if let Some(dir) = dir {
                save_checkpoint(&dir.file("checkpoint.safetensors"), &net, gpu, &opt, &order, step, seconds)?;
                write_metrics(&dir.file("metrics.csv"), &metrics, plan.score)?;
                last_checkpoint = step;
                // the new run can now be resumed on its own: it replaces an old one here
                dir.commit()?;
            }
        }
        if let (Some(dir), Some(every)) = (dir, plan.save_every) {
            if step.is_multiple_of(every) {
                checkpoint::save(
                    &dir.file(&format!("step-{step:08}.safetensors")),
                    &weights(&net, gpu)?,
                    HashMap::new(),
                )?;
            }
        }
    }
    bar.finish_and_clear();
    let seconds = base_seconds + start.elapsed().as_secs_f64();
    let train_eval = block_on(net.evaluate(gpu, &train_data))?;
    let test = match &test_data {
        Some(t) => Some(block_on(net.evaluate(gpu, t))?),
        None => None,
    };
    if let Some(dir) = dir {
        checkpoint::save(&dir.file("final.safetensors"), &weights(&net, gpu)?, HashMap::new())?;
        let steps: Vec<f64> = metrics.iter().map(|m| m.step as f64).collect();
        let series = |label: &str, f: &dyn Fn(&Metric) -> f32| Series {
            label: label.into(),
            points: steps.iter().copied().zip(metrics.iter().map(|m| f(m) as f64)).collect(),
        };
        let plots = || -> Result<()> {
            line_chart(
                &dir.file("loss"),
                "Loss",
                "step",
                "loss",
                &[series("train", &|m| m.train_loss), series("test", &|m| m.test_loss)],
                true,
            )?;
            let (title, axis) = match plan.score {
                Score::Accuracy => ("Test accuracy", "accuracy"),
                Score::R2 { .. } => ("Test R² (1 − MSE / variance)", "R²"),
            };
            line_chart(&dir.file("accuracy"), title, "step", axis, &[series("test", &|m| m.test_score)], false)
        };
        // the plots are a view of metrics.csv: failing to draw them (a full disk, say) must not
        // cost the run its summary
        if let Err(e) = plots() {
            eprintln!("warning: the plots were not written ({e:#}); metrics.csv and summary.json are");
        }
    }
    Ok(Outcome {
        metrics,
        test,
        train: train_eval,
        steps: step,
        seconds,
        reached_target: reached,
        params: net.n_params(),
    })
}

/// Writes summary.json.
pub fn write_summary(dir: &RunDir, gpu: &Gpu, plan: &Plan, data: &Data, out: &Outcome, argv: &[String]) -> Result<()> {
    let score = plan.score;
    let summary = serde_json::json!({
        "task": match score { Score::Accuracy => "classify", Score::R2 { .. } => "regress" },
        score.column(): out.test.map(|t| score.of(&t)),
        "test_loss": out.test.map(|t| t.loss),
        "train_loss": out.train.loss,
        "train_accuracy": (score == Score::Accuracy).then_some(out.train.accuracy),
        "steps": out.steps,
        "seconds": out.seconds,
        "adapter": gpu.describe(),
        "parameters": out.params,
        "config": {
            "data": data.name,
            "data_decisions": data.decisions,
            "train_rows": data.train.rows(),
            "test_rows": data.test.as_ref().map_or(0, |t| t.rows()),
            "model": plan.spec.to_text(),
            "optimizer": crate::setup::config_json(&plan.config),
            "batch_size": plan.batch_size,
            "steps": plan.steps,
            "lr_schedule": format!("{:?}", plan.schedule),
            "seed": plan.seed,
            "command": argv,
        },
    });
    let mut f = std::fs::File::create(dir.file("summary.json"))
        .with_context(|| format!("writing {}", dir.file("summary.json").display()))?;
    f.write_all(serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(())
}
