//! Runs ONE kernel (or a kernel and its reduction) on host-supplied arenas and reads every arena
//! back: the way tests check each kernel against its f64 reference in isolation, and a handy
//! probe for anyone adding a kernel.
//! Not for training loops (it allocates on every call).

use super::buffers::{read_f32, storage_buffer, uniform_buffer};
use super::meta::BatchMeta;
use super::{bind_group, dispatch, BindLayout, Gpu, Kernel};
use crate::error::{Error, Result};
use bytemuck::Pod;

/// The arenas a layer or loss kernel binds (`BindLayout::Layer`).
#[derive(Clone, Debug, Default)]
pub struct LayerArenas {
    /// θ
    pub theta: Vec<f32>,
    /// probe / direction
    pub z: Vec<f32>,
    /// ∇θ
    pub g_theta: Vec<f32>,
    /// H z
    pub r_theta: Vec<f32>,
    /// activations
    pub work: Vec<f32>,
    /// scalars
    pub stats: Vec<f32>,
}

/// The arenas an optimizer, probe or curvature kernel binds (`BindLayout::Optim`).
#[derive(Clone, Debug, Default)]
pub struct OptimArenas {
    /// θ
    pub theta: Vec<f32>,
    /// ∇θ
    pub g_theta: Vec<f32>,
    /// probe
    pub z: Vec<f32>,
    /// H z
    pub r_theta: Vec<f32>,
    /// curvature estimate
    pub curv: Vec<f32>,
    /// optimizer moments [m; v]
    pub state: Vec<f32>,
    /// scalars
    pub stats: Vec<f32>,
}

fn upload(gpu: &Gpu, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let buffer = storage_buffer(gpu, label, data.len())?;
    if !data.is_empty() {
        gpu.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(data));
    }
    Ok(buffer)
}

async fn download(gpu: &Gpu, buffer: &wgpu::Buffer, out: &mut Vec<f32>) -> Result<()> {
    let n = out.len();
    *out = read_f32(gpu, buffer, 0, n).await?;
    Ok(())
}

fn run(gpu: &Gpu, kernels: &[(Kernel, u32)], group: &wgpu::BindGroup) -> Result<()> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for &(kernel, items) in kernels {
            dispatch(gpu, &mut pass, kernel, group, items);
        }
    }
    gpu.queue.submit(Some(encoder.finish()));
    gpu.check()
}

/// Runs a `BindLayout::Layer` kernel over `items` items with `rows` batch rows; `meta` is the
/// layer's uniform (`nn::meta::LayerMeta`).
pub async fn run_layer_kernel(
    gpu: &Gpu,
    kernel: Kernel,
    meta: &impl Pod,
    rows: u32,
    items: u32,
    a: &mut LayerArenas,
) -> Result<()> {
    run_layer_kernels(gpu, &[(kernel, items)], meta, rows, a).await
}

/// Runs `BindLayout::Layer` kernels one after the other (each over its item count) in one
/// compute pass, on the same arenas: a split kernel and its reduction.
pub async fn run_layer_kernels(
    gpu: &Gpu,
    kernels: &[(Kernel, u32)],
    meta: &impl Pod,
    rows: u32,
    a: &mut LayerArenas,
) -> Result<()> {
    if let Some((kernel, _)) = kernels.iter().find(|(k, _)| k.layout() != BindLayout::Layer) {
        return Err(Error::Config(format!("{kernel:?} is not a layer kernel")));
    }
    let meta_buf = uniform_buffer(gpu, "meta", meta);
    let batch = uniform_buffer(gpu, "batch", &BatchMeta { rows, ..Default::default() });
    let bufs = [
        upload(gpu, "theta", &a.theta)?,
        upload(gpu, "z", &a.z)?,
        upload(gpu, "g_theta", &a.g_theta)?,
        upload(gpu, "r_theta", &a.r_theta)?,
        upload(gpu, "work", &a.work)?,
        upload(gpu, "stats", &a.stats)?,
    ];
    // the kernels reach scratch and a residual add's block input through `side`, a second
    // window of the network's arena; here it is a copy of the whole of `work` (two writable
    // bindings of one buffer may not overlap), merged back below: the kernels never write one
    // element through both bindings
    let side = upload(gpu, "side", &a.work)?;
    let mut resources = vec![meta_buf.as_entire_binding(), batch.as_entire_binding()];
    resources.extend(bufs.iter().map(|b| b.as_entire_binding()));
    resources.push(side.as_entire_binding());
    let group = bind_group(gpu, "harness", BindLayout::Layer, resources);
    run(gpu, kernels, &group)?;
    download(gpu, &bufs[2], &mut a.g_theta).await?;
    download(gpu, &bufs[3], &mut a.r_theta).await?;
    let before = a.work.clone();
    let mut through_side = vec![0.0; before.len()];
    download(gpu, &side, &mut through_side).await?;
    download(gpu, &bufs[4], &mut a.work).await?;
    for ((w, s), b) in a.work.iter_mut().zip(&through_side).zip(&before) {
        if s.to_bits() != b.to_bits() {
            *w = *s;
        }
    }
    download(gpu, &bufs[5], &mut a.stats).await?;
    Ok(())
}

/// Runs a `BindLayout::Optim` kernel over `items` items; `slice` and `step` are the optimizer
/// kernels' uniforms (`optim::meta::{SliceMeta, StepMeta}`).
pub async fn run_optim_kernel(
    gpu: &Gpu,
    kernel: Kernel,
    slice: &impl Pod,
    step: &impl Pod,
    items: u32,
    a: &mut OptimArenas,
) -> Result<()> {
    if kernel.layout() != BindLayout::Optim {
        return Err(Error::Config(format!("{kernel:?} is not an optimizer kernel")));
    }
    let slice_buf = uniform_buffer(gpu, "slice", slice);
    let step_buf = uniform_buffer(gpu, "step", step);
    let bufs = [
        upload(gpu, "theta", &a.theta)?,
        upload(gpu, "g_theta", &a.g_theta)?,
        upload(gpu, "z", &a.z)?,
        upload(gpu, "r_theta", &a.r_theta)?,
        upload(gpu, "curv", &a.curv)?,
        upload(gpu, "state", &a.state)?,
        upload(gpu, "stats", &a.stats)?,
    ];
    let mut resources = vec![slice_buf.as_entire_binding(), step_buf.as_entire_binding()];
    resources.extend(bufs.iter().map(|b| b.as_entire_binding()));
    let group = bind_group(gpu, "harness", BindLayout::Optim, resources);
    run(gpu, &[(kernel, items)], &group)?;
    download(gpu, &bufs[0], &mut a.theta).await?;
    download(gpu, &bufs[2], &mut a.z).await?;
    download(gpu, &bufs[4], &mut a.curv).await?;
    download(gpu, &bufs[5], &mut a.state).await?;
    download(gpu, &bufs[6], &mut a.stats).await?;
    Ok(())
}
