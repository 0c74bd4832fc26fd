//! Benchmarks that the command line, the examples and the browser's bench page print (never
//! timed tests): synthetic data for any model, the time of each pass of a network, and the dense
//! matrix product's GFLOP/s against the adapter's fp32 peak where that is known.

use crate::data::{Dataset, Targets};
use crate::error::Result;
use crate::nn::{Loss, ModelSpec};
use crate::probe::SplitMix64;
#[cfg(not(target_arch = "wasm32"))]
use {
    crate::data::DeviceDataset,
    crate::error::Error,
    crate::gpu::Gpu,
    crate::nn::KernelSet,
    crate::nn::{Batch, BoundData, Layer, Network, NetworkOptions, Phase},
    std::time::Instant,
};

/// `rows` rows of N(0, 1) inputs shaped as the model's input, with uniformly random labels
/// (cross-entropy) or N(0, 1) targets (MSE) of the model's output width: timing data for any model.
pub fn synthetic_data(spec: &ModelSpec, rows: usize, seed: u64) -> Result<Dataset> {
    let model = spec.resolve()?;
    let features: usize = spec.input.iter().product();
    let k = model.output_width();
    let mut rng = SplitMix64::new(seed);
    let x: Vec<f32> = (0..rows * features).map(|_| rng.normal() as f32).collect();
    let targets = match spec.loss {
        Loss::CrossEntropy => Targets::Classes { labels: (0..rows).map(|_| rng.below(k) as u32).collect(), classes: k },
        Loss::Mse => Targets::Values { values: (0..rows * k).map(|_| rng.normal() as f32).collect(), width: k },
    };
    Dataset::new(x, features, targets)?.with_shape(spec.input.clone())
}

#[cfg(not(target_arch = "wasm32"))]
/// Median milliseconds of one pass of `net` over `rows` rows of `data` (the first rows), each
/// measurement `reps` passes recorded into one compute pass, submitted and waited for. The
/// tangent and R-backward passes read a direction left in `z` by one H·v first.
pub fn time_pass(gpu: &Gpu, net: &Network, data: &BoundData, rows: usize, phase: Phase, reps: usize) -> Result<f64> {
    let rows = prepare_passes(gpu, net, data, rows)?;
    median_ms(gpu, reps, |pass| net.encode(gpu, pass, phase, rows))
}

#[cfg(not(target_arch = "wasm32"))]
/// One dispatch's time in a per-dispatch profile ([`time_dispatches`]).
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The kernel.
    pub kernel: crate::gpu::Kernel,
    /// Its layer's index in `model().layers` (the number of layers for the loss).
    pub layer: usize,
    /// Median milliseconds of the dispatch alone.
    pub ms: f64,
}

#[cfg(not(target_arch = "wasm32"))]
/// Every dispatch of a pass timed alone (median of 5 measurements of `reps` back-to-back
/// recordings, as [`time_pass`]): where a pass's time goes. The sum exceeds the pass's time by
/// the launch and synchronisation cost of the separate submits.
pub fn time_dispatches(
    gpu: &Gpu,
    net: &Network,
    data: &BoundData,
    rows: usize,
    phase: Phase,
    reps: usize,
) -> Result<Vec<DispatchTime>> {
    let rows = prepare_passes(gpu, net, data, rows)?;
    let list = net.dispatch_list(phase);
    let mut out = Vec::with_capacity(list.len());
    for (index, (kernel, layer)) in list.into_iter().enumerate() {
        let ms = median_ms(gpu, reps, |pass| net.encode_dispatch(gpu, pass, phase, index, rows))?;
        out.push(DispatchTime { kernel, layer, ms });
    }
    Ok(out)
}

#[cfg(not(target_arch = "wasm32"))]
/// Runs one H·v on the first `rows` rows so that every node's value, tangent and cotangent
/// exist (the tangent and R-backward passes read a direction left in `z`); the batch's size.
fn prepare_passes(gpu: &Gpu, net: &Network, data: &BoundData, rows: usize) -> Result<u32> {
    let indices: Vec<u32> = (0..rows.min(data.rows) as u32).collect();
    let batch = Batch { data, indices: &indices };
    let mut rng = SplitMix64::new(5);
    let v: Vec<f32> = (0..net.n_params()).map(|_| rng.normal() as f32).collect();
    crate::block_on(net.hvp(gpu, &batch, &v))?;
    net.prepare(gpu, &batch)
}

#[cfg(not(target_arch = "wasm32"))]
/// The median over 5 submits of `record` called `reps` times into one compute pass, in ms per call.
fn median_ms(gpu: &Gpu, reps: usize, record: impl Fn(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..reps.max(1) {
                record(&mut pass);
            }
        }
        gpu.queue.submit(Some(encoder.finish()));
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        times.push(start.elapsed().as_secs_f64() * 1e3 / reps.max(1) as f64);
    }
    gpu.check()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One matrix-product measurement.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug, PartialEq)]
pub struct MatmulResult {
    /// The kernels measured.
    pub kernels: KernelSet,
    /// n of the n × n × n product.
    pub n: usize,
    /// Median milliseconds per product.
    pub ms: f64,
    /// 2n³ / time.
    pub gflops: f64,
    /// The adapter's fp32 peak in GFLOP/s, where this table knows it.
    pub peak_gflops: Option<f64>,
}

#[cfg(not(target_arch = "wasm32"))]
/// The n × n × n product y = x Wᵀ + b as the forward pass of one n → n dense layer over a batch
/// of n rows (the loss adds O(n²)), for each kernel set.
pub fn matmul(gpu: &Gpu, n: usize, sets: &[KernelSet], reps: usize) -> Result<Vec<MatmulResult>> {
    if n == 0 {
        return Err(Error::Config("the matrix size must be at least 1".into()));
    }
    let spec = ModelSpec {
        input: vec![n],
        layers: vec![Layer::Dense { out: n, bias: true }],
        loss: Loss::Mse,
        naming: crate::nn::Naming::Sequential,
    };
    let data = DeviceDataset::upload(gpu, &synthetic_data(&spec, n, 9)?)?;
    let peak = fp32_peak_gflops(gpu.adapter_name());
    let mut out = Vec::new();
    for &kernels in sets {
        let net = Network::with_kernels(gpu, &spec, NetworkOptions::new(n, 0), kernels)?;
        let bound = net.bind(gpu, &data)?;
        let ms = time_pass(gpu, &net, &bound, n, Phase::Forward, reps)?;
        let gflops = 2.0 * (n as f64).powi(3) / (ms * 1e-3) / 1e9;
        out.push(MatmulResult { kernels, n, ms, gflops, peak_gflops: peak });
    }
    Ok(out)
}

/// Published fp32 (non-tensor-core) peaks of a few adapters, in GFLOP/s, matched by name.
pub fn fp32_peak_gflops(adapter_name: &str) -> Option<f64> {
    let name = adapter_name.to_ascii_lowercase();
    const TABLE: [(&str, f64); 9] = [
        ("h200", 66_900.0),
        ("h100 pcie", 51_200.0),
        ("h100", 66_900.0),
        ("a100", 19_500.0),
        ("l40s", 91_600.0),
        ("rtx 4090", 82_600.0),
        ("rtx 3090", 35_600.0),
        ("apple m1", 2_600.0),
        ("apple m2", 3_600.0),
    ];
    TABLE.iter().find(|(key, _)| name.contains(key)).map(|&(_, peak)| peak)
}

/// One method's training step on one kernel set, as `bench` reports it.
#[derive(Clone, Copy, Debug)]
pub struct StepTiming {
    /// Median milliseconds per step.
    pub ms: f64,
    /// Compute dispatches per step.
    pub dispatches: f64,
    /// GPU bytes of the network and optimizer buffers (the data set excluded).
    pub bytes: u64,
}

#[cfg(not(target_arch = "wasm32"))]
/// Times `config`'s training step on `spec` with `set`'s kernels, on the network the method
/// really needs (no curvature buffers for first-order methods), over `data`'s rows in batches.
pub fn time_method(
    gpu: &Gpu,
    spec: &ModelSpec,
    config: crate::optim::OptimizerConfig,
    set: KernelSet,
    data: &DeviceDataset,
    batch: usize,
    timing: crate::train::Timing,
) -> Result<StepTiming> {
    let options = NetworkOptions { curvature: config.uses_curvature(), ..NetworkOptions::new(batch, 0) };
    let net = Network::with_kernels(gpu, spec, options, set)?;
    let bound = net.bind(gpu, data)?;
    let mut opt = crate::optim::Optimizer::new(gpu, &net, config)?;
    let mut order = crate::train::BatchOrder::new(bound.rows, batch, 0);
    let before = (gpu.dispatch_count(), opt.steps());
    let ms = crate::train::time_steps(gpu, &net, &mut opt, &bound, &mut order, timing)?;
    let dispatches = (gpu.dispatch_count() - before.0) as f64 / (opt.steps() - before.1).max(1) as f64;
    Ok(StepTiming { ms, dispatches, bytes: net.memory().total() + opt.memory_bytes() })
}
