//! What the GPU runtime knows of kernels: bind-group layouts, shader modules, kernel ids and the
//! pipeline cache that builds each pipeline the first time it is used. It knows no layer, loss or
//! optimizer: each op declares its own module and kernels where its f64 reference and plan live
//! (`wgsl_kernels!` in src/nn/dense.rs, src/nn/conv.rs, …, src/optim/mod.rs), and
//! [`crate::kernels`] lists them all.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// Where a module's WGSL comes from.
#[derive(Clone, Copy)]
enum Source {
    /// files of `shaders/`, concatenated at compile time (`wgsl_kernels!`)
    Static(&'static str),
    /// assembled when first compiled (the optimizer module gathers every registered method's WGSL)
    Built(fn() -> String),
}

/// One WGSL module: files of `shaders/` (the shared header(s) first), compiled once per device
/// the first time one of its kernels is used. Declared as a `static` by its owner.
pub struct ShaderModule {
    /// Unique name; the pipeline cache keys modules by it.
    pub name: &'static str,
    /// The bind-group layout every entry point of the module uses.
    pub layout: BindLayout,
    source: Source,
}

impl ShaderModule {
    /// A module whose source is fixed at compile time.
    pub const fn new(name: &'static str, layout: BindLayout, source: &'static str) -> Self {
        ShaderModule { name, layout, source: Source::Static(source) }
    }

    /// A module whose source is assembled at run time, once per device.
    pub const fn built(name: &'static str, layout: BindLayout, source: fn() -> String) -> Self {
        ShaderModule { name, layout, source: Source::Built(source) }
    }

    /// The complete WGSL source.
    pub fn source(&self) -> Cow<'static, str> {
        match self.source {
            Source::Static(s) => Cow::Borrowed(s),
            Source::Built(f) => Cow::Owned(f()),
        }
    }
}

impl std::fmt::Debug for ShaderModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for ShaderModule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for ShaderModule {}

/// One compute pipeline: an entry point of a module and how its items map to workgroups. Two
/// kernels are the same pipeline when their module and entry point are.
#[derive(Clone, Copy)]
pub struct Kernel {
    module: &'static ShaderModule,
    entry: &'static str,
    grid: Grid,
}

impl Kernel {
    /// An entry point of `module`, dispatched as `grid` says.
    pub const fn new(module: &'static ShaderModule, entry: &'static str, grid: Grid) -> Self {
        Kernel { module, entry, grid }
    }

    /// The WGSL entry point.
    pub fn entry_point(self) -> &'static str {
        self.entry
    }

    /// The module that holds the entry point.
    pub fn module(self) -> &'static ShaderModule {
        self.module
    }

    /// How items map to workgroups.
    pub fn grid(self) -> Grid {
        self.grid
    }

    /// The bind-group layout of the kernel.
    pub fn layout(self) -> BindLayout {
        self.module.layout
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module.name, self.entry)
    }
}

impl PartialEq for Kernel {
    fn eq(&self, other: &Self) -> bool {
        self.module.name == other.module.name && self.entry == other.entry
    }
}
impl Eq for Kernel {}

impl std::hash::Hash for Kernel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.module.name.hash(state);
        self.entry.hash(state);
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

/// Declares shader modules and their kernels, in the Rust module that owns them:
///
/// ```text
/// pub mod kernels {
///     adahessian_wgpu::wgsl_kernels! {
///         POOL = ("pool", Layer, ["common.wgsl", "layer_bindings.wgsl", "pool.wgsl"]) {
///             MaxpoolFwd "maxpool_fwd", MaxpoolBwd "maxpool_bwd", PoolReduce "pool_reduce" Single,
///         }
///     }
/// }
/// ```
///
/// gives `static POOL: ShaderModule` (the files of `shaders/`, concatenated in order; or
/// `built(f)`, a `fn() -> String` that assembles the source), one `const` [`Kernel`] per entry
/// point (the grid defaults to one invocation per item) and `KERNELS`, all of them, for
/// [`crate::kernels`].
#[macro_export]
macro_rules! wgsl_kernels {
    ($($module:ident = ($name:literal, $layout:ident, $($source:tt)+) {
        $($kernel:ident $entry:literal $($grid:ident)?),+ $(,)?
    })+) => {
        $(
            /// The shader module of the kernels below.
            pub static $module: $crate::gpu::kernels::ShaderModule =
                $crate::wgsl_kernels!(@module $name, $layout, $($source)+);
            $(
                #[allow(non_upper_case_globals, missing_docs)]
                pub const $kernel: $crate::gpu::kernels::Kernel =
                    $crate::gpu::kernels::Kernel::new(&$module, $entry, $crate::wgsl_kernels!(@grid $($grid)?));
            )+
        )+
        /// Every kernel declared here, in declaration order.
        pub const KERNELS: &[$crate::gpu::kernels::Kernel] = &[$($($kernel),+),+];
    };
    (@module $name:literal, $layout:ident, [$($file:literal),+ $(,)?]) => {
        $crate::gpu::kernels::ShaderModule::new(
            $name,
            $crate::gpu::kernels::BindLayout::$layout,
            concat!($(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)), "\n"),+),
        )
    };
    (@module $name:literal, $layout:ident, built($source:path)) => {
        $crate::gpu::kernels::ShaderModule::built($name, $crate::gpu::kernels::BindLayout::$layout, $source)
    };
    (@grid) => { $crate::gpu::kernels::Grid::InvocationPerItem };
    (@grid $grid:ident) => { $crate::gpu::kernels::Grid::$grid };
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
    /// by module name: the source is parsed and validated on first use
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
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
        Pipelines {
            device: device.clone(),
            layouts,
            pipeline_layouts,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            built: AtomicUsize::new(0),
        }
    }

    fn build(&self, k: Kernel) -> wgpu::ComputePipeline {
        /// naga's default checks less its loop bounding: a 64-bit counter it adds to every loop
        /// so that a driver cannot assume an endless loop away. It costs a compare and a
        /// decrement per turn in every inner loop; on lavapipe, turning it off made resnet20's
        /// Adam step 8% faster (BENCHMARKS.md, 2026-12-04). Out-of-bounds accesses and
        /// division by zero stay guarded. On WebGPU (the browser) the checks are the
        /// browser's and this changes nothing.
        const OUR_SHADER_CHECKS: wgpu::ShaderRuntimeChecks = {
            let mut checks = wgpu::ShaderRuntimeChecks::checked();
            checks.force_loop_bounding = false;
            checks
        };
        self.built.fetch_add(1, Ordering::Relaxed);
        let module = lock(&self.modules)
            .entry(k.module.name)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(k.module.name),
                    source: wgpu::ShaderSource::Wgsl(k.module.source()),
                };
                // SAFETY: `OUR_SHADER_CHECKS` turns off only naga's loop bounding, whose
                // condition is that no loop of the module runs forever. Every module is this
                // crate's own WGSL (compiled in, never user text), and every loop in it has a
                // form `tests/shaders.rs` (`every_loop_ends`) checks: a counter stepped by a
                // positive constant or by a layer's stride (validated at least 1 on the host)
                // up to a bound, a halving down to 0, or one of the row walks that take at
                // least one pixel per turn. Bounds and division checks stay on.
                unsafe { self.device.create_shader_module_trusted(desc, OUR_SHADER_CHECKS) }
            })
            .clone();
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&self.pipeline_layouts[k.layout().index()]),
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// The pipeline of a kernel, built now if this is its first use (a kernel whose entry point
    /// its module lacks is a validation error, reported by the device's next check).
    pub fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        lock(&self.pipelines).entry(kernel).or_insert_with(|| self.build(kernel)).clone()
    }

    /// How many pipelines have been built on this device so far.
    pub fn built(&self) -> usize {
        self.built.load(Ordering::Relaxed)
    }

    /// The bind-group layout.
    pub fn layout(&self, layout: BindLayout) -> &wgpu::BindGroupLayout {
        &self.layouts[layout.index()]
    }
}

/// A cache's lock: a panic while building one pipeline leaves the others usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
