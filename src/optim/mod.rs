//! Optimizers as GPU kernels over the flat parameter arena, and the training step that records
//! forward, backward, the Hessian-vector products and the update into ONE submit.
//!
//! Each method lives in its own file (`sgd.rs`, `adam.rs`, `adahessian.rs`, `sophia_h.rs`, ...)
//! behind the [`Method`] trait and is listed once in `registry.rs`; this driver knows no method.

pub mod meta;
pub mod method;
pub mod reference;
#[macro_use]
mod registry;

// The optimizers: one line each (the variant of `OptimizerConfig`, its config type, its file).
methods! {
    Sgd(SgdConfig) in sgd,
    Adam(AdamConfig) in adam,
    AdaHessian(AdaHessianConfig) in adahessian,
    SophiaH(SophiaHConfig) in sophia_h,
    Lion(LionConfig) in lion,
    AdaBelief(AdaBeliefConfig) in adabelief,
}

pub use adahessian::UpdateEach;
pub use method::{CurvatureUse, Estimate, Method, Stability};

use crate::error::{Error, Result};
use crate::gpu::meta::stat;
use crate::gpu::{
    bind_group, dispatch, read_f32, storage_buffer, uniform_buffer, BindLayout, Gpu, Kernel, UniformArena,
};
use crate::nn::{Batch, Evaluation, Network};
use crate::objective::{Objective, Phase};
use crate::optim::meta::{SliceMeta, StepMeta};
use crate::probe::ProbeKind;

/// What one step reports when its loss is read back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The optimizer step just taken (from 1).
    pub step: u64,
    /// Mean loss and accuracy of the batch, at the parameters before the step.
    pub batch: Evaluation,
}

/// An optimizer bound to one objective: its state arenas, per-step uniforms and bind groups.
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
    /// floats allocated for the kept curvature estimate (0: not kept; the update kernel forms it)
    curv_len: usize,
    /// the method's update kernel for this configuration (chosen once: it depends on whether
    /// the estimate is kept)
    update: Kernel,
}

impl Optimizer {
    /// Validates the configuration and allocates the optimizer state for `net`.
    pub fn new(gpu: &Gpu, net: &Network, config: OptimizerConfig) -> Result<Optimizer> {
        if config.uses_curvature() {
            net.require_curvature(config.name())?;
        }
        let groups = config.method().averaging_groups(net.model());
        Optimizer::over(gpu, net.arenas(), net.n_params(), groups, config)
    }

    /// An optimizer for any objective (a point on a 2-D surface in the optimizer race), with no
    /// averaging groups.
    pub fn for_objective(gpu: &Gpu, objective: &dyn Objective, config: OptimizerConfig) -> Result<Optimizer> {
        Optimizer::over(gpu, objective.arenas(), objective.n_params(), Vec::new(), config)
    }

    /// The optimizer over arenas of `p` parameters; `averaging` lists the (offset, length,
    /// group length) slices whose curvature estimate is replaced by group means.
    fn over(
        gpu: &Gpu,
        a: &crate::objective::Arenas,
        p: usize,
        averaging: Vec<(usize, usize, usize)>,
        config: OptimizerConfig,
    ) -> Result<Optimizer> {
        config.validate()?;
        let method = config.method();
        let n_params = p as u32;
        let (n_samples, seed) = method.curvature().map_or((1, 0), |c| (c.n_samples, c.seed));
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
        // state by need: each method says how many floats per parameter it keeps (SGD without
        // momentum none); the estimate gets its own P floats only where the method keeps it
        let state_len = method.state_per_param() * p;
        let keeps_estimate = method.curvature().is_some() && method.keeps_estimate(!group_means.is_empty());
        let curv_len = if keeps_estimate { p } else { 0 };
        // a binding cannot be empty: an unused buffer is one float that no kernel touches
        let curv = storage_buffer(gpu, "curvature estimate", curv_len.max(1))?;
        let state = storage_buffer(gpu, "optimizer state (m, v)", state_len.max(1))?;
        let step_meta = uniform_buffer(gpu, "step meta", &StepMeta::default());
        let uniforms = UniformArena::new(gpu, "slice metas", &slices);
        let groups = (0..slices.len())
            .map(|slot| {
                bind_group(
                    gpu,
                    "optim",
                    BindLayout::Optim,
                    [
                        uniforms.binding(slot),
                        step_meta.as_entire_binding(),
                        a.theta.as_entire_binding(),
                        a.g_theta.as_entire_binding(),
                        a.z.as_entire_binding(),
                        a.r_theta.as_entire_binding(),
                        curv.as_entire_binding(),
                        state.as_entire_binding(),
                        a.stats.as_entire_binding(),
                    ],
                )
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
            update: kernels::update_kernel(method.kernel(keeps_estimate)),
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
        let objective = net.on_training_batch(gpu, batch)?;
        self.step_on(gpu, &objective)
    }

    /// One step of any objective (a network on a batch, a point on a surface).
    pub fn step_on(&mut self, gpu: &Gpu, objective: &dyn Objective) -> Result<()> {
        let method = self.config.method();
        let t = self.t + 1;
        let curvature = method.curvature();
        let curv_step = curvature.is_some_and(|c| c.is_curvature_step(t));
        let samples = curvature.map_or(0, |c| c.n_samples);
        let t_curv = self.t_curv + curv_step as u64;
        let mut meta = StepMeta {
            t: t as u32,
            t_curv: t_curv as u32,
            update_curv: curv_step as u32,
            lr: self.lr,
            grad_clip: method.grad_clip().unwrap_or(0.0),
            ..Default::default()
        };
        method.write_step_meta(&mut meta, t, t_curv);
        gpu.queue.write_buffer(&self.step_meta, 0, bytemuck::bytes_of(&meta));

        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let whole = self.n_params;
            let probe_kernel = match curvature.map(|c| c.probe) {
                Some(ProbeKind::Gaussian) => kernels::ProbeGaussian,
                _ => kernels::ProbeRademacher,
            };
            // without a kept estimate the update kernel forms it from z and Hz itself
            let kept = self.curv_len > 0;
            if curv_step && samples == 1 {
                // one probe: it is a hash of (seed, step, index), so it can be drawn before the
                // forward pass, and forward + tangent, backward + R-backward run fused
                dispatch(gpu, &mut pass, probe_kernel, &self.groups[0], whole);
                objective.encode(gpu, &mut pass, Phase::ForwardTangent);
                objective.encode(gpu, &mut pass, Phase::BackwardRBackward);
                if kept {
                    dispatch(gpu, &mut pass, kernels::CurvAccumulate, &self.groups[0], whole);
                }
            } else {
                objective.encode(gpu, &mut pass, Phase::Forward);
                objective.encode(gpu, &mut pass, Phase::Backward);
                if curv_step {
                    for s in 0..samples as usize {
                        dispatch(gpu, &mut pass, probe_kernel, &self.groups[s], whole);
                        objective.encode(gpu, &mut pass, Phase::Tangent);
                        objective.encode(gpu, &mut pass, Phase::RBackward);
                        dispatch(gpu, &mut pass, kernels::CurvAccumulate, &self.groups[s], whole);
                    }
                }
            }
            if curv_step && kept && curvature.is_some_and(|c| c.estimate == Estimate::AbsMean) {
                dispatch(gpu, &mut pass, kernels::CurvAbs, &self.groups[0], whole);
                for &(group, count) in &self.group_means {
                    dispatch(gpu, &mut pass, kernels::CurvGroupMean, &self.groups[group], count);
                }
            }
            if method.grad_clip().is_some() {
                dispatch(gpu, &mut pass, kernels::GradSumsq, &self.groups[0], 1);
            }
            dispatch(gpu, &mut pass, self.update, &self.groups[0], whole);
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

/// The optimizers' WGSL modules: the Hutchinson probes and curvature accumulation, and the update
/// module, which holds every registered method's update kernels (`Method::kernel` names one; see
/// [`kernels::update_kernel`]) beside the gradient-norm reduction.
pub mod kernels {
    crate::wgsl_kernels! {
        PROBE = ("probe", Optim, ["common.wgsl", "optim_bindings.wgsl", "probe.wgsl"]) {
            ProbeRademacher "probe_rademacher",
            ProbeGaussian "probe_gaussian",
            CurvAccumulate "curv_accumulate",
            CurvAbs "curv_abs",
            CurvGroupMean "curv_group_mean",
        }
        OPTIM = ("optim", Optim, built(update_module_source)) {
            GradSumsq "grad_sumsq" Single,
        }
    }

    /// The update kernel of a registered method, by its entry point (`Method::kernel`).
    pub fn update_kernel(entry: &'static str) -> crate::gpu::Kernel {
        crate::gpu::Kernel::new(&OPTIM, entry, crate::gpu::kernels::Grid::InvocationPerItem)
    }

    /// Every registered method's update kernels.
    pub fn update_kernels() -> impl Iterator<Item = crate::gpu::Kernel> {
        super::METHOD_KERNELS.iter().flat_map(|k| k.iter().map(|entry| update_kernel(entry)))
    }

    /// The update module: the shared bindings and the gradient-norm reduction, then every
    /// registered method's WGSL.
    fn update_module_source() -> String {
        let mut src = String::from(concat!(
            include_str!("../../shaders/common.wgsl"),
            "\n",
            include_str!("../../shaders/optim_bindings.wgsl"),
            "\n",
            include_str!("../../shaders/optim.wgsl"),
            "\n"
        ));
        for wgsl in super::METHOD_WGSL {
            src.push_str(wgsl);
            src.push('\n');
        }
        src
    }
}
