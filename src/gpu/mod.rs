//! The GPU runtime: adapter and device selection, the pipeline cache, buffers and readback.
//!
//! The device is opened with WebGPU's default limits and no optional features, so whatever
//! runs natively (tests on lavapipe included) also runs in a browser.

pub(crate) mod buffers;
mod dispatch;
pub mod harness;
pub mod kernels;
pub mod meta;

pub use buffers::{read_f32, read_u32, storage_buffer, uniform_buffer, UniformArena};
pub use dispatch::{bind_group, dispatch, workgroups_for};
pub use kernels::{BindLayout, Kernel, KernelId, Pipelines};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Environment variable that selects the backend: `vulkan`, `metal`, `dx12`, `gl` or `webgpu`.
pub const BACKEND_ENV: &str = "ADAHESSIAN_BACKEND";
/// Environment variable that selects an adapter by (part of) its name, case-insensitive.
pub const ADAPTER_ENV: &str = "ADAHESSIAN_ADAPTER";

/// Environment variable that selects the layer kernels: `tiled` (the default), `naive` or `shared`.
pub const KERNELS_ENV: &str = "ADAHESSIAN_KERNELS";

/// Which implementation of the dense-layer kernels a [`crate::nn::Network`] records. Both compute
/// the same maths and are checked against the same f64 references; `Naive` stays selectable so a
/// benchmark can show both on one adapter in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelSet {
    /// One invocation per output element, looping over the contracted axis (the first kernels).
    Naive,
    /// Register-tiled products (a 4×4 output block per invocation), with forward + tangent and
    /// backward + R-backward fused into one kernel per layer where they share operands.
    #[default]
    Tiled,
    /// The tiled set with every dense product (forward, tangent, backward and their R-ops)
    /// staged through workgroup memory (a 64 × 64 output block per workgroup,
    /// shaders/dense_shared.wgsl): the layout GPUs reward. Selectable, not the default, until a
    /// GPU measurement says it wins there (`bench/device_run.sh` compares all three); on CPU
    /// adapters its barriers cost more than the shared loads save.
    Shared,
}

impl KernelSet {
    /// Parses `naive`, `tiled` or `shared`.
    pub fn parse(name: &str) -> Result<KernelSet> {
        match name.to_ascii_lowercase().as_str() {
            "naive" => Ok(KernelSet::Naive),
            "tiled" => Ok(KernelSet::Tiled),
            "shared" => Ok(KernelSet::Shared),
            other => Err(Error::Config(format!(
                "unknown kernel set '{other}' (in {KERNELS_ENV}); use tiled, naive or shared"
            ))),
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Naive => "naive",
            KernelSet::Tiled => "tiled",
            KernelSet::Shared => "shared",
        }
    }

    /// Whether the set uses the register-tiled kernels (tiled and shared do).
    pub fn tiled(self) -> bool {
        self != KernelSet::Naive
    }
}

/// How to choose the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Restrict to these backends (default: all that are compiled in).
    pub backends: Option<wgpu::Backends>,
    /// Pick the first adapter whose name contains this, case-insensitive.
    pub adapter: Option<String>,
    /// The layer kernels networks use by default (`None`: [`KernelSet::Tiled`]).
    pub kernels: Option<KernelSet>,
}

impl GpuOptions {
    /// Options from `ADAHESSIAN_BACKEND`, `ADAHESSIAN_ADAPTER` and `ADAHESSIAN_KERNELS`.
    pub fn from_env() -> Result<Self> {
        let backends = match std::env::var(BACKEND_ENV) {
            Ok(name) if !name.is_empty() => Some(parse_backend(&name)?),
            _ => None,
        };
        let adapter = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        let kernels = match std::env::var(KERNELS_ENV) {
            Ok(name) if !name.is_empty() => Some(KernelSet::parse(&name)?),
            _ => None,
        };
        Ok(GpuOptions { backends, adapter, kernels })
    }
}

/// Parses a backend name (`vulkan`, `metal`, `dx12`, `gl`, `webgpu`, `all`).
pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        "webgpu" | "browser" => Ok(wgpu::Backends::BROWSER_WEBGPU),
        "all" => Ok(wgpu::Backends::all()),
        other => Err(Error::Config(format!(
            "unknown backend '{other}' (in {BACKEND_ENV}); use vulkan, metal, dx12, gl, webgpu or all"
        ))),
    }
}

/// An open device with every pipeline built. Pass it by reference to everything that runs kernels.
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: Pipelines,
    kernels: KernelSet,
    /// kernels recorded so far (every `dispatch`), for launch-overhead accounting
    dispatches: std::sync::atomic::AtomicU64,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// Opens the adapter chosen by `options` with WebGPU's default limits and builds every pipeline.
    pub async fn new(options: GpuOptions) -> Result<Gpu> {
        // PRIMARY = Vulkan, Metal, DX12, WebGPU: the backends with compute shaders everywhere. GL is
        // opt-in (ADAHESSIAN_BACKEND=gl) since probing it prints EGL noise on headless machines.
        let backends = options.backends.unwrap_or(wgpu::Backends::PRIMARY);
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = match &options.adapter {
            Some(wanted) => pick_adapter_by_name(&instance, backends, wanted).await?,
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    ..Default::default()
                })
                .await
                .map_err(|_| Error::NoAdapter { backends: format!("{backends:?}") })?,
        };
        let info = adapter.get_info();
        let limits = wgpu::Limits::default();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("adahessian-wgpu"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::DeviceRequest { adapter: info.name.clone(), reason: e.to_string() })?;
        // wgpu's default handler panics on a validation error; keep the message and report it
        // as an Error from the next call that checks (`Gpu::check`).
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut list) = sink.lock() {
                list.push(e.to_string());
            }
        }));
        let pipelines = Pipelines::build(&device);
        let kernels = options.kernels.unwrap_or_default();
        let dispatches = Default::default();
        let gpu = Gpu { device, queue, info, limits, pipelines, kernels, dispatches, errors };
        gpu.check()?;
        Ok(gpu)
    }

    /// Blocking [`Gpu::new`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: GpuOptions) -> Result<Gpu> {
        pollster::block_on(Gpu::new(options))
    }

    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3".
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// A one-line description: name, backend, device type, driver.
    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// Adapter details.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was opened with (WebGPU's defaults).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The layer kernels networks built on this device use unless told otherwise.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// How many kernels have been recorded on this device so far: the difference around a
    /// training step is that step's dispatch count.
    pub fn dispatch_count(&self) -> u64 {
        self.dispatches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records an error for the next [`Gpu::check`].
    pub(crate) fn report_error(&self, message: String) {
        if let Ok(mut list) = self.errors.lock() {
            list.push(message);
        }
    }

    pub(crate) fn count_dispatch(&self) {
        self.dispatches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The pipeline cache.
    pub fn pipelines(&self) -> &Pipelines {
        &self.pipelines
    }

    /// Returns the first wgpu error reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        let mut list = self.errors.lock().map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if list.is_empty() {
            Ok(())
        } else {
            let first = list.remove(0);
            list.clear();
            Err(Error::Gpu(first))
        }
    }

    /// Checks that a storage binding of `bytes` fits the device limits.
    pub fn check_storage_size(&self, what: &str, bytes: u64) -> Result<()> {
        let binding = self.limits.max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(Error::LimitExceeded {
                what: what.to_string(),
                needed: bytes,
                limit_name: "maxStorageBufferBindingSize",
                limit: binding,
                fix: "use a smaller model, batch or data set",
            });
        }
        let buffer = self.limits.max_buffer_size;
        if bytes > buffer {
            return Err(Error::LimitExceeded {
                what: what.to_string(),
                needed: bytes,
                limit_name: "maxBufferSize",
                limit: buffer,
                fix: "use a smaller model, batch or data set",
            });
        }
        Ok(())
    }
}

/// Every adapter the backends expose, for `adahessian devices` (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(backends: Option<wgpu::Backends>) -> Vec<(wgpu::AdapterInfo, wgpu::Limits)> {
    let backends = backends.unwrap_or(wgpu::Backends::PRIMARY);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(backends)).into_iter().map(|a| (a.get_info(), a.limits())).collect()
}

/// A one-line description of an adapter.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver =
        if info.driver.is_empty() { String::new() } else { format!(", driver {} {}", info.driver, info.driver_info) };
    // browsers hide the adapter's name: say what kind of adapter it is instead
    let name = match (info.name.is_empty(), info.device_type) {
        (false, _) => info.name.clone(),
        (true, wgpu::DeviceType::Cpu) => "software adapter (e.g. SwiftShader), name hidden by the browser".into(),
        (true, _) => "adapter name hidden by the browser".into(),
    };
    format!("{name} ({:?}, {:?}{})", info.backend, info.device_type, driver.trim_end())
}

async fn pick_adapter_by_name(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    wanted: &str,
) -> Result<wgpu::Adapter> {
    let adapters = instance.enumerate_adapters(backends).await;
    if adapters.is_empty() {
        return Err(Error::NoAdapter { backends: format!("{backends:?}") });
    }
    let needle = wanted.to_ascii_lowercase();
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_ascii_lowercase().contains(&needle))
        .ok_or_else(|| Error::AdapterNotFound { wanted: wanted.to_string(), available: names.join(", ") })
}
