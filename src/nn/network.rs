//! The model on the GPU: flat arenas, one bind group per layer built once, and the dispatch
//! lists of the four passes (forward, tangent, backward, R-backward). Recording a pass never
//! creates anything; only `prepare` writes the batch's row indices and size before a submit.

use super::{LayerOp, ModelSpec, Resolved};
use crate::data::DeviceDataset;
use crate::error::{Error, Result};
use crate::gpu::buffers::{read_f32_with, staging_buffer};
use crate::gpu::meta::{stat, BatchMeta, LayerMeta, FLAG_ACCUMULATE, FLAG_INPUT_HAS_TANGENT};
use crate::gpu::{
    dispatch, read_f32, storage_buffer, uniform_buffer, BindLayout, Gpu, Kernel, KernelSet, UniformArena,
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
    group: wgpu::BindGroup,
    /// Rows of the data set.
    pub rows: usize,
    /// A streamed data set: its host rows and the batch-sized buffers the gather reads
    stream: Option<Stream>,
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
    /// Their tangents (forward-over-reverse).
    pub tangents: u64,
    /// Their cotangents and the R-op of the cotangents.
    pub cotangents: u64,
    /// Targets, per-row loss terms and max-pooling's argmax of the batch.
    pub scratch: u64,
}

impl MemoryUse {
    /// Everything, in bytes.
    pub fn total(&self) -> u64 {
        self.params + self.grads + self.probe_and_hz + self.values + self.tangents + self.cotangents + self.scratch
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

#[derive(Clone, Copy, Debug)]
enum Items {
    /// one invocation per element of a [rows, n] tensor
    PerRow(u32),
    /// one invocation per TILE × TILE block of a [rows, n] tensor (the tiled kernels)
    Tiles(u32),
    /// one invocation per 4 channels × 4 pixels of a [rows, channels, plane] tensor (tiled conv)
    PixelTiles { channels: u32, plane: u32 },
    /// a fixed count, whatever the batch
    Fixed(u32),
}

/// The register tile of the `*_tiled` kernels (`TILE` in shaders/dense_tiled.wgsl).
const TILE: u32 = 4;

#[derive(Clone, Copy, Debug)]
struct Dispatch {
    kernel: Kernel,
    group: usize,
    items: Items,
}

/// One layer's (or the loss's) dispatches in each pass, in the order they run.
#[derive(Default)]
struct LayerPasses {
    fwd: Vec<Dispatch>,
    tangent: Vec<Dispatch>,
    bwd: Vec<Dispatch>,
    rbwd: Vec<Dispatch>,
    /// a fused forward + tangent (None: `fwd` then `tangent`)
    fwd_tangent: Option<Vec<Dispatch>>,
    /// a fused backward + R-backward (None: `bwd` then `rbwd`)
    bwd_rbwd: Option<Vec<Dispatch>>,
}

/// Folds each activation that sits next to a dense layer into that layer's tiled kernels
/// (shaders/dense_tiled.wgsl, "activation epilogues"): a dense layer followed by an activation
/// writes the activation's output and tangent itself; one preceded by an activation writes the
/// activation's input cotangent and its R-op. The activation's own dispatches of those passes
/// are dropped. Exact: the epilogue evaluates the same f, f′, f″ as the activation kernels.
fn fold_activations_into_dense(
    model: &Resolved,
    nodes: &[NodeOffsets],
    metas: &mut [LayerMeta],
    passes: &mut [LayerPasses],
) {
    let layers = &model.layers;
    for i in 0..layers.len().saturating_sub(1) {
        let (a, b) = (&layers[i], &layers[i + 1]);
        if b.input != a.output {
            continue;
        }
        match (a.op, b.op) {
            (LayerOp::Dense { .. }, LayerOp::Activation { act, .. }) if act.kernels().is_some() => {
                let post = nodes[b.output];
                metas[i].act_fwd = act.code();
                metas[i].post_x_off = post.x;
                metas[i].post_t_off = post.t;
                let p = &mut passes[i + 1];
                p.fwd.clear();
                p.tangent.clear();
                p.fwd_tangent = Some(Vec::new());
            }
            (LayerOp::Activation { act, .. }, LayerOp::Dense { .. }) if act.kernels().is_some() => {
                let pre = nodes[a.input];
                metas[i + 1].act_bwd = act.code();
                metas[i + 1].pre_x_off = pre.x;
                metas[i + 1].pre_t_off = pre.t;
                metas[i + 1].pre_g_off = pre.g;
                metas[i + 1].pre_r_off = pre.r;
                let p = &mut passes[i];
                p.bwd.clear();
                p.rbwd.clear();
                p.bwd_rbwd = Some(Vec::new());
            }
            _ => {}
        }
    }
}

/// The whole network's dispatch list of each [`Phase`].
struct PassLists {
    forward: Vec<Dispatch>,
    tangent: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    r_backward: Vec<Dispatch>,
    forward_tangent: Vec<Dispatch>,
    backward_r_backward: Vec<Dispatch>,
}

impl PassLists {
    /// Forward passes run the layers in order, reverse passes back to front.
    fn assemble(layers: &[LayerPasses]) -> PassLists {
        let forward = |f: &dyn Fn(&LayerPasses) -> Vec<Dispatch>| layers.iter().flat_map(f).collect::<Vec<_>>();
        let reverse = |f: &dyn Fn(&LayerPasses) -> Vec<Dispatch>| layers.iter().rev().flat_map(f).collect::<Vec<_>>();
        PassLists {
            forward: forward(&|p| p.fwd.clone()),
            tangent: forward(&|p| p.tangent.clone()),
            backward: reverse(&|p| p.bwd.clone()),
            r_backward: reverse(&|p| p.rbwd.clone()),
            forward_tangent: forward(&|p| {
                p.fwd_tangent.clone().unwrap_or_else(|| [&p.fwd[..], &p.tangent[..]].concat())
            }),
            backward_r_backward: reverse(&|p| p.bwd_rbwd.clone().unwrap_or_else(|| [&p.bwd[..], &p.rbwd[..]].concat())),
        }
    }

    fn get(&self, phase: Phase) -> &[Dispatch] {
        match phase {
            Phase::Forward => &self.forward,
            Phase::Tangent => &self.tangent,
            Phase::Backward => &self.backward,
            Phase::RBackward => &self.r_backward,
            Phase::ForwardTangent => &self.forward_tangent,
            Phase::BackwardRBackward => &self.backward_r_backward,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct NodeOffsets {
    x: u32,
    t: u32,
    g: u32,
    r: u32,
}

fn set_geometry(meta: &mut LayerMeta, g: &super::Geometry) {
    let u = |v: usize| v as u32;
    meta.c_in = u(g.c_in);
    meta.h_in = u(g.h_in);
    meta.w_in = u(g.w_in);
    meta.c_out = u(g.c_out);
    meta.h_out = u(g.h_out);
    meta.w_out = u(g.w_out);
    meta.k_h = u(g.k_h);
    meta.k_w = u(g.k_w);
    meta.stride_h = u(g.stride_h);
    meta.stride_w = u(g.stride_w);
    meta.pad_h = u(g.pad_h);
    meta.pad_w = u(g.pad_w);
    meta.n_in = u(g.in_len());
    meta.n_out = u(g.out_len());
}

/// The GPU model.
pub struct Network {
    spec: ModelSpec,
    model: Resolved,
    max_batch: usize,
    pub(crate) arenas: Arenas,
    batch_meta: wgpu::Buffer,
    uniforms: UniformArena,
    gather_slot: usize,
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
}

impl Network {
    /// Builds the network with PyTorch-default initial weights from `options.seed`, recording the
    /// device's default kernel set ([`Gpu::kernels`]).
    pub fn new(gpu: &Gpu, spec: &ModelSpec, options: NetworkOptions) -> Result<Network> {
        Network::with_kernels(gpu, spec, options, gpu.kernels())
    }

    /// [`Network::new`] with an explicit kernel set (benchmarks compare both in one process).
    pub fn with_kernels(gpu: &Gpu, spec: &ModelSpec, options: NetworkOptions, kernels: KernelSet) -> Result<Network> {
        let model = spec.resolve()?;
        if options.max_batch == 0 {
            return Err(Error::Config("max_batch must be at least 1".into()));
        }
        let rows = options.max_batch;
        let k = model.output_width();
        let target_width = model.loss.target_width(k);

        // ---- activation arena layout: per node x, t, g, r; then targets and per-row loss terms
        let mut len = 0usize;
        let mut take = |n: usize| {
            let off = len;
            len += n;
            off as u32
        };
        // without curvature there are no tangents or R-cotangents: their offsets are never used
        // (the passes that would read them are empty)
        let curvature = options.curvature;
        let nodes: Vec<NodeOffsets> = model
            .nodes
            .iter()
            .map(|&w| {
                let x = take(rows * w);
                let t = if curvature { take(rows * w) } else { 0 };
                let g = take(rows * w);
                let r = if curvature { take(rows * w) } else { 0 };
                NodeOffsets { x, t, g, r }
            })
            .collect();
        let target_off = take(rows * target_width);
        let loss_off = take(rows);
        let hit_off = take(rows);
        let lse_off = take(rows);
        let t_loss_off = take(rows);
        // ---- one LayerMeta per layer, then the loss, the two reductions and the gather
        let mut metas = Vec::new();
        let mut layer_passes: Vec<LayerPasses> = Vec::new();
        let cpu_adapter = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
        for layer in &model.layers {
            let (i, o) = (nodes[layer.input], nodes[layer.output]);
            let mut meta = LayerMeta {
                x_off: i.x,
                y_off: o.x,
                t_x_off: i.t,
                t_y_off: o.t,
                g_x_off: i.g,
                g_y_off: o.g,
                r_x_off: i.r,
                r_y_off: o.r,
                flags: if layer.input > 0 { FLAG_INPUT_HAS_TANGENT } else { 0 },
                ..Default::default()
            };
            let group = metas.len();
            let d = |kernel, items| Dispatch { kernel, group, items };
            let mut p = LayerPasses::default();
            match layer.op {
                LayerOp::Dense { n_in, n_out, w_off, b_off } => {
                    meta.n_in = n_in as u32;
                    meta.n_out = n_out as u32;
                    meta.w_off = w_off as u32;
                    meta.b_off = b_off as u32;
                    let (n_in, n_out) = (n_in as u32, n_out as u32);
                    let has_input_grad = layer.input > 0;
                    match kernels {
                        KernelSet::Naive => {
                            let params = Items::Fixed(n_out * (n_in + 1));
                            p.fwd.push(d(Kernel::DenseFwd, Items::PerRow(n_out)));
                            p.tangent.push(d(Kernel::DenseTangent, Items::PerRow(n_out)));
                            p.bwd.push(d(Kernel::DenseBwdW, params));
                            p.rbwd.push(d(Kernel::DenseRbwdW, params));
                            if has_input_grad {
                                p.bwd.push(d(Kernel::DenseBwdX, Items::PerRow(n_in)));
                                p.rbwd.push(d(Kernel::DenseRbwdX, Items::PerRow(n_in)));
                            }
                        }
                        KernelSet::Tiled => {
                            let params = Items::Fixed(n_out.div_ceil(TILE) * (n_in + 1).div_ceil(TILE));
                            p.fwd.push(d(Kernel::DenseFwdTiled, Items::Tiles(n_out)));
                            p.tangent.push(d(Kernel::DenseTangentTiled, Items::Tiles(n_out)));
                            // the fused forward + tangent kernel holds 8 accumulators and 4 loads
                            // of 4 values per step: it spills on CPU adapters, where a SIMD lane
                            // per invocation makes every scalar a vector register (measured slower
                            // than fwd then tangent on lavapipe and SwiftShader, BENCHMARKS.md)
                            if !cpu_adapter {
                                p.fwd_tangent = Some(vec![d(Kernel::DenseFwdTangentTiled, Items::Tiles(n_out))]);
                            }
                            p.bwd.push(d(Kernel::DenseBwdWTiled, params));
                            p.rbwd.push(d(Kernel::DenseRbwdWTiled, params));
                            let mut fused = vec![d(Kernel::DenseBwdRbwdWTiled, params)];
                            if has_input_grad {
                                p.bwd.push(d(Kernel::DenseBwdXTiled, Items::Tiles(n_in)));
                                p.rbwd.push(d(Kernel::DenseRbwdXTiled, Items::Tiles(n_in)));
                                fused.push(d(Kernel::DenseBwdRbwdXTiled, Items::Tiles(n_in)));
                            }
                            p.bwd_rbwd = Some(fused);
                        }
                    }
                }
                LayerOp::Conv2d { geom, w_off, b_off } => {
                    set_geometry(&mut meta, &geom);
                    meta.w_off = w_off as u32;
                    meta.b_off = b_off as u32;
                    let (n_x, n_y) = (geom.in_len() as u32, geom.out_len() as u32);
                    let has_input_grad = layer.input > 0;
                    match kernels {
                        KernelSet::Naive => {
                            p.fwd.push(d(Kernel::ConvFwd, Items::PerRow(n_y)));
                            p.tangent.push(d(Kernel::ConvTangent, Items::PerRow(n_y)));
                            // one item per weight and per bias, each a sum over batch × output
                            // plane: a workgroup per item where that sum is long and the adapter
                            // is a real GPU, one invocation per item on CPU adapters (barriers
                            // cost more than they save there)
                            let params = (geom.weight_len() + geom.c_out) as u32;
                            let reduction = rows * geom.h_out * geom.w_out;
                            let (wb, wr) = if reduction > 256 && !cpu_adapter {
                                (Kernel::ConvBwdW, Kernel::ConvRbwdW)
                            } else {
                                (Kernel::ConvBwdWSerial, Kernel::ConvRbwdWSerial)
                            };
                            p.bwd.push(d(wb, Items::Fixed(params)));
                            p.rbwd.push(d(wr, Items::Fixed(params)));
                            if has_input_grad {
                                p.bwd.push(d(Kernel::ConvBwdX, Items::PerRow(n_x)));
                                p.rbwd.push(d(Kernel::ConvRbwdX, Items::PerRow(n_x)));
                            }
                        }
                        KernelSet::Tiled => {
                            // a lone tangent / R-backward pass runs the fused kernel: it rewrites
                            // y (∇W, g_x) with bit-identical values
                            let out_tiles = Items::PixelTiles {
                                channels: geom.c_out as u32,
                                plane: (geom.h_out * geom.w_out) as u32,
                            };
                            let in_tiles =
                                Items::PixelTiles { channels: geom.c_in as u32, plane: (geom.h_in * geom.w_in) as u32 };
                            let taps = (geom.c_in * geom.k_h * geom.k_w) as u32;
                            let params = Items::Fixed((geom.c_out as u32).div_ceil(TILE) * (taps + 1).div_ceil(TILE));
                            p.fwd.push(d(Kernel::ConvFwdTiled, out_tiles));
                            p.tangent.push(d(Kernel::ConvFwdTangentTiled, out_tiles));
                            p.fwd_tangent = Some(p.tangent.clone());
                            p.bwd.push(d(Kernel::ConvBwdWTiled, params));
                            p.rbwd.push(d(Kernel::ConvBwdRbwdWTiled, params));
                            if has_input_grad {
                                p.bwd.push(d(Kernel::ConvBwdXTiled, in_tiles));
                                p.rbwd.push(d(Kernel::ConvBwdRbwdXTiled, in_tiles));
                            }
                            p.bwd_rbwd = Some(p.rbwd.clone());
                        }
                    }
                }
                LayerOp::MaxPool2d { geom } => {
                    set_geometry(&mut meta, &geom);
                    meta.aux_off = take(rows * geom.out_len());
                    let (n_x, n_y) = (geom.in_len() as u32, geom.out_len() as u32);
                    p.fwd.push(d(Kernel::MaxpoolFwd, Items::PerRow(n_y)));
                    p.tangent.push(d(Kernel::MaxpoolTangent, Items::PerRow(n_y)));
                    p.bwd.push(d(Kernel::MaxpoolBwd, Items::PerRow(n_x)));
                    p.rbwd.push(d(Kernel::MaxpoolRbwd, Items::PerRow(n_x)));
                }
                LayerOp::AvgPool2d { geom } => {
                    set_geometry(&mut meta, &geom);
                    let (n_x, n_y) = (geom.in_len() as u32, geom.out_len() as u32);
                    p.fwd.push(d(Kernel::AvgpoolFwd, Items::PerRow(n_y)));
                    p.tangent.push(d(Kernel::AvgpoolTangent, Items::PerRow(n_y)));
                    p.bwd.push(d(Kernel::AvgpoolBwd, Items::PerRow(n_x)));
                    p.rbwd.push(d(Kernel::AvgpoolRbwd, Items::PerRow(n_x)));
                }
                LayerOp::Activation { act, n } => {
                    meta.n_in = n as u32;
                    meta.n_out = n as u32;
                    if let Some([f, t, b, r]) = act.kernels() {
                        p.fwd.push(d(f, Items::PerRow(n as u32)));
                        p.tangent.push(d(t, Items::PerRow(n as u32)));
                        p.bwd.push(d(b, Items::PerRow(n as u32)));
                        p.rbwd.push(d(r, Items::PerRow(n as u32)));
                    }
                }
            }
            metas.push(meta);
            layer_passes.push(p);
        }
        if kernels == KernelSet::Tiled {
            fold_activations_into_dense(&model, &nodes, &mut metas, &mut layer_passes);
        }
        let out = *nodes.last().ok_or_else(|| Error::Shape("model without nodes".into()))?;
        let loss_meta = LayerMeta {
            n_in: k as u32,
            n_out: k as u32,
            x_off: out.x,
            t_x_off: out.t,
            g_x_off: out.g,
            r_x_off: out.r,
            target_off,
            loss_off,
            hit_off,
            lse_off,
            t_loss_off,
            target_width: target_width as u32,
            ..Default::default()
        };
        let loss_group = metas.len();
        metas.push(loss_meta);
        let [lf, lt, lb, lr] = model.loss.kernels();
        let k32 = k as u32;
        let loss = |kernel, items| vec![Dispatch { kernel, group: loss_group, items }];
        layer_passes.push(LayerPasses {
            fwd: loss(lf, Items::PerRow(1)),
            tangent: loss(lt, Items::PerRow(1)),
            bwd: loss(lb, Items::PerRow(k32)),
            rbwd: loss(lr, Items::PerRow(k32)),
            fwd_tangent: None,
            bwd_rbwd: None,
        });
        let mut passes = PassLists::assemble(&layer_passes);
        if !curvature {
            for list in [
                &mut passes.tangent,
                &mut passes.r_backward,
                &mut passes.forward_tangent,
                &mut passes.backward_r_backward,
            ] {
                list.clear();
            }
        }
        let reduce_group = metas.len();
        metas.push(loss_meta);
        let reduce_accumulate_group = metas.len();
        metas.push(LayerMeta { flags: FLAG_ACCUMULATE, ..loss_meta });
        let gather_slot = metas.len();
        metas.push(LayerMeta { n_in: model.nodes[0] as u32, x_off: nodes[0].x, ..loss_meta });

        if len > u32::MAX as usize / 4 {
            return Err(Error::Shape(format!("the activation arena ({len} floats) is too large; lower max_batch")));
        }
        gpu.check_storage_size(&format!("the activation arena for batch {rows}"), len as u64 * 4)?;

        let arenas = Arenas {
            theta: storage_buffer(gpu, "theta", model.n_params)?,
            g_theta: storage_buffer(gpu, "g_theta", model.n_params)?,
            z: storage_buffer(gpu, "z", if curvature { model.n_params } else { 1 })?,
            r_theta: storage_buffer(gpu, "r_theta (Hz)", if curvature { model.n_params } else { 1 })?,
            work: storage_buffer(gpu, "work", len)?,
            stats: storage_buffer(gpu, "stats", stat::LEN)?,
            index: storage_buffer(gpu, "batch indices", rows)?,
        };
        let theta0 = spec.init_params(options.seed)?;
        gpu.queue.write_buffer(&arenas.theta, 0, bytemuck::cast_slice(&theta0));

        let uniforms = UniformArena::new(gpu, "layer metas", &metas);
        let batch_meta = uniform_buffer(gpu, "batch meta", &BatchMeta { rows: 1, _pad: [0; 3] });
        let groups = (0..gather_slot)
            .map(|slot| {
                let b = |binding: u32, resource| wgpu::BindGroupEntry { binding, resource };
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("layer"),
                    layout: gpu.pipelines().layout(BindLayout::Layer),
                    entries: &[
                        b(0, uniforms.binding(slot)),
                        b(1, batch_meta.as_entire_binding()),
                        b(2, arenas.theta.as_entire_binding()),
                        b(3, arenas.z.as_entire_binding()),
                        b(4, arenas.g_theta.as_entire_binding()),
                        b(5, arenas.r_theta.as_entire_binding()),
                        b(6, arenas.work.as_entire_binding()),
                        b(7, arenas.stats.as_entire_binding()),
                    ],
                })
            })
            .collect();
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
            groups,
            passes,
            kernels,
            curvature,
            reduce_group,
            reduce_accumulate_group,
            stats_staging,
            param_staging,
            output_off: out.x,
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
        let per_node: u64 = self.model.nodes.iter().map(|&w| (w * self.max_batch) as u64 * 4).sum();
        let c = self.curvature as u64;
        MemoryUse {
            params: p,
            grads: p,
            probe_and_hz: 2 * p * c,
            values: per_node,
            tangents: per_node * c,
            cotangents: per_node * (1 + c),
            scratch: self.arenas.work.size() - per_node * (2 + 2 * c),
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
        let b = |binding: u32, resource| wgpu::BindGroupEntry { binding, resource };
        let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gather"),
            layout: gpu.pipelines().layout(BindLayout::Gather),
            entries: &[
                b(0, self.uniforms.binding(self.gather_slot)),
                b(1, self.batch_meta.as_entire_binding()),
                b(2, inputs.as_entire_binding()),
                b(3, targets.as_entire_binding()),
                b(4, self.arenas.index.as_entire_binding()),
                b(5, self.arenas.work.as_entire_binding()),
            ],
        });
        gpu.check()?;
        Ok(BoundData { group, rows: data.rows, stream })
    }

    /// Validates a batch and queues the upload of its indices and size (takes effect at the
    /// next submit). Returns the number of rows.
    pub fn prepare(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<u32> {
        let n = batch.indices.len();
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
            None => gpu.queue.write_buffer(&self.arenas.index, 0, bytemuck::cast_slice(batch.indices)),
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
                gpu.queue.write_buffer(&s.data, 0, bytemuck::cast_slice(&x));
                gpu.queue.write_buffer(&s.targets, 0, bytemuck::cast_slice(&t));
                gpu.queue.write_buffer(&self.arenas.index, 0, bytemuck::cast_slice(&s.identity[..n]));
            }
        }
        gpu.queue.write_buffer(&self.batch_meta, 0, bytemuck::bytes_of(&BatchMeta { rows: n as u32, _pad: [0; 3] }));
        Ok(n as u32)
    }

    /// Records the gather of the prepared batch into the input node and target slots.
    pub fn encode_gather(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, data: &BoundData, rows: u32) {
        let k = self.model.output_width();
        let target_width = self.model.loss.target_width(k) as u32;
        dispatch(gpu, pass, Kernel::GatherRows, &data.group, rows * self.model.nodes[0] as u32);
        dispatch(gpu, pass, Kernel::GatherTargets, &data.group, rows * target_width);
    }

    /// Records one of the passes for a batch of `rows` (the tangent and R-backward passes record
    /// nothing on a network built without curvature buffers).
    pub fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, phase: Phase, rows: u32) {
        for d in self.passes.get(phase) {
            let items = match d.items {
                Items::PerRow(n) => rows * n,
                Items::Tiles(n) => rows.div_ceil(TILE) * n.div_ceil(TILE),
                Items::PixelTiles { channels, plane } => channels.div_ceil(TILE) * (rows * plane).div_ceil(TILE),
                Items::Fixed(n) => n,
            };
            dispatch(gpu, pass, d.kernel, &self.groups[d.group], items);
        }
    }

    /// The network on a prepared mini-batch, as an [`Objective`] an optimizer can step: writes
    /// the batch's row indices and size (the only host work of a step).
    pub fn on_batch<'a>(&'a self, gpu: &Gpu, batch: &'a Batch<'a>) -> Result<OnBatch<'a>> {
        let rows = self.prepare(gpu, batch)?;
        Ok(OnBatch { net: self, data: batch.data, rows })
    }

    /// Records the reduction of the per-row loss terms into `stats` (added to it if `accumulate`).
    pub fn encode_reduce(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, accumulate: bool) {
        let group = if accumulate { self.reduce_accumulate_group } else { self.reduce_group };
        dispatch(gpu, pass, Kernel::LossReduce, &self.groups[group], 1);
    }

    /// Reads the stats scalars (a fixed staging buffer: fine inside a training loop).
    pub async fn read_stats(&self, gpu: &Gpu) -> Result<[f32; stat::LEN]> {
        let data = read_f32_with(gpu, &self.arenas.stats, 0, stat::LEN, &self.stats_staging).await?;
        let mut out = [0f32; stat::LEN];
        out.copy_from_slice(&data);
        Ok(out)
    }

    /// Runs the given passes on a batch in one submit.
    fn run(&self, gpu: &Gpu, batch: &Batch<'_>, phases: &[Phase]) -> Result<u32> {
        let rows = self.prepare(gpu, batch)?;
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
        Ok(rows)
    }

    /// The network's outputs for a batch, `[rows, k]` row-major (logits for cross-entropy).
    pub async fn predict(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<Vec<f32>> {
        let rows = self.run(gpu, batch, &[Phase::Forward])?;
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
            let rows = self.prepare(gpu, &batch)?;
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

    /// Overwrites one named tensor (e.g. `"2.weight"`), checking its shape.
    pub fn set_tensor(&self, gpu: &Gpu, name: &str, shape: &[usize], values: &[f32]) -> Result<()> {
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
