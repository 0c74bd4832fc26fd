//! A training run as the library runs it: its [`Plan`], the loop ([`train`]), what it measures
//! ([`Metric`], [`Outcome`]) and its resumable [`RunState`] (weights, optimizer state, batch order,
//! step), which owns the checkpoint schema. The command line only chooses the plan, watches the
//! loop through an [`Observer`] (progress, files) and prints.

use crate::checkpoint::{self, NamedTensor};
use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Evaluation, ModelSpec, Network};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::train::{BatchOrder, BatchOrderState};
use std::collections::HashMap;

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The method's lr throughout.
    Constant,
    /// ×0.1 at 50% and again at 75% of the steps.
    Step,
    /// lr · ½ (1 + cos(π t / T)).
    Cosine,
}

impl Schedule {
    /// `constant`, `step` or `cosine`.
    pub fn parse(s: &str) -> Result<Schedule> {
        Ok(match s {
            "constant" => Schedule::Constant,
            "step" => Schedule::Step,
            "cosine" => Schedule::Cosine,
            other => return Err(Error::Config(format!("--lr-schedule {other}: use constant, step or cosine"))),
        })
    }

    /// The factor on the learning rate at `step` of `total`.
    pub fn factor(self, step: u64, total: u64) -> f32 {
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

    /// The learning rate of step `step` (from 0) of a schedule over `total` steps starting at
    /// `base`: past the end it holds the last step's value, and it never reaches 0 (the cosine
    /// ends at 0, which an optimizer refuses).
    pub fn lr_at(self, base: f32, step: u64, total: u64) -> f32 {
        base * self.factor(step.min(total.saturating_sub(1)), total).max(1e-12)
    }
}

/// Everything a run needs besides the data.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The architecture.
    pub spec: ModelSpec,
    /// The optimizer.
    pub config: OptimizerConfig,
    /// Rows per step (capped at the training rows).
    pub batch_size: usize,
    /// Steps of the whole run (a resumed run continues to this).
    pub steps: u64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the initialisation and the batch order.
    pub seed: u64,
    /// Evaluate (and checkpoint) every this many steps, and at the end.
    pub eval_every: u64,
    /// Keep a numbered snapshot of the weights every this many steps (for trajectories).
    pub save_every: Option<u64>,
    /// Record when test accuracy first reaches this.
    pub target_accuracy: Option<f32>,
    /// What the test column measures: accuracy, or R² for regression.
    pub score: Score,
}

/// The test score a run logs: accuracy for class labels; for real-valued targets the coefficient
/// of determination R² = 1 − MSE / Var(targets), with Var taken over the scored split's targets
/// the way the MSE loss is averaged (over rows and outputs, each output about its own mean).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Score {
    /// Fraction of rows whose argmax is the label.
    Accuracy,
    /// 1 − MSE / variance.
    R2 {
        /// The targets' variance.
        variance: f32,
    },
}

impl Score {
    /// The score that fits a split's targets.
    pub fn for_split(ds: &Dataset) -> Score {
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

/// One evaluation: a line of metrics.csv.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metric {
    /// Steps taken.
    pub step: u64,
    /// Epochs (fractional).
    pub epoch: f64,
    /// Mean batch loss since the last evaluation (NaN: none).
    pub train_loss: f32,
    /// Test loss (NaN: no test split).
    pub test_loss: f32,
    /// [`Score`]: accuracy, or R² for regression (NaN: no test split).
    pub test_score: f32,
    /// Training seconds so far, resumed runs included.
    pub seconds: f64,
}

impl Metric {
    /// metrics.csv: `step,epoch,train_loss,test_loss,<score column>,seconds`; an absent value
    /// (no test split) is an empty cell, as CSV readers expect, not "NaN".
    pub fn csv(metrics: &[Metric], score: Score) -> String {
        let mut text = format!("step,epoch,train_loss,test_loss,{},seconds\n", score.column());
        let cell = |v: f32| if v.is_nan() { String::new() } else { v.to_string() };
        for m in metrics {
            let (train, test, score) = (cell(m.train_loss), cell(m.test_loss), cell(m.test_score));
            text.push_str(&format!("{},{:.4},{train},{test},{score},{:.3}\n", m.step, m.epoch, m.seconds));
        }
        text
    }

    /// Reads [`Metric::csv`]'s text back (empty cells as NaN; short lines skipped).
    pub fn parse_csv(text: &str) -> Vec<Metric> {
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
        out
    }
}

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every evaluation.
    pub metrics: Vec<Metric>,
    /// The final test evaluation.
    pub test: Option<Evaluation>,
    /// The final evaluation on the whole training split.
    pub train: Evaluation,
    /// Steps taken.
    pub steps: u64,
    /// Training seconds.
    pub seconds: f64,
    /// (step, seconds) when test accuracy first reached the target.
    pub reached_target: Option<(u64, f64)>,
    /// Parameters of the model.
    pub params: usize,
}

/// Everything needed to continue a run exactly where it stopped: the weights, the optimizer's
/// state and counters, the batch order and the step. Saved as one safetensors checkpoint whose
/// tensor names and metadata keys are fixed here (and read back strictly).
#[derive(Clone, Debug)]
pub struct RunState {
    /// Steps taken.
    pub step: u64,
    /// Training seconds so far.
    pub seconds: f64,
    /// The weights, named as PyTorch's `nn.Sequential`.
    pub theta: Vec<NamedTensor>,
    /// The optimizer's moments, kept estimate and counters.
    pub optimizer: OptimizerState,
    /// The name of the method that wrote it (None in checkpoints from before it was recorded).
    pub optimizer_kind: Option<String>,
    /// The batch order's generator, permutation and position.
    pub order: BatchOrderState,
}

/// Every metadata key a checkpoint has: anything else means the header was damaged.
const CHECKPOINT_KEYS: [&str; 8] = [
    "step",
    "optimizer.kind",
    "optimizer.t",
    "optimizer.t_curv",
    "batch_order.rng",
    "batch_order.position",
    "batch_order.epoch",
    "seconds",
];

impl RunState {
    /// Reads the state of a live run from the GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn capture(
        gpu: &Gpu,
        net: &Network,
        opt: &Optimizer,
        order: &BatchOrder,
        step: u64,
        seconds: f64,
    ) -> Result<RunState> {
        Ok(RunState {
            step,
            seconds,
            theta: weights(gpu, net)?,
            optimizer: crate::block_on(opt.read_state(gpu))?,
            optimizer_kind: Some(opt.config().name().to_string()),
            order: order.state(),
        })
    }

    /// Writes the checkpoint (atomically).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let mut tensors = self.theta.clone();
        let s = &self.optimizer;
        let p = s.m.len();
        for (name, values) in [("optimizer.m", &s.m), ("optimizer.v", &s.v), ("optimizer.curvature", &s.curvature)] {
            tensors.push(NamedTensor { name: name.into(), shape: vec![p], values: values.clone() });
        }
        // the permutation as f32 is exact for fewer than 2^24 rows
        let o = &self.order;
        tensors.push(NamedTensor {
            name: "batch_order.permutation".into(),
            shape: vec![o.order.len()],
            values: o.order.iter().map(|&v| v as f32).collect(),
        });
        let meta = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("optimizer.kind".to_string(), self.optimizer_kind.clone().unwrap_or_default()),
            ("optimizer.t".to_string(), s.t.to_string()),
            ("optimizer.t_curv".to_string(), s.t_curv.to_string()),
            ("batch_order.rng".to_string(), o.rng.to_string()),
            ("batch_order.position".to_string(), o.position.to_string()),
            ("batch_order.epoch".to_string(), o.epoch.to_string()),
            ("seconds".to_string(), self.seconds.to_string()),
        ]);
        checkpoint::save(path, &tensors, meta)
    }

    /// Reads a checkpoint written by [`RunState::save`]; a damaged one is an error naming the
    /// file and what is wrong.
    pub fn load(path: &std::path::Path) -> Result<RunState> {
        let (mut tensors, meta) = checkpoint::load_strict(path, &CHECKPOINT_KEYS)?;
        let corrupted = |what: String| Error::Data(format!("{}: {what}; the checkpoint is corrupted", path.display()));
        let num = |k: &str| -> Result<u64> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| corrupted(format!("metadata '{k}' is missing or malformed")))
        };
        let mut take = |name: &str| -> Result<Vec<f32>> {
            let i = tensors
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| corrupted(format!("tensor '{name}' is missing")))?;
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
        Ok(RunState {
            step: num("step")?,
            seconds: meta.get("seconds").and_then(|v| v.parse().ok()).unwrap_or(0.0),
            theta: tensors,
            optimizer,
            optimizer_kind: meta.get("optimizer.kind").filter(|k| !k.is_empty()).cloned(),
            order,
        })
    }

    /// Puts the state into a network, optimizer and batch order built for the same run; refuses
    /// another method's state and weights that do not fit the model.
    pub fn restore(&self, gpu: &Gpu, net: &Network, opt: &mut Optimizer, order: &mut BatchOrder) -> Result<()> {
        if let Some(kind) = self.optimizer_kind.as_deref().filter(|k| *k != opt.config().name()) {
            return Err(Error::Config(format!(
                "the checkpoint was written by {kind}, but this run trains with {}; resume it with its own optimizer",
                opt.config().name()
            )));
        }
        for t in &self.theta {
            net.set_tensor(gpu, &t.name, &t.shape, &t.values)
                .map_err(|e| Error::Shape(format!("the checkpoint does not fit this model: {e}")))?;
        }
        // every parameter and every BatchNorm buffer (3 per layer)
        let expected = net.model().params.len() + 3 * net.model().running.len();
        if self.theta.len() != expected {
            return Err(Error::Shape(format!(
                "the checkpoint has {} weight tensors, the model {expected}",
                self.theta.len()
            )));
        }
        opt.write_state(gpu, &self.optimizer)?;
        order.restore(self.order.clone())
    }
}

/// The weights of a network as named tensors.
#[cfg(not(target_arch = "wasm32"))]
pub fn weights(gpu: &Gpu, net: &Network) -> Result<Vec<NamedTensor>> {
    crate::block_on(named_weights(gpu, net))
}

/// [`weights`] without blocking (the browser cannot block on a readback).
/// The whole state_dict: parameters, then BatchNorm's buffers (running statistics).
pub async fn named_weights(gpu: &Gpu, net: &Network) -> Result<Vec<NamedTensor>> {
    let buffers = net.named_buffers(gpu).await?;
    Ok(net
        .named_params(gpu)
        .await?
        .into_iter()
        .chain(buffers)
        .map(|(name, shape, values)| NamedTensor { name, shape, values })
        .collect())
}

/// A running training loop, as its [`Observer`] sees it.
pub struct Live<'a> {
    /// The device.
    pub gpu: &'a Gpu,
    /// The network.
    pub net: &'a Network,
    /// The optimizer.
    pub opt: &'a Optimizer,
    /// The batch order.
    pub order: &'a BatchOrder,
    /// Steps taken.
    pub step: u64,
    /// Training seconds so far.
    pub seconds: f64,
}

#[cfg(not(target_arch = "wasm32"))]
impl Live<'_> {
    /// The resumable state now.
    pub fn state(&self) -> Result<RunState> {
        RunState::capture(self.gpu, self.net, self.opt, self.order, self.step, self.seconds)
    }

    /// The weights now.
    pub fn weights(&self) -> Result<Vec<NamedTensor>> {
        weights(self.gpu, self.net)
    }
}

/// What the caller of [`train`] sees of the loop. Every method has a default that does nothing.
pub trait Observer {
    /// Before the first step of a new run (not a resumed one).
    fn started(&mut self, _live: &Live<'_>) -> Result<()> {
        Ok(())
    }
    /// After every step.
    fn stepped(&mut self, _step: u64) {}
    /// After every step: whether to stop there. The loop then returns
    /// [`Error::Interrupted`], leaving the run as its last checkpoint left it.
    fn interrupted(&mut self) -> bool {
        false
    }
    /// After every evaluation, with every metric so far (the last is new).
    fn evaluated(&mut self, _live: &Live<'_>, _metrics: &[Metric]) -> Result<()> {
        Ok(())
    }
    /// Every `save_every` steps.
    fn snapshot(&mut self, _live: &Live<'_>) -> Result<()> {
        Ok(())
    }
    /// After the last step, before the final evaluation.
    fn finished(&mut self, _live: &Live<'_>) -> Result<()> {
        Ok(())
    }
}

/// An observer that does nothing (sweeps, benchmarks).
pub struct Quiet;

impl Observer for Quiet {}

/// Trains according to `plan` on `train` (evaluating on `test`), from a fresh start or from
/// `resume` (its state and the metrics logged so far). A NaN or infinite batch loss stops the run
/// with [`Error::NonFinite`] naming the step.
#[cfg(not(target_arch = "wasm32"))]
pub fn train(
    gpu: &Gpu,
    train: &Dataset,
    test: Option<&Dataset>,
    plan: &Plan,
    resume: Option<(RunState, Vec<Metric>)>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    use crate::data::DeviceDataset;
    use crate::nn::{Batch, NetworkOptions};
    let batch_size = plan.batch_size.min(train.rows()).max(1);
    // first-order methods get a network without the curvature buffers (about half the activations)
    let options =
        NetworkOptions { curvature: plan.config.uses_curvature(), ..NetworkOptions::new(batch_size, plan.seed) };
    let net = Network::new(gpu, &plan.spec, options)?;
    let train_data = net.bind(gpu, &DeviceDataset::upload(gpu, train)?)?;
    let test_data = match test {
        Some(t) => Some(net.bind(gpu, &DeviceDataset::upload(gpu, t)?)?),
        None => None,
    };
    let mut opt = Optimizer::new(gpu, &net, plan.config)?;
    let mut order = BatchOrder::new(train.rows(), batch_size, plan.seed);
    let (mut step, mut metrics, base_seconds) = match resume {
        Some((state, metrics)) => {
            state.restore(gpu, &net, &mut opt, &mut order)?;
            if state.step >= plan.steps {
                return Err(Error::Config(format!(
                    "the run already has {} steps; ask for more with --steps or --epochs",
                    state.step
                )));
            }
            (state.step, metrics, state.seconds)
        }
        None => {
            observer.started(&Live { gpu, net: &net, opt: &opt, order: &order, step: 0, seconds: 0.0 })?;
            (0, Vec::new(), 0.0)
        }
    };
    let per_epoch = order.batches_per_epoch() as f64;
    let start = std::time::Instant::now();
    let lr0 = plan.config.lr();
    let (mut loss_sum, mut loss_n) = (0.0f64, 0u32);
    let mut reached = None;
    while step < plan.steps {
        opt.set_lr(plan.schedule.lr_at(lr0, step, plan.steps))?;
        let indices = order.next_batch();
        let report = crate::block_on(opt.step_with_loss(gpu, &net, &Batch { data: &train_data, indices: &indices }))?;
        step += 1;
        observer.stepped(step);
        if observer.interrupted() {
            return Err(Error::Interrupted { step });
        }
        loss_sum += report.batch.loss as f64;
        loss_n += 1;
        let seconds = base_seconds + start.elapsed().as_secs_f64();
        if step.is_multiple_of(plan.eval_every) || step == plan.steps {
            let test = match &test_data {
                Some(t) => Some(crate::block_on(net.evaluate(gpu, t))?),
                None => None,
            };
            metrics.push(Metric {
                step,
                epoch: step as f64 / per_epoch,
                train_loss: (loss_sum / loss_n.max(1) as f64) as f32,
                test_loss: test.map_or(f32::NAN, |t| t.loss),
                test_score: test.map_or(f32::NAN, |t| plan.score.of(&t)),
                seconds,
            });
            (loss_sum, loss_n) = (0.0, 0);
            if let (Some(target), Some(t), None) = (plan.target_accuracy, test, reached) {
                if t.accuracy >= target {
                    reached = Some((step, seconds));
                }
            }
            observer.evaluated(&Live { gpu, net: &net, opt: &opt, order: &order, step, seconds }, &metrics)?;
        }
        if plan.save_every.is_some_and(|every| step.is_multiple_of(every)) {
            observer.snapshot(&Live { gpu, net: &net, opt: &opt, order: &order, step, seconds })?;
        }
    }
    let seconds = base_seconds + start.elapsed().as_secs_f64();
    observer.finished(&Live { gpu, net: &net, opt: &opt, order: &order, step, seconds })?;
    let train_eval = crate::block_on(net.evaluate(gpu, &train_data))?;
    let test = match &test_data {
        Some(t) => Some(crate::block_on(net.evaluate(gpu, t))?),
        None => None,
    };
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

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn a_schedule_holds_its_last_lr_past_the_end_and_never_reaches_zero() {
        for s in [Schedule::Constant, Schedule::Step, Schedule::Cosine] {
            let last = s.lr_at(0.1, 99, 100);
            assert!(last > 0.0, "{s:?}");
            for step in [100, 101, 10_000] {
                assert_eq!(s.lr_at(0.1, step, 100), last, "{s:?} at step {step}");
            }
            assert_eq!(s.lr_at(0.1, 0, 100), 0.1, "{s:?} starts at the base lr");
        }
        assert!(Schedule::Cosine.lr_at(0.1, 99, 100) < 1e-4);
        assert_eq!(Schedule::Step.lr_at(0.1, 60, 100), 0.1 * 0.1);
    }
}
