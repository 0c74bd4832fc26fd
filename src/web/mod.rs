//! The browser facade (wasm-bindgen): the demo page's view of the library. Every GPU call is the
//! library's own — the same WGSL kernels, HVP and optimizers as native. Methods that touch the
//! GPU return Promises (readback is asynchronous on the web); errors become JS errors with the
//! library's message.

use crate::data::DeviceDataset;
use crate::gpu::{Gpu, GpuOptions};
use crate::nn::KernelSet;
use crate::nn::{Batch, ModelSpec, Network, NetworkOptions};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::race::Race;
use crate::surface::SurfaceKind;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod playground;
pub use playground::Playground;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// The GPU, opened once per page.
#[wasm_bindgen]
pub struct Demo {
    gpu: Rc<Gpu>,
}

#[wasm_bindgen]
impl Demo {
    /// Opens WebGPU with the default limits; rejects with a readable message when there is none.
    pub fn open() -> js_sys::Promise {
        future_to_promise(async move {
            let gpu = Gpu::new(GpuOptions { backends: Some(wgpu::Backends::BROWSER_WEBGPU), ..Default::default() })
                .await
                .map_err(js_err)?;
            Ok(Demo { gpu: Rc::new(gpu) }.into())
        })
    }

    /// The adapter's description.
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }
}

/// One optimizer the page can offer.
#[derive(serde::Serialize)]
struct CatalogEntry {
    name: &'static str,
    summary: &'static str,
    lr: f32,
    surface_lr: f32,
    curvature: bool,
    settings: serde_json::Value,
}

/// The optimizers the page can offer, as JSON `[{"name", "summary", "lr", "surface_lr",
/// "curvature", "settings"}]`: every name the library's parser accepts, so a newly registered
/// method appears in the race and the playground without a change to the page.
#[wasm_bindgen]
pub fn optimizer_catalog() -> String {
    let mut seen: Vec<OptimizerConfig> = Vec::new();
    let list: Vec<CatalogEntry> = OptimizerConfig::presets()
        .into_iter()
        // aliases (sophia, sophiah) give a configuration already listed
        .filter(|(_, c)| {
            let new = !seen.contains(c);
            seen.push(*c);
            new
        })
        .map(|(name, c)| CatalogEntry {
            name,
            summary: c.method().summary(),
            lr: c.lr(),
            surface_lr: c.method().surface_lr(),
            curvature: c.uses_curvature(),
            settings: c.settings_json(),
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// The settings (JSON, as in the catalog) of an optimizer text such as the page's settings box
/// holds, parsed by the library's own parser; an error names what is wrong.
#[wasm_bindgen]
pub fn optimizer_settings(text: &str) -> Result<String, JsError> {
    let config = OptimizerConfig::parse(text).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(config.settings_json().to_string())
}

/// One race surface: its name, customary start and plotted window.
#[derive(serde::Serialize)]
struct SurfaceInfo {
    name: &'static str,
    start: [f64; 2],
    bounds: [f64; 4],
    /// f's lowest value (null: unbounded below, the saddle)
    minimum: Option<f64>,
}

/// What the page draws with that the library decides.
#[derive(serde::Serialize)]
struct DemoConstants {
    surfaces: Vec<SurfaceInfo>,
}

/// The constants the page needs, from the library (JSON): every race surface's start and window.
#[wasm_bindgen]
pub fn demo_constants() -> String {
    let surfaces = SurfaceKind::ALL
        .iter()
        .map(|k| {
            let (x, y) = k.default_start();
            SurfaceInfo { name: k.name(), start: [x, y], bounds: k.view(), minimum: k.minimum() }
        })
        .collect();
    let c = DemoConstants { surfaces };
    serde_json::to_string(&c).unwrap_or_else(|_| "{}".into())
}

fn surface_kind(name: &str, condition: f64, angle_degrees: f64) -> Result<SurfaceKind, JsValue> {
    if name == "quadratic" {
        return Ok(SurfaceKind::Quadratic { condition, angle: angle_degrees.to_radians() });
    }
    SurfaceKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .ok_or_else(|| js_err(format!("unknown surface '{name}'")))
}

/// f on an `nx × ny` grid over [x0, x1] × [y0, y1] (row-major in y), from the f64 reference.
#[wasm_bindgen]
pub fn surface_grid(
    name: &str,
    condition: f64,
    angle_degrees: f64,
    bounds: &[f64],
    nx: usize,
    ny: usize,
) -> Result<Vec<f32>, JsValue> {
    let kind = surface_kind(name, condition, angle_degrees)?;
    if bounds.len() != 4 || nx < 2 || ny < 2 {
        return Err(js_err("surface_grid needs bounds [x0, x1, y0, y1] and at least 2×2 points"));
    }
    let mut out = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        let y = bounds[2] + (bounds[3] - bounds[2]) * j as f64 / (ny - 1) as f64;
        for i in 0..nx {
            let x = bounds[0] + (bounds[1] - bounds[0]) * i as f64 / (nx - 1) as f64;
            out.push(kind.taylor(x, y).0 as f32);
        }
    }
    Ok(out)
}

/// An optimizer race on a surface: racers named in `racers` ("sgd,momentum,adam,adahessian,newton")
/// with learning rates `lrs` (same order).
#[wasm_bindgen]
pub struct WebRace {
    gpu: Rc<Gpu>,
    race: Rc<RefCell<Option<Race>>>,
}

#[wasm_bindgen]
impl WebRace {
    /// Starts a race at (x, y).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        demo: &Demo,
        surface: String,
        condition: f64,
        angle_degrees: f64,
        x: f64,
        y: f64,
        racers: String,
        lrs: Vec<f32>,
        hessian_power: f32,
        grad_clip: bool,
    ) -> js_sys::Promise {
        let gpu = demo.gpu.clone();
        future_to_promise(async move {
            let kind = surface_kind(&surface, condition, angle_degrees)?;
            let names: Vec<&str> = racers.split(',').filter(|s| !s.is_empty()).collect();
            if names.len() != lrs.len() {
                return Err(js_err("one learning rate per racer"));
            }
            let mut list = Vec::new();
            for (n, lr) in names.iter().zip(&lrs) {
                // the clip is AdaHessian's (the lessons clip it alone)
                let kind =
                    crate::race::page_racer(n, *lr, hessian_power, grad_clip && *n == "adahessian").map_err(js_err)?;
                list.push((n.to_string(), kind));
            }
            let race = Race::new(&gpu, kind, (x, y), &list).await.map_err(js_err)?;
            Ok(WebRace { gpu, race: Rc::new(RefCell::new(Some(race))) }.into())
        })
    }

    /// `steps` steps of every racer; resolves to a JSON string
    /// `[{name, x, y, loss}, ...]` with each racer's latest state.
    pub fn step(&self, steps: u32) -> js_sys::Promise {
        let (gpu, cell) = (self.gpu.clone(), self.race.clone());
        future_to_promise(async move {
            let mut race = cell.borrow_mut().take().ok_or_else(|| js_err("the race is busy"))?;
            let mut result = Ok(());
            let before: Vec<usize> = race.racers.iter().map(|r| r.losses.len()).collect();
            for _ in 0..steps {
                result = race.step(&gpu).await;
                if result.is_err() {
                    break;
                }
            }
            // every step taken, not only the last: the page's chart and its steps-to-tolerance
            // table count from these
            let states: Vec<RacerState> = race
                .racers
                .iter()
                .zip(before)
                .map(|(r, from)| {
                    let (x, y) = r.path.last().copied().unwrap_or_default();
                    let losses = r.losses[from.min(r.losses.len())..].to_vec();
                    let path_from = r.path.len().saturating_sub(losses.len());
                    RacerState {
                        name: r.name.clone(),
                        x,
                        y,
                        loss: *r.losses.last().unwrap_or(&f32::NAN),
                        losses,
                        path: r.path[path_from..].to_vec(),
                    }
                })
                .collect();
            *cell.borrow_mut() = Some(race);
            result.map_err(js_err)?;
            json(&states)
        })
    }

    /// Each racer's cost per step in gradient-evaluation equivalents (the library's count, see
    /// `RacerKind::grad_evals_per_step`): JSON `[{name, grad_evals_per_step}]`.
    pub fn costs(&self) -> Result<String, JsValue> {
        let race = self.race.borrow();
        let race = race.as_ref().ok_or_else(|| js_err("the race is busy"))?;
        let costs: Vec<RacerCost> = race
            .racers
            .iter()
            .map(|r| RacerCost { name: r.name.clone(), grad_evals_per_step: r.kind.grad_evals_per_step(2) })
            .collect();
        serde_json::to_string(&costs).map_err(js_err)
    }

    /// The exact Hessian, its diagonal and row norms at racer `i`, with AdaHessian's √v̂ when it
    /// has one: a JSON string.
    pub fn readout(&self, i: usize) -> js_sys::Promise {
        let (gpu, cell) = (self.gpu.clone(), self.race.clone());
        future_to_promise(async move {
            let race = cell.borrow_mut().take().ok_or_else(|| js_err("the race is busy"))?;
            let r = race.readout(&gpu, i).await;
            *cell.borrow_mut() = Some(race);
            json(&r.map_err(js_err)?)
        })
    }
}

/// A value as the JSON string the page parses (non-finite numbers become null).
fn json<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    serde_json::to_string(value).map(|t| JsValue::from_str(&t)).map_err(js_err)
}

/// What a racer's step costs.
#[derive(serde::Serialize)]
struct RacerCost {
    name: String,
    grad_evals_per_step: f64,
}

/// A racer after a step.
#[derive(serde::Serialize)]
struct RacerState {
    name: String,
    x: f32,
    y: f32,
    loss: f32,
    /// the loss after each step of this call (NaN, as null, once diverged)
    losses: Vec<f32>,
    /// the position after each step of this call
    path: Vec<(f32, f32)>,
}

/// One optimizer's time per step on the bench page.
#[derive(serde::Serialize)]
struct BenchStep {
    optimizer: String,
    ms_per_step: f64,
    dispatches_per_step: f64,
}

/// The bench page's measurement.
#[derive(serde::Serialize)]
struct BenchReport {
    adapter: String,
    model: String,
    batch: usize,
    kernels: &'static str,
    results: Vec<BenchStep>,
}

/// Milliseconds from the page's high-resolution clock (`performance.now()`), or `Date.now()`.
fn now_ms() -> f64 {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"performance".into())
        .ok()
        .and_then(|perf| {
            let now: js_sys::Function = js_sys::Reflect::get(&perf, &"now".into()).ok()?.dyn_into().ok()?;
            now.call0(&perf).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

#[wasm_bindgen]
impl Demo {
    /// The bench page's measurement (web/bench.html): synthetic data shaped for `model` (any model
    /// text the library accepts, CNNs included, or a ResNet preset on 3×32×32 images), then for each optimizer (comma-separated names,
    /// published defaults) `warmup` steps, then `steps` steps submitted back to back and waited
    /// for once. `kernels` is `tiled`, `naive` or empty (the default set). Resolves to JSON
    /// `{"adapter", "model", "batch", "kernels", "results": [{"optimizer", "ms_per_step",
    /// "dispatches_per_step"}]}`.
    pub fn bench_steps(
        &self,
        model: String,
        batch: usize,
        optimizers: String,
        steps: u32,
        warmup: u32,
        kernels: String,
    ) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            // a ResNet preset (resnet:8:8, resnet20) on CIFAR-shaped data, else a model text
            let spec = match crate::nn::parse_resnet(&model, &[3, 32, 32], 10) {
                Some(spec) => spec.map_err(js_err)?,
                None => ModelSpec::parse(&model).map_err(js_err)?,
            };
            let kernels =
                if kernels.is_empty() { KernelSet::default() } else { KernelSet::parse(&kernels).map_err(js_err)? };
            if batch == 0 || steps == 0 {
                return Err(js_err("batch and steps must be at least 1"));
            }
            let names: Vec<&str> = optimizers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if names.is_empty() {
                return Err(js_err("no optimizer named; give e.g. optimizers=adam,adahessian"));
            }
            let configs = names
                .iter()
                .map(|n| OptimizerConfig::default_for(n))
                .collect::<crate::Result<Vec<_>>>()
                .map_err(js_err)?;
            let data = crate::bench::synthetic_data(&spec, batch, 1).map_err(js_err)?;
            let net = Network::with_kernels(&gpu, &spec, NetworkOptions::new(batch, 0), kernels).map_err(js_err)?;
            let bound = net.bind(&gpu, &DeviceDataset::upload(&gpu, &data).map_err(js_err)?).map_err(js_err)?;
            let indices: Vec<u32> = (0..batch as u32).collect();
            let mut results = Vec::new();
            for (name, config) in names.iter().zip(configs) {
                let mut opt = Optimizer::new(&gpu, &net, config).map_err(js_err)?;
                let b = Batch { data: &bound, indices: &indices };
                for _ in 0..warmup {
                    opt.step(&gpu, &net, &b).map_err(js_err)?;
                }
                net.read_stats(&gpu).await.map_err(js_err)?; // the warm-up has finished
                let (start, dispatches) = (now_ms(), gpu.dispatch_count());
                for _ in 0..steps {
                    opt.step(&gpu, &net, &b).map_err(js_err)?;
                }
                net.read_stats(&gpu).await.map_err(js_err)?; // waits for the last step
                let ms = (now_ms() - start) / steps as f64;
                gpu.check().map_err(js_err)?;
                results.push(BenchStep {
                    optimizer: name.to_string(),
                    ms_per_step: ms,
                    dispatches_per_step: (gpu.dispatch_count() - dispatches) as f64 / steps as f64,
                });
            }
            json(&BenchReport {
                adapter: gpu.describe(),
                model: spec.to_line(),
                batch,
                kernels: kernels.name(),
                results,
            })
        })
    }
}
