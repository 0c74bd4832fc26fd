//! The model on the GPU: flat arenas, one bind group per layer built once, and the dispatch
//! lists of the four passes (forward, tangent, backward, R-backward). Recording a pass creates
//! nothing but, the first time a kernel is recorded on a device, its pipeline (the cache in
//! `gpu::kernels` builds on first use); only `prepare` writes the batch's row indices and size before a submit.

use super::meta::{LayerMeta, FLAG_ACCUMULATE};
use super::op::PlanSite;
use super::plan::{fold_activations_into_dense, ArenaLayout, LayerContext, LayerPasses, PassLists, Window, SLOT_ALIGN};
use super::{norm, residual, KernelSet, KernelTuning, LayerOp, ModelSpec, Resolved};
use crate::data::DeviceDataset;
use crate::error::{Error, Result};
use crate::gpu::buffers::{read_f32_with, staging_buffer, windowed_storage_buffer};
use crate::gpu::meta::{stat, BatchMeta, NORM_BATCH_STATS, NORM_RUNNING_STATS, NORM_UPDATE_RUNNING};
use crate::gpu::{
    bind_group, dispatch, read_f32, storage_buffer, uniform_buffer, BindLayout, Gpu, Kernel, UniformArena,
};
use crate::objective::Objective;
pub use crate::objective::{Arenas, Phase};

/// Options fixed when a network is built.
#[derive(Clone, Copy, Debug)]
pub struct NetworkOptions {
    /// The largest batch any call will use (sizes the activation arena).
    pub max_batch: usize,
    /// Seed of the parameter initialisation.
    pub seed: u64,
    /// Allocate what H·v needs: the direction z, H z, every node's tangent and R-cotangent.
    /// Curvature optimizers (AdaHessian, Sophia-H) and tools need it; a network for SGD or Adam
    /// built without it holds about half the activation memory.
    pub curvature: bool,
}

impl NetworkOptions {
    /// `max_batch` rows, initial weights from `seed`, with the curvature buffers.
    pub fn new(max_batch: usize, seed: u64) -> Self {
        NetworkOptions { max_batch, seed, curvature: true }
    }
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions::new(256, 0)
    }
}

/// A network on a prepared mini-batch ([`Network::on_batch`]): the forward phases gather the
/// batch first and reduce its loss after.
pub struct OnBatch<'a> {
    net: &'a Network,
    data: &'a BoundData,
    rows: u32,
}

impl Objective for OnBatch<'_> {
    fn arenas(&self) -> &Arenas {
        &self.net.arenas
    }

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase) {
        match phase {
            Phase::Forward | Phase::ForwardTangent => {
                self.net.encode_gather(gpu, pass, self.data, self.rows);
                self.net.encode(gpu, pass, phase, self.rows);
                self.net.encode_reduce(gpu, pass, false);
            }
            _ => self.net.encode(gpu, pass, phase, self.rows),
        }
    }
}

/// A data set attached to this network's activation arena (a gather bind group, built once).
pub struct BoundData {
    /// the gathers of the input rows and of the targets (each binds its own window of the arena)
    groups: [wgpu::BindGroup; 2],
    /// Rows of the data set.
    pub rows: usize,
    /// A streamed data set: its host rows and the batch-sized buffers the gather reads
    stream: Option<Stream>,
    /// Image bytes on the GPU: the gather decodes them (`data::kernels::GatherPixels`)
    pixels: Option<BoundPixels>,
}

/// What a network's gather of image bytes needs per batch.
struct BoundPixels {
    /// max_batch × (dy, dx, flip): a training batch's crops and flips, drawn on the host
    shifts: wgpu::Buffer,
    augment: Option<crate::data::cifar::Augment>,
    /// the gather's invocations per row (one per image line)
    lines: u32,
}

/// Batch-sized GPU copies of a streamed data set's current rows.
struct Stream {
    host: std::sync::Arc<crate::data::HostRows>,
    data: wgpu::Buffer,
    targets: wgpu::Buffer,
    features: usize,
    target_width: usize,
    /// 0..max_batch: the gather's row indices for a batch copied to the front of the buffers
    identity: Vec<u32>,
}

/// A mini-batch: rows of a bound data set.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// The data.
    pub data: &'a BoundData,
    /// Row indices, at most `max_batch` of them.
    pub indices: &'a [u32],
}

/// GPU memory of a network by role, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    /// θ.
    pub params: u64,
    /// ∇θ.
    pub grads: u64,
    /// The probe z and H z (used by curvature methods and the HVP).
    pub probe_and_hz: u64,
    /// Every node's values for a batch (activations).
    pub values: u64,
    /// Their tangents (forward-over-reverse), where the R-backward pass reads them.
    pub tangents: u64,
    /// Their cotangents, and the R-cotangents' region (shared by liveness, see
    /// `nn::plan::ArenaLayout`; it also holds the tangents only the tangent pass reads).
    pub cotangents: u64,
    /// Targets, per-row loss terms, max-pooling's argmax and the layers' backward scratch.
    pub scratch: u64,
    /// The gaps that start every slot of the activation arena on a 256-byte boundary (so that a
    /// layer can bind just its part of it).
    pub padding: u64,
}

impl MemoryUse {
    /// Everything, in bytes.
    pub fn total(&self) -> u64 {
        self.params
            + self.grads
            + self.probe_and_hz
            + self.values
            + self.tangents
            + self.cotangents
            + self.scratch
            + self.padding
    }
}

/// Loss and accuracy over a batch or a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f32,
    /// Fraction of rows whose argmax is the label (0 for regression).
    pub accuracy: f32,
    /// Rows evaluated.
    pub rows: usize,
}

/// A bind group entry for one window of the arena `work` (`unused`, a small stand-in, where the
/// binding reaches nothing: two writable bindings of one buffer may not overlap).
fn window_binding<'a>(
    work: &'a wgpu::Buffer,
    window: Option<Window>,
    unused: &'a wgpu::Buffer,
) -> wgpu::BindingResource<'a> {
    match window {
        Some(w) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: work,
            offset: w.start as u64 * 4,
            size: wgpu::BufferSize::new(w.len as u64 * 4),
        }),
        None => unused.as_entire_binding(),
    }
}

/// Every layer's uniforms and dispatches, each from its op's own `plan`, with activations next
/// to a dense layer folded into its tiled kernels.
fn plan_layers(
    gpu: &Gpu,
    model: &Resolved,
    layout: &mut ArenaLayout,
    rows: usize,
    kernels: KernelSet,
    curvature: bool,
) -> (Vec<LayerMeta>, Vec<LayerPasses>) {
    let tuning = KernelTuning::for_class(gpu.adapter_class());
    let (mut metas, mut passes) = (Vec::new(), Vec::new());
    for (k, layer) in model.layers.iter().enumerate() {
        let mut meta = layout.layer_meta(layer.input, layer.output);
        // the second reader of a node read twice writes its cotangents to the node's second slots
        // (summed into the first by the fan-in sum after the first reader's backward)
        if model.is_second_reader(k, layer.input) {
            let n = layout.nodes[layer.input];
            (meta.g_x_off, meta.r_x_off) = (n.g2, n.r2);
        }
        let has_input_grad = layer.input > 0;
        let cx = LayerContext { group: metas.len(), rows, kernels, tuning, curvature, has_input_grad };
        let mut site = PlanSite { model, layout, layer: k };
        let p = layer.op.op().plan(&cx, &mut meta, &mut site);
        metas.push(meta);
        passes.push(p);
    }
    // a node read twice (a residual block's input; not the data, which needs no cotangent) gets
    // its second reader's share of the cotangents after its first reader, which runs last in the
    // backward pass, has written its own: the body's first layer with an identity or pad
    // shortcut (the add reads second), the projection's conv with a conv shortcut (the body second)
    for node in 1..model.nodes.len() {
        if let [first, _] = model.readers(node)[..] {
            let mut meta = LayerMeta::default();
            let group = metas.len();
            residual::fan_in_sums(&mut passes[first], group, &mut meta, model.nodes[node], layout.nodes[node]);
            metas.push(meta);
        }
    }
    // the layers' scratch: one region, as large as the largest need (layers run one at a time);
    // a layer's offsets into it were set relative to its start
    let scratch = passes.iter().map(|p| p.scratch).max().unwrap_or(0);
    if scratch > 0 {
        let base = layout.take(scratch);
        for (meta, p) in metas.iter_mut().zip(&passes) {
            if let Some(rebase) = p.rebase_scratch.filter(|_| p.scratch > 0) {
                rebase(meta, base);
            }
        }
    }
    // folding writes a node's neighbours from one kernel, which a node with two consumers (a
    // residual block's input) cannot allow
    if kernels.tiled() && !model.is_graph() {
        fold_activations_into_dense(model, &layout.nodes, &mut metas, &mut passes);
    }
    (metas, passes)
}

/// Where BatchNorm layers take their statistics from in the passes a caller runs (a training
/// step always uses the batch's and updates the running ones, as PyTorch's `model.train()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BnMode {
    /// The batch's own statistics, differentiated through: the mini-batch loss the official
    /// AdaHessian trains on (the default of `loss`, `gradient`, `hvp` and the curvature tools).
    #[default]
    Train,
    /// The running statistics: BatchNorm is an affine map (`model.eval()`; what PyHessian
    /// analyses, and what `evaluate` and `predict` always use).
    Eval,
}

impl BnMode {
    /// `train` or `eval`.
    pub fn name(self) -> &'static str {
        match self {
            BnMode::Train => "train",
            BnMode::Eval => "eval",
        }
    }

    /// Parses `train` or `eval`.
    pub fn parse(text: &str) -> Result<BnMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(BnMode::Train),
            "eval" => Ok(BnMode::Eval),
            other => Err(Error::Config(format!("unknown BatchNorm mode '{other}'; use train or eval"))),
        }
    }
}

/// The GPU model.
pub struct Network {
    spec: ModelSpec,
    model: Resolved,
    max_batch: usize,
    pub(crate) arenas: Arenas,
    batch_meta: wgpu::Buffer,
    uniforms: UniformArena,
    /// the gather's two metas (input rows, then targets) and their windows of the arena
    gather_slot: usize,
    gather_windows: [Option<Window>; 2],
    groups: Vec<wgpu::BindGroup>,
    passes: PassLists,
    kernels: KernelSet,
    curvature: bool,
    reduce_group: usize,
    reduce_accumulate_group: usize,
    stats_staging: wgpu::Buffer,
    /// P floats: the readback of θ, ∇θ and H z, reused by every call
    param_staging: wgpu::Buffer,
    /// where the output node's values start in the activation arena
    output_off: u32,
    /// floats of the arena's values, own-slot tangents, cotangents and padding (the layout's count)
    arena_floats: [usize; 4],
    /// BatchNorm's statistics source for everything but training steps
    bn_mode: std::cell::Cell<BnMode>,
    /// training steps that updated the running statistics (PyTorch's `num_batches_tracked`)
    batches_tracked: std::cell::Cell<u64>,
}

impl Network {
    /// Builds the network with PyTorch-default initial weights from `options.seed`, recording the
    /// device's default kernel set ([`Gpu::kernels`]).
    pub fn new(gpu: &Gpu, spec: &ModelSpec, options: NetworkOptions) -> Result<Network> {
        Network::with_kernels(gpu, spec, options, KernelSet::from_env()?)
    }

    /// [`Network::new`] with an explicit kernel set (benchmarks compare both in one process).
    pub fn with_kernels(gpu: &Gpu, spec: &ModelSpec, options: NetworkOptions, kernels: KernelSet) -> Result<Network> {
        let model = spec.resolve()?;
        if options.max_batch == 0 {
            return Err(Error::Config("max_batch must be at least 1".into()));
        }
        let (rows, curvature) = (options.max_batch, options.curvature);
        // 1. the activation arena's layout, 2. each layer's uniforms and dispatches (its own
        // `plan`), the loss's, the reductions' and the gather's, 3. buffers and bind groups
        let binding_floats = (gpu.limits().max_storage_buffer_binding_size / 4).min(usize::MAX as u64) as usize;
        let mut layout = ArenaLayout::new(&model, rows, curvature, binding_floats);
        let (mut metas, mut layer_passes) = plan_layers(gpu, &model, &mut layout, rows, kernels, curvature);
        let out = *layout.nodes.last().ok_or_else(|| Error::Shape("model without nodes".into()))?;
        let k = model.output_width();
        let loss_meta = LayerMeta {
            n_in: k as u32,
            n_out: k as u32,
            x_off: out.x,
            t_x_off: out.t,
            g_x_off: out.g,
            r_x_off: out.r,
            target_off: layout.target_off,
            loss_off: layout.loss_off,
            hit_off: layout.hit_off,
            lse_off: layout.lse_off,
            t_loss_off: layout.t_loss_off,
            target_width: model.loss.target_width(k) as u32,
            ..Default::default()
        };
        layer_passes.push(model.loss.plan(metas.len(), k, kernels.tiled()));
        metas.push(loss_meta);
        let passes = PassLists::assemble(&layer_passes);
        let passes = if curvature { passes } else { passes.without_curvature() };
        let reduce_group = metas.len();
        metas.push(loss_meta);
        let reduce_accumulate_group = metas.len();
        metas.push(LayerMeta { flags: FLAG_ACCUMULATE, ..loss_meta });
        // the gather writes the input node and the targets, far apart: one meta (window) each
        let gather_slot = metas.len();
        metas.push(LayerMeta { n_in: model.nodes[0] as u32, x_off: layout.nodes[0].x, ..Default::default() });
        metas.push(LayerMeta {
            target_width: loss_meta.target_width,
            target_off: layout.target_off,
            ..Default::default()
        });

        // each meta's windows of the arena (its offsets rebased to them): one binding holds what
        // one layer reaches, not the whole arena
        let windows: Vec<[Option<Window>; 2]> = metas
            .iter_mut()
            .enumerate()
            .map(|(slot, meta)| {
                let add = model.layers.get(slot).is_some_and(|l| matches!(l.op, LayerOp::Add(_)));
                layout.windows(meta, add)
            })
            .collect();
        // two writable bindings of one buffer may not overlap (WebGPU validates it; Vulkan would
        // alias them silently): the layout keeps them apart, and a layout that did not is a bug
        if let Some(slot) = windows.iter().position(|w| match w {
            [Some(a), Some(b)] => a.start + a.len > b.start && b.start + b.len > a.start,
            _ => false,
        }) {
            return Err(Error::Gpu(format!(
                "internal: the work and side windows of layer uniforms {slot} overlap (a bug in the arena layout)"
            )));
        }
        let len = layout.len;
        if len > u32::MAX as usize / 4 {
            return Err(Error::Shape(format!("the activation arena ({len} floats) is too large; lower max_batch")));
        }
        let binding_limit = gpu.limits().max_storage_buffer_binding_size;
        let widest = windows.iter().flatten().flatten().map(|w| w.len as u64 * 4).max().unwrap_or(0);
        let bytes = len as u64 * 4;
        // the arena and its windows grow about linearly with the batch: say which batch would fit
        let fits =
            |needed: u64, limit: u64| match (needed > limit && rows > 1, limit / needed.div_ceil(rows as u64).max(1)) {
                (false, _) => String::new(),
                (true, 0) => " (not even batch 1 fits this limit)".to_string(),
                (true, n) => format!(" (about batch {n} would fit this limit: --batch-size {n})"),
            };
        gpu.check_storage_size(
            &format!("one layer's part of the activation arena for batch {rows}{}", fits(widest, binding_limit)),
            widest,
        )?;
        gpu.check_buffer_size(
            &format!("the activation arena for batch {rows}{}", fits(bytes, gpu.limits().max_buffer_size)),
            bytes,
        )?;
        let arenas = Arenas {
            // P values, then the bias sink of bias-free layers (zeros, never read back)
            theta: storage_buffer(gpu, "theta", model.n_params + model.bias_sink)?,
            g_theta: storage_buffer(gpu, "g_theta", model.n_params + model.bias_sink)?,
            z: storage_buffer(gpu, "z", if curvature { model.n_params + model.bias_sink } else { 1 })?,
            r_theta: storage_buffer(gpu, "r_theta (Hz)", if curvature { model.n_params + model.bias_sink } else { 1 })?,
            work: windowed_storage_buffer(gpu, "work", len),
            // the loss statistics, then BatchNorm's running statistics
            stats: storage_buffer(gpu, "stats", stat::LEN + model.running_len())?,
            index: storage_buffer(gpu, "batch indices", rows)?,
            unused: storage_buffer(gpu, "unused side binding", SLOT_ALIGN)?,
        };
        let theta0 = spec.init_params(options.seed)?;
        gpu.queue.write_buffer(&arenas.theta, 0, bytemuck::cast_slice(&theta0));
        if model.has_batch_norm() {
            let running = model.initial_running();
            gpu.queue.write_buffer(&arenas.stats, (stat::LEN * 4) as u64, bytemuck::cast_slice(&running));
        }

        let uniforms = UniformArena::new(gpu, "layer metas", &metas);
        let batch_meta = uniform_buffer(gpu, "batch meta", &BatchMeta { rows: 1, ..Default::default() });
        let a = &arenas;
        let groups = (0..gather_slot)
            .map(|slot| {
                let [main, side] = windows[slot];
                let resources = [
                    uniforms.binding(slot),
                    batch_meta.as_entire_binding(),
                    a.theta.as_entire_binding(),
                    a.z.as_entire_binding(),
                    a.g_theta.as_entire_binding(),
                    a.r_theta.as_entire_binding(),
                    window_binding(&a.work, main, &a.unused),
                    a.stats.as_entire_binding(),
                    window_binding(&a.work, side, &a.unused),
                ];
                bind_group(gpu, "layer", BindLayout::Layer, resources)
            })
            .collect();
        let gather_windows = [windows[gather_slot][0], windows[gather_slot + 1][0]];
        let stats_staging = staging_buffer(gpu, "stats staging", (stat::LEN * 4) as u64);
        let param_staging = staging_buffer(gpu, "parameter staging", (model.n_params * 4) as u64);
        gpu.check()?;
        Ok(Network {
            spec: spec.clone(),
            model,
            max_batch: rows,
            arenas,
            batch_meta,
            uniforms,
            gather_slot,
            gather_windows,
            groups,
            passes,
            kernels,
            curvature,
            reduce_group,
            reduce_accumulate_group,
            stats_staging,
            param_staging,
            output_off: out.x,
            arena_floats: [layout.values, layout.tangents, layout.cotangents, layout.padding],
            bn_mode: Default::default(),
            batches_tracked: Default::default(),
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The flat arenas (θ, ∇θ, z, H z, activations, stats).
    pub(crate) fn arenas(&self) -> &Arenas {
        &self.arenas
    }

    /// Shapes and the parameter layout.
    pub fn model(&self) -> &Resolved {
        &self.model
    }

    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.model.n_params
    }

    /// GPU memory this network allocates, by role, in bytes (at its max_batch).
    pub fn memory(&self) -> MemoryUse {
        let p = self.model.n_params as u64 * 4;
        let [values, tangents, cotangents, padding] = self.arena_floats.map(|f| f as u64 * 4);
        MemoryUse {
            params: p,
            grads: p,
            probe_and_hz: 2 * p * self.curvature as u64,
            values,
            tangents,
            cotangents,
            scratch: self.arenas.work.size().saturating_sub(values + tangents + cotangents + padding),
            padding,
        }
    }

    /// Whether the curvature buffers exist ([`NetworkOptions::curvature`]): H·v, the tangent and
    /// R-backward passes and the curvature optimizers need them.
    pub fn has_curvature(&self) -> bool {
        self.curvature
    }

    /// The layer kernels this network records.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// How many kernels one pass records (the gather and the loss reduction not included).
    pub fn dispatch_count(&self, phase: Phase) -> usize {
        self.passes.get(phase).len()
    }

    /// The kernels one pass records, in order, each with the index of its layer in
    /// `model().layers` (the loss's index is the number of layers): for per-dispatch profiles.
    pub fn dispatch_list(&self, phase: Phase) -> Vec<(Kernel, usize)> {
        self.passes.get(phase).iter().map(|d| (d.kernel, d.group)).collect()
    }

    /// Records only dispatch `index` of a pass ([`Network::dispatch_list`]) for a batch of `rows`;
    /// the inputs it reads must exist (run the passes before it once first).
    pub fn encode_dispatch(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase, index: usize, rows: u32) {
        if let Some(d) = self.passes.get(phase).get(index) {
            dispatch(gpu, pass, d.kernel, &self.groups[d.group], d.items.count(rows));
        }
    }

    /// The largest batch.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Attaches a GPU data set (checks that its shape fits the model).
    pub fn bind(&self, gpu: &Gpu, data: &DeviceDataset) -> Result<BoundData> {
        let input = self.model.nodes[0];
        if data.features != input {
            return Err(Error::Shape(format!(
                "the data has {} features per row but the model's first layer expects {input}",
                data.features
            )));
        }
        let k = self.model.output_width();
        let want = self.model.loss.target_width(k);
        if data.target_width != want {
            return Err(Error::Shape(format!(
                "the {} loss needs {want} target value(s) per row but the data has {}",
                self.model.loss.name(),
                data.target_width
            )));
        }
        if data.classes == 0 && self.model.loss == super::Loss::CrossEntropy {
            return Err(Error::Shape(
                "the cross_entropy loss needs class labels, but the data has real-valued targets (a regression task); \
                 end the model with 'loss mse' (':mse' in the mlp: shorthand)"
                    .into(),
            ));
        }
        if data.classes > k && self.model.loss == super::Loss::CrossEntropy {
            return Err(Error::Shape(format!(
                "the data has {} classes but the model outputs {k} logits; make the last layer {} wide",
                data.classes, data.classes
            )));
        }
        // a streamed data set is gathered from batch-sized buffers that prepare() fills
        let stream = match &data.host {
            Some(host) => Some(Stream {
                host: host.clone(),
                data: storage_buffer(gpu, "streamed batch inputs", self.max_batch * data.features)?,
                targets: storage_buffer(gpu, "streamed batch targets", self.max_batch * data.target_width)?,
                features: data.features,
                target_width: data.target_width,
                identity: (0..self.max_batch as u32).collect(),
            }),
            None => None,
        };
        let (inputs, targets) = match &stream {
            Some(s) => (&s.data, &s.targets),
            None => (&data.data, &data.targets),
        };
        let mut groups = [0, 1].map(|i| {
            bind_group(
                gpu,
                "gather",
                BindLayout::Gather,
                [
                    self.uniforms.binding(self.gather_slot + i),
                    self.batch_meta.as_entire_binding(),
                    inputs.as_entire_binding(),
                    targets.as_entire_binding(),
                    self.arenas.index.as_entire_binding(),
                    window_binding(&self.arenas.work, self.gather_windows[i], &self.arenas.unused),
                ],
            )
        });
        let pixels = match &data.pixels {
            Some(p) => {
                let shifts = storage_buffer(gpu, "batch crops and flips", 3 * self.max_batch)?;
                groups[0] = bind_group(
                    gpu,
                    "gather image bytes",
                    BindLayout::GatherPixels,
                    [
                        self.uniforms.binding(self.gather_slot),
                        self.batch_meta.as_entire_binding(),
                        p.meta.as_entire_binding(),
                        p.chunks[0].as_entire_binding(),
                        p.chunks[1].as_entire_binding(),
                        p.chunks[2].as_entire_binding(),
                        p.table.as_entire_binding(),
                        self.arenas.index.as_entire_binding(),
                        shifts.as_entire_binding(),
                        window_binding(&self.arenas.work, self.gather_windows[0], &self.arenas.unused),
                    ],
                );
                Some(BoundPixels { shifts, augment: p.augment.clone(), lines: p.lines })
            }
            None => None,
        };
        gpu.check()?;
        Ok(BoundData { groups, rows: data.rows, stream, pixels })
    }

    /// Where BatchNorm takes its statistics from in `loss`, `gradient`, `hvp` and the curvature
    /// tools (training steps always use the batch's; `evaluate` and `predict` the running ones).
    pub fn bn_mode(&self) -> BnMode {
        self.bn_mode.get()
    }

    /// Sets [`Network::bn_mode`].
    pub fn set_bn_mode(&self, mode: BnMode) {
        self.bn_mode.set(mode);
    }

    /// Validates a batch and queues the upload of its indices and size (takes effect at the
    /// next submit), with BatchNorm in [`Network::bn_mode`]. Returns the number of rows.
    pub fn prepare(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<u32> {
        let mode = match self.bn_mode() {
            BnMode::Train => NORM_BATCH_STATS,
            BnMode::Eval => NORM_RUNNING_STATS,
        };
        self.prepare_as(gpu, batch, mode)
    }

    /// [`Network::prepare`] for a training step: batch statistics, and the forward pass updates
    /// the running ones (counted in `num_batches_tracked`).
    pub(crate) fn prepare_training(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<u32> {
        let rows = self.prepare_as(gpu, batch, NORM_UPDATE_RUNNING)?;
        if self.model.has_batch_norm() {
            self.batches_tracked.set(self.batches_tracked.get() + 1);
        }
        Ok(rows)
    }

    fn prepare_as(&self, gpu: &Gpu, batch: &Batch<'_>, norm_mode: u32) -> Result<u32> {
        let n = batch.indices.len();
        if norm_mode != NORM_RUNNING_STATS {
            // PyTorch refuses this too: one value per channel has no variance to normalise by
            for layer in &self.model.layers {
                if let LayerOp::Norm(norm::NormOp { kind: kind @ norm::NormKind::Batch { .. }, .. }) = layer.op {
                    if kind.group_len(n) < 2 {
                        return Err(Error::Config(format!(
                            "BatchNorm (layer {}) in train mode needs more than one value per channel, but a batch of {n} \
                             gives {}; use a batch of at least 2, or the running statistics (--bn-mode eval)",
                            layer.torch_index,
                            kind.group_len(n)
                        )));
                    }
                }
            }
        }
        if n == 0 {
            return Err(Error::Config("a batch needs at least one row".into()));
        }
        if n > self.max_batch {
            return Err(Error::Config(format!(
                "batch of {n} rows exceeds this network's max_batch {}",
                self.max_batch
            )));
        }
        if let Some(bad) = batch.indices.iter().find(|&&i| i as usize >= batch.data.rows) {
            return Err(Error::Data(format!(
                "row index {bad} is out of range for a data set of {} rows",
                batch.data.rows
            )));
        }
        match &batch.data.stream {
            None => {
                gpu.queue.write_buffer(&self.arenas.index, 0, bytemuck::cast_slice(batch.indices));
                // a training batch of augmented image bytes: each row's crop and flip, which the
                // gather applies (it reads them for training batches only; without augmentation
                // they stay the zeros the buffer was created with)
                let augment = batch.data.pixels.as_ref().and_then(|p| Some((p, p.augment.as_ref()?)));
                if let (Some((p, aug)), true) = (augment, norm_mode == NORM_UPDATE_RUNNING) {
                    let key = crate::data::cifar::Augment::batch_key(batch.indices);
                    let shifts: Vec<i32> = (0..n)
                        .flat_map(|i| {
                            let (dy, dx, flip) = aug.draw(key, i);
                            [dy as i32, dx as i32, i32::from(flip)]
                        })
                        .collect();
                    gpu.queue.write_buffer(&p.shifts, 0, bytemuck::cast_slice(&shifts));
                }
            }
            Some(s) => {
                // copy the batch's rows to the front of the batch buffers; the gather reads 0..n
                let (f, w) = (s.features, s.target_width);
                let mut x = Vec::with_capacity(n * f);
                let mut t = Vec::with_capacity(n * w);
                for &r in batch.indices {
                    let r = r as usize;
                    x.extend_from_slice(&s.host.x[r * f..(r + 1) * f]);
                    t.extend_from_slice(&s.host.targets[r * w..(r + 1) * w]);
                }
                // training batches only (their prepare updates BatchNorm's running statistics)
                if let (Some(aug), true) = (&s.host.augment, norm_mode == NORM_UPDATE_RUNNING) {
                    aug.apply(&mut x, crate::data::cifar::Augment::batch_key(batch.indices));
                }
                gpu.queue.write_buffer(&s.data, 0, bytemuck::cast_slice(&x));
                gpu.queue.write_buffer(&s.targets, 0, bytemuck::cast_slice(&t));
                gpu.queue.write_buffer(&self.arenas.index, 0, bytemuck::cast_slice(&s.identity[..n]));
            }
        }
        let meta = BatchMeta { rows: n as u32, norm_mode, ..Default::default() };
        gpu.queue.write_buffer(&self.batch_meta, 0, bytemuck::bytes_of(&meta));
        Ok(n as u32)
    }

    /// Records the gather of the prepared batch into the input node and target slots.
    pub fn encode_gather(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, data: &BoundData, rows: u32) {
        let k = self.model.output_width();
        let target_width = self.model.loss.target_width(k) as u32;
        match &data.pixels {
            Some(p) => dispatch(gpu, pass, crate::data::kernels::GatherPixels, &data.groups[0], rows * p.lines),
            None => dispatch(
                gpu,
                pass,
                crate::data::kernels::GatherRows,
                &data.groups[0],
                rows * self.model.nodes[0] as u32,
            ),
        }
        dispatch(gpu, pass, crate::data::kernels::GatherTargets, &data.groups[1], rows * target_width);
    }

    /// Records one of the passes for a batch of `rows` (the tangent and R-backward passes record
    /// nothing on a network built without curvature buffers).
    pub fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase, rows: u32) {
        for d in self.passes.get(phase) {
            let items = d.items.count(rows);
            dispatch(gpu, pass, d.kernel, &self.groups[d.group], items);
        }
    }

    /// The network on a prepared mini-batch, as an [`Objective`] an optimizer can step: writes
    /// the batch's row indices and size (the only host work of a step).
    pub fn on_batch<'a>(&'a self, gpu: &Gpu, batch: &'a Batch<'a>) -> Result<OnBatch<'a>> {
        let rows = self.prepare(gpu, batch)?;
        Ok(OnBatch { net: self, data: batch.data, rows })
    }

    /// [`Network::on_batch`] for a training step ([`Network::prepare_training`]).
    pub(crate) fn on_training_batch<'a>(&'a self, gpu: &Gpu, batch: &'a Batch<'a>) -> Result<OnBatch<'a>> {
        let rows = self.prepare_training(gpu, batch)?;
        Ok(OnBatch { net: self, data: batch.data, rows })
    }

    /// Records the reduction of the per-row loss terms into `stats` (added to it if `accumulate`).
    pub fn encode_reduce(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, accumulate: bool) {
        let group = if accumulate { self.reduce_accumulate_group } else { self.reduce_group };
        dispatch(gpu, pass, super::loss::kernels::LossReduce, &self.groups[group], 1);
    }

    /// Reads the stats scalars (a fixed staging buffer: fine inside a training loop).
    pub async fn read_stats(&self, gpu: &Gpu) -> Result<[f32; stat::LEN]> {
        let data = read_f32_with(gpu, &self.arenas.stats, 0, stat::LEN, &self.stats_staging).await?;
        let mut out = [0f32; stat::LEN];
        out.copy_from_slice(&data);
        Ok(out)
    }

    /// Runs the given passes on a batch in one submit (BatchNorm in [`Network::bn_mode`]).
    fn run(&self, gpu: &Gpu, batch: &Batch<'_>, phases: &[Phase]) -> Result<u32> {
        let rows = self.prepare(gpu, batch)?;
        self.record(gpu, batch, phases, rows);
        Ok(rows)
    }

    /// The BatchNorm mode of inference (`predict`, `evaluate`): the running statistics, as
    /// PyTorch's `model.eval()`, so a row's output does not depend on the rest of its batch (nor
    /// on how `evaluate` splits a data set into chunks).
    const INFERENCE: u32 = NORM_RUNNING_STATS;

    /// Records and submits the passes for a prepared batch.
    fn record(&self, gpu: &Gpu, batch: &Batch<'_>, phases: &[Phase], rows: u32) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.encode_gather(gpu, &mut pass, batch.data, rows);
            for &phase in phases {
                self.encode(gpu, &mut pass, phase, rows);
            }
            self.encode_reduce(gpu, &mut pass, false);
        }
        gpu.queue.submit(Some(encoder.finish()));
    }

    /// The network's outputs for a batch, `[rows, k]` row-major (logits for cross-entropy), with
    /// BatchNorm on its running statistics (`model.eval()`).
    pub async fn predict(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<Vec<f32>> {
        let rows = self.prepare_as(gpu, batch, Self::INFERENCE)?;
        self.record(gpu, batch, &[Phase::Forward], rows);
        read_f32(gpu, &self.arenas.work, self.output_off as usize, rows as usize * self.model.output_width()).await
    }

    /// Mean loss and accuracy on a batch.
    pub async fn loss(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<Evaluation> {
        let rows = self.run(gpu, batch, &[Phase::Forward])?;
        let s = self.read_stats(gpu).await?;
        Ok(Evaluation { loss: s[stat::LOSS] / rows as f32, accuracy: s[stat::HITS] / rows as f32, rows: rows as usize })
    }

    /// Mean loss and ∇θ L on a batch.
    pub async fn gradient(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<(f32, Vec<f32>)> {
        let rows = self.run(gpu, batch, &[Phase::Forward, Phase::Backward])?;
        let s = self.read_stats(gpu).await?;
        let g = read_f32_with(gpu, &self.arenas.g_theta, 0, self.n_params(), &self.param_staging).await?;
        Ok((s[stat::LOSS] / rows as f32, g))
    }

    /// H v on a batch, for any direction v of length P (forward-over-reverse: exact up to f32
    /// rounding). Also leaves ∇L in the gradient arena.
    pub async fn hvp(&self, gpu: &Gpu, batch: &Batch<'_>, v: &[f32]) -> Result<Vec<f32>> {
        self.require_curvature("H·v")?;
        self.write_direction(gpu, v)?;
        self.run(gpu, batch, &[Phase::ForwardTangent, Phase::BackwardRBackward])?;
        read_f32_with(gpu, &self.arenas.r_theta, 0, self.n_params(), &self.param_staging).await
    }

    /// The directional derivative ⟨∇L, v⟩ from the tangent pass alone (no backward pass).
    pub async fn directional_derivative(&self, gpu: &Gpu, batch: &Batch<'_>, v: &[f32]) -> Result<f32> {
        self.require_curvature("the directional derivative")?;
        self.write_direction(gpu, v)?;
        let rows = self.run(gpu, batch, &[Phase::ForwardTangent])?;
        let s = self.read_stats(gpu).await?;
        Ok(s[stat::T_LOSS] / rows as f32)
    }

    /// An error naming `what` when the network was built without the curvature buffers.
    pub fn require_curvature(&self, what: &str) -> Result<()> {
        if self.curvature {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "{what} needs the curvature buffers, but this network was built with NetworkOptions::curvature = false; build it with curvature = true"
            )))
        }
    }

    fn write_direction(&self, gpu: &Gpu, v: &[f32]) -> Result<()> {
        if v.len() != self.n_params() {
            return Err(Error::Shape(format!(
                "direction has {} entries, the model has {} parameters",
                v.len(),
                self.n_params()
            )));
        }
        gpu.queue.write_buffer(&self.arenas.z, 0, bytemuck::cast_slice(v));
        Ok(())
    }

    /// Mean loss and accuracy over a whole bound data set, in chunks of `max_batch` rows, with
    /// one readback at the end.
    pub async fn evaluate(&self, gpu: &Gpu, data: &BoundData) -> Result<Evaluation> {
        let all: Vec<u32> = (0..data.rows as u32).collect();
        for (c, chunk) in all.chunks(self.max_batch).enumerate() {
            let batch = Batch { data, indices: chunk };
            let rows = self.prepare_as(gpu, &batch, Self::INFERENCE)?;
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                self.encode_gather(gpu, &mut pass, data, rows);
                self.encode(gpu, &mut pass, Phase::Forward, rows);
                self.encode_reduce(gpu, &mut pass, c > 0);
            }
            gpu.queue.submit(Some(encoder.finish()));
        }
        let s = self.read_stats(gpu).await?;
        let n = data.rows as f32;
        Ok(Evaluation { loss: s[stat::LOSS] / n, accuracy: s[stat::HITS] / n, rows: data.rows })
    }

    /// All parameters, flat, in arena order.
    pub async fn params(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        read_f32_with(gpu, &self.arenas.theta, 0, self.n_params(), &self.param_staging).await
    }

    /// Replaces all parameters.
    pub fn set_params(&self, gpu: &Gpu, theta: &[f32]) -> Result<()> {
        if theta.len() != self.n_params() {
            return Err(Error::Shape(format!("{} values given for {} parameters", theta.len(), self.n_params())));
        }
        if let Some(i) = theta.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("parameter {i} is {} (NaN/Inf)", theta[i])));
        }
        gpu.queue.write_buffer(&self.arenas.theta, 0, bytemuck::cast_slice(theta));
        Ok(())
    }

    /// Every parameter tensor with its `nn.Sequential` name and PyTorch shape.
    pub async fn named_params(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let theta = self.params(gpu).await?;
        Ok(self
            .model
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone(), theta[p.offset..p.offset + p.len()].to_vec()))
            .collect())
    }

    /// BatchNorm's running statistics (the `Resolved::running` layout: μ_run, σ²_run per layer).
    pub async fn running_stats(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let n = self.model.running_len();
        if n == 0 {
            return Ok(Vec::new());
        }
        read_f32(gpu, &self.arenas.stats, stat::LEN, n).await
    }

    /// Training steps that updated the running statistics (PyTorch's `num_batches_tracked`).
    pub fn batches_tracked(&self) -> u64 {
        self.batches_tracked.get()
    }

    /// The buffers of PyTorch's state_dict beside the parameters: each BatchNorm's
    /// `running_mean` [C], `running_var` [C] and `num_batches_tracked` (a 0-d tensor; an int64
    /// in PyTorch, exact here as f32 up to 2^24 steps).
    pub async fn named_buffers(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let arena = self.running_stats(gpu).await?;
        let mut out = Vec::new();
        for r in &self.model.running {
            let c = r.channels;
            out.push((format!("{}.running_mean", r.prefix), vec![c], arena[r.offset..r.offset + c].to_vec()));
            out.push((format!("{}.running_var", r.prefix), vec![c], arena[r.offset + c..r.offset + 2 * c].to_vec()));
            out.push((format!("{}.num_batches_tracked", r.prefix), vec![], vec![self.batches_tracked() as f32]));
        }
        Ok(out)
    }

    /// Overwrites one buffer named as [`Network::named_buffers`] does; Ok(false) when no buffer has
    /// that name.
    fn set_buffer(&self, gpu: &Gpu, name: &str, shape: &[usize], values: &[f32]) -> Result<bool> {
        let Some((prefix, field)) = name.rsplit_once('.') else { return Ok(false) };
        let Some(r) = self.model.running.iter().find(|r| r.prefix == prefix) else { return Ok(false) };
        let (want, at): (Vec<usize>, Option<usize>) = match field {
            "running_mean" => (vec![r.channels], Some(r.offset)),
            "running_var" => (vec![r.channels], Some(r.offset + r.channels)),
            "num_batches_tracked" => (vec![], None),
            _ => return Ok(false),
        };
        if shape != want || values.len() != want.iter().product::<usize>() {
            return Err(Error::Shape(format!(
                "buffer '{name}' has shape {want:?}; got shape {shape:?} with {} values",
                values.len()
            )));
        }
        let bad = |v: f32| !v.is_finite() || (field == "running_var" && v < 0.0) || (at.is_none() && v < 0.0);
        if values.iter().any(|&v| bad(v)) {
            return Err(Error::Data(format!("values for '{name}' must be finite (and ≥ 0 for a variance or a count)")));
        }
        match at {
            Some(off) => {
                gpu.queue.write_buffer(&self.arenas.stats, ((stat::LEN + off) * 4) as u64, bytemuck::cast_slice(values))
            }
            None => self.batches_tracked.set(values[0] as u64),
        }
        Ok(true)
    }

    /// Overwrites one named tensor (e.g. `"2.weight"`, or a BatchNorm buffer such as
    /// `"1.running_var"`), checking its shape.
    pub fn set_tensor(&self, gpu: &Gpu, name: &str, shape: &[usize], values: &[f32]) -> Result<()> {
        if self.set_buffer(gpu, name, shape, values)? {
            return Ok(());
        }
        let p = self.model.param(name).ok_or_else(|| {
            let names: Vec<&str> = self.model.params.iter().map(|p| p.name.as_str()).collect();
            Error::Shape(format!("no parameter named '{name}'; the model has {}", names.join(", ")))
        })?;
        if p.shape != shape || values.len() != p.len() {
            return Err(Error::Shape(format!(
                "parameter '{name}' has shape {:?}; got shape {shape:?} with {} values",
                p.shape,
                values.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(format!("values for '{name}' contain NaN/Inf")));
        }
        gpu.queue.write_buffer(&self.arenas.theta, (p.offset * 4) as u64, bytemuck::cast_slice(values));
        Ok(())
    }
}
