//! # adahessian-wgpu
//!
//! Curvature-aware training (AdaHessian, Sophia-H) and exact Hessian-vector products for small
//! neural networks, written as WGSL compute shaders and driven through wgpu, so the same kernels
//! run on Vulkan, Metal, DX12 and WebGPU.
//!
//! The layout follows the architecture:
//! - [`gpu`]: adapter and device, the typed kernel enum and its build-once pipeline cache, buffers, readback;
//! - [`nn`]: models (Dense layers, activations, losses), each layer's f64 reference next to its
//!   kernels, and the GPU [`nn::Network`] with forward, backward and forward-over-reverse H·z;
//! - [`optim`]: SGD, Adam/AdamW, AdaHessian, Sophia-H, Lion and AdaBelief, one file each, each one
//!   kernel over the flat parameter arena, stepping any [`objective::Objective`];
//! - [`data`]: data sets (the UCI digits are embedded), splits, normalisation, GPU upload;
//! - [`probe`]: the counter-based probe hash shared with the shaders;
//! - [`train`]: epoch loops built on the above; [`session`]: a whole training run (plan, loop,
//!   metrics, the resumable [`session::RunState`] and its checkpoint schema);
//! - [`compare`]: optimizers measured side by side and the claims computed from the measurements,
//!   as serialisable data.
//!
//! ```no_run
//! use adahessian_wgpu::{data, gpu, nn, optim, train};
//! # fn main() -> adahessian_wgpu::Result<()> {
//! let gpu = gpu::Gpu::new_blocking(gpu::GpuOptions::from_env()?)?;
//! let (train_set, test_set) = data::digits()?.split(0.2, 0)?;
//! let spec = nn::ModelSpec::mlp(&[64, 32, 10], nn::Activation::Tanh, nn::Loss::CrossEntropy);
//! let net = nn::Network::new(&gpu, &spec, nn::NetworkOptions::new(64, 0))?;
//! let train_data = net.bind(&gpu, &data::DeviceDataset::upload(&gpu, &train_set)?)?;
//! let test_data = net.bind(&gpu, &data::DeviceDataset::upload(&gpu, &test_set)?)?;
//! let config = optim::OptimizerConfig::AdaHessian(optim::AdaHessianConfig::default());
//! let mut opt = optim::Optimizer::new(&gpu, &net, config)?;
//! let mut order = train::BatchOrder::new(train_data.rows, 64, 0);
//! for _epoch in 0..10 {
//!     train::run_epoch(&gpu, &net, &mut opt, &train_data, &mut order)?;
//! }
//! let result = adahessian_wgpu::block_on(net.evaluate(&gpu, &test_data))?;
//! println!("test accuracy {:.3}", result.accuracy);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod compare;
pub mod curvature;
pub mod data;
mod error;
pub mod files;
pub mod gpu;
pub mod nn;
pub mod objective;
pub mod optim;
pub mod probe;
pub mod race;
pub mod session;
pub mod surface;
pub mod train;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use error::{Error, Result};

/// Runs a future to completion on the current thread (native only; on the web, `.await` it).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

/// The README's Rust example, compiled as a doctest so the front page stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Every kernel the crate defines, listed by its owner: each layer and loss (src/nn/), the
/// optimizers' probes and every registered method's update (src/optim/), the gathers (src/data/),
/// the landscape and the 2-D surfaces. Nothing builds from this list (pipelines are built on
/// first use); the shader tests walk it, so a kernel left out of it is caught there.
pub fn kernels() -> Vec<gpu::Kernel> {
    let owners: [&[gpu::Kernel]; 11] = [
        nn::dense::kernels::KERNELS,
        nn::conv::kernels::KERNELS,
        nn::pool::kernels::KERNELS,
        nn::activation::kernels::KERNELS,
        nn::norm::kernels::KERNELS,
        nn::residual::kernels::KERNELS,
        nn::loss::kernels::KERNELS,
        optim::kernels::KERNELS,
        data::kernels::KERNELS,
        curvature::landscape::kernels::KERNELS,
        surface::kernels::KERNELS,
    ];
    owners.concat().into_iter().chain(optim::kernels::update_kernels()).collect()
}
