//! Which kernels a network records: the kernel set (naive, register-tiled or workgroup-tiled
//! products, all checked against the same f64 references) and the choices that follow the
//! adapter's class (`gpu::AdapterClass`). The GPU runtime knows neither: both are the layers'.

use crate::error::{Error, Result};
use crate::gpu::{AdapterClass, WORKGROUP};

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

    /// The set `ADAHESSIAN_KERNELS` names (the tiled set where it is unset or empty).
    pub fn from_env() -> Result<KernelSet> {
        match std::env::var(KERNELS_ENV) {
            Ok(name) if !name.is_empty() => KernelSet::parse(&name),
            _ => Ok(KernelSet::default()),
        }
    }

    /// Whether the set uses the register-tiled kernels (tiled and shared do).
    pub fn tiled(self) -> bool {
        self != KernelSet::Naive
    }
}

/// The kernel choices that follow the adapter class ([`KernelTuning::for_class`]); networks read
/// them when they plan their dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTuning {
    /// Record the tiled dense forward and tangent products as one fused kernel. It holds 8
    /// accumulator vectors per invocation: on a CPU adapter, where every scalar of an invocation
    /// is a SIMD register, it spills, and measured slower than the two kernels on lavapipe and
    /// SwiftShader.
    pub fuse_dense_forward_tangent: bool,
    /// Invocations the tiled conv weight-gradient kernels aim for when they split their batch ×
    /// pixel reduction (src/nn/conv.rs): several workgroups per core of a CPU (lavapipe runs a
    /// workgroup per thread), several per compute unit of a GPU.
    pub weight_gradient_items: usize,
    /// The naive conv weight gradients may reduce a long sum with a workgroup per weight (a tree
    /// with barriers); on a CPU adapter barriers cost more than they save.
    pub workgroup_reductions: bool,
    /// Values of a normalisation group (a BatchNorm channel over the batch, a LayerNorm row) per
    /// workgroup of its reductions (shaders/norm.wgsl): short enough that the chunks of a
    /// ResNet's 16 channels fill a GPU, long enough that a CPU adapter's workgroups are not
    /// mostly their tree reductions. A multiple of the workgroup (256).
    pub norm_split_len: usize,
}

impl KernelTuning {
    /// The kernel choices for an adapter class. The CPU column is measured (BENCHMARKS.md); the GPU
    /// columns size the work to the hardware and are to be confirmed by `bench/device_run.sh`.
    pub fn for_class(class: AdapterClass) -> KernelTuning {
        match class {
            AdapterClass::Cpu => KernelTuning {
                fuse_dense_forward_tangent: false,
                weight_gradient_items: 16 * WORKGROUP as usize,
                workgroup_reductions: false,
                norm_split_len: 256 * WORKGROUP as usize,
            },
            AdapterClass::Integrated | AdapterClass::Other => KernelTuning {
                fuse_dense_forward_tangent: true,
                weight_gradient_items: 64 * WORKGROUP as usize,
                workgroup_reductions: true,
                norm_split_len: 16 * WORKGROUP as usize,
            },
            AdapterClass::Discrete => KernelTuning {
                fuse_dense_forward_tangent: true,
                weight_gradient_items: 256 * WORKGROUP as usize,
                workgroup_reductions: true,
                norm_split_len: 8 * WORKGROUP as usize,
            },
        }
    }

    /// One line for benchmark logs.
    pub fn describe(&self) -> String {
        format!(
            "dense forward + tangent {}, conv weight gradients split for ~{} invocations, workgroup reductions {}, \
             normalisation reduced in runs of {} values",
            if self.fuse_dense_forward_tangent { "fused" } else { "as two kernels" },
            self.weight_gradient_items,
            if self.workgroup_reductions { "on" } else { "off" },
            self.norm_split_len,
        )
    }
}
