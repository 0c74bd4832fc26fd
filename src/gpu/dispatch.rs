//! Turning an item count into a dispatch. Kernels use 256 invocations per workgroup and one
//! invocation per item; above 65535 workgroups the grid becomes 2-D (shaders' `item_index`).

use super::{Gpu, Kernel};

/// Invocations per workgroup in every shader.
pub const WORKGROUP: u32 = 256;

/// Workgroup counts (x, y) for `items` invocations.
pub fn workgroups_for(items: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = items.div_ceil(WORKGROUP).max(1);
    if groups <= max_per_dim {
        (groups, 1)
    } else {
        let y = groups.div_ceil(max_per_dim);
        (groups.div_ceil(y), y)
    }
}

/// Records one kernel over `items` items (ignored for single-workgroup reductions).
pub fn dispatch(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    kernel: Kernel,
    group: &wgpu::BindGroup,
    items: u32,
) {
    if items == 0 && !kernel.is_single_workgroup() {
        return;
    }
    pass.set_pipeline(gpu.pipelines().pipeline(kernel));
    pass.set_bind_group(0, group, &[]);
    if kernel.is_single_workgroup() {
        pass.dispatch_workgroups(1, 1, 1);
    } else {
        let (x, y) = workgroups_for(items, gpu.limits().max_compute_workgroups_per_dimension);
        pass.dispatch_workgroups(x, y, 1);
    }
}
