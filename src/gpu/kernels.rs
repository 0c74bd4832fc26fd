//! The typed kernel ids, the WGSL modules they live in, their bind-group layouts, and the
//! pipeline cache that builds each pipeline the first time it is used.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How a kernel's bindings are laid out. Every kernel of a layout binds the same buffers, so one
/// bind group serves all four kernels of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindLayout {
    /// meta, batch, θ, z, ∇θ, Hz, work, stats, side (shaders/layer_bindings.wgsl)
    Layer,
    /// slice, step, θ, ∇θ, z, Hz, curv, state, stats (shaders/optim_bindings.wgsl)
    Optim,
    /// meta, batch, data, targets, index, work (shaders/gather.wgsl)
    Gather,
    /// meta, batch, pixel meta, 3 byte chunks, byte table, index, shifts, work
    /// (shaders/gather_pixels.wgsl)
    GatherPixels,
    /// point, θ, θ₀, d₁, d₂ (shaders/landscape.wgsl)
    Axpy,
}

/// Binding access of one entry of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<uniform>`
    Uniform,
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

impl BindLayout {
    /// All layouts, in the order the pipeline cache stores them.
    pub const ALL: [BindLayout; 5] =
        [BindLayout::Layer, BindLayout::Optim, BindLayout::Gather, BindLayout::GatherPixels, BindLayout::Axpy];

    /// The bindings, in binding-index order.
    pub fn entries(self) -> &'static [Access] {
        use Access::*;
        match self {
            BindLayout::Layer => &[Read, Uniform, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite],
            BindLayout::Optim => &[Uniform, Uniform, ReadWrite, Read, ReadWrite, Read, ReadWrite, ReadWrite, ReadWrite],
            BindLayout::Gather => &[Uniform, Uniform, Read, Read, Read, ReadWrite],
            BindLayout::GatherPixels => &[Uniform, Uniform, Uniform, Read, Read, Read, Read, Read, Read, ReadWrite],
            BindLayout::Axpy => &[Uniform, ReadWrite, Read, Read, Read],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One WGSL module: a file of `shaders/` with the shared header(s) prepended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ShaderModule {
    Dense,
    Conv,
    Pool,
    Activation,
    Norm,
    Add,
    Loss,
    Probe,
    Optim,
    Gather,
    GatherPixels,
    Landscape,
    Surface,
}

macro_rules! shader {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../shaders/", $file)), "\n"),+)
    };
}

impl ShaderModule {
    /// Every module.
    pub const ALL: [ShaderModule; 13] = [
        ShaderModule::Dense,
        ShaderModule::Conv,
        ShaderModule::Pool,
        ShaderModule::Activation,
        ShaderModule::Norm,
        ShaderModule::Add,
        ShaderModule::Loss,
        ShaderModule::Probe,
        ShaderModule::Optim,
        ShaderModule::Gather,
        ShaderModule::GatherPixels,
        ShaderModule::Landscape,
        ShaderModule::Surface,
    ];

    /// The complete WGSL source (the optimizer module gathers every registered method's WGSL).
    pub fn source(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            ShaderModule::Dense => {
                shader!(
                    "common.wgsl",
                    "layer_bindings.wgsl",
                    "activation_math.wgsl",
                    "dense.wgsl",
                    "dense_tiled.wgsl",
                    "dense_shared.wgsl"
                )
            }
            ShaderModule::Conv => shader!("common.wgsl", "layer_bindings.wgsl", "conv.wgsl", "conv_tiled.wgsl"),
            ShaderModule::Pool => shader!("common.wgsl", "layer_bindings.wgsl", "pool.wgsl"),
            ShaderModule::Activation => {
                shader!("common.wgsl", "layer_bindings.wgsl", "activation_math.wgsl", "activation.wgsl")
            }
            ShaderModule::Norm => shader!("common.wgsl", "layer_bindings.wgsl", "norm.wgsl"),
            ShaderModule::Add => shader!("common.wgsl", "layer_bindings.wgsl", "add.wgsl"),
            ShaderModule::Loss => shader!("common.wgsl", "layer_bindings.wgsl", "loss.wgsl"),
            ShaderModule::Probe => shader!("common.wgsl", "optim_bindings.wgsl", "probe.wgsl"),
            ShaderModule::Optim => {
                let mut src = String::from(shader!("common.wgsl", "optim_bindings.wgsl", "optim.wgsl"));
                for wgsl in crate::optim::METHOD_WGSL {
                    src.push_str(wgsl);
                    src.push('\n');
                }
                return Cow::Owned(src);
            }
            ShaderModule::Gather => shader!("common.wgsl", "gather.wgsl"),
            ShaderModule::GatherPixels => shader!("common.wgsl", "gather_pixels.wgsl"),
            ShaderModule::Landscape => shader!("common.wgsl", "landscape.wgsl"),
            ShaderModule::Surface => shader!("common.wgsl", "surface.wgsl"),
        })
    }

    /// The bind-group layout all entry points of this module use.
    pub fn layout(self) -> BindLayout {
        match self {
            ShaderModule::Dense
            | ShaderModule::Conv
            | ShaderModule::Pool
            | ShaderModule::Activation
            | ShaderModule::Norm
            | ShaderModule::Add
            | ShaderModule::Loss
            | ShaderModule::Surface => BindLayout::Layer,
            ShaderModule::Probe | ShaderModule::Optim => BindLayout::Optim,
            ShaderModule::Gather => BindLayout::Gather,
            ShaderModule::GatherPixels => BindLayout::GatherPixels,
            ShaderModule::Landscape => BindLayout::Axpy,
        }
    }
}

/// The kernel table, written once: for each module, `Variant "entry_point" [Grid]` (the grid
/// defaults to one invocation per item). It expands to the [`Kernel`] enum, `Kernel::ALL`, the
/// entry-point names, the modules and the grids.
macro_rules! kernels {
    ($($module:ident: [$($variant:ident $entry:literal $($grid:ident)?),+ $(,)?],)+) => {
        /// Every layer, loss, probe, data and landscape kernel, named as its WGSL entry point
        /// (`Kernel::TanhRbwd` ↔ `tanh_rbwd`). The optimizers' update kernels are not here: each
        /// method names its own ([`KernelId::Step`]).
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kernel {
            $($($variant,)+)+
        }

        impl Kernel {
            /// Every kernel, in declaration order; the pipeline cache is indexed by position.
            pub const ALL: &'static [Kernel] = &[$($(Kernel::$variant,)+)+];

            /// The WGSL entry point.
            pub fn entry_point(self) -> &'static str {
                match self {
                    $($(Kernel::$variant => $entry,)+)+
                }
            }

            /// The module that holds the entry point.
            pub fn module(self) -> ShaderModule {
                match self {
                    $($(Kernel::$variant => ShaderModule::$module,)+)+
                }
            }

            /// How items map to workgroups.
            pub fn grid(self) -> Grid {
                match self {
                    $($(Kernel::$variant => kernels!(@grid $($grid)?),)+)+
                }
            }
        }
    };
    (@grid) => { Grid::InvocationPerItem };
    (@grid $grid:ident) => { Grid::$grid };
}

kernels! {
    Dense: [
        DenseFwd "dense_fwd", DenseTangent "dense_tangent", DenseBwdW "dense_bwd_w", DenseBwdX "dense_bwd_x",
        DenseRbwdW "dense_rbwd_w", DenseRbwdX "dense_rbwd_x",
        DenseFwdTiled "dense_fwd_tiled", DenseTangentTiled "dense_tangent_tiled",
        DenseFwdTangentTiled "dense_fwd_tangent_tiled", DenseBwdXTiled "dense_bwd_x_tiled",
        DenseRbwdXTiled "dense_rbwd_x_tiled", DenseBwdRbwdXTiled "dense_bwd_rbwd_x_tiled",
        DenseBwdWTiled "dense_bwd_w_tiled", DenseRbwdWTiled "dense_rbwd_w_tiled",
        DenseBwdRbwdWTiled "dense_bwd_rbwd_w_tiled", DenseFwdShared "dense_fwd_shared" WorkgroupPerItem,
        DenseTangentShared "dense_tangent_shared" WorkgroupPerItem,
        DenseFwdTangentShared "dense_fwd_tangent_shared" WorkgroupPerItem,
        DenseBwdXShared "dense_bwd_x_shared" WorkgroupPerItem, DenseRbwdXShared "dense_rbwd_x_shared" WorkgroupPerItem,
        DenseBwdRbwdXShared "dense_bwd_rbwd_x_shared" WorkgroupPerItem,
        DenseBwdWShared "dense_bwd_w_shared" WorkgroupPerItem, DenseRbwdWShared "dense_rbwd_w_shared" WorkgroupPerItem,
        DenseBwdRbwdWShared "dense_bwd_rbwd_w_shared" WorkgroupPerItem,
    ],
    Conv: [
        ConvFwd "conv_fwd", ConvTangent "conv_tangent", ConvBwdW "conv_bwd_w" WorkgroupPerItem,
        ConvBwdX "conv_bwd_x", ConvRbwdW "conv_rbwd_w" WorkgroupPerItem, ConvRbwdX "conv_rbwd_x",
        ConvBwdWSerial "conv_bwd_w_serial", ConvRbwdWSerial "conv_rbwd_w_serial",
        ConvFwdTiled "conv_fwd_tiled", ConvFwdTangentTiled "conv_fwd_tangent_tiled",
        ConvBwdXTiled "conv_bwd_x_tiled", ConvBwdRbwdXTiled "conv_bwd_rbwd_x_tiled",
        ConvBwdWTiled "conv_bwd_w_tiled", ConvBwdRbwdWTiled "conv_bwd_rbwd_w_tiled",
        ConvBwdWReduce "conv_bwd_w_reduce", ConvBwdRbwdWReduce "conv_bwd_rbwd_w_reduce",
    ],
    Pool: [
        MaxpoolFwd "maxpool_fwd", MaxpoolTangent "maxpool_tangent", MaxpoolBwd "maxpool_bwd",
        MaxpoolRbwd "maxpool_rbwd", AvgpoolFwd "avgpool_fwd", AvgpoolTangent "avgpool_tangent",
        AvgpoolBwd "avgpool_bwd", AvgpoolRbwd "avgpool_rbwd", MaxpoolBwdRbwd "maxpool_bwd_rbwd",
        AvgpoolBwdRbwd "avgpool_bwd_rbwd", MaxpoolTilingBwd "maxpool_tiling_bwd",
        MaxpoolTilingBwdRbwd "maxpool_tiling_bwd_rbwd", AvgpoolTilingBwd "avgpool_tiling_bwd",
        AvgpoolTilingBwdRbwd "avgpool_tiling_bwd_rbwd", MaxpoolFwdTangent "maxpool_fwd_tangent",
        AvgpoolFwdTangent "avgpool_fwd_tangent",
    ],
    Activation: [
        ReluFwd "relu_fwd", ReluTangent "relu_tangent", ReluBwd "relu_bwd", ReluRbwd "relu_rbwd",
        TanhFwd "tanh_fwd", TanhTangent "tanh_tangent", TanhBwd "tanh_bwd", TanhRbwd "tanh_rbwd",
        SigmoidFwd "sigmoid_fwd", SigmoidTangent "sigmoid_tangent", SigmoidBwd "sigmoid_bwd",
        SigmoidRbwd "sigmoid_rbwd", SoftplusFwd "softplus_fwd", SoftplusTangent "softplus_tangent",
        SoftplusBwd "softplus_bwd", SoftplusRbwd "softplus_rbwd", GeluFwd "gelu_fwd",
        GeluTangent "gelu_tangent", GeluBwd "gelu_bwd", GeluRbwd "gelu_rbwd",
        ReluFwdTangent "relu_fwd_tangent", ReluBwdRbwd "relu_bwd_rbwd", TanhFwdTangent "tanh_fwd_tangent",
        TanhBwdRbwd "tanh_bwd_rbwd", SigmoidFwdTangent "sigmoid_fwd_tangent", SigmoidBwdRbwd "sigmoid_bwd_rbwd",
        SoftplusFwdTangent "softplus_fwd_tangent", SoftplusBwdRbwd "softplus_bwd_rbwd",
        GeluFwdTangent "gelu_fwd_tangent", GeluBwdRbwd "gelu_bwd_rbwd",
    ],
    Norm: [
        NormFwd "norm_fwd" WorkgroupPerItem, NormTangent "norm_tangent" WorkgroupPerItem,
        NormBwd "norm_bwd" WorkgroupPerItem, NormRbwd "norm_rbwd" WorkgroupPerItem,
        LayernormBwdParams "layernorm_bwd_params", LayernormRbwdParams "layernorm_rbwd_params",
    ],
    Add: [
        AddFwd "add_fwd", AddTangent "add_tangent", AddBwd "add_bwd", AddRbwd "add_rbwd",
        AddBwdSkip "add_bwd_skip", AddRbwdSkip "add_rbwd_skip", FanoutSum "fanout_sum", FanoutSumR "fanout_sum_r",
    ],
    Loss: [
        CrossEntropyFwd "cross_entropy_fwd", CrossEntropyTangent "cross_entropy_tangent",
        CrossEntropyBwd "cross_entropy_bwd", CrossEntropyRbwd "cross_entropy_rbwd",
        MseFwd "mse_fwd", MseTangent "mse_tangent", MseBwd "mse_bwd", MseRbwd "mse_rbwd",
        LossReduce "loss_reduce" Single, CrossEntropyFwdTangent "cross_entropy_fwd_tangent",
        CrossEntropyBwdRbwd "cross_entropy_bwd_rbwd", MseFwdTangent "mse_fwd_tangent", MseBwdRbwd "mse_bwd_rbwd",
    ],
    Probe: [
        ProbeRademacher "probe_rademacher", ProbeGaussian "probe_gaussian", CurvAccumulate "curv_accumulate",
        CurvAbs "curv_abs", CurvGroupMean "curv_group_mean",
    ],
    Optim: [GradSumsq "grad_sumsq" Single,],
    Gather: [GatherRows "gather_rows", GatherTargets "gather_targets",],
    GatherPixels: [GatherPixels "gather_pixels",],
    Landscape: [LandscapePoint "landscape_point",],
    Surface: [
        SurfaceFwd "surface_fwd" Single, SurfaceTangent "surface_tangent" Single,
        SurfaceBwd "surface_bwd" Single, SurfaceRbwd "surface_rbwd" Single,
    ],
}

impl Kernel {
    /// The bind-group layout of the kernel.
    pub fn layout(self) -> BindLayout {
        self.module().layout()
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Any pipeline: a fixed [`Kernel`], or an optimizer's update kernel named by its method
/// (`Method::kernel`), which lives in the optimizer module with the `BindLayout::Optim` bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelId {
    /// A kernel of the table.
    Fixed(Kernel),
    /// An optimizer's update kernel, by entry point.
    Step(&'static str),
}

impl From<Kernel> for KernelId {
    fn from(k: Kernel) -> Self {
        KernelId::Fixed(k)
    }
}

impl KernelId {
    /// Every pipeline the cache builds: the table, then every registered method's kernels.
    pub fn all() -> Vec<KernelId> {
        let steps = crate::optim::METHOD_KERNELS.iter().flat_map(|k| k.iter().map(|e| KernelId::Step(e)));
        Kernel::ALL.iter().map(|k| KernelId::Fixed(*k)).chain(steps).collect()
    }

    /// The WGSL entry point.
    pub fn entry_point(self) -> &'static str {
        match self {
            KernelId::Fixed(k) => k.entry_point(),
            KernelId::Step(e) => e,
        }
    }

    /// The module that holds the entry point.
    pub fn module(self) -> ShaderModule {
        match self {
            KernelId::Fixed(k) => k.module(),
            KernelId::Step(_) => ShaderModule::Optim,
        }
    }

    /// How items map to workgroups (an update is one invocation per parameter).
    pub fn grid(self) -> Grid {
        match self {
            KernelId::Fixed(k) => k.grid(),
            KernelId::Step(_) => Grid::InvocationPerItem,
        }
    }

    /// The bind-group layout.
    pub fn layout(self) -> BindLayout {
        self.module().layout()
    }
}

/// How a kernel's items map onto its dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// One invocation per item, 256 per workgroup (`item_index` in WGSL).
    InvocationPerItem,
    /// One 256-thread workgroup per item, reducing over a long axis (`group_index` in WGSL).
    WorkgroupPerItem,
    /// Exactly one workgroup, whatever the item count.
    Single,
}

/// Bind-group layouts (made when the device opens) and the compute pipelines, each built the
/// first time it is asked for and kept for the device's life.
///
/// Building a pipeline is what costs at start-up (the driver compiles the entry point: about
/// 10 ms each on lavapipe, more on SwiftShader), and a network or a race dispatches a small part
/// of the table (a race on a 2-D surface: five of 150), so nothing is built before it is needed.
/// The hazard this trades for: the first recording of a kernel creates its pipeline (once per
/// device; every later step creates nothing, as before). wgpu has no asynchronous pipeline creation
/// (gfx-rs/wgpu#3794); in a browser, `createComputePipeline` returns at once and the GPU process
/// compiles in the background until the first submit that uses it.
pub struct Pipelines {
    device: wgpu::Device,
    layouts: Vec<wgpu::BindGroupLayout>,
    pipeline_layouts: Vec<wgpu::PipelineLayout>,
    /// one per `ShaderModule::ALL` entry: the source is parsed and validated on first use
    modules: Vec<OnceLock<wgpu::ShaderModule>>,
    /// one per `Kernel::ALL` entry, by position
    pipelines: Vec<OnceLock<wgpu::ComputePipeline>>,
    /// the optimizers' update kernels, by entry point (every registered method's)
    steps: Vec<(&'static str, OnceLock<wgpu::ComputePipeline>)>,
    /// pipelines built so far (for start-up accounting and the laziness test)
    built: AtomicUsize,
}

impl Pipelines {
    /// Makes the bind-group layouts; builds no pipeline.
    pub fn new(device: &wgpu::Device) -> Self {
        let layouts: Vec<wgpu::BindGroupLayout> = BindLayout::ALL
            .iter()
            .map(|layout| {
                let entries: Vec<wgpu::BindGroupLayoutEntry> = layout
                    .entries()
                    .iter()
                    .enumerate()
                    .map(|(binding, access)| wgpu::BindGroupLayoutEntry {
                        binding: binding as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: match access {
                            Access::Uniform => wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Uniform,
                                has_dynamic_offset: false,
                                min_binding_size: None,
                            },
                            Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                                has_dynamic_offset: false,
                                min_binding_size: None,
                            },
                        },
                        count: None,
                    })
                    .collect();
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&format!("{layout:?}")),
                    entries: &entries,
                })
            })
            .collect();
        let pipeline_layouts: Vec<wgpu::PipelineLayout> = layouts
            .iter()
            .map(|bgl| {
                device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: None,
                    bind_group_layouts: &[Some(bgl)],
                    immediate_size: 0,
                })
            })
            .collect();
        let steps = KernelId::all()
            .into_iter()
            .filter_map(|k| match k {
                KernelId::Step(entry) => Some((entry, OnceLock::new())),
                KernelId::Fixed(_) => None,
            })
            .collect();
        Pipelines {
            device: device.clone(),
            layouts,
            pipeline_layouts,
            modules: ShaderModule::ALL.iter().map(|_| OnceLock::new()).collect(),
            pipelines: Kernel::ALL.iter().map(|_| OnceLock::new()).collect(),
            steps,
            built: AtomicUsize::new(0),
        }
    }

    fn module(&self, module: ShaderModule) -> &wgpu::ShaderModule {
        self.modules[module as usize].get_or_init(|| {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&format!("{module:?}")),
                source: wgpu::ShaderSource::Wgsl(module.source()),
            })
        })
    }

    fn build(&self, k: KernelId) -> wgpu::ComputePipeline {
        self.built.fetch_add(1, Ordering::Relaxed);
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry_point()),
            layout: Some(&self.pipeline_layouts[k.layout().index()]),
            module: self.module(k.module()),
            entry_point: Some(k.entry_point()),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// The pipeline of a kernel, built now if this is its first use; None for an update kernel
    /// no registered method defines.
    pub fn pipeline(&self, kernel: KernelId) -> Option<&wgpu::ComputePipeline> {
        let slot = match kernel {
            KernelId::Fixed(k) => &self.pipelines[k.index()],
            KernelId::Step(entry) => &self.steps.iter().find(|(e, _)| *e == entry)?.1,
        };
        Some(slot.get_or_init(|| self.build(kernel)))
    }

    /// How many pipelines have been built on this device so far (of [`KernelId::all`]).
    pub fn built(&self) -> usize {
        self.built.load(Ordering::Relaxed)
    }

    /// The bind-group layout.
    pub fn layout(&self, layout: BindLayout) -> &wgpu::BindGroupLayout {
        &self.layouts[layout.index()]
    }
}
