//! Optimizers as GPU kernels over the flat parameter arena, and the training step that records
//! forward, backward, the Hessian-vector products and the update into ONE submit.

mod config;
pub mod reference;

pub use config::{AdaHessianConfig, AdamConfig, OptimizerConfig, SgdConfig, SophiaHConfig};

use crate::error::{Error, Result};
use crate::gpu::meta::{stat, SliceMeta, StepMeta, STEP_DECOUPLED, STEP_NESTEROV};
use crate::gpu::{dispatch, read_f32, storage_buffer, uniform_buffer, BindLayout, Gpu, Kernel, UniformArena};
use crate::nn::network::Arenas;
use crate::nn::Phase;
use crate::nn::{Batch, Evaluation, Network};
use crate::probe::ProbeKind;
use crate::surface::Surface;

/// What one step reports when its loss is read back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The optimizer step just taken (from 1).
    pub step: u64,
    /// Mean loss and accuracy of the batch, at the parameters before the step.
    pub batch: Evaluation,
}

/// An optimizer bound to one network: its state arenas, per-step uniforms and bind groups.
pub struct Optimizer {
    config: OptimizerConfig,
    lr: f32,
    t: u64,
    t_curv: u64,
    curv: wgpu::Buffer,
    state: wgpu::Buffer,
    step_meta: wgpu::Buffer,
    _slices: UniformArena,
    /// groups[s] covers the whole arena with probe sample s; then one per averaged tensor
    groups: Vec<wgpu::BindGroup>,
    /// (bind group, number of groups averaged) for each tensor whose curvature is averaged
    group_means: Vec<(usize, u32)>,
    n_params: u32,
    /// floats allocated for m (and v)
    state_len: usize,
    /// floats allocated for the kept curvature estimate (0: not kept)
    curv_len: usize,
}

impl Optimizer {
    /// Validates the configuration and allocates the optimizer state for `net`.
    pub fn new(gpu: &Gpu, net: &Network, config: OptimizerConfig) -> Result<Optimizer> {
        if config.uses_curvature() {
            net.require_curvature(config.name())?;
        }
        let groups = match config {
            OptimizerConfig::AdaHessian(c) => c.averaging_groups(net.model()),
            _ => Vec::new(),
        };
        Optimizer::over(gpu, &net.arenas, net.n_params(), groups, config)
    }

    /// An optimizer for a point on a 2-D surface (the optimizer race).
    pub fn for_surface(gpu: &Gpu, surface: &Surface, config: OptimizerConfig) -> Result<Optimizer> {
        Optimizer::over(gpu, &surface.arenas, 2, Vec::new(), config)
    }

    /// The optimizer over any arenas of `p` parameters; `averaging` lists the (offset, length,
    /// group length) slices whose curvature AdaHessian replaces by group means.
    fn over(
        gpu: &Gpu,
        a: &Arenas,
        p: usize,
        averaging: Vec<(usize, usize, usize)>,
        config: OptimizerConfig,
    ) -> Result<Optimizer> {
        config.validate()?;
        let n_params = p as u32;
        let (n_samples, seed) = match config {
            OptimizerConfig::AdaHessian(c) => (c.n_samples, c.seed),
            OptimizerConfig::SophiaH(c) => (c.n_samples, c.seed),
            _ => (1, 0),
        };
        let whole = |sample: u32| SliceMeta {
            off: 0,
            len: n_params,
            group_len: 1,
            n_params,
            sample,
            n_samples,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
        };
        let mut slices: Vec<SliceMeta> = (0..n_samples).map(whole).collect();
        let mut group_means = Vec::new();
        for (off, len, group_len) in averaging {
            group_means.push((slices.len(), (len / group_len) as u32));
            slices.push(SliceMeta { off: off as u32, len: len as u32, group_len: group_len as u32, ..whole(0) });
        }
        // state by need: SGD without momentum keeps nothing, with momentum one buffer, Adam and the
        // curvature methods m and v; the estimate D is kept only where it is accumulated over
        // probes or averaged (AdaHessian otherwise forms it inside its update) and for Sophia-H
        let state_len = match config {
            OptimizerConfig::Sgd(c) if c.momentum == 0.0 => 0,
            OptimizerConfig::Sgd(_) => p,
            _ => 2 * p,
        };
        let keeps_estimate = match config {
            OptimizerConfig::AdaHessian(c) => c.n_samples > 1 || !group_means.is_empty(),
            OptimizerConfig::SophiaH(_) => true,
            _ => false,
        };
        let curv_len = if keeps_estimate { p } else { 0 };
        // a binding cannot be empty: an unused buffer is one float that no kernel touches
        let curv = storage_buffer(gpu, "curvature estimate", curv_len.max(1))?;
        let state = storage_buffer(gpu, "optimizer state (m, v)", state_len.max(1))?;
        let step_meta = uniform_buffer(gpu, "step meta", &StepMeta::default());
        let uniforms = UniformArena::new(gpu, "slice metas", &slices);
        let groups = (0..slices.len())
            .map(|slot| {
                let b = |binding: u32, resource| wgpu::BindGroupEntry { binding, resource };
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("optim"),
                    layout: gpu.pipelines().layout(BindLayout::Optim),
                    entries: &[
                        b(0, uniforms.binding(slot)),
                        b(1, step_meta.as_entire_binding()),
                        b(2, a.theta.as_entire_binding()),
                        b(3, a.g_theta.as_entire_binding()),
                        b(4, a.z.as_entire_binding()),
                        b(5, a.r_theta.as_entire_binding()),
                        b(6, curv.as_entire_binding()),
                        b(7, state.as_entire_binding()),
                        b(8, a.stats.as_entire_binding()),
                    ],
                })
            })
            .collect();
        gpu.check()?;
        Ok(Optimizer {
            config,
            lr: config.lr(),
            t: 0,
            t_curv: 0,
            curv,
            state,
            step_meta,
            _slices: uniforms,
            groups,
            group_means,
            n_params,
            state_len,
            curv_len,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Curvature estimates computed so far.
    pub fn curvature_updates(&self) -> u64 {
        self.t_curv
    }

    /// The learning rate used by the next step.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Changes the learning rate (for schedules); takes effect at the next step.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Config(format!("lr = {lr} must be a finite number > 0")));
        }
        self.lr = lr;
        Ok(())
    }

    /// Zeroes the moments and the curvature estimate and restarts the step count.
    pub fn reset(&mut self, gpu: &Gpu) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(&self.state, 0, None);
        encoder.clear_buffer(&self.curv, 0, None);
        gpu.queue.submit(Some(encoder.finish()));
        self.t = 0;
        self.t_curv = 0;
    }

    /// The optimizer state: (counters t, t_curv; m; v (or Sophia's h); the last curvature estimate).
    /// Parts a method does not keep read as zeros (the checkpoint layout is the same for all).
    pub async fn read_state(&self, gpu: &Gpu) -> Result<OptimizerState> {
        let p = self.n_params as usize;
        let mut mv = if self.state_len > 0 { read_f32(gpu, &self.state, 0, self.state_len).await? } else { Vec::new() };
        mv.resize(2 * p, 0.0);
        let curv = if self.curv_len > 0 { read_f32(gpu, &self.curv, 0, p).await? } else { vec![0.0; p] };
        Ok(OptimizerState { t: self.t, t_curv: self.t_curv, m: mv[..p].to_vec(), v: mv[p..].to_vec(), curvature: curv })
    }

    /// GPU bytes of the optimizer's own state (moments and kept curvature estimate).
    pub fn memory_bytes(&self) -> u64 {
        4 * (self.state_len + self.curv_len) as u64
    }

    /// Restores a state read with [`Optimizer::read_state`] (resume from a checkpoint).
    pub fn write_state(&mut self, gpu: &Gpu, s: &OptimizerState) -> Result<()> {
        let p = self.n_params as usize;
        if s.m.len() != p || s.v.len() != p || s.curvature.len() != p {
            return Err(Error::Shape(format!("optimizer state is for a different model (expected {p} parameters)")));
        }
        if self.state_len >= p {
            gpu.queue.write_buffer(&self.state, 0, bytemuck::cast_slice(&s.m));
        }
        if self.state_len >= 2 * p {
            gpu.queue.write_buffer(&self.state, (p * 4) as u64, bytemuck::cast_slice(&s.v));
        }
        if self.curv_len > 0 {
            gpu.queue.write_buffer(&self.curv, 0, bytemuck::cast_slice(&s.curvature));
        }
        self.t = s.t;
        self.t_curv = s.t_curv;
        Ok(())
    }

    /// One training step on a batch: forward, backward, (probes, Hz, curvature), update — one
    /// submit, nothing read back.
    pub fn step(&mut self, gpu: &Gpu, net: &Network, batch: &Batch<'_>) -> Result<()> {
        let rows = net.prepare(gpu, batch)?;
        self.record(gpu, |pass, phase| match phase {
            Phase::Forward | Phase::ForwardTangent => {
                net.encode_gather(gpu, pass, batch.data, rows);
                net.encode(gpu, pass, phase, rows);
                net.encode_reduce(gpu, pass, false);
            }
            _ => net.encode(gpu, pass, phase, rows),
        })
    }

    /// One step of the point on a surface (gradient and H z from its analytic kernels).
    pub fn step_surface(&mut self, gpu: &Gpu, surface: &Surface) -> Result<()> {
        self.record(gpu, |pass, phase| surface.encode(gpu, pass, phase))
    }

    /// Records a whole step into one submit; `encode` records one phase of the objective
    /// (Forward also leaves the loss in the stats).
    fn record(&mut self, gpu: &Gpu, encode: impl Fn(&mut wgpu::ComputePass<'_>, Phase)) -> Result<()> {
        let t = self.t + 1;
        let (curv_step, samples) = match self.config {
            OptimizerConfig::AdaHessian(c) => ((t - 1).is_multiple_of(c.update_each as u64), c.n_samples),
            OptimizerConfig::SophiaH(c) => ((t - 1).is_multiple_of(c.update_each as u64), c.n_samples),
            _ => (false, 0),
        };
        let t_curv = self.t_curv + curv_step as u64;
        gpu.queue.write_buffer(&self.step_meta, 0, bytemuck::bytes_of(&self.step_meta(t, t_curv, curv_step)));

        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let whole = self.n_params;
            let probe_kernel = match self.config {
                OptimizerConfig::AdaHessian(AdaHessianConfig { probe: ProbeKind::Gaussian, .. })
                | OptimizerConfig::SophiaH(SophiaHConfig { probe: ProbeKind::Gaussian, .. }) => Kernel::ProbeGaussian,
                _ => Kernel::ProbeRademacher,
            };
            // AdaHessian with one probe and no spatial averaging forms D = |z ⊙ Hz| inside its
            // update kernel (adahessian_curv_step) instead of two separate passes over P
            let fused_estimate =
                matches!(self.config, OptimizerConfig::AdaHessian(_)) && samples == 1 && self.group_means.is_empty();
            if curv_step && samples == 1 {
                // one probe: it is a hash of (seed, step, index), so it can be drawn before the
                // forward pass, and forward + tangent, backward + R-backward run fused
                dispatch(gpu, &mut pass, probe_kernel, &self.groups[0], whole);
                encode(&mut pass, Phase::ForwardTangent);
                encode(&mut pass, Phase::BackwardRBackward);
                if !fused_estimate {
                    dispatch(gpu, &mut pass, Kernel::CurvAccumulate, &self.groups[0], whole);
                }
            } else {
                encode(&mut pass, Phase::Forward);
                encode(&mut pass, Phase::Backward);
                if curv_step {
                    for s in 0..samples as usize {
                        dispatch(gpu, &mut pass, probe_kernel, &self.groups[s], whole);
                        encode(&mut pass, Phase::Tangent);
                        encode(&mut pass, Phase::RBackward);
                        dispatch(gpu, &mut pass, Kernel::CurvAccumulate, &self.groups[s], whole);
                    }
                }
            }
            if curv_step && !fused_estimate {
                if let OptimizerConfig::AdaHessian(_) = self.config {
                    dispatch(gpu, &mut pass, Kernel::CurvAbs, &self.groups[0], whole);
                    for &(group, count) in &self.group_means {
                        dispatch(gpu, &mut pass, Kernel::CurvGroupMean, &self.groups[group], count);
                    }
                }
            }
            if self.grad_clip().is_some() {
                dispatch(gpu, &mut pass, Kernel::GradSumsq, &self.groups[0], 1);
            }
            let kernel = match self.config {
                OptimizerConfig::Sgd(_) => Kernel::SgdStep,
                OptimizerConfig::Adam(_) => Kernel::AdamStep,
                OptimizerConfig::AdaHessian(_) if fused_estimate => Kernel::AdahessianCurvStep,
                OptimizerConfig::AdaHessian(_) => Kernel::AdahessianStep,
                OptimizerConfig::SophiaH(_) => Kernel::SophiaStep,
            };
            dispatch(gpu, &mut pass, kernel, &self.groups[0], whole);
        }
        gpu.queue.submit(Some(encoder.finish()));
        self.t = t;
        self.t_curv = t_curv;
        Ok(())
    }

    /// [`Optimizer::step`], then reads the batch loss back; a NaN/Inf loss is an error that names
    /// the step (the parameters have then already been updated with it: restore a checkpoint).
    pub async fn step_with_loss(&mut self, gpu: &Gpu, net: &Network, batch: &Batch<'_>) -> Result<StepReport> {
        self.step(gpu, net, batch)?;
        let s = net.read_stats(gpu).await?;
        let rows = batch.indices.len();
        let loss = s[stat::LOSS] / rows as f32;
        if !loss.is_finite() {
            return Err(Error::NonFinite { what: "the training loss", value: loss, step: self.t });
        }
        Ok(StepReport { step: self.t, batch: Evaluation { loss, accuracy: s[stat::HITS] / rows as f32, rows } })
    }

    fn grad_clip(&self) -> Option<f32> {
        match self.config {
            OptimizerConfig::Sgd(c) => c.grad_clip,
            OptimizerConfig::Adam(c) => c.grad_clip,
            OptimizerConfig::AdaHessian(c) => c.grad_clip,
            OptimizerConfig::SophiaH(c) => c.grad_clip,
        }
    }

    /// The per-step uniform: hyper-parameters and bias corrections (computed in f64).
    fn step_meta(&self, t: u64, t_curv: u64, curv_step: bool) -> StepMeta {
        let bias = |beta: f32, n: u64| (1.0 - (beta as f64).powf(n as f64)) as f32;
        let mut m = StepMeta {
            t: t as u32,
            t_curv: t_curv as u32,
            update_curv: curv_step as u32,
            lr: self.lr,
            grad_clip: self.grad_clip().unwrap_or(0.0),
            ..Default::default()
        };
        match self.config {
            OptimizerConfig::Sgd(c) => {
                m.momentum = c.momentum;
                m.dampening = c.dampening;
                m.weight_decay = c.weight_decay;
                m.flags = if c.nesterov { STEP_NESTEROV } else { 0 };
            }
            OptimizerConfig::Adam(c) => {
                m.beta1 = c.betas.0;
                m.beta2 = c.betas.1;
                m.eps = c.eps;
                m.weight_decay = c.weight_decay;
                m.flags = if c.decoupled { STEP_DECOUPLED } else { 0 };
                m.bias1 = bias(c.betas.0, t);
                m.bias2 = bias(c.betas.1, t);
            }
            OptimizerConfig::AdaHessian(c) => {
                m.beta1 = c.betas.0;
                m.beta2 = c.betas.1;
                m.eps = c.eps;
                m.weight_decay = c.weight_decay;
                m.hessian_power = c.hessian_power;
                m.bias1 = bias(c.betas.0, t);
                m.bias2 = bias(c.betas.1, t_curv);
            }
            OptimizerConfig::SophiaH(c) => {
                m.beta1 = c.betas.0;
                m.beta2 = c.betas.1;
                m.eps = c.eps;
                m.gamma = c.gamma;
                m.weight_decay = c.weight_decay;
                m.bias1 = bias(c.betas.0, t);
                m.bias2 = 1.0;
            }
        }
        m
    }
}

/// A copy of an optimizer's state on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Steps taken.
    pub t: u64,
    /// Curvature updates taken.
    pub t_curv: u64,
    /// First moment (SGD: momentum buffer).
    pub m: Vec<f32>,
    /// Second moment (Adam, AdaHessian) or curvature EMA h (Sophia-H).
    pub v: Vec<f32>,
    /// The last curvature estimate D.
    pub curvature: Vec<f32>,
}
