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
pub use dispatch::{bind_group, dispatch, workgroups_for, WORKGROUP};
pub use kernels::{BindLayout, Kernel, Pipelines};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Environment variable that selects the backend: `vulkan`, `metal`, `dx12`, `gl` or `webgpu`.
pub const BACKEND_ENV: &str = "ADAHESSIAN_BACKEND";
/// Environment variable that selects an adapter by (part of) its name, case-insensitive.
pub const ADAPTER_ENV: &str = "ADAHESSIAN_ADAPTER";

/// Environment variable that tunes the kernels as for another adapter class: `cpu`,
/// `integrated`, `discrete` or `other` (default: the adapter's own).
pub const TUNING_ENV: &str = "ADAHESSIAN_TUNING";

/// Environment variable that picks the device limits: `webgpu` (the default: WebGPU's, so a
/// native run also runs in a browser) or `adapter` (everything the adapter offers, e.g. storage
/// bindings of several GiB on a discrete GPU, for a ResNet at batch 256).
pub const LIMITS_ENV: &str = "ADAHESSIAN_LIMITS";

/// What kind of adapter the device is (wgpu's `DeviceType`), chosen once from the adapter's info
/// when the device opens. The layers' kernel choices follow it (`nn::KernelTuning::for_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterClass {
    /// A CPU rasteriser (lavapipe, SwiftShader, WARP): each invocation is one SIMD lane, each
    /// workgroup runs on one thread.
    Cpu,
    /// A GPU sharing memory with the CPU (laptops, Apple silicon, phones): tens of compute units.
    Integrated,
    /// A discrete GPU: up to a hundred or more compute units.
    Discrete,
    /// Virtual or unknown (a VM's GPU, a browser that does not say): tuned as integrated.
    Other,
}

impl AdapterClass {
    /// The class of an adapter.
    pub fn of(info: &wgpu::AdapterInfo) -> AdapterClass {
        match info.device_type {
            wgpu::DeviceType::Cpu => AdapterClass::Cpu,
            wgpu::DeviceType::IntegratedGpu => AdapterClass::Integrated,
            wgpu::DeviceType::DiscreteGpu => AdapterClass::Discrete,
            wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => AdapterClass::Other,
        }
    }

    /// Parses `cpu`, `integrated`, `discrete` or `other`.
    pub fn parse(name: &str) -> Result<AdapterClass> {
        [AdapterClass::Cpu, AdapterClass::Integrated, AdapterClass::Discrete, AdapterClass::Other]
            .into_iter()
            .find(|c| c.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown adapter class '{name}' (in {TUNING_ENV}); use cpu, integrated, discrete or other"
                ))
            })
    }

    /// `cpu`, `integrated`, `discrete` or `other`.
    pub fn name(self) -> &'static str {
        match self {
            AdapterClass::Cpu => "cpu",
            AdapterClass::Integrated => "integrated",
            AdapterClass::Discrete => "discrete",
            AdapterClass::Other => "other",
        }
    }
}

/// How to choose the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Restrict to these backends (default: all that are compiled in).
    pub backends: Option<wgpu::Backends>,
    /// Pick the first adapter whose name contains this, case-insensitive.
    pub adapter: Option<String>,
    /// Tune the kernels as for this adapter class instead of the adapter's own (`None`: the
    /// adapter's): lets a CPU adapter run, and the tests check, the choices made for GPUs.
    pub tune_as: Option<AdapterClass>,
    /// Open the device with the adapter's own limits instead of WebGPU's defaults.
    pub adapter_limits: bool,
}

impl GpuOptions {
    /// Options from `ADAHESSIAN_BACKEND`, `ADAHESSIAN_ADAPTER`, `ADAHESSIAN_TUNING` and
    /// `ADAHESSIAN_LIMITS` (the layers read `ADAHESSIAN_KERNELS` themselves: `nn::KernelSet`).
    pub fn from_env() -> Result<Self> {
        let backends = match std::env::var(BACKEND_ENV) {
            Ok(name) if !name.is_empty() => Some(
                parse_backend(&name).map_err(|e| Error::Config(format!("{BACKEND_ENV}={name}: {}", config_text(e))))?,
            ),
            _ => None,
        };
        let adapter = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        let tune_as = match std::env::var(TUNING_ENV) {
            Ok(name) if !name.is_empty() => Some(AdapterClass::parse(&name)?),
            _ => None,
        };
        let adapter_limits = match std::env::var(LIMITS_ENV).as_deref().map(str::to_ascii_lowercase).as_deref() {
            Ok("adapter") => true,
            Ok("webgpu") | Ok("") | Err(_) => false,
            Ok(other) => {
                return Err(Error::Config(format!("unknown limits '{other}' (in {LIMITS_ENV}); use webgpu or adapter")))
            }
        };
        Ok(GpuOptions { backends, adapter, tune_as, adapter_limits })
    }
}

/// The message of a configuration error, without its "invalid configuration" prefix.
fn config_text(e: Error) -> String {
    match e {
        Error::Config(text) => text,
        other => other.to_string(),
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
        other => Err(Error::Config(format!("unknown backend '{other}'; use vulkan, metal, dx12, gl, webgpu or all"))),
    }
}

/// An open device and its pipeline cache (pipelines are built on first use). Pass it by reference
/// to everything that runs kernels.
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: Pipelines,
    class: AdapterClass,
    /// kernels recorded so far (every `dispatch`), for launch-overhead accounting
    dispatches: std::sync::atomic::AtomicU64,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// Opens the adapter chosen by `options` with WebGPU's default limits; builds no pipeline yet.
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
        // WebGPU's defaults unless asked otherwise (ADAHESSIAN_LIMITS=adapter), but for the
        // largest buffer: the activation arena is bound in windows of at most
        // maxStorageBufferBindingSize each, so a buffer may be as large as the adapter allows
        // (browsers grant the adapter's maxBufferSize when asked, as web/ does)
        let limits = if options.adapter_limits {
            adapter.limits()
        } else {
            wgpu::Limits { max_buffer_size: adapter.limits().max_buffer_size, ..wgpu::Limits::default() }
        };
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
        let pipelines = Pipelines::new(&device);
        let dispatches = Default::default();
        let class = options.tune_as.unwrap_or_else(|| AdapterClass::of(&info));
        let gpu = Gpu { device, queue, info, limits, pipelines, class, dispatches, errors };
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

    /// What kind of adapter the kernels are tuned for: the adapter's own class unless
    /// [`GpuOptions::tune_as`] said otherwise.
    pub fn adapter_class(&self) -> AdapterClass {
        self.class
    }

    /// How many kernels have been recorded on this device so far: the difference around a
    /// training step is that step's dispatch count.
    pub fn dispatch_count(&self) -> u64 {
        self.dispatches.load(std::sync::atomic::Ordering::Relaxed)
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

    /// Checks that a buffer of `bytes`, bound in windows of at most the binding limit, fits the
    /// device's buffer limit.
    pub fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<()> {
        let buffer = self.limits.max_buffer_size;
        if bytes > buffer {
            return Err(Error::LimitExceeded {
                what: what.to_string(),
                needed: bytes,
                limit_name: "maxBufferSize",
                limit: buffer,
                fix: "use a smaller model or batch (this device's largest buffer is the adapter's own limit)",
            });
        }
        Ok(())
    }

    /// Checks that a storage binding of `bytes` fits the device limits (the binding's and the
    /// buffer's).
    pub fn check_storage_size(&self, what: &str, bytes: u64) -> Result<()> {
        let binding = self.limits.max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(Error::LimitExceeded {
                what: what.to_string(),
                needed: bytes,
                limit_name: "maxStorageBufferBindingSize",
                limit: binding,
                fix: "use a smaller model, batch or data set (or, natively, ADAHESSIAN_LIMITS=adapter for the adapter's own limits)",
            });
        }
        self.check_buffer_size(what, bytes)
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
