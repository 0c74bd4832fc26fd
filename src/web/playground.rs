//! The network playground: an MLP trained live on points in the plane (a synthetic set or the
//! reader's CSV), with its decision boundary, loss landscape, curvature (whole and per tensor)
//! and an export the command line and PyTorch load.

use super::{js_err, json};
use crate::checkpoint;
use crate::curvature::landscape::{self, Axis, Plane};
use crate::curvature::{self, HessianOperator, PowerOptions};
use crate::data::plane::{PlaneData, PlaneSource};
use crate::data::{Dataset, DeviceDataset};
use crate::gpu::Gpu;
use crate::nn::{Batch, BoundData, ModelSpec, Network, NetworkOptions};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::session::Schedule;
use crate::train::BatchOrder;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// The decision-boundary grid: `GRID_N × GRID_N` points over the data's window.
const GRID_N: usize = 40;
/// Weights are kept every this many steps for the landscape's trajectory (the last 50).
const SNAPSHOT_EVERY: u64 = 20;

/// What the page asks for (JSON; every field has a default).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// A synthetic set's name, or `csv` for the text given beside the settings.
    data: String,
    /// The CSV file's name, for messages.
    csv_name: String,
    noise: f64,
    samples: usize,
    test_fraction: f64,
    /// Hidden widths, `8-8`.
    hidden: String,
    activation: String,
    /// Blocks of a deep network (0: the MLP of `hidden`); see `PlaneData::network_text`.
    depth: usize,
    /// Each block summed with its input.
    residual: bool,
    /// none, batchnorm or layernorm in each block.
    norm: String,
    /// Any optimizer text the library parses: `adahessian(beta2=0.99, hessian_power=0.5)`.
    optimizer: String,
    lr: f32,
    batch: usize,
    /// `constant`, `step` or `cosine`, over `horizon` steps.
    schedule: String,
    horizon: u64,
    seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data: "circle".into(),
            csv_name: "the uploaded file".into(),
            noise: 0.2,
            samples: 400,
            test_fraction: 0.3,
            hidden: "8-8".into(),
            activation: "tanh".into(),
            depth: 0,
            residual: false,
            norm: "none".into(),
            optimizer: "adahessian".into(),
            lr: 0.15,
            batch: 32,
            schedule: "constant".into(),
            horizon: 2000,
            seed: 7,
        }
    }
}

struct PlaygroundState {
    net: Network,
    opt: Optimizer,
    data: PlaneData,
    train: BoundData,
    test: Option<BoundData>,
    all: BoundData,
    grid: BoundData,
    order: BatchOrder,
    steps: u64,
    base_lr: f32,
    schedule: Schedule,
    horizon: u64,
    /// the weights every SNAPSHOT_EVERY steps (the most recent 50), for the landscape's path
    history: Vec<Vec<f32>>,
    /// the landscape's plane, computed with its first slice of rows and kept for the rest
    plane: Option<(Vec<f32>, Vec<f32>)>,
}

/// A network trained live on points in the plane.
#[wasm_bindgen]
pub struct Playground {
    gpu: Rc<Gpu>,
    state: Rc<RefCell<Option<PlaygroundState>>>,
}

/// What the page shows about a playground.
#[derive(serde::Serialize)]
struct Info {
    model: String,
    optimizer: String,
    params: usize,
    /// parameter tensors (the per-layer panel's bars)
    tensors: usize,
    classes: usize,
    class_names: Vec<String>,
    bounds: [f32; 4],
    grid_n: usize,
    train_rows: usize,
    test_rows: usize,
    batch: usize,
}

/// The playground after some training.
#[derive(serde::Serialize)]
struct TrainProgress {
    step: u64,
    lr: f32,
    train_loss: f32,
    test_loss: Option<f32>,
    test_accuracy: Option<f32>,
}

/// The parts of the curvature readout, one GPU call each: λmax (power iteration), λmin (Lanczos),
/// tr H (Hutchinson) and the optimizer's sharpness against its edge of stability.
const CURVATURE_PARTS: u32 = 4;

/// The optimizer from the page's text (the library's parser), with the page's lr and seed.
fn optimizer_config(text: &str, lr: f32, seed: u64) -> crate::Result<OptimizerConfig> {
    let mut c = OptimizerConfig::parse(text)?.with_lr(lr);
    if c.has_setting("seed") {
        c.set("seed", &seed.to_string())?;
    }
    c.validate()?;
    Ok(c)
}

impl PlaygroundState {
    fn new(gpu: &Gpu, s: &Settings, csv_text: &str) -> crate::Result<PlaygroundState> {
        let source = if s.data == "csv" {
            PlaneSource::Csv { text: csv_text, name: &s.csv_name }
        } else {
            PlaneSource::Synthetic { name: &s.data, noise: s.noise, samples: s.samples }
        };
        let data = PlaneData::load(source, s.test_fraction, s.seed)?;
        let spec = ModelSpec::parse(&data.network_text(&s.hidden, &s.activation, s.depth, s.residual, &s.norm)?)?;
        let schedule = Schedule::parse(&s.schedule)?;
        let config = optimizer_config(&s.optimizer, s.lr, s.seed)?;
        let batch = s.batch.clamp(1, data.train.rows());
        let max_batch = batch.max(GRID_N * GRID_N).max(data.all.rows());
        let net = Network::new(gpu, &spec, NetworkOptions::new(max_batch, s.seed))?;
        let bind = |d: &Dataset| net.bind(gpu, &DeviceDataset::upload(gpu, d)?);
        let test = if data.test.rows() > 0 { Some(bind(&data.test)?) } else { None };
        Ok(PlaygroundState {
            order: BatchOrder::new(data.train.rows(), batch, s.seed),
            train: bind(&data.train)?,
            all: bind(&data.all)?,
            grid: bind(&data.grid(GRID_N)?)?,
            test,
            opt: Optimizer::new(gpu, &net, config)?,
            net,
            data,
            steps: 0,
            base_lr: s.lr,
            schedule,
            horizon: s.horizon.max(1),
            history: Vec::new(),
            plane: None,
        })
    }

    async fn train(&mut self, gpu: &Gpu, steps: u32) -> crate::Result<TrainProgress> {
        for _ in 0..steps {
            // the schedule runs over the horizon, then holds its last value
            self.opt.set_lr(self.schedule.lr_at(self.base_lr, self.steps, self.horizon))?;
            let indices = self.order.next_batch();
            self.opt.step(gpu, &self.net, &Batch { data: &self.train, indices: &indices })?;
            self.steps += 1;
            if self.steps.is_multiple_of(SNAPSHOT_EVERY) {
                self.history.push(self.net.params(gpu).await?);
                if self.history.len() > 50 {
                    self.history.remove(0);
                }
            }
        }
        let train = self.net.evaluate(gpu, &self.train).await?;
        let test = match &self.test {
            Some(t) => Some(self.net.evaluate(gpu, t).await?),
            None => None,
        };
        Ok(TrainProgress {
            step: self.steps,
            lr: self.opt.lr(),
            train_loss: train.loss,
            test_loss: test.map(|t| t.loss),
            test_accuracy: test.map(|t| t.accuracy),
        })
    }

    /// The class probabilities on the grid (softmax of the logits), `k` per point.
    async fn boundary(&self, gpu: &Gpu) -> crate::Result<Vec<f32>> {
        let indices: Vec<u32> = (0..(GRID_N * GRID_N) as u32).collect();
        let logits = self.net.predict(gpu, &Batch { data: &self.grid, indices: &indices }).await?;
        let k = self.net.model().output_width();
        let mut p = Vec::with_capacity(logits.len());
        for l in logits.chunks(k) {
            let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = l.iter().map(|v| (v - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            p.extend(e.iter().map(|v| v / sum));
        }
        Ok(p)
    }

    /// The landscape panel's plane through the weights.
    async fn plane_directions(
        &self,
        gpu: &Gpu,
        theta: &[f32],
        directions: &str,
    ) -> crate::Result<(Vec<f32>, Vec<f32>)> {
        let model = self.net.model();
        Ok(match directions {
            // the recent trajectory's principal plane, scaled so the path fills it
            "pca" => {
                let (a, b, _) = landscape::pca_plane(model, &self.history, theta)?;
                (a, b)
            }
            "hessian" => {
                let op = HessianOperator::new(gpu, &self.net, &self.train, None)?;
                let e = curvature::top_eigen(&op, 2, PowerOptions { tol: 1e-2, max_iter: 30, seed: 3 }).await?;
                let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                (f(&e[0].vector), f(&e[1].vector))
            }
            "random" => (
                landscape::filter_normalized_direction(model, theta, 1),
                landscape::filter_normalized_direction(model, theta, 2),
            ),
            other => return Err(crate::Error::Config(format!("directions {other}: use random, pca or hessian"))),
        })
    }

    /// Rows `first .. first + count` of the `n × n` landscape (each row one value of the first
    /// coordinate, `n` of the second), then the projected path. The page asks for a few rows at
    /// a time, so that a click can overtake a long landscape between them; the plane's
    /// directions are computed with row 0 and kept for the later rows (the weights do not change
    /// in between: the page runs one job at a time).
    async fn landscape_rows(
        &mut self,
        gpu: &Gpu,
        n: usize,
        directions: &str,
        first: usize,
        count: usize,
    ) -> crate::Result<Vec<f32>> {
        let theta = self.net.params(gpu).await?;
        if first == 0 || self.plane.is_none() {
            self.plane = Some(self.plane_directions(gpu, &theta, directions).await?);
        }
        let Some((d1, d2)) = &self.plane else {
            return Err(crate::Error::Config("the landscape's plane is missing".into()));
        };
        let axis = Axis { min: -1.0, max: 1.0, points: n.clamp(3, 61) };
        let values = axis.values();
        let first = first.min(axis.points - 1);
        let count = count.clamp(1, axis.points - first);
        let rows = Axis { min: values[first], max: values[first + count - 1], points: count };
        let plane = Plane { d1, d2: Some(d2), a: rows, b: Some(axis) };
        let grid = landscape::evaluate_grid(gpu, &self.net, &self.train, self.data.train.rows(), &plane).await?;
        let path = landscape::project(&theta, d1, Some(d2), &self.history);
        let mut v: Vec<f32> = grid.loss.iter().map(|&x| x as f32).collect();
        v.extend(path.iter().flat_map(|&(a, b)| [a as f32, b as f32]));
        Ok(v)
    }

    /// Li et al.'s non-convexity |λmin/λmax| on an `n × n` grid of the landscape's plane (10
    /// Lanczos steps a point), and the HVPs it cost.
    async fn nonconvexity(&self, gpu: &Gpu, n: usize, directions: &str) -> crate::Result<(Vec<f32>, u64)> {
        let theta = self.net.params(gpu).await?;
        let (d1, d2) = self.plane_directions(gpu, &theta, directions).await?;
        let axis = Axis { min: -1.0, max: 1.0, points: n.clamp(3, 21) };
        let plane = Plane { d1: &d1, d2: Some(&d2), a: axis, b: Some(axis) };
        let (map, hvps) =
            landscape::nonconvexity_grid(gpu, &self.net, &self.train, self.data.train.rows(), &plane, 10).await?;
        Ok((map.iter().map(|&x| x as f32).collect(), hvps))
    }

    /// One part of the curvature readout (see [`CURVATURE_PARTS`]): the fields of the page's
    /// `{top, bottom, trace, trace_stderr, edge}` it fills, with the HVPs it took. Each part is
    /// one call from the page, which stops between parts when a lesson's click waits (a deep
    /// network's whole readout takes seconds on a CPU adapter).
    async fn curvature_part(&self, gpu: &Gpu, part: u32) -> crate::Result<serde_json::Value> {
        let op = HessianOperator::new(gpu, &self.net, &self.train, None)?;
        let mut fields = match part {
            0 => {
                let top = curvature::top_eigen(&op, 1, PowerOptions { tol: 1e-2, max_iter: 30, seed: 0 }).await?;
                serde_json::json!({ "top": top[0].value })
            }
            1 => {
                // λmin: the lowest Ritz value of 30 Lanczos steps (an upper bound that is tight
                // at the spectrum's ends)
                let (bottom, _) = curvature::extreme_eigenvalues(&op, 30, self.steps).await?;
                serde_json::json!({ "bottom": bottom })
            }
            2 => {
                let trace = curvature::hutchinson_trace(&op, 30, 1e-2, self.steps).await?;
                serde_json::json!({ "trace": trace.trace, "trace_stderr": trace.stderr })
            }
            3 => {
                // the sharpness the optimizer sees against its edge of stability (Cohen et al.)
                let state = self.opt.read_state(gpu).await?;
                let edge = match self.opt.config().method().stability(self.opt.lr(), &state) {
                    // before the first step a preconditioner is ε alone: λmax(P⁻¹H) would be λmax/ε
                    Some(st) if st.preconditioner.is_some() && state.t == 0 => None,
                    Some(st) => {
                        let power = PowerOptions { tol: 1e-2, max_iter: 30, seed: 1 };
                        Some(curvature::edge_of_stability(&op, &st, power).await?)
                    }
                    None => None,
                };
                let hvps = op.hvps() + edge.as_ref().map_or(0, |e| e.hvps);
                return Ok(serde_json::json!({ "edge": edge, "hvps": hvps }));
            }
            _ => {
                return Err(crate::Error::Config(format!(
                    "curvature part {part}: the parts are 0..{CURVATURE_PARTS} (λmax, λmin, trace, edge)"
                )))
            }
        };
        fields["hvps"] = op.hvps().into();
        Ok(fields)
    }

    /// `model.json` and the weights as safetensors named like PyTorch's `nn.Sequential` (what a
    /// run directory's `final.safetensors` holds), and the loss and accuracy on every point.
    async fn export(&self, gpu: &Gpu) -> crate::Result<(String, String, Vec<u8>, f32, f32)> {
        let tensors = crate::session::named_weights(gpu, &self.net).await?;
        let mut meta = HashMap::new();
        meta.insert("written_by".to_string(), "adahessian-wgpu playground".to_string());
        meta.insert("optimizer".to_string(), self.opt.config().to_text());
        meta.insert("step".to_string(), self.steps.to_string());
        let bytes = checkpoint::to_bytes(&tensors, meta)?;
        let all = self.net.evaluate(gpu, &self.all).await?;
        let model_py = crate::nn::pytorch::model_py(self.net.spec())?;
        Ok((self.net.spec().to_json(), model_py, bytes, all.loss, all.accuracy))
    }
}

/// Takes the state out for an async call and puts it back after, so a second call while one
/// runs is refused by name rather than aliasing the GPU buffers.
macro_rules! with_state {
    ($self:ident, |$gpu:ident, $s:ident| $body:expr) => {{
        let (gpu, cell) = ($self.gpu.clone(), $self.state.clone());
        future_to_promise(async move {
            #[allow(unused_mut)]
            let mut $s = cell.borrow_mut().take().ok_or_else(|| js_err("the playground is busy"))?;
            let $gpu = &gpu;
            let result = $body.await;
            *cell.borrow_mut() = Some($s);
            result
        })
    }};
}

#[wasm_bindgen]
impl Playground {
    /// A playground from the page's settings (JSON, see `Settings`; `{}` is circle, 8-8 tanh,
    /// AdaHessian) and, when `data` is `csv`, the text of the reader's file. The data set and the
    /// initial weights are seeded, so two playgrounds with one seed start from the same point.
    pub fn create(demo: &super::Demo, settings: String, csv_text: String) -> js_sys::Promise {
        let gpu = demo.gpu.clone();
        future_to_promise(async move {
            let s: Settings =
                serde_json::from_str(&settings).map_err(|e| js_err(format!("playground settings: {e}")))?;
            let state = PlaygroundState::new(&gpu, &s, &csv_text).map_err(js_err)?;
            Ok(Playground { gpu, state: Rc::new(RefCell::new(Some(state))) }.into())
        })
    }

    /// JSON: the model text, the optimizer as the library reads it, the classes and their names,
    /// the window `[x0, x1, y0, y1]`, the boundary grid's size and the split.
    pub fn info(&self) -> Result<String, JsValue> {
        let cell = self.state.borrow();
        let s = cell.as_ref().ok_or_else(|| js_err("the playground is busy"))?;
        json_text(&Info {
            model: s.net.spec().to_line(),
            optimizer: s.opt.config().to_text(),
            params: s.net.n_params(),
            tensors: s.net.model().params.len(),
            classes: s.data.classes(),
            class_names: s.data.class_names.clone(),
            bounds: s.data.bounds,
            grid_n: GRID_N,
            train_rows: s.data.train.rows(),
            test_rows: s.data.test.rows(),
            batch: s.order.batch_size(),
        })
    }

    /// Every point as `[x, y, label, is_test, ...]`, for drawing.
    pub fn points(&self) -> Result<Vec<f32>, JsValue> {
        let cell = self.state.borrow();
        Ok(cell.as_ref().ok_or_else(|| js_err("the playground is busy"))?.data.points())
    }

    /// Trains `steps` steps, then evaluates: JSON `{step, lr, train_loss, test_loss, test_accuracy}`.
    pub fn train(&self, steps: u32) -> js_sys::Promise {
        with_state!(self, |gpu, s| async { json(&s.train(gpu, steps).await.map_err(js_err)?) })
    }

    /// The class probabilities on the `grid_n × grid_n` grid over the window (rows from the
    /// top), `classes` per point.
    pub fn boundary(&self) -> js_sys::Promise {
        with_state!(self, |gpu, s| async {
            let p = s.boundary(gpu).await.map_err(js_err)?;
            Ok(js_sys::Float32Array::from(p.as_slice()).into())
        })
    }

    /// The training loss on an `n × n` plane around the weights, a, b ∈ [−1, 1] (row-major in
    /// b), along `directions`: `random` (filter-normalised), `pca` (the recent trajectory's
    /// principal plane, scaled to frame it; needs 3 snapshots) or `hessian` (the top two
    /// eigenvectors); followed by the (a, b) coordinates of the recent trajectory projected onto
    /// the plane.
    pub fn landscape(&self, n: usize, directions: String) -> js_sys::Promise {
        self.landscape_rows(n, directions, 0, n)
    }

    /// Rows `first .. first + count` of the `n × n` landscape (`count × n` losses, then the path
    /// as above); row 0 computes the plane's directions, later rows reuse them.
    pub fn landscape_rows(&self, n: usize, directions: String, first: usize, count: usize) -> js_sys::Promise {
        with_state!(self, |gpu, s| async {
            let v = s.landscape_rows(gpu, n, &directions, first, count).await.map_err(js_err)?;
            Ok(js_sys::Float32Array::from(v.as_slice()).into())
        })
    }

    /// |λmin/λmax| at every point of an `n × n` grid (3..21) of the landscape's plane: a
    /// Float32Array of n² ratios then the HVPs it cost.
    pub fn nonconvexity(&self, n: usize, directions: String) -> js_sys::Promise {
        with_state!(self, |gpu, s| async {
            let (mut v, hvps) = s.nonconvexity(gpu, n, &directions).await.map_err(js_err)?;
            v.push(hvps as f32);
            Ok(js_sys::Float32Array::from(v.as_slice()).into())
        })
    }

    /// Part `part` of the curvature of the training loss (0: λmax `{top}`, 1: λmin `{bottom}`,
    /// 2: Hutchinson trace `{trace, trace_stderr}`, 3: the optimizer's sharpness against its edge
    /// of stability `{edge}`), each with its `hvps`: JSON. One call each, so the page can stop
    /// between them.
    pub fn curvature_part(&self, part: u32) -> js_sys::Promise {
        with_state!(self, |gpu, s| async { json(&s.curvature_part(gpu, part).await.map_err(js_err)?) })
    }

    /// Each parameter tensor's diagonal block of the Hessian: JSON `[{tensor, params,
    /// top_eigenvalue, trace, trace_stderr, hvps}]` (as `adahessian hessian --per-layer`).
    pub fn per_layer(&self) -> js_sys::Promise {
        with_state!(self, |gpu, s| async {
            let result = async {
                let op = HessianOperator::new(gpu, &s.net, &s.train, None)?;
                let power = PowerOptions { tol: 1e-2, max_iter: 30, seed: 5 };
                curvature::per_tensor(&op, s.net.model(), power, 20, 2e-2).await
            };
            json(&result.await.map_err(js_err)?)
        })
    }

    /// The trained network to take away: `{model_json, model_py, safetensors, loss, accuracy}`
    /// with `safetensors` a Uint8Array (load with `adahessian … --model model.json --checkpoint
    /// final.safetensors`, or in PyTorch with model.py's `Model().load_state_dict(...)`), and the loss and
    /// accuracy over every point (train and test) it was measured at.
    pub fn export(&self) -> js_sys::Promise {
        with_state!(self, |gpu, s| async {
            let (model, model_py, bytes, loss, accuracy) = s.export(gpu).await.map_err(js_err)?;
            let out = js_sys::Object::new();
            let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v);
            set("model_json", model.into())?;
            set("model_py", model_py.into())?;
            set("safetensors", js_sys::Uint8Array::from(bytes.as_slice()).into())?;
            set("loss", loss.into())?;
            set("accuracy", accuracy.into())?;
            Ok(out.into())
        })
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, JsValue> {
    serde_json::to_string(value).map_err(js_err)
}
