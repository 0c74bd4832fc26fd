//! Running the measurements of a comparison (native only: it trains synchronously). Every method
//! sees the same model, seeds, data splits and batch orders; sweeps use seed 0.

use super::{DepthPoint, DiagonalFit, EarlyPoint, Measured, Memory, NoisePoint, Progress, SeedRun, Setup};
use crate::data::{Dataset, DeviceDataset};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Activation, Layer, ModelSpec, Network, NetworkOptions};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::session::{self, Live, Observer, Outcome, Plan, Quiet, Score};
use crate::train::{time_steps, BatchOrder, Timing};

/// What every measurement of one comparison shares.
struct Bench<'a> {
    gpu: &'a Gpu,
    setup: &'a Setup,
    train: Dataset,
    test: Dataset,
    per_epoch: f64,
}

impl Bench<'_> {
    /// Steps (or an interval) of the headline batch, scaled so every batch size trains for the
    /// same number of epochs.
    fn scaled(&self, n: u64, batch: usize) -> u64 {
        ((n as f64 * self.train.rows().div_ceil(batch) as f64 / self.per_epoch).round() as u64).max(1)
    }

    fn plan(&self, spec: &ModelSpec, config: OptimizerConfig, seed: u64, batch: usize) -> Plan {
        Plan {
            spec: spec.clone(),
            config,
            batch_size: batch,
            steps: self.scaled(self.setup.steps, batch),
            schedule: self.setup.schedule,
            seed,
            eval_every: self.scaled(self.setup.eval_every, batch),
            save_every: None,
            target_accuracy: Some(self.setup.target_accuracy),
            score: Score::Accuracy,
        }
    }

    /// One seed-0 training on the base split (another model, labels or batch); a run whose loss
    /// diverges is an outcome (None), not a failed comparison.
    fn sweep_point(
        &self,
        spec: &ModelSpec,
        config: OptimizerConfig,
        train: &Dataset,
        batch: usize,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Option<Outcome>> {
        let mut ticker = Ticker { inner: &mut Quiet, progress };
        match session::train(self.gpu, train, Some(&self.test), &self.plan(spec, config, 0, batch), None, &mut ticker) {
            Ok(o) => Ok(Some(o)),
            Err(Error::NonFinite { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Passes a training's steps on to the progress display, and everything to `inner`.
struct Ticker<'a, 'p> {
    inner: &'a mut dyn Observer,
    progress: &'a mut dyn FnMut(Progress<'p>),
}

impl Observer for Ticker<'_, '_> {
    fn started(&mut self, live: &Live<'_>) -> Result<()> {
        self.inner.started(live)
    }
    fn stepped(&mut self, step: u64) {
        self.inner.stepped(step);
        (self.progress)(Progress::Step);
    }
    fn evaluated(&mut self, live: &Live<'_>, metrics: &[session::Metric]) -> Result<()> {
        self.inner.evaluated(live, metrics)
    }
    fn snapshot(&mut self, live: &Live<'_>) -> Result<()> {
        self.inner.snapshot(live)
    }
    fn finished(&mut self, live: &Live<'_>) -> Result<()> {
        self.inner.finished(live)
    }
}

/// The trainings and training steps one method's measurements take.
fn planned(b: &Bench<'_>) -> (u64, u64) {
    let s = b.setup;
    let mut runs: Vec<u64> = vec![b.scaled(s.steps, s.batch); s.seeds as usize];
    runs.extend(s.lr_factors.iter().filter(|f| **f != 1.0).map(|_| b.scaled(s.steps, s.batch)));
    runs.extend(
        s.batch_sizes.iter().map(|&x| x.min(b.train.rows())).filter(|&x| x != s.batch).map(|x| b.scaled(s.steps, x)),
    );
    if mlp_shape(&s.spec).is_some() {
        runs.extend(std::iter::repeat_n(b.scaled(s.steps, s.batch), s.depths.len() * s.depth_activations.len()));
    }
    runs.extend(s.label_noise.iter().filter(|n| **n != 0.0).map(|_| b.scaled(s.steps, s.batch)));
    (runs.len() as u64, runs.iter().sum())
}

fn accuracy(o: &Outcome) -> f64 {
    o.test.map_or(f64::NAN, |t| t.accuracy as f64)
}

/// Runs every measurement: for each method, `setup.seeds` seeded runs on `data(seed)` (train and
/// test splits), then on seed 0 the lr, batch, depth and label-noise sweeps, what AdaHessian's
/// estimate tracks, and the time per step and memory of a network and optimizer built for it.
pub fn measure(
    gpu: &Gpu,
    setup: &Setup,
    methods: &[(String, OptimizerConfig)],
    data: &dyn Fn(u64) -> Result<(Dataset, Dataset)>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<Measured>> {
    let (train, test) = data(0)?;
    // before any training: every method's network must fit the device (AdaHessian's, with its
    // curvature buffers, is the largest), or a long comparison fails at its last method
    for (name, config) in methods {
        let options = NetworkOptions { curvature: config.uses_curvature(), ..NetworkOptions::new(setup.batch, 0) };
        Network::new(gpu, &setup.spec, options).map_err(|e| Error::Config(format!("{name}: {e}")))?;
    }
    let per_epoch = train.rows().div_ceil(setup.batch) as f64;
    let bench = Bench { gpu, setup, train, test, per_epoch };
    methods.iter().map(|(name, config)| measure_method(&bench, name, *config, data, progress)).collect()
}

fn measure_method(
    b: &Bench<'_>,
    name: &str,
    config: OptimizerConfig,
    data: &dyn Fn(u64) -> Result<(Dataset, Dataset)>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Measured> {
    let setup = b.setup;
    let (trainings, steps) = planned(b);
    progress(Progress::Method { name, trainings, steps });
    let mut seeds = Vec::new();
    let mut diagonal = None;
    for seed in 0..setup.seeds {
        let (train, test) = data(seed)?;
        // the seed also draws the probes
        let mut c = config;
        if c.has_setting("seed") {
            c.set("seed", &seed.to_string())?;
        }
        let mut probe =
            DiagonalProbe { data: &train, samples: setup.diagonal_samples, bn_mode: setup.bn_mode, fit: None };
        let observer: &mut dyn Observer = if seed == 0 { &mut probe } else { &mut Quiet };
        let plan = b.plan(&setup.spec, c, seed, setup.batch);
        let o = session::train(b.gpu, &train, Some(&test), &plan, None, &mut Ticker { inner: observer, progress })?;
        if seed == 0 {
            diagonal = probe.fit.take();
        }
        let early = setup
            .early_fractions
            .iter()
            .filter_map(|&f| {
                let at = (f * plan.steps as f64).ceil() as u64;
                o.metrics.iter().find(|m| m.step >= at).map(|m| EarlyPoint {
                    fraction: f,
                    step: m.step,
                    test_accuracy: m.test_score as f64,
                    test_loss: m.test_loss as f64,
                })
            })
            .collect();
        seeds.push(SeedRun {
            seed,
            test_accuracy: accuracy(&o),
            train_accuracy: o.train.accuracy as f64,
            reached_target: o.reached_target,
            early,
            metrics: o.metrics,
        });
        progress(Progress::Training);
    }
    let mut point = |spec: &ModelSpec, c: OptimizerConfig, train: &Dataset, batch: usize| {
        let o = b.sweep_point(spec, c, train, batch, progress);
        progress(Progress::Training);
        o
    };
    let mut lr_sweep = Vec::new();
    for &f in &setup.lr_factors {
        let acc = if f == 1.0 {
            seeds[0].test_accuracy
        } else {
            let c = config.with_lr((config.lr() as f64 * f) as f32);
            point(&setup.spec, c, &b.train, setup.batch)?.map_or(f64::NAN, |o| accuracy(&o))
        };
        lr_sweep.push((f, acc));
    }
    let mut batch_sweep = Vec::new();
    for &batch in &setup.batch_sizes {
        let batch = batch.min(b.train.rows());
        let acc = if batch == setup.batch {
            seeds[0].test_accuracy
        } else {
            point(&setup.spec, config, &b.train, batch)?.map_or(f64::NAN, |o| accuracy(&o))
        };
        batch_sweep.push((batch, acc));
    }
    let mut depth_sweep = Vec::new();
    if let Some((features, width, classes)) = mlp_shape(&setup.spec) {
        let chance = 1.0 / classes.max(1) as f64;
        for act in &setup.depth_activations {
            let activation = Activation::parse(act)
                .ok_or_else(|| Error::Config(format!("depth sweep: unknown activation {act}")))?;
            for &depth in &setup.depths {
                let widths: Vec<usize> =
                    std::iter::once(features).chain(std::iter::repeat_n(width, depth)).chain([classes]).collect();
                let spec = ModelSpec::mlp(&widths, activation, setup.spec.loss);
                let o = point(&spec, config, &b.train, setup.batch)?;
                depth_sweep.push(DepthPoint {
                    activation: act.clone(),
                    depth,
                    test_accuracy: o.as_ref().map_or(f64::NAN, accuracy),
                    steps_to_target: o.as_ref().and_then(|o| o.reached_target.map(|r| r.0)),
                    outcome: match &o {
                        None => "diverged",
                        Some(o) if accuracy(o) < chance + 0.05 => "stalled",
                        Some(_) => "trained",
                    },
                });
            }
        }
    }
    let mut noise_sweep = Vec::new();
    for &noise in &setup.label_noise {
        let o = if noise == 0.0 {
            None
        } else {
            let noisy = b.train.with_label_noise(noise, 0)?;
            Some(point(&setup.spec, config, &noisy, setup.batch)?)
        };
        let (test_accuracy, train_accuracy) = match o {
            None => (seeds[0].test_accuracy, seeds[0].train_accuracy),
            Some(None) => (f64::NAN, f64::NAN),
            Some(Some(o)) => (accuracy(&o), o.train.accuracy as f64),
        };
        noise_sweep.push(NoisePoint { noise, test_accuracy, train_accuracy });
    }
    let (ms_per_step, memory) = time_and_memory(b, config)?;
    progress(Progress::Done { name, ms_per_step });
    Ok(Measured {
        name: name.to_string(),
        config: config.to_text(),
        settings: config.settings_json(),
        seeds,
        ms_per_step,
        memory,
        lr_sweep,
        batch_sweep,
        depth_sweep,
        noise_sweep,
        diagonal,
    })
}

/// Median ms per step, measured apart from training (no loss readback, no evaluation), and the
/// GPU bytes of the network and optimizer built for the method.
fn time_and_memory(b: &Bench<'_>, config: OptimizerConfig) -> Result<(f64, Memory)> {
    let options = NetworkOptions { curvature: config.uses_curvature(), ..NetworkOptions::new(b.setup.batch, 0) };
    let net = Network::new(b.gpu, &b.setup.spec, options)?;
    let bound = net.bind(b.gpu, &DeviceDataset::upload(b.gpu, &b.train)?)?;
    let mut opt = Optimizer::new(b.gpu, &net, config)?;
    let mut order = BatchOrder::new(bound.rows, b.setup.batch, 0);
    let ms = time_steps(b.gpu, &net, &mut opt, &bound, &mut order, Timing { warmup: 5, reps: 5, steps: 20 })?;
    let m = net.memory();
    let memory = Memory {
        params_and_grads: m.params + m.grads,
        state: opt.memory_bytes() + m.probe_and_hz,
        activations: m.values + m.tangents + m.cotangents + m.scratch + m.padding,
    };
    Ok((ms, memory))
}

/// (features, hidden width, classes) of a plain MLP (dense layers and activations only, the
/// first hidden width taken as the width): the depth sweep varies its number of hidden layers.
pub fn mlp_shape(spec: &ModelSpec) -> Option<(usize, usize, usize)> {
    if spec.input.len() != 1 || !spec.layers.iter().all(|l| matches!(l, Layer::Dense { .. } | Layer::Activation(_))) {
        return None;
    }
    let outs: Vec<usize> =
        spec.layers.iter().filter_map(|l| if let Layer::Dense { out, .. } = l { Some(*out) } else { None }).collect();
    (outs.len() >= 2).then(|| (spec.input[0], outs[0], *outs.last().unwrap_or(&0)))
}

/// At the end of AdaHessian's seed-0 run: its √v̂ against the exact Hessian's diagonal |H_ii| and
/// row norms ‖H_i,:‖ at the final weights, on `samples` parameters drawn at random (one H e_i
/// each, over the first 256 training rows).
struct DiagonalProbe<'a> {
    data: &'a Dataset,
    samples: usize,
    bn_mode: crate::nn::BnMode,
    fit: Option<DiagonalFit>,
}

impl Observer for DiagonalProbe<'_> {
    fn finished(&mut self, live: &Live<'_>) -> Result<()> {
        let OptimizerConfig::AdaHessian(c) = *live.opt.config() else { return Ok(()) };
        if self.samples == 0 {
            return Ok(());
        }
        let (gpu, net) = (live.gpu, live.net);
        let bound = net.bind(gpu, &DeviceDataset::upload(gpu, self.data)?)?;
        net.set_bn_mode(self.bn_mode);
        let op = crate::curvature::HessianOperator::new(gpu, net, &bound, Some(256))?;
        let state = crate::block_on(live.opt.read_state(gpu))?;
        let bias = 1.0 - (c.betas.1 as f64).powi(c.v_updates(state.t, state.t_curv) as i32);
        let p = net.n_params();
        let mut rng = crate::probe::SplitMix64::new(0xD1A6);
        let mut index: Vec<usize> = (0..p).collect();
        rng.shuffle(&mut index);
        index.truncate(self.samples.min(p));
        let (mut est, mut diag, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &index {
            let mut e = vec![0.0; p];
            e[i] = 1.0;
            let column = crate::block_on(op.apply(&e))?;
            est.push((state.v[i] as f64 / bias).sqrt());
            diag.push(column[i].abs());
            rows.push(column.iter().map(|x| x * x).sum::<f64>().sqrt());
        }
        self.fit = Some(DiagonalFit {
            samples: index.len(),
            rho_diagonal: spearman(&est, &diag),
            rho_row_norm: spearman(&est, &rows),
            // over parameters with a nonzero diagonal (a dead unit's row is all zeros: no ratio)
            median_row_norm_over_diagonal: median(
                rows.iter().zip(&diag).filter(|(_, d)| **d > 0.0).map(|(r, d)| r / d).collect(),
            ),
            z_stderr: (1.06 / (index.len() as f64 - 3.0).max(1.0)).sqrt(),
            hvps: op.hvps(),
        });
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut k = 0;
        while k < order.len() {
            let mut end = k;
            while end + 1 < order.len() && v[order[end + 1]] == v[order[k]] {
                end += 1;
            }
            for &i in &order[k..=end] {
                r[i] = (k + end) as f64 / 2.0;
            }
            k = end + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
